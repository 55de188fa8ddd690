"""Choosing the key frames the VFX assistant looks at, and turning them into images it can read."""

from __future__ import annotations

import base64
import io

import numpy as np
import torch
from PIL import Image


def select_keyframes(num_frames: int, k: int = 3) -> list[int]:
    """``k`` frame indices spread evenly over the video, first and last included.

    ``k=3`` gives first, middle and last; ``k=1`` gives the middle frame. Short videos give fewer indices
    rather than repeats, e.g. ``select_keyframes(2) == [0, 1]``.
    """
    if num_frames < 1:
        raise ValueError(f"need at least one frame, got {num_frames}")
    if k < 1:
        raise ValueError(f"need at least one key frame, got k={k}")
    if k == 1:
        return [(num_frames - 1) // 2]
    picks = [round(i * (num_frames - 1) / (k - 1)) for i in range(k)]
    return list(dict.fromkeys(picks))


def _check_frames(frames) -> torch.Tensor:
    """``frames`` as a ``[F, 3, H, W]`` float tensor on the CPU (numpy arrays accepted)."""
    frames = torch.as_tensor(frames)
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be [F, 3, H, W], got shape {tuple(frames.shape)}")
    return frames.detach().cpu().float()


def frames_to_uint8(frames, indices: list[int]) -> np.ndarray:
    """The chosen frames as ``[K, H, W, 3]`` uint8, from ``[F, 3, H, W]`` float in [0, 1]."""
    frames = _check_frames(frames)
    bad = [i for i in indices if not -frames.shape[0] <= i < frames.shape[0]]
    if bad:
        raise IndexError(f"key frames {bad} out of range for {frames.shape[0]} frames")
    picked = frames[list(indices)].clamp(0, 1).mul(255).round().to(torch.uint8)
    return picked.permute(0, 2, 3, 1).contiguous().numpy()


def _fit(image: Image.Image, max_side: int | None) -> Image.Image:
    """Shrink ``image`` so its longer side is at most ``max_side`` pixels (never enlarge)."""
    if max_side is None or max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.BICUBIC)


def frames_to_images(frames, indices: list[int], max_side: int | None = None) -> list[Image.Image]:
    """RGB PIL images of ``frames[indices]`` (``[F, 3, H, W]`` float in [0, 1]), optionally shrunk."""
    return [_fit(Image.fromarray(a, "RGB"), max_side) for a in frames_to_uint8(frames, indices)]


def image_to_data_url(image: Image.Image) -> str:
    """A ``data:image/png;base64,...`` URL holding ``image`` as PNG."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def frames_to_data_urls(frames, indices: list[int], max_side: int | None = None) -> list[str]:
    """PNG data URLs of ``frames[indices]`` (``[F, 3, H, W]`` float in [0, 1])."""
    return [image_to_data_url(im) for im in frames_to_images(frames, indices, max_side)]
