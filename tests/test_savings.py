"""Exact savings compute the same function as the release's structure (rounding only).

These comparisons run at 128x128 (16x16 latents): at the fixture's 64x64 the tiny model's
deepest blocks are 1x1, where a per-frame GroupNorm normalises 2 values and amplifies
rounding (batch-size dependent kernels then differ by up to ~1e-3 there).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from goldens import case_a, max_abs, tiny_model
from magicanimate.sampling.denoiser import Conditioning, ControlResidualCache, Denoiser, StepInputs
from magicanimate.io.image import resize_image
from magicanimate.sampling.windows import sliding_windows


@functools.lru_cache(maxsize=1)
def control_128() -> np.ndarray:
    """The fixture's DensePose frames at 128x128, uint8 (32, 128, 128, 3)."""
    return np.stack([resize_image(f, (128, 128)) for f in case_a("control")])


def _step_inputs(num_frames: int):
    model = tiny_model()
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, num_frames, 16, 16, generator=g)
    control = torch.from_numpy(control_128()).repeat(num_frames // 32 + 1, 1, 1, 1)[:num_frames]
    return model, latents, control, torch.tensor(601), model.text_embedding()


def test_shared_cfg_down_path_equals_two_full_rows():
    model, latents, control, t, text = _step_inputs(16)
    reference = model.encode_reference(resize_image(case_a("source_image"), (128, 128)))
    outputs = {}
    for shared in (True, False):
        den = Denoiser(model.models, model.bank, conditioning=Conditioning(text, reference, control), guidance=True,
                       share_cfg_down_path=shared)
        with torch.no_grad(), den.step(0, t, latents=latents, windows={0: list(range(16))}):
            outputs[shared] = den(latents, t, 0)
    shared, full = outputs[True], outputs[False]
    assert shared.shape == full.shape == (2, 4, 16, 16, 16)
    assert max_abs(shared, full) < 1e-5


def test_residual_cache_is_bounded_and_equals_the_release_cache():
    model, latents, control, t, text = _step_inputs(96)
    windows = sliding_windows(96)
    with torch.no_grad():
        inputs = StepInputs(latents=latents, t=t, text=text, control=control)
        lean = ControlResidualCache(model.models.controlnet, inputs, windows=dict(enumerate(windows)))
        full = ControlResidualCache(model.models.controlnet, inputs, windows=dict(enumerate(windows)), keep_all=True)
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
    """A whole run with every saving switched off equals the default run."""
    model = tiny_model()
    control = control_128()[:24]
    on = model(case_a("source_image"), control, steps=2, size=128)
    model.exact_savings = False
    try:
        off = model(case_a("source_image"), control, steps=2, size=128)
    finally:
        model.exact_savings = True
    assert np.abs(on.frames - off.frames).max() < 5e-5
