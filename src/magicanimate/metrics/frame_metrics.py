"""Paired per-frame metrics on 8-bit frames: L1 (plain and DisCo's), PSNR (correct and DisCo's), SSIM.

Each `*_per_frame` function takes two uint8 videos of the same shape (F, H, W, 3) and returns
one score per frame; the public functions take any (F, H, W, 3) video in [0, 1] (or uint8),
resize the generated frames to the ground-truth size, and average over frames.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from magicanimate.metrics.arrays import Video, check_pair, match_size, to_float, to_uint8

PSNR_IDENTICAL = 100.0  # DisCo's value for identical frames (MSE = 0)


# ---------------------------------------------------------------------------- per frame (uint8)


def gray_opencv(video: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) uint8 RGB → (F, H, W) uint8 luma with OpenCV's fixed-point RGB→GRAY.

    OpenCV computes (4899·R + 9617·G + 1868·B + 2^13) >> 14, i.e. 0.299/0.587/0.114 rounded.
    """
    v = video.astype(np.int32)
    return ((v[..., 0] * 4899 + v[..., 1] * 9617 + v[..., 2] * 1868 + (1 << 13)) >> 14).astype(np.uint8)


def l1_per_frame(generated: np.ndarray, ground_truth: np.ndarray) -> np.ndarray:
    """Mean |a − b| per frame with values in [0, 1] (floats, or uint8 divided by 255)."""
    a = generated.astype(np.float64) / (255.0 if generated.dtype == np.uint8 else 1.0)
    b = ground_truth.astype(np.float64) / (255.0 if ground_truth.dtype == np.uint8 else 1.0)
    return np.abs(a - b).mean(axis=(1, 2, 3))


def l1_disco_per_frame(generated: np.ndarray, ground_truth: np.ndarray) -> np.ndarray:
    """DisCo's L1: |a − b| on 0-255 values divided by H·W, averaged over pixels and channels."""
    height, width = ground_truth.shape[1:3]
    diff = np.abs(generated.astype(np.float64) - ground_truth.astype(np.float64))
    return diff.mean(axis=(1, 2, 3)) / float(height * width)


def _psnr_from_mse(mse: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        value = 20.0 * np.log10(255.0 / np.sqrt(mse))
    return np.where(mse == 0, PSNR_IDENTICAL, value)


def psnr_per_frame(generated: np.ndarray, ground_truth: np.ndarray) -> np.ndarray:
    """PSNR per frame on 8-bit values (peak 255), 100 for identical frames."""
    diff = generated.astype(np.float64) - ground_truth.astype(np.float64)
    return _psnr_from_mse((diff**2).mean(axis=(1, 2, 3)))


def psnr_disco_per_frame(generated: np.ndarray, ground_truth: np.ndarray) -> np.ndarray:
    """PSNR exactly as DisCo's script computes it, including its uint8 wrap-around.

    DisCo squares the difference of two uint8 arrays, so both the difference and its square
    are taken modulo 256 (magic-animate issue #146, DisCo issue #86). The paper's table was
    made this way; the value is not a true PSNR (it cannot go below ~24 dB).
    """
    diff = (generated.astype(np.int64) - ground_truth.astype(np.int64)) % 256
    squared = (diff * diff) % 256
    return _psnr_from_mse(squared.astype(np.float64).mean(axis=(1, 2, 3)))


def ssim_per_frame(generated: np.ndarray, ground_truth: np.ndarray) -> np.ndarray:
    """scikit-image SSIM per frame on 8-bit grayscale (defaults: 7×7 uniform window, data range 255)."""
    gray_a, gray_b = gray_opencv(generated), gray_opencv(ground_truth)
    return np.array([structural_similarity(a, b) for a, b in zip(gray_a, gray_b)], dtype=np.float64)


# ---------------------------------------------------------------------------- public, per video


def _paired_uint8(generated: Video, ground_truth: Video) -> tuple[np.ndarray, np.ndarray]:
    gt = to_uint8(ground_truth, name="ground_truth")
    gen = to_uint8(generated, name="generated")
    check_pair(gen, gt)
    return match_size(gen, gt), gt


def l1(generated: Video, ground_truth: Video) -> float:
    """Mean |generated − ground truth| on [0, 1], averaged over pixels, channels and frames."""
    gt = to_float(ground_truth, name="ground_truth")
    gen = to_float(generated, name="generated")
    check_pair(gen, gt)
    if gen.shape != gt.shape:  # resize on the 8-bit grid like every other paired metric
        gen = match_size(to_uint8(gen), to_uint8(gt)).astype(np.float64) / 255.0
    return float(l1_per_frame(gen, gt).mean())


def l1_disco(generated: Video, ground_truth: Video) -> float:
    """DisCo's L1 (the paper's column, ~1e-4): 8-bit |a − b| / (H·W), averaged over pixels and frames."""
    gen, gt = _paired_uint8(generated, ground_truth)
    return float(l1_disco_per_frame(gen, gt).mean())


def psnr(generated: Video, ground_truth: Video) -> float:
    """PSNR on 8-bit frames (100 when identical), averaged over frames."""
    gen, gt = _paired_uint8(generated, ground_truth)
    return float(psnr_per_frame(gen, gt).mean())


def psnr_disco(generated: Video, ground_truth: Video) -> float:
    """PSNR with DisCo's uint8 overflow (how the paper's PSNR column was computed), averaged over frames."""
    gen, gt = _paired_uint8(generated, ground_truth)
    return float(psnr_disco_per_frame(gen, gt).mean())


def ssim(generated: Video, ground_truth: Video) -> float:
    """scikit-image SSIM on 8-bit grayscale frames (OpenCV luma weights), averaged over frames."""
    gen, gt = _paired_uint8(generated, ground_truth)
    return float(ssim_per_frame(gen, gt).mean())
