"""Shared test helpers: where the golden fixtures live."""

from __future__ import annotations

import importlib.util
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import linalg

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"
TINY = FIXTURES / "magicanimate-tiny"
TINY_WEIGHTS = TINY / "weights"
MANIFESTS = FIXTURES / "magicanimate-manifests"
INPUTS = SHARED / "inputs"
METRIC_GOLDEN = FIXTURES / "metric-networks"

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def require(path: Path) -> Path:
    """Fail loudly (not skip) when a golden fixture is missing: tests must not pass vacuously."""
    if not path.exists():
        pytest.fail(f"missing fixture {path}: the repository expects ../shared beside it")
    return path


@pytest.fixture(scope="session")
def tiny_weights() -> Path:
    return require(TINY_WEIGHTS)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tests on one torch thread (tiny models on shared cores: several times faster)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def golden_metric_weights(tmp_path_factory) -> Path:
    """The five metric weight files, random (seed 0) in the official formats, under the official names.

    Regenerated with the fixture's make_weights.py (~0.9 GB, ~5 s) into a temporary folder that is
    removed at the end of the session: never committed, never downloaded.
    """
    spec = importlib.util.spec_from_file_location("metric_make_weights", require(METRIC_GOLDEN / "make_weights.py"))
    make_weights = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_weights)
    folder = tmp_path_factory.mktemp("metric_weights")
    for name, filename in make_weights.FILENAMES.items():
        make_weights.write(name, str(folder / filename), seed=0)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def golden_metric_arrays(name: str) -> dict:
    """One npz of the metric-network goldens (inputs and reference outputs) as a dict."""
    with np.load(require(METRIC_GOLDEN / f"{name}.npz")) as z:
        return {k: z[k] for k in z.files}


def reference_frechet(f1, f2) -> float:
    """pytorch-fid's formula (np.cov, scipy.linalg.sqrtm of Σ1Σ2) in the subspace the two sets span.

    The distance is invariant under rotations; every centred feature and the mean difference lie
    in a subspace of dimension ≤ N1 + N2 − 1, so an orthonormal basis Q of it gives the same value
    with small matrices. This shares nothing with the package's eigen/SVD routes.
    """
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    q = linalg.orth(np.concatenate([f1 - mu1, f2 - mu2, (mu1 - mu2)[None]]).T)  # (D, k)
    p1, p2 = f1 @ q, f2 @ q
    s1, s2 = np.cov(p1, rowvar=False), np.cov(p2, rowvar=False)
    with warnings.catch_warnings():  # rank-deficient (N < k): sqrtm warns, the trace is still accurate
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = np.real(linalg.sqrtm(np.atleast_2d(s1 @ s2)))
    diff = p1.mean(axis=0) - p2.mean(axis=0)
    return float(diff @ diff + np.trace(np.atleast_2d(s1)) + np.trace(np.atleast_2d(s2)) - 2 * np.trace(covmean))


def pytest_collection_modifyitems(config, items):
    """`gpu`-marked tests are skipped, with the reason shown, where torch sees no CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device: runs on a GPU machine via scripts/gpu_check.sh")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
