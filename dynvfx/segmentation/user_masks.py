"""User-supplied masks: a folder of PNG/JPG frames, a single image, or a video file (white = object).

The masks are read once, then for each video resized (nearest neighbour) to its frame size and, if the
frame counts differ, resampled evenly in time (with a warning). Every phrase gets the same mask.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import warnings
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
import torch.nn.functional as F

from dynvfx.segmentation.base import Segmentation

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".gif")


def _natural_key(path: Path) -> list:
    """Sort key that puts ``frame2.png`` before ``frame10.png``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name.lower())]


def binarize(image: np.ndarray) -> np.ndarray:
    """``[h, w]`` bool mask from a grey ``[h, w]`` or colour ``[h, w, C]`` image: brighter than half = object.

    Colour images use the mean of their first three channels (the only one if grey + alpha), times the
    alpha channel if there is one, so transparent pixels are never object.
    """
    x = image.astype(np.float32)
    if np.issubdtype(image.dtype, np.integer):
        x /= np.iinfo(image.dtype).max
    if x.ndim == 3:
        colour = x[..., :3] if x.shape[-1] >= 3 else x[..., :1]
        alpha = x[..., -1] if x.shape[-1] in (2, 4) else 1.0
        x = colour.mean(-1) * alpha
    return x > 0.5


def _read(path: Path) -> np.ndarray:
    """Decode an image ``[h, w(, C)]``; ``ValueError`` if it can't be read."""
    try:
        return np.asarray(iio.imread(path))
    except Exception as e:  # decoders raise many different types
        raise ValueError(f"user masks: cannot read {path}: {type(e).__name__}: {e}") from e


def _read_video(path: Path) -> np.ndarray:
    """``[M, h, w]`` bool masks from a video, decoded by imageio-ffmpeg's ffmpeg into temporary PNGs.

    (Calling ffmpeg directly, one frame per PNG, keeps every frame and leaves no pipes open.)
    """
    import imageio_ffmpeg

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path),
               "-fps_mode", "passthrough", "-pix_fmt", "gray", str(Path(tmp) / "%06d.png")]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            why = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else f"ffmpeg exit code {run.returncode}"
            raise ValueError(f"user masks: cannot read video {path}: {why}")
        if not any(Path(tmp).iterdir()):
            raise ValueError(f"user masks: video {path} has no frames")
        return _read_folder(Path(tmp))


def _read_folder(folder: Path) -> np.ndarray:
    """``[M, h, w]`` bool masks from the images of a folder, in natural name order."""
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    if not files:
        raise ValueError(f"user masks: no {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} images in folder {folder}")
    masks = [binarize(_read(p)) for p in files]
    sizes = {m.shape for m in masks}
    if len(sizes) > 1:
        raise ValueError(f"user masks: images in {folder} differ in size: {sorted(sizes)}")
    return np.stack(masks)


def read_masks(path: str | Path) -> np.ndarray:
    """Read user masks: ``[M, h, w]`` bool from a folder of images, one image, or a video file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"user masks: {path} does not exist (give a folder of PNG/JPG masks or an mp4)")
    if path.is_dir():
        return _read_folder(path)
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return _read_video(path)
    if suffix in IMAGE_SUFFIXES:
        return binarize(_read(path))[None]
    raise ValueError(f"user masks: unsupported file type {suffix!r} for {path}; use a folder of PNG/JPG or an mp4")


def fit_masks(masks: np.ndarray, frames: int, size: tuple[int, int], source: str = "masks") -> torch.Tensor:
    """Masks ``[M, h, w]`` bool -> ``[frames, H, W]`` bool: resized (nearest) and, if ``M != frames``,
    resampled evenly in time with a warning naming ``source``."""
    if len(masks) != frames:
        warnings.warn(
            f"user masks: {source} has {len(masks)} mask frame(s) but the video has {frames}; "
            "resampling the mask frames evenly", stacklevel=3,
        )
        masks = masks[np.linspace(0, len(masks) - 1, frames).round().astype(int)]
    t = torch.from_numpy(np.ascontiguousarray(masks))[:, None].float()
    return F.interpolate(t, size=size, mode="nearest")[:, 0] > 0.5


class UserMasks:
    """Segmenter that returns masks the user drew: ``path`` is a folder of PNG/JPG frames, an image or an mp4."""

    name = "masks"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.masks = read_masks(self.path)  # [M, h, w] bool, read now so a bad path fails early

    def segment(self, frames: torch.Tensor, phrases: list[str]) -> Segmentation:
        """The user's mask for every phrase: masks ``[N, F, 1, H, W]``; scores ``[N, F]`` 1 where non-empty."""
        f, _, h, w = frames.shape
        mask = fit_masks(self.masks, f, (h, w), str(self.path))  # [F, H, W]
        n = len(phrases)
        masks = mask[None, :, None].expand(n, f, 1, h, w).clone()
        scores = mask.flatten(1).any(1).float()[None].expand(n, f).clone()
        return Segmentation(list(phrases), masks, scores)
