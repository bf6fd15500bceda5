"""Lossy fast modes are opt-in, run, and stay close to (but differ from) the faithful output."""

from __future__ import annotations

import numpy as np
import pytest

from goldens import case_a, tiny_model
from magicanimate.errors import InputError


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


@pytest.fixture(scope="module")
def faithful():
    return tiny_model()(case_a("source_image"), case_a("control")[:20], steps=4, size=64).frames


@pytest.mark.parametrize("kw", [dict(scheduler="dpmsolver++", steps=3), dict(scheduler="unipc", steps=3),
                                dict(deep_cache=2, steps=4), dict(overlap=8, steps=4)])
def test_lossy_mode_is_close_but_not_identical(faithful, kw):
    frames = tiny_model()(case_a("source_image"), case_a("control")[:20], size=64, **kw).frames
    assert frames.shape == faithful.shape
    assert 25.0 < psnr(faithful, frames) < 90.0


def test_deep_cache_skips_the_deep_blocks_on_cached_steps():
    model = tiny_model()
    calls = []
    hook = model.components.unet.mid_block.register_forward_hook(lambda *a: calls.append(1))
    try:
        model(case_a("source_image"), case_a("control")[:16], steps=4, size=64, deep_cache=2)
        cached = len(calls)
        calls.clear()
        model(case_a("source_image"), case_a("control")[:16], steps=4, size=64)
    finally:
        hook.remove()
    assert (cached, len(calls)) == (2, 4)  # one window: full UNet on steps 0 and 2 only


def test_unknown_scheduler_is_refused():
    with pytest.raises(InputError, match="scheduler must be one of"):
        tiny_model()(case_a("source_image"), case_a("control")[:4], steps=1, size=64, scheduler="euler")
