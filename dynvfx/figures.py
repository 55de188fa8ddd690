"""Everything that draws: tinted masks and heat maps as frames, static figures for the notebooks, videos played
inline, and the strips written by the CLI and the README script. (The interactive sliders that follow a static
figure are in :mod:`dynvfx.widgets`.)

Frames ``[F, 3, H, W]`` float in [0, 1]; pixel masks ``[F, 1, H, W]`` bool; token-grid maps ``[F', h', w']``
(``VideoSpec.token_grid``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dynvfx.masks import upsample_to_pixels
from dynvfx.video import ffmpeg_exe, to_uint8

ORIG_TINT = torch.tensor([1.0, 0.2, 0.2])  # O_orig: red
EDIT_TINT = torch.tensor([0.2, 1.0, 0.3])  # O_edit: green


# ------------------------------------------------------------------------------------- frames as pictures
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
    """Write an ``[H, W, 3]`` uint8 image (e.g. a :func:`strip`) as a PNG; returns the path."""
    from PIL import Image

    Image.fromarray(image).save(path)
    return Path(path)


def grid_to_pixels(grid: torch.Tensor, spec, num_frames: int | None = None) -> torch.Tensor:
    """A latent- or token-grid map ``[F', h, w]`` -> ``[F, 1, H, W]`` (nearest) over the video's frames."""
    return upsample_to_pixels(grid.float(), num_frames or spec.num_frames, spec.temporal_compression,
                              (spec.height, spec.width))


def heat_rgb(heat: torch.Tensor, vmax: float | None = None, cmap: str = "magma") -> torch.Tensor:
    """A map ``[F, 1, H, W]`` (0 .. ``vmax``, default its max) in a matplotlib colormap -> ``[F, 3, H, W]``."""
    import matplotlib

    vmax = float(heat.max()) if vmax is None else vmax
    x = (heat[:, 0].float() / max(vmax, 1e-8)).clamp(0, 1).cpu().numpy()
    return torch.from_numpy(matplotlib.colormaps[cmap](x)[..., :3]).permute(0, 3, 1, 2).float()


def anchor_overlay(frames: torch.Tensor, token_mask: torch.Tensor, anchors: torch.Tensor, spec) -> torch.Tensor:
    """Frames ``[F, 3, H, W]`` with the O_orig token mask ``[F', h', w']`` tinted red and every anchor token
    (``[F', h', w']`` bool) marked by a yellow square in its centre."""
    f, _, h, w = frames.shape
    s = spec.spatial_compression * spec.patch_size
    inner = lambda n: ((torch.arange(n) % s) >= s // 4) & ((torch.arange(n) % s) < s - s // 4)  # noqa: E731
    centre = inner(h)[:, None] & inner(w)[None, :]
    out = mask_video(frames, orig_mask=grid_to_pixels(token_mask, spec, f).bool())
    mark = grid_to_pixels(anchors, spec, f).bool() & centre
    return torch.where(mark, torch.tensor([1.0, 0.9, 0.1]).view(1, 3, 1, 1), out)


# ------------------------------------------------------------------------------------------ notebook figures
def upscale(frames: torch.Tensor, height: int = 192) -> torch.Tensor:
    """``[F, C, H, W]`` resized (nearest) to ``height`` pixels high, aspect kept: tiny toy frames stay crisp."""
    f, c, h, w = frames.shape
    return F.interpolate(frames.float(), size=(height, round(w * height / h)), mode="nearest")


def show_videos(videos: dict[str, torch.Tensor], fps: float = 8.0, height: int = 192) -> None:
    """Play ``{title: frames [F, 3, H, W]}`` side by side with mediapy (an HTML5 video per title)."""
    import mediapy

    mediapy.set_ffmpeg(ffmpeg_exe())
    mediapy.show_videos({k: to_uint8(upscale(v, height)) for k, v in videos.items()}, fps=fps)


def pick_frames(num_frames: int, k: int = 5) -> list[int]:
    """``k`` frame indices spread evenly from the first to the last frame."""
    return torch.linspace(0, num_frames - 1, min(k, num_frames)).round().long().tolist()


def video_grid(rows: dict[str, torch.Tensor], frames: list[int] | None = None, title: str | None = None,
               size: float = 1.5, labels: list[str] | None = None):
    """A static figure: one row per ``{label: frames [F, 3, H, W]}``, one column per frame index in ``frames``
    (default: 5 spread over the clip), titled ``labels`` (default "frame i"). Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    n = next(iter(rows.values())).shape[0]
    frames = frames if frames is not None else pick_frames(n)
    labels = labels or [f"frame {f}" for f in frames]
    fig, axes = plt.subplots(len(rows), len(frames), figsize=(size * len(frames) + 1.2, size * len(rows)),
                             squeeze=False)
    for r, (label, video) in enumerate(rows.items()):
        for c, f in enumerate(frames):
            ax = axes[r, c]
            ax.imshow(video[f].permute(1, 2, 0).clamp(0, 1).cpu().numpy(), interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(labels[c] if r == 0 else "", fontsize=8)
        axes[r, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def word_maps(maps: dict[str, torch.Tensor], spec, mask: torch.Tensor | None = None, frames: list[int] | None = None,
              notes: dict[str, str] | None = None, size: float = 1.5):
    """A static figure: one row per ``{word: token-grid map [F', h', w']}`` (e.g. its attention), one column per
    frame index in ``frames`` (default: 5 spread over the clip), each row on its own colour scale with a colour bar,
    the object's pixel ``mask`` ``[F, 1, H, W]`` outlined in cyan, and ``notes[word]`` under the word's name."""
    import matplotlib.pyplot as plt

    frames = frames if frames is not None else pick_frames(spec.num_frames)
    fig, axes = plt.subplots(len(maps), len(frames), figsize=(size * len(frames) + 2.4, size * len(maps)),
                             squeeze=False)
    for r, (word, grid) in enumerate(maps.items()):
        pixels = grid_to_pixels(grid, spec)[:, 0].cpu().numpy()
        for c, f in enumerate(frames):
            ax = axes[r, c]
            image = ax.imshow(pixels[f], cmap="magma", vmin=0, vmax=float(grid.max()), interpolation="nearest")
            if mask is not None:
                ax.contour(mask[f, 0].float().cpu().numpy(), levels=[0.5], colors="cyan", linewidths=1.2)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"frame {f}" if r == 0 else "", fontsize=8)
        axes[r, 0].set_ylabel(f"{word!r}\n{(notes or {}).get(word, '')}", fontsize=8, rotation=0, ha="right",
                              va="center")
        fig.colorbar(image, ax=list(axes[r]), fraction=0.02, pad=0.01).ax.tick_params(labelsize=7)
    return fig


def iteration_views(pipe, result) -> list[dict[str, torch.Tensor]]:
    """Per refinement iteration of a :class:`~dynvfx.refinement.RefinementResult`, four videos ``[F, 3, H, W]``:
    ``"x_comp (input)"`` decoded, ``"x_hat"`` decoded, ``"O_edit mask"`` and ``"|x_res|"`` (channel norm of the
    residual after the iteration, upsampled from the latent grid, one colour scale for all iterations)."""
    from dynvfx.pipeline import decode_latents, video_spec

    spec = video_spec(pipe)
    norms = [it.x_res[0].norm(dim=1) for it in result.iterations]  # [F', h, w] each
    vmax = max(float(n.max()) for n in norms) or 1.0
    views = []
    for it, norm in zip(result.iterations, norms):
        f = it.frames_hat.shape[0]
        views.append({"x_comp (input)": decode_latents(pipe, it.x_comp_in), "x_hat": it.frames_hat,
                      "O_edit mask": it.mask.float().expand(-1, 3, -1, -1),
                      "|x_res|": heat_rgb(grid_to_pixels(norm, spec, f), vmax)})
    return views
