"""Fréchet distance between Gaussians fitted to feature sets (the core of FID, FID-VID and FVD)."""

from __future__ import annotations

import numpy as np
from scipy import linalg

from magicanimate.errors import InputError

_MAX_CROSS_ENTRIES = 50_000_000  # beyond this the (N1, N2) cross matrix costs more memory than it saves


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of (N, D) features, N ≥ 2 (as numpy.cov(rowvar=False))."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise InputError(f"a Fréchet distance needs at least 2 feature vectors, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sym_sqrt(matrix: np.ndarray) -> np.ndarray:
    # LAPACK's divide-and-conquer driver: several times faster than numpy's eigh at 2048-d.
    values, vectors = linalg.eigh(matrix, driver="evd")
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr √(Σ1 Σ2) for PSD Σ1, Σ2 via two symmetric eigen-decompositions.

    With R = √Σ1, the product Σ1 Σ2 = R (R Σ2) has the eigenvalues of (R Σ2) R = R Σ2 R,
    which is symmetric PSD; so the trace is the sum of the square roots of its eigenvalues.
    This avoids the general (Schur-based) `scipy.linalg.sqrtm` and its complex round-off.
    """
    root = _sym_sqrt(sigma1)
    middle = root @ sigma2 @ root
    middle = (middle + middle.T) / 2.0  # exact symmetry for eigvalsh
    values = linalg.eigh(middle, eigvals_only=True, driver="evd")
    # Eigenvalues below the round-off level are noise; their square roots (~√eps each) would
    # add up over a rank-deficient spectrum, so they count as zero.
    tolerance = max(values.max(), 0.0) * values.size * np.finfo(np.float64).eps
    return float(np.sqrt(values[values > tolerance]).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """d² = ‖μ1 − μ2‖² + tr(Σ1) + tr(Σ2) − 2 tr √(Σ1 Σ2) (Dowson & Landau 1982; FID, Heusel et al. 2017)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise InputError(
            f"inconsistent Gaussian shapes: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}"
        )
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    return float(max(value, 0.0))


def frechet_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets.

    With fewer samples than dimensions the covariances are low-rank, and the same value comes
    exactly and much faster from the centred features A1, A2: tr √(Σ1 Σ2) is the sum of the
    singular values of A1 A2ᵀ divided by √((N1 − 1)(N2 − 1)), and tr Σ = ‖A‖²_F / (N − 1).
    """
    f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    n1, n2, dim = f1.shape[0], f2.shape[0], f1.shape[-1]
    if f1.ndim != 2 or f2.ndim != 2 or f2.shape[1] != dim or min(n1, n2) < 2:
        raise InputError(f"need two (N ≥ 2, D) feature sets of the same D, got {f1.shape} and {f2.shape}")
    if min(n1, n2) >= dim or n1 * n2 > _MAX_CROSS_ENTRIES:
        return frechet_distance(*gaussian_stats(f1), *gaussian_stats(f2))
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    a1, a2 = f1 - mu1, f2 - mu2
    cross = np.linalg.svd(a1 @ a2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    diff = mu1 - mu2
    value = diff @ diff + (a1**2).sum() / (n1 - 1) + (a2**2).sum() / (n2 - 1) - 2.0 * cross
    return float(max(value, 0.0))
