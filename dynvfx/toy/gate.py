"""What the toy model can edit: clips of its own toy world, and nothing else.

The toy model learnt 48 x 48, 17-frame clips of coloured balls on a flat background (:mod:`dynvfx.toy.world`).
On anything else it runs for minutes and returns noise or nothing, so :func:`source_problem` says in one line
why a video is not such a clip (its size, its frame count, or its content) before any model loads.
"""

from __future__ import annotations

import numpy as np
import torch

from dynvfx.toy import perception, world

#: RGB distance within which a pixel counts as one of the toy world's flat colours.
PALETTE_TOLERANCE = 0.1
#: Share of such pixels a toy clip must have (the shipped examples: 94 to 98 %; the course's real 720 x 480
#: clips, fitted to 48 x 48: 13 to 60 %).
MIN_PALETTE_SHARE = 0.85


def palette_share(frames: torch.Tensor) -> float:
    """Share of the pixels of ``[F, 3, H, W]`` frames in [0, 1] that show a toy background or ball colour."""
    refs = perception.flat_colours()[1]  # [K, 3]
    pixels = frames.permute(0, 2, 3, 1).reshape(-1, 1, 3).float().numpy()
    return float((np.linalg.norm(pixels - refs, axis=-1).min(-1) < PALETTE_TOLERANCE).mean())


def source_problem(frames: torch.Tensor) -> str | None:
    """Why ``[F, 3, H, W]`` frames (as read, before fitting) are not a toy-world clip, or None if they are one."""
    f, _, h, w = frames.shape
    if (h, w) != (world.SIZE, world.SIZE):
        return f"it is {w}x{h} pixels, and toy-world clips are {world.SIZE}x{world.SIZE}"
    if f != world.FRAMES:
        return f"it has {f} frames, and toy-world clips have {world.FRAMES}"
    share = palette_share(frames)
    if share < MIN_PALETTE_SHARE:
        return (f"only {share:.0%} of its pixels are the toy world's flat colours "
                f"(a toy clip has over {MIN_PALETTE_SHARE:.0%})")
    return None
