"""Half precision and torch.compile against float32 eager, on the tiny weights.

Stated tolerances (tiny random weights, 64x64, 3 steps): float16 mean |diff| <= 2e-3,
max <= 2e-2; bfloat16 mean <= 1e-2, max <= 0.1 (measured: 4e-4/4e-3 and 3e-3/3e-2).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import TINY_WEIGHTS, require
from goldens import case_a, tiny_model
from magicanimate.sampling.pipeline import MagicAnimate


@pytest.fixture(scope="module")
def float32_frames() -> np.ndarray:
    return tiny_model()(case_a("source_image"), case_a("control")[:16], steps=3, size=64).frames


@pytest.mark.parametrize("dtype,mean_tol,max_tol", [(torch.float16, 2e-3, 2e-2), (torch.bfloat16, 1e-2, 0.1)])
def test_half_precision_is_close_to_float32(float32_frames, dtype, mean_tol, max_tol):
    model = MagicAnimate.from_pretrained(require(TINY_WEIGHTS), device="cpu", dtype=dtype)
    assert model.components.unet.conv_in.weight.dtype == dtype
    frames = model(case_a("source_image"), case_a("control")[:16], steps=3, size=64).frames
    assert frames.dtype == np.float32
    diff = np.abs(frames - float32_frames)
    assert diff.mean() <= mean_tol and diff.max() <= max_tol
    assert diff.max() > 0  # really computed in half precision


def test_compiled_models_give_the_same_video(float32_frames):
    """torch.compile's graph capture (backend "eager": no code generation, to stay fast on CI).

    With backend "inductor" the same run differed by 4.2e-6 (docs/benchmarks.md).
    """
    model = MagicAnimate.from_pretrained(require(TINY_WEIGHTS), device="cpu").compile(backend="eager")
    frames = model(case_a("source_image"), case_a("control")[:16], steps=3, size=64).frames
    assert np.abs(frames - float32_frames).max() <= 1e-5
