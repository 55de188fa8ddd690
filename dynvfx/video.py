"""Video I/O: read an mp4 or a folder of frames, fit it to the model, write an mp4.

Frames are torch tensors ``[F, 3, H, W]`` float32 in ``[0, 1]`` throughout the library.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dynvfx.errors import DynVFXError

FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")


def ffmpeg_exe() -> str:
    """The ffmpeg binary: the system's if any, else the one that ships inside ``imageio-ffmpeg``."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _use_ffmpeg() -> None:
    os.environ.setdefault("IMAGEIO_FFMPEG_EXE", ffmpeg_exe())
    try:
        import mediapy

        mediapy.set_ffmpeg(os.environ["IMAGEIO_FFMPEG_EXE"])
    except ImportError:  # mediapy is only for notebooks
        pass


def load_video(path: str | Path) -> tuple[torch.Tensor, float]:
    """Read a video file (mp4, gif, ...) or a folder of PNG/JPG frames (sorted by name).

    Returns:
        frames ``[F, 3, H, W]`` float32 in [0, 1], and frames per second (8.0 for a folder).
    """
    path = Path(path)
    if not path.exists():
        raise DynVFXError(f"video not found: {path}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
        if not files:
            raise DynVFXError(f"no PNG/JPG frames in folder {path}")
        return _to_tensor(np.stack(_read_images(files, path))), 8.0
    if path.stat().st_size == 0:
        raise DynVFXError(f"video file is empty (0 bytes): {path}")
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), f"{tmp}/%06d.ppm"],
                             capture_output=True, text=True)
        if run.returncode != 0:
            last = [ln for ln in run.stderr.strip().splitlines() if ln.strip()] or ["ffmpeg failed"]
            raise DynVFXError(f"cannot read video {path}: not a video ffmpeg can decode ({last[-1].strip()})")
        fps = re.search(r"([\d.]+) fps", run.stderr)
        fps = float(fps.group(1)) if fps else 8.0
        arrays = _read_images(sorted(Path(tmp).iterdir()), path)
    if not arrays:
        raise DynVFXError(f"video {path} has no frames")
    return _to_tensor(np.stack(arrays)), fps


def _read_images(files: list[Path], source: Path) -> list[np.ndarray]:
    from PIL import Image

    try:
        arrays = []
        for f in files:
            with Image.open(f) as im:
                arrays.append(np.asarray(im.convert("RGB")))
    except OSError as e:
        raise DynVFXError(f"cannot read frame of {source}: {e}") from None
    if len({a.shape for a in arrays}) > 1:
        raise DynVFXError(f"frames of {source} do not all have the same size")
    return arrays


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    """``[F, H, W, 3]`` uint8 or float -> ``[F, 3, H, W]`` float32 in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(frames))
    t = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
    return t.permute(0, 3, 1, 2).contiguous()


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """``[F, 3, H, W]`` in [0, 1] -> ``[F, H, W, 3]`` uint8 (for writing and display)."""
    return (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def write_video(path: str | Path, frames: torch.Tensor, fps: float = 8.0, overwrite: bool = True) -> Path:
    """Write ``[F, 3, H, W]`` frames in [0, 1] as an H.264 mp4 (lossless-ish, crf 10).

    Written to a temporary file in the same folder and renamed, so a crash never leaves half a video.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise DynVFXError(f"{path} exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise DynVFXError(f"output folder does not exist: {path.parent}")
    if not os.access(path.parent, os.W_OK):
        raise DynVFXError(f"output folder is not writable: {path.parent}")
    _use_ffmpeg()
    import imageio.v2 as imageio

    arr = to_uint8(frames)
    h, w = arr.shape[1:3]
    arr = np.pad(arr, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")  # yuv420p wants even sizes
    fd, tmp = tempfile.mkstemp(suffix=".mp4", dir=path.parent, prefix=".tmp-")
    os.close(fd)
    try:
        with imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264", quality=None,
                                pixelformat="yuv420p", ffmpeg_params=["-crf", "10"], macro_block_size=1) as wr:
            for frame in arr:
                wr.append_data(frame)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def valid_frame_count(n: int, temporal_compression: int) -> int:
    """Largest ``1 + k * temporal_compression`` that is ``<= n`` (CogVideoX's autoencoder needs such counts)."""
    return 1 + (n - 1) // temporal_compression * temporal_compression


def fitted_frame_count(frames: int, num_frames: int, temporal_compression: int = 4) -> int:
    """How many frames of a ``frames``-frame video :func:`fit_to_model` keeps: ``num_frames``, or for a shorter
    video the largest valid count ``1 + k * temporal_compression`` (:class:`DynVFXError` below ``1 + tc``)."""
    if frames >= num_frames:
        return num_frames
    n = valid_frame_count(frames, temporal_compression)
    if n < 1 + temporal_compression:
        raise DynVFXError(f"video has {frames} frames; the model needs at least {1 + temporal_compression}")
    return n


def fit_to_model(
    frames: torch.Tensor, num_frames: int, height: int, width: int, temporal_compression: int = 4,
) -> tuple[torch.Tensor, str]:
    """Resize/crop ``[F, 3, H, W]`` frames to the model's ``height x width`` and frame count.

    Spatially: scale so the frame covers ``height x width``, then centre-crop (aspect kept).
    In time: more frames than needed -> evenly spaced frames over the whole clip; fewer -> the largest
    valid count ``1 + k * temporal_compression``.

    Returns:
        ``[num_frames', 3, height, width]`` frames and a one-line note of what was done ("" if nothing).
    """
    notes = []
    f, _, h, w = frames.shape
    n = fitted_frame_count(f, num_frames, temporal_compression)
    if f > num_frames:
        idx = torch.linspace(0, f - 1, num_frames).round().long()
        frames = frames[idx]
        notes.append(f"took {num_frames} evenly spaced frames of {f}")
    elif f < num_frames:
        frames = frames[:n]
        notes.append(f"video has {f} frames, fewer than the model's {num_frames}: using the first {n} "
                     f"(1 + {temporal_compression}k frames)")
    if (h, w) != (height, width):
        scale = max(height / h, width / w)
        nh, nw = max(height, round(h * scale)), max(width, round(w * scale))
        frames = F.interpolate(frames, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
        top, left = (nh - height) // 2, (nw - width) // 2
        frames = frames[:, :, top:top + height, left:left + width].clamp(0, 1)
        notes.append(f"resized {w}x{h} to {width}x{height}" + (" (centre crop)" if (nh, nw) != (height, width) else ""))
    return frames.contiguous(), "; ".join(notes)


def load_for_model(path: str | Path, num_frames: int, height: int, width: int,
                   temporal_compression: int = 4) -> tuple[torch.Tensor, float]:
    """:func:`load_video` then :func:`fit_to_model`; what was changed is reported with ``warnings.warn``."""
    frames, fps = load_video(path)
    frames, note = fit_to_model(frames, num_frames, height, width, temporal_compression)
    if note:
        warnings.warn(f"{Path(path).name}: {note}", stacklevel=2)
    return frames, fps
