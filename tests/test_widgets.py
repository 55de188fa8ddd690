"""The notebooks' interactive viewers (``dynvfx.widgets``), drawn without a browser: what each picture shows for
the slider values it is given, its title, and the static first picture its display data carry.
(``tests/test_browser.py`` moves their sliders in JupyterLab.)"""

from __future__ import annotations

import base64

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dynvfx import widgets  # noqa: E402
from dynvfx.pipeline import VideoSpec  # noqa: E402

#: the toy model's geometry: 17 frames of 48 x 48, 4x temporal and spatial compression, 2 x 2 patches (8-px tokens)
TOY_SPEC = VideoSpec(num_frames=17, height=48, width=48, temporal_compression=4, spatial_compression=4,
                     patch_size=2, max_text_tokens=4)
TOKEN = TOY_SPEC.spatial_compression * TOY_SPEC.patch_size


@pytest.fixture(scope="module")
def ball_clip():
    """The toy example "blue_ball_down" rendered: frames ``[17, 3, 48, 48]``, the ball's pixel mask and its
    O_orig token mask."""
    from dynvfx.masks import pixel_to_tokens
    from dynvfx.toy import world
    from dynvfx.toy.examples import example_scene, scene_frames

    scene = example_scene("blue_ball_down")
    ball = torch.from_numpy(world.render(scene)[1][0])[:, None]
    return scene_frames(scene), ball, pixel_to_tokens(ball, TOY_SPEC)


def _draw_of(monkeypatch, make_viewer):
    """The ``draw(**values)`` and the controls a viewer hands to :func:`dynvfx.widgets.viewer`."""
    got = {}
    monkeypatch.setattr(widgets, "viewer", lambda draw, **controls: got.update(draw=draw, controls=controls))
    make_viewer()
    return got["draw"], got["controls"]


def _picture(draw, **values):
    """Draw, and return the figure's title and its panels' pictures (numpy arrays)."""
    plt.close("all")
    draw(**values)
    fig = plt.gcf()
    pictures = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    return fig._suptitle.get_text(), pictures


def _centre(mask: torch.Tensor) -> torch.Tensor:
    return mask.nonzero().float().mean(0)


def test_anchor_viewer_draws_the_mask_and_anchors_of_the_frame_shown(ball_clip, monkeypatch):
    frames, ball, token_mask = ball_clip
    draw, _ = _draw_of(monkeypatch, lambda: widgets.anchor_viewer(frames, token_mask, TOY_SPEC))
    travelled = _centre(ball[-1, 0]) - _centre(ball[0, 0])
    assert travelled[0] > 2 * TOKEN, "the toy ball should move down by more than two tokens"
    for frame in range(frames.shape[0]):
        _, (_, masked) = _picture(draw, fg_keep=0.0, bg_keep=0.0, seed=0, frame=frame)  # the mask alone
        red = torch.from_numpy(masked[..., 0] - masked[..., 1] > 0.2)
        covered = (red & ball[frame, 0]).sum() / ball[frame, 0].sum()
        assert covered >= 0.5, f"frame {frame}: the red O_orig tokens cover {covered:.0%} of the ball"
        gap = (_centre(red) - _centre(ball[frame, 0])).norm()
        assert gap < TOKEN, f"frame {frame}: the red O_orig tokens are centred {gap:.0f} px from the ball"
        _, (_, anchored) = _picture(draw, fg_keep=1.0, bg_keep=0.0, seed=0, frame=frame)  # anchors = the mask
        yellow = torch.from_numpy((anchored[..., 0] > 0.9) & (anchored[..., 1] > 0.8) & (anchored[..., 2] < 0.2))
        assert yellow.any() and not (yellow & ~red).any(), f"frame {frame}: anchors outside the frame's mask"
    plt.close("all")


def test_attention_viewer_maps_the_latent_frame_of_the_frame_shown(ball_clip, monkeypatch):
    """A recorded map that is bright on one latent frame only shows up on exactly that frame's pixel frames."""
    from dynvfx.attention import AttentionRecorder
    from dynvfx.masks import temporal_groups

    frames, _, _ = ball_clip
    f_lat, h, w = TOY_SPEC.token_grid
    rec = AttentionRecorder([1])
    attention = torch.zeros(2, f_lat, h, w)
    attention[:, 3] = 1.0  # every head attends to the word from latent frame 3 only
    rec.text_to_video = {(0, 0): attention.view(2, 1, -1)}
    draw, _ = _draw_of(monkeypatch, lambda: widgets.attention_viewer(frames, rec, TOY_SPEC))
    lit = {frame for frame in range(frames.shape[0])
           if _picture(draw, step=0, layer=0, head=-1, frame=frame)[1][2].max() > 0.5}
    assert lit == set(temporal_groups(frames.shape[0], TOY_SPEC.temporal_compression)[3])
    plt.close("all")


def test_every_viewer_title_names_every_slider_value(ball_clip, monkeypatch):
    from dynvfx.attention import AttentionRecorder

    frames, _, token_mask = ball_clip
    rec = AttentionRecorder([1])
    rec.text_to_video = {(s, layer): torch.rand(4, 1, 180) for s in (0, 6) for layer in (0, 5)}
    view = {"a": frames, "b": frames}
    cases = {  # a viewer, and slider values that no other slider of it shares
        "frame": (lambda: widgets.frame_viewer(view), {"frame": 13}),
        "timestep": (lambda: widgets.timestep_viewer({"a": {999: frames, 499: frames}}), {"t": 499, "frame": 13}),
        "attention": (lambda: widgets.attention_viewer(frames, rec, TOY_SPEC),
                      {"step": 6, "layer": 5, "head": 3, "frame": 13}),
        "anchor": (lambda: widgets.anchor_viewer(frames, token_mask, TOY_SPEC),
                   {"fg_keep": 0.35, "bg_keep": 0.15, "seed": 7, "frame": 13}),
        "iteration": (lambda: widgets.iteration_viewer([view, view], (0.9, 0.5)), {"iteration": 2, "frame": 13}),
    }
    for name, (make, values) in cases.items():
        draw, controls = _draw_of(monkeypatch, make)
        assert set(controls) == set(values), f"{name} viewer: sliders {sorted(controls)}"
        title, _ = _picture(draw, **values)
        for slider, value in values.items():
            assert f"{slider} {value}" in title or f"{slider} = {value}" in title, \
                f"{name} viewer: the title {title!r} does not name {slider} = {value}"
    plt.close("all")


def test_a_viewer_displays_its_first_picture_beside_the_widget(ball_clip):
    import ipywidgets

    frames, _, token_mask = ball_clip
    box = widgets.anchor_viewer(frames, token_mask, TOY_SPEC)
    assert isinstance(box, ipywidgets.VBox)
    bundle = box._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    png = base64.b64decode(bundle["image/png"])
    assert png.startswith(b"\x89PNG")
    frame_slider = box.children[0].children[-1]
    frame_slider.value = 2  # a redraw does not change the first picture
    assert box._repr_mimebundle_()["image/png"] == bundle["image/png"]
    plt.close("all")
