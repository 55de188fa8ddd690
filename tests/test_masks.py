"""Mask clean-up and the mapping of pixel masks to the latent and token grids."""

import torch

from dynvfx.masks import clean_mask, dilate, erode, pixel_to_tokens, temporal_groups, to_latent_grid, upsample_to_pixels
from dynvfx.pipeline import VideoSpec


def test_temporal_groups_follow_the_causal_autoencoder():
    groups = temporal_groups(49, 4)
    assert len(groups) == 13 and list(groups[0]) == [0] and list(groups[1]) == [1, 2, 3, 4]
    assert list(groups[-1]) == [45, 46, 47, 48]


def test_opening_drops_specks_and_keeps_blobs():
    m = torch.zeros(2, 1, 20, 20, dtype=torch.bool)
    m[:, :, 5:12, 5:12] = True  # a blob
    m[:, :, 16, 16] = True  # a speck
    m[:, :, 8, 8] = False  # a pinhole
    out = clean_mask(m, open_radius=1, close_radius=1)
    assert not out[:, :, 16, 16].any() and out[:, :, 8, 8].all() and out[:, :, 5:12, 5:12].all()
    assert torch.equal(erode(dilate(m, 2), 2) | m, erode(dilate(m, 2), 2))  # closing contains the mask
    assert dilate(m, 1).sum() > m.sum() > erode(m, 1).sum()


def test_latent_and_token_grids():
    spec = VideoSpec(num_frames=9, height=32, width=32, temporal_compression=4, spatial_compression=4,
                     patch_size=2, max_text_tokens=16)
    m = torch.zeros(9, 1, 32, 32, dtype=torch.bool)
    m[5:9, :, 0:8, 0:8] = True  # only in the last 4 frames, top-left 8x8 pixels
    lat = to_latent_grid(m, 4, 4, reduce="max")
    assert lat.shape == (3, 1, 8, 8)
    assert lat[2, 0, :2, :2].all() and lat[2].sum() == 4 and lat[:2].sum() == 0
    late = m.clone()
    late[5] = False  # frames 6..8 of the group 5..8: 3/4 covered
    mean = to_latent_grid(late, 4, 4, reduce="mean")
    assert torch.isclose(mean[2, 0, 0, 0], torch.tensor(0.75))
    tokens = pixel_to_tokens(m, spec)
    assert tokens.shape == spec.token_grid == (3, 4, 4)
    assert tokens[2, 0, 0] and tokens.sum() == 1
    back = upsample_to_pixels(tokens.float(), 9, 4, (32, 32))
    assert back.shape == (9, 1, 32, 32) and back[5:, :, :8, :8].all() and back[:5].sum() == 0
