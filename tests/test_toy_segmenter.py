"""The toy segmenter: phrase masks against the renderer's ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from dynvfx.segmentation import Segmenter, get_segmenter
from dynvfx.segmentation.toy import ToySegmenter, parse_phrase
from dynvfx.toy import world

SEG = ToySegmenter()


def render(seed: int, **kwargs) -> tuple[world.Scene, torch.Tensor, np.ndarray]:
    """A scene, its video ``[F, 3, H, W]`` and ground-truth masks ``[N, F, H, W]``."""
    scene = world.sample_scene(seed, held_out="any", **kwargs)
    video, masks = world.render(scene)
    return scene, torch.from_numpy(video).permute(0, 3, 1, 2), masks


def blur_and_noise(frames: torch.Tensor, seed: int) -> torch.Tensor:
    """Gaussian blur (1.3 px) and noise (std 0.05), like a generated video."""
    v = ndimage.gaussian_filter(frames.numpy(), (0, 0, 1.3, 1.3))
    v = v + np.random.default_rng(seed).normal(0, 0.05, v.shape)
    return torch.from_numpy(np.clip(v, 0, 1).astype(np.float32))


def iou(a, b) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return float((a & b).sum() / max((a | b).sum(), 1))


def absent_phrase(scene: world.Scene) -> str:
    present = {o.colour for o in scene.objects}
    return next(f"{c} ball" for c in world.COLOURS if c not in present)


@pytest.mark.parametrize("degraded", [False, True])
def test_masks_match_ground_truth(degraded):
    ious = []
    for seed in range(16):
        scene, frames, masks = render(seed, n_objects=2)
        if degraded:
            frames = blur_and_noise(frames, seed)
        phrases = [f"the {o.phrase}" for o in scene.objects]
        seg = SEG.segment(frames, phrases)
        assert seg.masks.shape == (2, 17, 1, 48, 48) and seg.masks.dtype == torch.bool
        assert seg.scores.shape == (2, 17) and ((seg.scores >= 0) & (seg.scores <= 1)).all()
        ious += [iou(seg.masks[i, :, 0], masks[i]) for i in range(2)]
    assert min(ious) >= (0.7 if degraded else 0.8) and np.mean(ious) >= (0.85 if degraded else 0.95), ious


def test_colour_only_and_compound_phrases():
    triples = [("green", "ball", "up"), ("red", "ball", "right")]
    scene, frames, masks = render(5, triples=triples, background="white")
    seg = SEG.segment(frames, ["green", "the red circle", "green ball and a red ball", "Green Ball."])
    assert iou(seg.masks[0, :, 0], masks[0]) > 0.9
    assert iou(seg.masks[1, :, 0], masks[1]) > 0.9
    assert iou(seg.masks[2, :, 0], masks[0] | masks[1]) > 0.9
    assert iou(seg.masks[3, :, 0], masks[0]) > 0.9
    assert (seg.scores > 0.5).all()


def test_absent_and_unknown_phrases_are_empty():
    scene, frames, _ = render(11, n_objects=2)
    colour = scene.objects[0].colour
    phrases = [absent_phrase(scene), "a car", "", "purple ball", "ball", f"{colour} square", f"{colour} triangle",
               scene.objects[0].phrase]
    seg = SEG.segment(frames, phrases)
    assert not seg.masks[:7].any() and (seg.scores[:7] == 0).all()
    assert seg.masks[7].any() and (seg.scores[7] > 0).all()
    with pytest.warns(UserWarning, match="no detection"):
        assert len(seg.warn_missing()) == 7


def test_no_phrases():
    _, frames, _ = render(0)
    seg = SEG.segment(frames, [])
    assert seg.masks.shape == (0, 17, 1, 48, 48) and seg.scores.shape == (0, 17)


def test_large_real_like_frames_find_little():
    torch.manual_seed(0)
    frames = torch.nn.functional.interpolate(torch.rand(3, 3, 12, 18), size=(240, 360), mode="bilinear")
    seg = SEG.segment(frames, ["red ball", "dog"])
    assert seg.masks.shape == (2, 3, 1, 240, 360) and seg.scores.shape == (2, 3)
    assert seg.masks.float().mean() < 0.05


def test_scaled_up_toy_video_is_still_segmented():
    scene, frames, masks = render(2, n_objects=1)
    big = torch.nn.functional.interpolate(frames, scale_factor=4, mode="bilinear").clamp(0, 1)
    seg = SEG.segment(big, [scene.objects[0].phrase])
    small = torch.nn.functional.interpolate(seg.masks[0].float(), size=(48, 48), mode="area")[:, 0] > 0.5
    assert iou(small, masks[0]) > 0.85


def test_parse_phrase():
    assert parse_phrase("the red ball") == ["red"]
    assert parse_phrase("yellow") == ["yellow"]
    assert parse_phrase("a blue box, or a green circle") == ["green"]
    assert parse_phrase("a car") == [] and parse_phrase("the ball") == [] and parse_phrase("red square") == []


def test_registry():
    seg = get_segmenter("toy")
    assert isinstance(seg, ToySegmenter) and isinstance(seg, Segmenter) and seg.name == "toy"
