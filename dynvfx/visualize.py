"""Pictures of frames, masks and maps, for the CLI's outputs, the README and the notebooks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dynvfx.video import to_uint8

ORIG_TINT = torch.tensor([1.0, 0.2, 0.2])  # O_orig: red
EDIT_TINT = torch.tensor([0.2, 1.0, 0.3])  # O_edit: green


def mask_video(frames: torch.Tensor, orig_mask: torch.Tensor | None = None,
               edit_mask: torch.Tensor | None = None, alpha: float = 0.55) -> torch.Tensor:
    """Frames ``[F, 3, H, W]`` with O_orig (red) and O_edit (green) masks ``[F, 1, H, W]`` tinted over them."""
    out = frames.clone() * 0.6
    for mask, tint in ((orig_mask, ORIG_TINT), (edit_mask, EDIT_TINT)):
        if mask is not None:
            m = mask.float()
            out = out * (1 - alpha * m) + alpha * m * tint.view(1, 3, 1, 1)
    return out.clamp(0, 1)


def heat_overlay(frames: torch.Tensor, heat: torch.Tensor, alpha: float = 0.6) -> torch.Tensor:
    """Frames ``[F, 3, H, W]`` with a heat map ``[F, 1, H, W]`` (any range, normalised per video) in yellow."""
    h = heat.float()
    h = (h - h.min()) / (h.max() - h.min() + 1e-8)
    tint = torch.tensor([1.0, 0.85, 0.1]).view(1, 3, 1, 1)
    return (frames * (1 - alpha * h) + alpha * h * tint).clamp(0, 1)


def strip(videos: list[torch.Tensor], every: int = 4, scale: int = 4) -> np.ndarray:
    """Rows of frames: each video ``[F, 3, H, W]`` becomes one row of every ``every``-th frame, ``scale``x
    nearest-upscaled. Returns ``[rows*H*scale, cols*W*scale, 3]`` uint8."""
    rows = []
    for v in videos:
        v = v[::every]
        v = F.interpolate(v.float(), scale_factor=scale, mode="nearest")
        tiles = [np.pad(t, ((0, 0), (0, 2), (0, 0)), constant_values=255) for t in to_uint8(v)]  # 2-px gaps
        rows.append(np.concatenate(tiles, axis=1)[:, :-2])
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(rows, axis=0)


def save_png(image: np.ndarray, path: str | Path) -> Path:
    from PIL import Image

    Image.fromarray(image).save(path)
    return Path(path)
