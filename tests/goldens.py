"""Loading the golden arrays produced by the original release (../shared/fixtures)."""

from __future__ import annotations

import functools

import numpy as np
import torch

from conftest import TINY, TINY_WEIGHTS, require
from magicanimate.sampling.pipeline import MagicAnimate


def npz(name: str) -> dict[str, np.ndarray]:
    """A components/*.npz file as a dict."""
    with np.load(require(TINY / "components" / name)) as z:
        return {k: z[k] for k in z.files}


def case_a(name: str) -> np.ndarray:
    """An array of case_a/."""
    return np.load(require(TINY / "case_a" / f"{name}.npy"))


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


@functools.lru_cache(maxsize=1)
def tiny_model() -> MagicAnimate:
    """The tiny release weights loaded once per test session (float32, CPU)."""
    return MagicAnimate.from_pretrained(require(TINY_WEIGHTS), device="cpu", dtype=torch.float32)


def max_abs(a, b) -> float:
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else a
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else b
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max())
