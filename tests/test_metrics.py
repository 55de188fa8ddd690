import math

import torch

from dynvfx.metrics import iou, psnr_outside, ssim_outside


def _pair():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 3, 32, 32, generator=g)
    mask = torch.zeros(3, 1, 32, 32, dtype=torch.bool)
    mask[:, :, 10:20, 12:22] = True
    b = a.clone()
    b[mask.expand_as(b)] = torch.rand(int(mask.sum()) * 3, generator=g)  # differs only inside the mask
    return a, b, mask


def test_psnr_outside_ignores_the_masked_region_and_measures_the_rest():
    a, b, mask = _pair()
    assert psnr_outside(a, b, mask) == math.inf
    assert psnr_outside(a, b) < 20
    c = (a + 0.01).clamp(max=10)  # a uniform error of 0.01 everywhere -> 40 dB
    assert abs(psnr_outside(a, c, mask) - 40.0) < 1e-3


def test_ssim_outside_is_one_when_only_the_masked_region_changed():
    a, b, mask = _pair()
    assert abs(ssim_outside(a, b, mask) - 1.0) < 1e-5  # windows that straddle the mask edge are left out
    assert ssim_outside(a, b) < 0.95
    assert ssim_outside(a, a + 0.3 * torch.randn(a.shape, generator=torch.Generator().manual_seed(1)), mask) < 0.95


def test_iou():
    x = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    y = x.clone()
    x[..., :2, :] = True  # 8 pixels
    y[..., 1:3, :] = True  # 8 pixels, 4 shared
    assert abs(iou(x, y) - 4 / 12) < 1e-9
    assert iou(torch.zeros_like(x), torch.zeros_like(x)) == 1.0
