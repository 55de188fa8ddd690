"""The toy model's gate: toy-world clips pass; other sizes, frame counts and real or random content are refused."""

from __future__ import annotations

import pytest
import torch

from conftest import ROOT, SHARED_VIDEOS
from dynvfx.toy import gate, world
from dynvfx.video import fit_to_model, load_video


def test_toy_world_clips_pass():
    for path in sorted((ROOT / "data" / "examples").glob("*.mp4")):
        assert gate.source_problem(load_video(path)[0]) is None, path.name
    for seed in range(20):
        video = torch.from_numpy(world.render(world.sample_scene(seed, n_objects=1 + seed % 2))[0])
        assert gate.source_problem(video.permute(0, 3, 1, 2)) is None, seed


def test_noise_and_other_shapes_are_refused():
    clip = load_video(ROOT / "data" / "examples" / "green_ball_left.mp4")[0]
    assert "flat colours" in gate.source_problem(torch.rand_like(clip))
    assert "it is 96x96 pixels" in gate.source_problem(torch.nn.functional.interpolate(clip, size=(96, 96)))
    assert "it has 9 frames" in gate.source_problem(clip[:9])


def test_real_clips_are_refused_even_when_fitted_to_the_toy_size():
    if not SHARED_VIDEOS.exists():
        pytest.skip(f"shared videos not found at {SHARED_VIDEOS}")
    for name in ("taxi.mp4", "girl_living_room.mp4", "box_frames"):
        frames = load_video(SHARED_VIDEOS / name)[0]
        assert "720x480" in gate.source_problem(frames)
        small, _ = fit_to_model(frames, world.FRAMES, world.SIZE, world.SIZE)
        assert gate.palette_share(small) < gate.MIN_PALETTE_SHARE, name
        assert "flat colours" in gate.source_problem(small)
