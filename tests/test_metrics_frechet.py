"""Fréchet distance: eigen-decomposition against scipy's sqrtm, closed forms, and FID behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from magicanimate.errors import InputError
from magicanimate.metrics import frechet_distance, frechet_from_features, gaussian_stats


def _reference(mu1, s1, mu2, s2):
    """The classic implementation (pytorch-fid / DisCo): scipy.linalg.sqrtm of the product."""
    covmean = np.real(linalg.sqrtm(s1.dot(s2)))
    diff = mu1 - mu2
    return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def _random_cov(rng, dim, samples):
    x = rng.standard_normal((samples, dim)) @ rng.standard_normal((dim, dim)) * 0.3
    return x.mean(axis=0), np.cov(x, rowvar=False)


@pytest.mark.parametrize("dim, samples", [(8, 50), (64, 400), (64, 30), (256, 1000)])
def test_matches_scipy_sqrtm(dim, samples):
    rng = np.random.default_rng(dim + samples)
    mu1, s1 = _random_cov(rng, dim, samples)
    mu2, s2 = _random_cov(rng, dim, samples)
    ours, ref = frechet_distance(mu1, s1, mu2, s2), _reference(mu1, s1, mu2, s2)
    assert ours == pytest.approx(ref, rel=1e-6, abs=1e-6 * np.trace(s1))


def test_closed_forms():
    rng = np.random.default_rng(0)
    _, sigma = _random_cov(rng, 16, 100)
    mu = rng.standard_normal(16)
    shift = rng.standard_normal(16)
    # same covariance: only the mean term remains
    assert frechet_distance(mu, sigma, mu + shift, sigma) == pytest.approx(shift @ shift, rel=1e-8)
    # Σ2 = c²Σ1: tr Σ1 (1 − c)²
    c = 1.7
    assert frechet_distance(mu, sigma, mu, c**2 * sigma) == pytest.approx(np.trace(sigma) * (1 - c) ** 2, rel=1e-8)
    # commuting diagonal covariances: Σ (√a − √b)²
    a, b = rng.random(16) + 0.1, rng.random(16) + 0.1
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu, np.diag(a), mu, np.diag(b)) == pytest.approx(expected, rel=1e-8)


def test_set_against_itself_is_zero_and_shift_grows():
    rng = np.random.default_rng(1)
    feats = rng.standard_normal((500, 32))
    assert frechet_from_features(feats, feats) == pytest.approx(0.0, abs=1e-8)
    distances = [frechet_from_features(feats, feats + delta) for delta in (0.1, 0.5, 1.0)]
    # translating every feature by δ·1 changes only the mean: d = 32 δ²
    assert distances == pytest.approx([32 * d**2 for d in (0.1, 0.5, 1.0)], rel=1e-6)


@pytest.mark.slow
def test_2048_dims_take_the_eigen_route(monkeypatch):
    """No general matrix square root at 2048-d: two symmetric eigen-decompositions instead.

    Counting the calls is the deterministic form of "fast": scipy's sqrtm needs ~35 s here, the
    eigen route ~2 s (timings: `python scripts/bench_numbers.py frechet`).
    """
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 2048))
    y = x[::-1] * 1.1 + 0.05
    mu1, s1 = gaussian_stats(x)
    mu2, s2 = gaussian_stats(y)
    calls = {"eigh": 0}
    eigh = linalg.eigh

    def counting_eigh(*args, **kwargs):
        calls["eigh"] += 1
        return eigh(*args, **kwargs)

    def no_sqrtm(*args, **kwargs):
        raise AssertionError("scipy.linalg.sqrtm called at 2048 dims")

    with monkeypatch.context() as patch:
        patch.setattr(linalg, "eigh", counting_eigh)
        patch.setattr(linalg, "sqrtm", no_sqrtm)
        value = frechet_distance(mu1, s1, mu2, s2)
    assert calls["eigh"] == 2
    # the low-rank route (300 samples < 2048 dims) is an independent computation of the same value
    assert frechet_from_features(x, y) == pytest.approx(value, rel=1e-7)
    # rank-deficient covariances still agree with scipy's sqrtm
    mu1, s1 = gaussian_stats(x[:, :512])
    mu2, s2 = gaussian_stats(y[:, :512])
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_reference(mu1, s1, mu2, s2), rel=1e-5)


def test_needs_two_samples_and_matching_shapes():
    with pytest.raises(InputError):
        gaussian_stats(np.zeros((1, 4)))
    with pytest.raises(InputError):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


@pytest.mark.parametrize("n1, n2, dim", [(2, 2, 256), (5, 40, 64), (30, 200, 64), (100, 90, 256)])
def test_low_rank_route_equals_the_covariance_route(n1, n2, dim):
    rng = np.random.default_rng(n1 + n2)
    f1 = rng.standard_normal((n1, dim)) @ rng.standard_normal((dim, dim)) * 0.1
    f2 = rng.standard_normal((n2, dim)) * 0.7 + 0.2
    expected = frechet_distance(*gaussian_stats(f1), *gaussian_stats(f2))
    assert frechet_from_features(f1, f2) == pytest.approx(expected, rel=1e-7)
