"""Paired frame metrics (L1, PSNR, SSIM) against scikit-image and DisCo's exact arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.transform import resize as skimage_resize

from magicanimate.errors import InputError
from magicanimate.metrics import l1, l1_disco, psnr, psnr_disco, ssim
from magicanimate.metrics.frame_metrics import gray_opencv, psnr_disco_per_frame
from magicanimate.metrics.arrays import to_uint8


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


def test_l1_hand_worked():
    """A 4×4 frame off by 10 levels everywhere: L1 = 10/255; DisCo divides the 0-255 mean by H·W = 16."""
    gt = np.zeros((1, 4, 4, 3), np.uint8)
    gen = np.full_like(gt, 10)
    assert l1(gen, gt) == pytest.approx(10 / 255, rel=1e-12)
    assert l1_disco(gen, gt) == pytest.approx(10 / 16, rel=1e-12)


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


def test_gray_of_pure_colours_is_opencvs():
    """cv2.cvtColor(..., COLOR_RGB2GRAY) gives 76, 150, 29 for pure red, green, blue (255)."""
    pure = np.array([[[[255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128]]]], np.uint8)
    assert gray_opencv(pure)[0, 0].tolist() == [76, 150, 29, 128]


def test_ssim_equals_scikit_image_on_gray_frames():
    """Frames with R = G = B are their own luma (the weights sum to 2^14), so SSIM is skimage's on one channel."""
    rng = np.random.default_rng(4)
    gt_gray = rng.integers(0, 256, (3, 48, 48), dtype=np.uint8)
    gen_gray = np.clip(gt_gray.astype(int) + rng.integers(-30, 31, gt_gray.shape), 0, 255).astype(np.uint8)
    gen, gt = (np.repeat(v[..., None], 3, axis=-1) for v in (gen_gray, gt_gray))
    expected = np.mean([structural_similarity(a, b, data_range=255, win_size=7) for a, b in zip(gen_gray, gt_gray)])
    assert ssim(gen, gt) == pytest.approx(expected, rel=1e-12)
    assert ssim(gt, gt) == pytest.approx(1.0)


def test_ssim_of_colour_frames_with_an_independent_gray():
    gen, gt = _pair(size=(48, 48))

    def gray_f(v):  # float weights, rounded: within one level of OpenCV's fixed point
        return np.rint(v @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)

    independent = np.mean([structural_similarity(gray_f(a), gray_f(b), data_range=255) for a, b in zip(gen, gt)])
    assert ssim(gen, gt) == pytest.approx(independent, abs=2e-3)


def test_ssim_of_constant_frames_is_the_luminance_term():
    """Constant frames a, b: SSIM = (2ab + C1) / (a² + b² + C1), C1 = (0.01·255)² (Wang et al. 2004)."""
    gen, gt = np.full((1, 16, 16, 3), 100, np.uint8), np.full((1, 16, 16, 3), 120, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert ssim(gen, gt) == pytest.approx((2 * 100 * 120 + c1) / (100**2 + 120**2 + c1), rel=1e-9)


def test_generated_frames_are_resized_to_ground_truth_bilinearly():
    """Hand-worked half-pixel bilinear (OpenCV INTER_LINEAR, DisCo's resize), in both directions."""
    # 4×4 → 2×2: output pixel i samples source 2i + 0.5, i.e. the mean of a 2×2 block
    big = np.array([[0, 20, 100, 120], [40, 60, 140, 160], [200, 220, 10, 30], [240, 252, 50, 70]], np.uint8)
    gen = np.repeat(big[None, :, :, None], 3, axis=-1)  # (1, 4, 4, 3)
    gt = np.zeros((1, 2, 2, 3), np.uint8)
    block_means = np.array([[30, 130], [228, 40]])
    assert l1(gen, gt) == pytest.approx(block_means.mean() / 255, rel=1e-12)
    # 2 → 4 columns: samples at −0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1): 0, 25, 75, 100
    small = np.repeat(np.array([[0, 100], [0, 100]], np.uint8)[None, :, :, None], 3, axis=-1)  # (1, 2, 2, 3)
    wide_gt = np.zeros((1, 2, 4, 3), np.uint8)
    assert l1(small, wide_gt) == pytest.approx((0 + 25 + 75 + 100) / 4 / 255, rel=1e-12)
    assert psnr(small, wide_gt) == pytest.approx(
        20 * np.log10(255 / np.sqrt((0 + 25**2 + 75**2 + 100**2) / 4)), rel=1e-12)


def test_paired_resize_agrees_with_scikit_image():
    """Random frames at non-integer scales: skimage's order-1 resize (no antialias) within one 8-bit level."""
    rng = np.random.default_rng(5)
    gen = rng.integers(0, 256, (2, 24, 40, 3), dtype=np.uint8)
    for size in ((48, 80), (30, 33), (17, 64)):
        gt = np.zeros((2, *size, 3), np.uint8)
        reference = np.stack([np.rint(skimage_resize(f.astype(float), (*size, 3), order=1, mode="edge",
                                                     anti_aliasing=False, preserve_range=True)) for f in gen])
        # L1 against a black frame is the mean of the resized frame: a mean within 1 level and ≤ 1 % off-by-one
        assert l1(gen, gt) == pytest.approx(reference.mean() / 255, abs=0.01 / 255)
        assert psnr(gen, reference.astype(np.uint8)) > 55  # MSE ≤ 1 % of pixels × 1² → PSNR ≥ 68 dB


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
