"""MagicAnimate.__call__ behaviour beyond case A: guidance <= 1, any size, progress, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from goldens import case_a, max_abs, tiny_model
from magicanimate.errors import InputError
from magicanimate.sampling.pipeline import MagicAnimate
from magicanimate.sampling.denoiser import Conditioning, Denoiser
from magicanimate.io.video import write_video


@pytest.fixture(scope="module")
def model() -> MagicAnimate:
    return tiny_model()


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return case_a("source_image")


@pytest.fixture(scope="module")
def motion() -> np.ndarray:
    return case_a("control")[:5]


def test_guidance_one_is_the_conditional_branch(model):
    """Without guidance the prediction is exactly the conditional (reference-attending) half."""
    latents = torch.randn(1, 4, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    control = torch.from_numpy(case_a("control")[:16])
    t = torch.tensor(801)
    conditioning = Conditioning(model.text_embedding(), torch.from_numpy(case_a("ref_image_latents")), control)
    outputs = {}
    for guidance in (True, False):
        den = Denoiser(model.models, model.bank, conditioning=conditioning, guidance=guidance)
        with torch.no_grad(), den.step(0, t, latents=latents, windows={0: list(range(16))}):
            outputs[guidance] = den(latents, t, 0)
    both, cond = outputs[True], outputs[False]
    assert cond.shape == (1, 4, 16, 8, 8)
    assert max_abs(cond[0], both[1]) < 1e-5
    assert max_abs(cond[0], both[0]) > 1e-3  # the unconditional half differs (no reference)


def test_guidance_at_or_below_one_runs(model, reference, motion):
    a = model(reference, motion, steps=2, guidance_scale=1.0, size=64)
    b = model(reference, motion, steps=2, guidance_scale=0.5, size=64)
    c = model(reference, motion, steps=2, guidance_scale=7.5, size=64)
    assert a.frames.shape == (5, 64, 64, 3)
    assert np.array_equal(a.frames, b.frames)  # both are the conditional branch only
    assert np.abs(a.frames - c.frames).mean() > 1e-3


@pytest.mark.parametrize("size,shape", [((64, 48), (48, 64)), ((72, 40), (40, 72)), (56, (56, 56))])
def test_any_size_multiple_of_8(model, reference, motion, size, shape):
    result = model(reference, motion, steps=1, size=size)
    assert result.frames.shape == (5, *shape, 3)


def test_same_seed_same_video_other_seed_differs(model, reference, motion):
    a = model(reference, motion, steps=1, size=64, seed=3)
    b = model(reference, motion, steps=1, size=64, seed=3)
    c = model(reference, motion, steps=1, size=64, seed=4)
    assert np.array_equal(a.frames, b.frames)
    assert np.abs(a.frames - c.frames).mean() > 1e-3


def test_progress_reports_every_window_and_decode(model, reference):
    events = []
    model(reference, case_a("control")[:20], steps=2, size=64, progress=events.append)
    denoise = [e for e in events if e.stage == "denoise"]
    assert [e.done for e in denoise] == list(range(1, 2 * 3 + 1))  # 2 steps x 3 windows (20 -> 32 frames)
    assert denoise[-1].total == 6
    decode = [e for e in events if e.stage == "decode"]
    assert decode[-1].done == decode[-1].total == 20


def test_video_file_input_keeps_its_fps(model, reference, tmp_path):
    path = write_video(tmp_path / "motion.mp4", case_a("control")[:6], fps=10)
    result = model(reference, path, steps=1, size=64)
    assert result.fps == pytest.approx(10)
    assert result.frames.shape[0] == 6


def test_reference_from_pil_and_path(model, reference, motion, tmp_path):
    from PIL import Image

    Image.fromarray(reference).save(tmp_path / "ref.png")
    a = model(tmp_path / "ref.png", motion, steps=1, size=64)
    b = model(Image.fromarray(reference), motion, steps=1, size=64)
    assert np.array_equal(a.frames, b.frames)


def test_bad_inputs_are_input_errors(model, reference, motion, tmp_path):
    with pytest.raises(InputError, match="multiples of 8"):
        model(reference, motion, size=60)
    with pytest.raises(InputError):
        model(reference, motion.astype(np.float32), size=64)
    with pytest.raises(InputError):
        model(tmp_path / "missing.png", motion, size=64)
    with pytest.raises(InputError, match="steps"):
        model(reference, motion, steps=0, size=64)


def test_decode_progress_starts_at_zero_and_follows_the_chunks(model, reference):
    events = []
    model(reference, case_a("control")[:5], steps=1, size=64, decode_chunk=2, progress=events.append)
    assert [(e.done, e.total) for e in events if e.stage == "decode"] == [(0, 5), (2, 5), (4, 5), (5, 5)]


@pytest.mark.parametrize("fit", ["pad", "crop", "stretch"])
def test_size_is_the_output_size_in_every_fit_mode(model, fit):
    """Square 64x64 inputs at --size 64x48: (F, 48, 64, 3) frames. With pad the old crop-back gave 48x48:
    a 85x64 canvas (64 * 64/48 = 85.3), the input at x 10..74, scaled by 64/85 to x 8..56."""
    square = case_a("source_image")[:64, :64]
    result = model(square, case_a("control")[:3, :64, :64], steps=1, size=(64, 48), fit=fit)
    assert result.frames.shape == (3, 48, 64, 3)
