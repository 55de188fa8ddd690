"""User-supplied masks from PNG folders, single images and mp4 files."""

from __future__ import annotations

import warnings

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from dynvfx.segmentation import Segmenter, get_segmenter
from dynvfx.segmentation.user_masks import UserMasks, binarize, read_masks


def moving_box(frames: int, h: int, w: int) -> np.ndarray:
    """``[frames, h, w]`` bool: a box a quarter of the frame wide sliding right by 2 px per frame."""
    m = np.zeros((frames, h, w), bool)
    for f in range(frames):
        m[f, h // 4: h // 2, f * 2 + 4: f * 2 + 4 + w // 4] = True
    return m


def to_uint8(masks: np.ndarray) -> np.ndarray:
    return masks.astype(np.uint8) * 255


def write_pngs(folder, masks: np.ndarray, rgb: bool = False) -> None:
    folder.mkdir()
    for i, m in enumerate(masks):  # unpadded numbers, so the order must be natural, not lexical
        img = to_uint8(m)
        iio.imwrite(folder / f"mask_{i}.png", np.stack([img] * 3, -1) if rgb else img)


def frames_like(n: int, h: int, w: int) -> torch.Tensor:
    return torch.rand(n, 3, h, w)


@pytest.mark.parametrize("rgb", [False, True])
def test_png_folder_same_size(tmp_path, rgb):
    masks = moving_box(12, 32, 48)
    write_pngs(tmp_path / "m", masks, rgb)
    seg = UserMasks(tmp_path / "m").segment(frames_like(12, 32, 48), ["red ball", "anything"])
    assert seg.masks.shape == (2, 12, 1, 32, 48) and seg.masks.dtype == torch.bool
    assert torch.equal(seg.masks[0, :, 0], torch.from_numpy(masks))
    assert torch.equal(seg.masks[0], seg.masks[1])
    assert (seg.scores == 1).all()


def test_png_folder_is_resized_nearest(tmp_path):
    masks = moving_box(12, 32, 48)
    write_pngs(tmp_path / "m", masks)
    seg = UserMasks(tmp_path / "m").segment(frames_like(12, 64, 96), ["x"])
    up = masks.repeat(2, axis=1).repeat(2, axis=2)  # exact 2x nearest upsampling
    assert torch.equal(seg.masks[0, :, 0], torch.from_numpy(up))


def test_frame_count_mismatch_resamples_with_warning(tmp_path):
    masks = moving_box(9, 32, 48)
    masks[4] = False  # an empty frame gets score 0
    write_pngs(tmp_path / "m", masks)
    with pytest.warns(UserWarning, match="9 mask frame.*17"):
        seg = UserMasks(tmp_path / "m").segment(frames_like(17, 32, 48), ["x"])
    got = seg.masks[0, :, 0].numpy()
    idx = np.linspace(0, 8, 17).round().astype(int)
    assert (got == masks[idx]).all()
    assert seg.scores[0].tolist() == [float(masks[i].any()) for i in idx]


def test_no_warning_when_counts_match(tmp_path):
    write_pngs(tmp_path / "m", moving_box(5, 32, 48))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        UserMasks(tmp_path / "m").segment(frames_like(5, 32, 48), ["x"])


def test_mp4(tmp_path):
    masks = moving_box(10, 48, 64)
    path = tmp_path / "masks.mp4"
    iio.imwrite(path, np.stack([to_uint8(masks)] * 3, -1), fps=8)
    seg = get_segmenter(f"masks:{path}").segment(frames_like(10, 48, 64), ["x"])
    got = seg.masks[0, :, 0].numpy()
    assert got.shape == masks.shape
    assert (got != masks).mean() < 0.01  # lossy codec: edges may flicker, never more


def test_single_image_is_used_for_every_frame(tmp_path):
    path = tmp_path / "one.png"
    iio.imwrite(path, to_uint8(moving_box(1, 32, 48)[0]))
    with pytest.warns(UserWarning, match="resampling"):
        seg = UserMasks(path).segment(frames_like(4, 32, 48), ["x"])
    assert all(torch.equal(seg.masks[0, 0], seg.masks[0, f]) for f in range(4))


def test_binarize_handles_alpha_and_16_bit():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[:2, :, 3] = 255  # only the top half is opaque
    assert binarize(rgba).tolist() == [[True] * 4] * 2 + [[False] * 4] * 2
    assert binarize(np.full((2, 2), 40000, np.uint16)).all()


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        UserMasks(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no png"):
        read_masks(tmp_path / "empty")
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(ValueError, match="cannot read"):
        read_masks(tmp_path / "bad.png")
    (tmp_path / "bad.mp4").write_text("not a video")
    with pytest.raises(ValueError, match="cannot read video"):
        read_masks(tmp_path / "bad.mp4")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="unsupported file type"):
        read_masks(tmp_path / "notes.txt")
    folder = tmp_path / "mixed"
    folder.mkdir()
    iio.imwrite(folder / "0.png", np.zeros((8, 8), np.uint8))
    iio.imwrite(folder / "1.png", np.zeros((8, 9), np.uint8))
    with pytest.raises(ValueError, match="differ in size"):
        read_masks(folder)


def test_protocol(tmp_path):
    write_pngs(tmp_path / "m", moving_box(2, 8, 8))
    seg = UserMasks(tmp_path / "m")
    assert isinstance(seg, Segmenter) and seg.name == "masks"
