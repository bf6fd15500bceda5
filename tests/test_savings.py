"""Exact savings compute the same function as the release's structure (rounding only)."""

from __future__ import annotations

import torch

from goldens import case_a, max_abs, tiny_model
from magicanimate.denoiser import ControlResidualCache
from magicanimate.windows import sliding_windows


def _step_inputs(num_frames: int):
    model = tiny_model()
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, num_frames, 8, 8, generator=g)
    control = torch.from_numpy(case_a("control")).repeat(num_frames // 32 + 1, 1, 1, 1)[:num_frames]
    return model, latents, control, torch.tensor(601), model.text_embedding()


def test_shared_cfg_down_path_equals_two_full_rows():
    model, latents, control, t, text = _step_inputs(16)
    den = model.denoiser
    with torch.no_grad(), den.bank.step():
        den.record_reference(torch.from_numpy(case_a("ref_image_latents")), t, text)
        res = den.control_residuals(latents, t, text, control, [list(range(16))]).window(0)
        den.share_cfg_down_path = True
        shared = den(latents, t, text, res, guidance=True)
        den.share_cfg_down_path = False
        try:
            full = den(latents, t, text, res, guidance=True)
        finally:
            den.share_cfg_down_path = True
    assert shared.shape == full.shape == (2, 4, 16, 8, 8)
    assert max_abs(shared, full) < 1e-5


def test_residual_cache_is_bounded_and_equals_the_release_cache():
    model, latents, control, t, text = _step_inputs(96)
    windows = sliding_windows(96)
    with torch.no_grad():
        lean = ControlResidualCache(model.denoiser, latents, t, text, control, windows)
        full = ControlResidualCache(model.denoiser, latents, t, text, control, windows, keep_all=True)
        peak = 0
        for j in range(len(windows)):
            down_a, mid_a = lean.window(j)
            down_b, mid_b = full.window(j)
            peak = max(peak, lean.cached_frames)
            assert max_abs(mid_a, mid_b) < 1e-5
            assert all(max_abs(a, b) < 1e-5 for a, b in zip(down_a, down_b))
    assert full.cached_frames == 96
    assert lean.cached_frames == 0  # everything released after the last window
    assert peak <= 16 + 12  # one window plus the wrap-around frames, whatever the length


def test_savings_off_reproduces_the_release_structure_and_the_same_video():
    """The whole case A run with every saving switched off equals the default run."""
    import numpy as np

    model = tiny_model()
    control = case_a("control")[:24]
    on = model(case_a("source_image"), control, steps=2, size=64)
    model.exact_savings = False
    try:
        off = model(case_a("source_image"), control, steps=2, size=64)
    finally:
        model.exact_savings = True
    assert np.abs(on.frames - off.frames).max() < 1e-5
