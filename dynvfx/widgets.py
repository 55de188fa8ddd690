"""Interactive viewers for the notebooks: ipywidgets sliders over small matplotlib figures.

The notebooks always draw a static figure first (e.g. :func:`dynvfx.figures.video_grid`), which reads well on
GitHub and under nbval, and then show a viewer for exploring. Every viewer returns an ipywidgets box: make it
the last expression of a cell (or ``display`` it). Its output also carries its first picture as a PNG, which
JupyterLab (before the notebook is trusted or a kernel runs) and nbconvert's HTML show in the widget's place.
The title of every picture names the value of every slider. Without ipywidgets a viewer prints a note and
returns None.

Frames are ``[F, 3, H, W]`` in [0, 1]; token-grid maps ``[F', h', w']``.
"""

from __future__ import annotations

import base64
import functools
import io
from typing import Callable

import torch

from dynvfx import figures, probes
from dynvfx.masks import latent_frame


def _ipywidgets():
    try:
        import ipywidgets
    except ImportError:
        print("(ipywidgets is not installed: the static figure above shows the same data)")
        return None
    return ipywidgets


def _slider(W, description: str, lo, hi, value, step=1):
    """An int or float slider that redraws only when released (figures take a moment to draw)."""
    cls = W.FloatSlider if isinstance(step, float) else W.IntSlider
    return cls(min=lo, max=hi, step=step, value=value, description=description, continuous_update=False)


@functools.cache
def _viewer_box():
    """The box class of a viewer: an ipywidgets VBox whose display data add its first picture as ``image/png``
    beside the widget view (a front end that cannot show the widget shows the picture)."""
    import ipywidgets as W

    class ViewerBox(W.VBox):
        first_picture = ""  # base64 PNG

        def _repr_mimebundle_(self, **kwargs):
            return super()._repr_mimebundle_(**kwargs) | {"image/png": self.first_picture}

    return ViewerBox


