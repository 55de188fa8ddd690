"""Pixel masks: morphological clean-up and mapping to the model's latent and token grids.

The residual's latent mask M comes either from max-pooling the pixel mask (:func:`to_latent_grid`) or, as in the
authors' code, from the autoencoder: the pixel mask is encoded like a video and its latent features are split in
two clusters by k-means (:func:`kmeans_latent_mask`, :func:`kmeans2`).

Pixel masks are ``[F, 1, H, W]`` bool. CogVideoX's causal autoencoder maps frame 0 to latent frame 0 and each
following group of ``temporal_compression`` frames to one latent frame; ``spatial_compression`` pixels to a
latent cell, and ``patch_size`` latent cells to a token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary dilation of ``[F, 1, H, W]`` masks by a ``(2r+1)``-pixel square."""
    if radius <= 0:
        return mask.bool()
    return F.max_pool2d(mask.float(), 2 * radius + 1, stride=1, padding=radius) > 0.5


def erode(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary erosion of ``[F, 1, H, W]`` masks by a ``(2r+1)``-pixel square (outside counts as empty)."""
    return ~dilate(~mask.bool(), radius) if radius > 0 else mask.bool()


def clean_mask(mask: torch.Tensor, open_radius: int = 1, close_radius: int = 0, dilate_radius: int = 0) -> torch.Tensor:
    """Opening (drops specks), closing (fills small holes), then dilation (a safety margin); ``[F, 1, H, W]``."""
    m = mask.bool()
    if open_radius > 0:
        m = dilate(erode(m, open_radius), open_radius)
    if close_radius > 0:
        m = erode(dilate(m, close_radius), close_radius)
    return dilate(m, dilate_radius)


def temporal_groups(num_frames: int, temporal_compression: int) -> list[range]:
    """Frames behind each latent frame: ``[0], [1..4], [5..8], ...`` for compression 4."""
    groups = [range(0, 1)]
    for start in range(1, num_frames, temporal_compression):
        groups.append(range(start, min(start + temporal_compression, num_frames)))
    return groups


def latent_frame(frame: int, temporal_compression: int) -> int:
    """The latent frame that holds pixel frame ``frame`` (0 -> 0, 1..4 -> 1, 5..8 -> 2 for compression 4): the
    index of its group in :func:`temporal_groups`."""
    return 0 if frame == 0 else (frame - 1) // temporal_compression + 1


def to_latent_grid(mask: torch.Tensor, temporal_compression: int, spatial_compression: int,
                   reduce: str = "max") -> torch.Tensor:
    """``[F, 1, H, W]`` pixel mask -> ``[F', 1, H/s, W/s]`` float in [0, 1] on the latent grid.

    ``reduce="max"``: a latent cell is 1 if any pixel behind it is in the mask; ``"mean"``: the covered fraction.
    """
    m = mask.float()
    pool = F.max_pool2d if reduce == "max" else F.avg_pool2d
    m = pool(m, spatial_compression)
    groups = temporal_groups(m.shape[0], temporal_compression)
    stack = [m[g.start:g.stop] for g in groups]
    return torch.stack([(s.amax(0) if reduce == "max" else s.mean(0)) for s in stack])


def to_token_grid(latent_mask: torch.Tensor, patch_size: int, threshold: float = 0.5) -> torch.Tensor:
    """``[F', 1, h, w]`` latent-grid mask -> ``[F', h/p, w/p]`` bool token mask (covered fraction > threshold)."""
    return F.avg_pool2d(latent_mask.float(), patch_size)[:, 0] > threshold


def pixel_to_tokens(mask: torch.Tensor, spec, threshold: float = 0.25) -> torch.Tensor:
    """``[F, 1, H, W]`` pixel mask -> ``[F', h', w']`` bool token mask for a :class:`~dynvfx.pipeline.VideoSpec`."""
    lat = to_latent_grid(mask, spec.temporal_compression, spec.spatial_compression, reduce="mean")
    return to_token_grid(lat, spec.patch_size, threshold)


def upsample_to_pixels(grid: torch.Tensor, num_frames: int, temporal_compression: int, size: tuple[int, int]) -> torch.Tensor:
    """A latent/token-grid map ``[F', h, w]`` -> ``[F, 1, H, W]`` (nearest), for showing it over the frames."""
    groups = temporal_groups(num_frames, temporal_compression)
    idx = torch.tensor([k for k, g in enumerate(groups) for _ in g])
    up = F.interpolate(grid[:, None].float(), size=size, mode="nearest")
    return up[idx]


def kmeans2(features: torch.Tensor, iters: int = 100) -> torch.Tensor:
    """2-cluster k-means (Lloyd) of ``[N, C]`` features -> ``[N]`` long labels in {0, 1}.

    Deterministic start: the point farthest from the mean, then the point farthest from that one. Stops when no
    label changes. All points equal -> all labels 0.
    """
    x = features.double()
    c0 = x[(x - x.mean(0)).pow(2).sum(1).argmax()]
    c1 = x[(x - c0).pow(2).sum(1).argmax()]
    centres = torch.stack([c0, c1])
    labels = torch.zeros(len(x), dtype=torch.long, device=x.device)
    if torch.equal(c0, c1):
        return labels
    for k in range(iters):
        new = torch.cdist(x, centres).argmin(1)
        if k > 0 and torch.equal(new, labels):
            break
        labels = new
        for j in (0, 1):
            if (labels == j).any():
                centres[j] = x[labels == j].mean(0)
    return labels


def kmeans_latent_mask(latent_features: torch.Tensor, pixel_mask: torch.Tensor) -> torch.Tensor:
    """The authors' latent mask: ``[F', C, h, w]`` latents of the encoded pixel mask ``[F, 1, H, W]`` ->
    ``[F', 1, h, w]`` float in {0, 1}.

    All latent cells of the video are split by :func:`kmeans2`; the larger cluster takes the value held by the
    majority of the pixels (usually background -> 0), the other cluster the other value.
    """
    f, c, h, w = latent_features.shape
    labels = kmeans2(latent_features.permute(0, 2, 3, 1).reshape(-1, c).float())
    pixel_majority = int(pixel_mask.float().mean() > 0.5)
    latent_majority = int(labels.float().mean() > 0.5)
    if latent_majority != pixel_majority:
        labels = 1 - labels
    return labels.view(f, 1, h, w).float().cpu()
