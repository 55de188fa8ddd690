"""Choosing the anchors: which source video tokens the edit may attend to.

The O_orig mask on the token grid ``[F', h', w']`` is kept with probability ``fg_keep`` and the rest of the
grid (background) with ``bg_keep``. One uniform draw per spatial position is shared by all latent frames, so an
anchor stays put over time (as in the paper); the mask itself may move from frame to frame.
"""

from __future__ import annotations

import torch

from dynvfx.config import ATTENTION_MODES as MODES
from dynvfx.config import DynVFXConfig


def anchor_grid(token_mask: torch.Tensor, mode: str = "anchor", fg_keep: float = DynVFXConfig.fg_keep,
                bg_keep: float = DynVFXConfig.bg_keep, generator: torch.Generator | None = None) -> torch.Tensor:
    """``[F', h', w']`` bool O_orig token mask -> ``[F', h', w']`` bool anchors for ``mode``.

    ``"full"``: every token; ``"masked"``: the mask; ``"anchor"``: mask tokens with prob. ``fg_keep`` plus
    background tokens with prob. ``bg_keep`` (defaults: :class:`~dynvfx.config.DynVFXConfig`'s); ``"off"``: none.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    m = token_mask.bool()
    if mode == "full":
        return torch.ones_like(m)
    if mode == "masked":
        return m.clone()
    if mode == "off":
        return torch.zeros_like(m)
    u = torch.rand(m.shape[1:], generator=generator).expand_as(m)
    return torch.where(m, u < fg_keep, u < bg_keep)


def anchor_index(grid: torch.Tensor) -> torch.Tensor:
    """``[F', h', w']`` bool anchors -> ``[A]`` long indices into the flattened video-token sequence."""
    return grid.flatten().nonzero().flatten()