def png_base64(fig) -> str:
    """A matplotlib figure as a base64 PNG, cropped as notebooks show figures."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def viewer(draw: Callable[..., None], **controls):
    """``draw(**values)`` (which draws a matplotlib figure) redrawn whenever one of ``controls`` (ipywidgets
    value widgets, by keyword) changes. Returns the box holding the controls and the figure; its display data
    carry the first picture as a PNG too."""
    import ipywidgets as W
    import matplotlib.pyplot as plt

    first = []

    def _draw(**values):
        draw(**values)
        if not first:
            first.append(png_base64(plt.gcf()))
        plt.show()

    out = W.interactive_output(_draw, controls)
    box = _viewer_box()([W.HBox(list(controls.values()), layout=W.Layout(flex_flow="row wrap")), out])
    box.first_picture = first[0]
    return box


def panels(images: dict[str, torch.Tensor], title: str = "", size: float = 2.4):
    """One row of images ``{label: [3, H, W]}`` (or ``[H, W]`` maps, drawn with a colour bar)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size + 0.4), squeeze=False)
    for ax, (label, im) in zip(axes[0], images.items()):
        shown = ax.imshow(im.permute(1, 2, 0).clamp(0, 1).numpy() if im.ndim == 3 else im.numpy(),
                          interpolation="nearest", cmap=None if im.ndim == 3 else "magma")
        if im.ndim == 2:
            fig.colorbar(shown, ax=ax, fraction=0.046)
        ax.set_title(label, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def frame_viewer(videos: dict[str, torch.Tensor]):
    """Step through ``{title: frames}`` (same frame count) side by side with a frame slider."""
    W = _ipywidgets()
    if W is None:
        return None
    n = next(iter(videos.values())).shape[0]
    return viewer(lambda frame: panels({k: v[frame] for k, v in videos.items()}, f"frame {frame}"),
                  frame=_slider(W, "frame", 0, n - 1, n // 2))


def timestep_viewer(views: dict[str, dict[int, torch.Tensor]]):
    """Browse ``{view: {timestep: frames}}`` (e.g. :func:`dynvfx.probes.noisy_views`) by timestep and frame."""
    W = _ipywidgets()
    if W is None:
        return None
    steps = sorted(next(iter(views.values())), reverse=True)
    n = next(iter(views.values()))[steps[0]].shape[0]
    return viewer(lambda t, frame: panels({k: v[t][frame] for k, v in views.items()}, f"t = {t}, frame {frame}"),
                  t=W.SelectionSlider(options=steps, value=steps[len(steps) // 2], description="timestep",
                                      continuous_update=False),
                  frame=_slider(W, "frame", 0, n - 1, n // 2))


def attention_viewer(frames: torch.Tensor, recorder, spec, word: str = "word"):
    """Text-to-video attention of the recorded word, by denoising step, layer, head (-1 = mean) and frame:
    the frame, the map over it, and the raw token-grid map of that latent frame."""
    W = _ipywidgets()
    if W is None:
        return None
    steps = sorted({s for s, _ in recorder.text_to_video})
    layers = sorted({layer for _, layer in recorder.text_to_video})
    heads = next(iter(recorder.text_to_video.values())).shape[0]

    def draw(step, layer, head, frame):
        grid = probes.word_attention(recorder, spec, step, layer, None if head < 0 else head)
        k = latent_frame(frame, spec.temporal_compression)
        heat = figures.grid_to_pixels(grid[k:k + 1], spec, 1)  # latent frame k alone, over the frame shown
        over = figures.heat_rgb(heat, float(grid.max()))[0] * 0.6 + frames[frame] * 0.4
        panels({"frame": frames[frame], f"attention to {word!r}": over, f"token grid (latent frame {k})": grid[k]},
               f"step {step}, layer {layer}, head {'mean' if head < 0 else head}, frame {frame}")

    return viewer(draw, step=W.SelectionSlider(options=steps, value=steps[len(steps) // 2], description="step",
                                               continuous_update=False),
                  layer=W.SelectionSlider(options=layers, value=layers[-1], description="layer",
                                          continuous_update=False),
                  head=_slider(W, "head", -1, heads - 1, -1),
                  frame=_slider(W, "frame", 0, frames.shape[0] - 1, frames.shape[0] // 2))


def anchor_viewer(frames: torch.Tensor, token_mask: torch.Tensor, spec, mode: str = "anchor"):
    """Resample the anchors with the keep probabilities ``fg_keep`` (inside the O_orig token mask) and ``bg_keep``
    (outside) and a seed; shows them and the mask of the frame's latent frame over that frame, with their count."""
    from dynvfx.anchors import anchor_grid

    W = _ipywidgets()
    if W is None:
        return None

    def draw(fg_keep, bg_keep, seed, frame):
        grid = anchor_grid(token_mask, mode, fg_keep, bg_keep, torch.Generator().manual_seed(seed))
        k = latent_frame(frame, spec.temporal_compression)  # latent frame k alone, over the frame shown
        over = figures.anchor_overlay(frames[frame:frame + 1], token_mask[k:k + 1], grid[k:k + 1], spec)
        panels({"frame": frames[frame], "O_orig tokens (red), anchors (yellow)": over[0]},
               f"fg_keep {fg_keep:.2f}, bg_keep {bg_keep:.2f}, seed {seed}, frame {frame} (latent frame {k}):\n"
               f"{int(grid.sum())} anchors of {grid.numel()} tokens ({int((grid & token_mask).sum())} in the mask)")

    return viewer(draw, fg_keep=_slider(W, "fg_keep", 0.0, 1.0, 0.7, 0.05),
                  bg_keep=_slider(W, "bg_keep", 0.0, 1.0, 0.05, 0.05), seed=_slider(W, "seed", 0, 9, 0),
                  frame=_slider(W, "frame", 0, frames.shape[0] - 1, frames.shape[0] // 2))


def iteration_viewer(views: list[dict[str, torch.Tensor]], strengths=None):
    """Browse :func:`dynvfx.figures.iteration_views` by refinement iteration and frame."""
    W = _ipywidgets()
    if W is None:
        return None
    n = next(iter(views[0].values())).shape[0]

    def draw(iteration, frame):
        label = f" (strength {strengths[iteration - 1]})" if strengths else ""
        panels({k: v[frame] for k, v in views[iteration - 1].items()}, f"iteration {iteration}{label}, frame {frame}")

    return viewer(draw, iteration=_slider(W, "iteration", 1, len(views), 1),
                  frame=_slider(W, "frame", 0, n - 1, n // 2))
