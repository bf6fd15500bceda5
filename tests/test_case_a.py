"""The acceptance test: our pipeline reproduces the original release's case A run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import TINY, require
from goldens import case_a, max_abs, t, tiny_model
from magicanimate.sampling.schedulers import release_ddim


@pytest.fixture(scope="module")
def settings() -> dict:
    return json.loads(require(TINY / "case_a" / "case.json").read_text())["settings"]


@pytest.fixture(scope="module")
def case_a_run(settings):
    """One full run with case A's settings; returns (result, per-step records)."""
    model = tiny_model()
    control = case_a("control")[: settings["original_length"]]
    result = model(case_a("source_image"), control, steps=settings["num_inference_steps"],
                   guidance_scale=settings["guidance_scale"], seed=settings["seed"], size=settings["height"])
    return result


def test_video_matches_release(case_a_run, settings):
    gold = case_a("video")[0, :, : settings["original_length"]]  # (c, f, h, w)
    gold = np.transpose(gold, (1, 2, 3, 0))  # -> (f, h, w, c)
    assert case_a_run.frames.shape == gold.shape
    assert case_a_run.frames.dtype == np.float32
    diff = np.abs(case_a_run.frames - gold)
    print(f"case A: max |diff| {diff.max():.3g}, mean |diff| {diff.mean():.3g}")
    assert diff.max() <= 1e-3
    assert diff.mean() <= 1e-4
    assert case_a_run.fps is None  # arrays carry no fps


def test_inputs_of_the_loop_match_release(settings):
    model = tiny_model()
    assert max_abs(model.text_embedding()[0], case_a("text_embeddings")[1]) < 1e-5
    assert max_abs(model.encode_reference(case_a("source_image")), case_a("ref_image_latents")) < 1e-5
    noise = model.initial_noise(32, 64, 64, seed=settings["seed"])
    assert max_abs(noise[:, :, :16], case_a("init_noise_16")) == 0.0
    assert max_abs(noise, case_a("init_latents")) == 0.0


def test_first_step_noise_prediction_matches_release():
    """Step-0 fused, guided noise of all 32 frames (windows + CFG) against the release's."""
    from magicanimate.sampling.denoiser import Conditioning, Denoiser
    from magicanimate.sampling.sampler import sample
    from magicanimate.sampling.windows import sliding_windows

    model = tiny_model()
    scheduler = release_ddim()
    scheduler.set_timesteps(5)
    scheduler.timesteps = scheduler.timesteps[:1]  # run one step only
    control_t = t(case_a("control"))  # uint8 (F, H, W, 3)
    conditioning = Conditioning(model.text_embedding(), t(case_a("ref_image_latents")), control_t)
    denoiser = Denoiser(model.models, model.bank, conditioning=conditioning, guidance=True)
    latents = sample(denoiser, scheduler, latents=t(case_a("init_latents")), windows=sliding_windows(32),
                     guidance_scale=7.5)
    assert max_abs(latents, case_a("step_latents")[0]) < 1e-4
