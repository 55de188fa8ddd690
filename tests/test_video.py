"""Video I/O and fitting a clip to the model's size and frame count."""

import numpy as np
import pytest
import torch

from conftest import SHARED_VIDEOS
from dynvfx.errors import DynVFXError
from dynvfx.video import fit_to_model, load_video, valid_frame_count, write_video


def test_valid_frame_counts():
    assert [valid_frame_count(n, 4) for n in (1, 5, 43, 48, 49, 50)] == [1, 5, 41, 45, 49, 49]


def test_fit_43_frames_for_a_49_frame_model_says_what_it_did():
    frames = torch.rand(43, 3, 480, 720)
    out, note = fit_to_model(frames, 49, 480, 720)
    assert out.shape == (41, 3, 480, 720) and torch.equal(out, frames[:41])
    assert "43 frames" in note and "first 41" in note


def test_fit_subsamples_and_resizes_with_centre_crop():
    frames = torch.zeros(49, 3, 480, 720)
    frames[:, :, :, 360:] = 1.0  # right half white
    for i in range(49):
        frames[i, 0, 0, 0] = i / 48  # frame index in one pixel
    out, note = fit_to_model(frames, 17, 48, 48)
    assert out.shape == (17, 3, 48, 48)
    assert "17 evenly spaced frames of 49" in note and "centre crop" in note
    assert out[:, :, :, :20].max() < 0.05 and out[:, :, :, 28:].min() > 0.95  # the crop kept the middle
    with pytest.raises(DynVFXError, match="at least 5"):
        fit_to_model(torch.rand(3, 3, 8, 8), 17, 8, 8)


def test_write_then_read_roundtrip(tmp_path):
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(9, 3, 1, 1, generator=g).expand(9, 3, 32, 48).contiguous()  # flat colours survive h264
    path = write_video(tmp_path / "v.mp4", frames, fps=8)
    back, fps = load_video(path)
    assert back.shape == frames.shape and fps == 8.0
    assert (back - frames).abs().mean() < 0.02
    with pytest.raises(DynVFXError, match="--overwrite"):
        write_video(path, frames, overwrite=False)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_read_errors(tmp_path):
    with pytest.raises(DynVFXError, match="not found"):
        load_video(tmp_path / "nope.mp4")
    (tmp_path / "bad.mp4").write_bytes(b"junk")
    with pytest.raises(DynVFXError, match="cannot read video"):
        load_video(tmp_path / "bad.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DynVFXError, match="no PNG/JPG"):
        load_video(tmp_path / "empty")


def test_real_videos_load():
    if not SHARED_VIDEOS.exists():
        pytest.skip(f"shared videos not found at {SHARED_VIDEOS}")
    for name in ("taxi.mp4", "girl_living_room.mp4", "box_frames"):
        frames, fps = load_video(SHARED_VIDEOS / name)
        assert frames.shape[1:] == (3, 480, 720) and frames.shape[0] >= 41 and fps == 8.0
        assert 0.05 < float(frames.mean()) < 0.95 and np.isfinite(frames.numpy()).all()
