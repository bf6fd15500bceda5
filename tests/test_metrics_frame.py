"""Paired frame metrics (L1, PSNR, SSIM) against scikit-image and DisCo's exact arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from magicanimate.errors import InputError
from magicanimate.metrics import l1, l1_disco, psnr, psnr_disco, ssim
from magicanimate.metrics.frame_metrics import gray_opencv, psnr_disco_per_frame
from magicanimate.metrics.arrays import resize_bilinear_uint8, to_uint8


def _pair(seed: int = 0, frames: int = 3, size=(40, 56), noise: int = 30):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 256, (frames, *size, 3), dtype=np.uint8)
    gen = np.clip(gt.astype(int) + rng.integers(-noise, noise + 1, gt.shape), 0, 255).astype(np.uint8)
    return gen, gt


def test_psnr_matches_scikit_image_per_frame_mean():
    gen, gt = _pair()
    expected = np.mean([peak_signal_noise_ratio(b, a, data_range=255) for a, b in zip(gen, gt)])
    assert psnr(gen, gt) == pytest.approx(expected, rel=1e-12)


def test_psnr_is_100_for_identical_frames():
    _, gt = _pair()
    assert psnr(gt, gt) == 100.0
    assert psnr_disco(gt, gt) == 100.0


def test_psnr_disco_reproduces_uint8_wraparound():
    gen, gt = _pair(noise=60)
    # DisCo's own expression on uint8 arrays (numpy wraps both the difference and the square).
    expected = []
    for a, b in zip(gen, gt):
        mse = np.mean((a - b) ** 2)
        expected.append(100.0 if mse == 0 else 20 * np.log10(255.0 / np.sqrt(mse)))
    assert psnr_disco(gen, gt) == pytest.approx(np.mean(expected), rel=1e-12)
    # ... and it is not the true PSNR: the wrap-around inflates it on large errors.
    assert psnr_disco(gen, gt) > psnr(gen, gt) + 3.0


def test_psnr_disco_equals_true_psnr_for_small_errors():
    gen, gt = _pair(noise=15)  # |d| ≤ 15 → d² < 256: no wrap-around
    assert psnr_disco(gen, gt) == pytest.approx(psnr(gen, gt), rel=1e-12)


def test_psnr_disco_wraps_to_zero_mse():
    gt = np.zeros((1, 4, 4, 3), np.uint8)
    gen = np.full_like(gt, 16)  # 16² = 256 ≡ 0 (mod 256): DisCo reports "identical"
    assert psnr_disco_per_frame(gen, gt)[0] == 100.0
    assert psnr(gen, gt) == pytest.approx(20 * np.log10(255 / 16))


def test_l1_plain_and_disco():
    gen, gt = _pair()
    diff = np.abs(gen.astype(float) - gt.astype(float))
    assert l1(gen, gt) == pytest.approx(diff.mean() / 255.0, rel=1e-12)
    assert l1_disco(gen, gt) == pytest.approx(diff.mean() / (40 * 56), rel=1e-12)
    # skimage's MSE as a cross-check of the pairing (same frames, same order)
    assert np.mean([mean_squared_error(b, a) for a, b in zip(gen, gt)]) == pytest.approx((diff**2).mean())


def test_l1_on_float_inputs_uses_unquantised_values():
    rng = np.random.default_rng(1)
    a, b = rng.random((2, 8, 8, 3)), rng.random((2, 8, 8, 3))
    assert l1(a, b) == pytest.approx(np.abs(a - b).mean(), rel=1e-12)
    assert l1(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(np.abs(a - b).mean(), rel=1e-12)


def test_gray_matches_opencv_weights():
    rng = np.random.default_rng(2)
    video = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    gray = gray_opencv(video).astype(int)
    reference = np.rint(video @ np.array([0.299, 0.587, 0.114]))
    assert np.abs(gray - reference).max() <= 1
    assert np.mean(gray == reference) > 0.99
    assert gray_opencv(np.full((1, 1, 1, 3), 255, np.uint8))[0, 0, 0] == 255


def test_ssim_matches_scikit_image_on_gray():
    gen, gt = _pair(size=(48, 48))
    expected = np.mean([structural_similarity(a, b) for a, b in zip(gray_opencv(gen), gray_opencv(gt))])
    assert ssim(gen, gt) == pytest.approx(expected, rel=1e-12)
    # independent grayscale (float weights, rounded) agrees closely
    def gray_f(v):
        return np.rint(v @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)

    independent = np.mean([structural_similarity(gray_f(a), gray_f(b), data_range=255) for a, b in zip(gen, gt)])
    assert ssim(gen, gt) == pytest.approx(independent, abs=2e-3)
    assert ssim(gt, gt) == pytest.approx(1.0)


def test_generated_frames_are_resized_to_ground_truth():
    yy, xx = np.mgrid[0:32, 0:48]
    smooth = np.stack([4 * yy, 5 * xx, 2 * (xx + yy)], axis=-1).astype(np.uint8)  # a smooth ramp
    gt = np.stack([smooth, 255 - smooth])
    big = resize_bilinear_uint8(gt, (64, 96))
    assert big.shape == (2, 64, 96, 3)
    back = resize_bilinear_uint8(big, (32, 48))
    assert psnr(big, gt) == pytest.approx(psnr(back, gt))
    # a ×2 bilinear up/down round trip is close to the identity
    assert l1(big, gt) < 0.02


def test_float_inputs_are_quantised_to_8_bit():
    rng = np.random.default_rng(3)
    a = rng.random((2, 8, 8, 3))
    assert np.array_equal(to_uint8(a), np.rint(a * 255).astype(np.uint8))
    assert psnr(a, a) == 100.0


@pytest.mark.parametrize(
    "gen_shape, gt_shape",
    [((2, 8, 8, 3), (3, 8, 8, 3)), ((2, 8, 8), (2, 8, 8)), ((2, 8, 8, 4), (2, 8, 8, 4))],
)
def test_bad_shapes_raise_input_error(gen_shape, gt_shape):
    with pytest.raises(InputError):
        psnr(np.zeros(gen_shape, np.uint8), np.zeros(gt_shape, np.uint8))
