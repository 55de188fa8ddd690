"""Edit metrics: how well the unedited region is preserved, and mask overlap.

Frames are ``[F, 3, H, W]`` in [0, 1]; masks ``[F, 1, H, W]`` bool (True = the edited region to exclude).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dynvfx.masks import dilate


def psnr_outside(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """PSNR in dB between ``a`` and ``b`` over the pixels outside ``mask`` (inf if identical there)."""
    keep = torch.ones_like(a[:, :1], dtype=torch.bool) if mask is None else ~mask.bool()
    err = ((a - b) ** 2).mean(1, keepdim=True)[keep]
    mse = err.mean().item() if err.numel() else 0.0
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def _gaussian(size: int = 7, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, size, size)


def ssim_map(a: torch.Tensor, b: torch.Tensor, size: int = 7) -> torch.Tensor:
    """Per-pixel SSIM ``[F, 1, H, W]`` (Gaussian window, channels averaged)."""
    w = _gaussian(size).to(a)
    pad = size // 2

    def blur(x):
        return F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), w, groups=3)

    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean(1, keepdim=True)


def ssim_outside(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None, size: int = 7) -> float:
    """Mean SSIM over the pixels whose whole ``size`` x ``size`` window lies outside ``mask`` (so a change
    inside the mask does not leak into the score through windows that straddle its edge); if no such
    pixel exists, over the pixels outside ``mask``."""
    s = ssim_map(a.float(), b.float(), size)
    if mask is None:
        return float(s.mean())
    mask = mask.bool()
    near = dilate(mask, size // 2)
    keep = ~near if (~near).any() else ~mask
    return float(s[keep].mean()) if keep.any() else 1.0


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """Intersection over union of two boolean masks (1.0 if both are empty)."""
    a, b = a.bool(), b.bool()
    union = (a | b).sum().item()
    return 1.0 if union == 0 else (a & b).sum().item() / union
