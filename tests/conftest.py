"""Shared test helpers: where the golden fixtures live."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"
TINY = FIXTURES / "magicanimate-tiny"
TINY_WEIGHTS = TINY / "weights"
MANIFESTS = FIXTURES / "magicanimate-manifests"
INPUTS = SHARED / "inputs"

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
