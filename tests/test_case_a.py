"""The acceptance test: our pipeline reproduces the original release's case A run, step by step."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from conftest import TINY, require
from goldens import case_a, max_abs, t, tiny_model
from magicanimate.sampling.pipeline import MagicAnimate
from magicanimate.sampling.denoiser import Conditioning, Denoiser
from magicanimate.sampling.sampler import sample
from magicanimate.sampling.schedulers import release_ddim
from magicanimate.sampling.windows import sliding_windows


class RecordingScheduler:
    """The release DDIM scheduler, recording what each `step` receives (noise) and returns (latents)."""

    def __init__(self, scheduler) -> None:
        self.scheduler, self.noise, self.latents = scheduler, [], []

    def __getattr__(self, name):
        return getattr(self.scheduler, name)

    def step(self, noise, timestep, latents, **kwargs):
        out = self.scheduler.step(noise, timestep, latents, **kwargs)
        self.noise.append(noise.detach().clone())
        self.latents.append(out.prev_sample.detach().clone())
        return out


@pytest.fixture(scope="module")
def settings() -> dict:
    return json.loads(require(TINY / "case_a" / "case.json").read_text())["settings"]


@pytest.fixture(scope="module")
def case_a_run(settings):
    """One full run with case A's settings; the scheduler it builds records every step (see below)."""
    model = tiny_model()
    control = case_a("control")[: settings["original_length"]]
    pipeline_module = sys.modules[MagicAnimate.__module__]
    schedulers = []

    def recording_make_scheduler(*args, **kwargs):
        schedulers.append(RecordingScheduler(make_scheduler(*args, **kwargs)))
        return schedulers[-1]

    make_scheduler = pipeline_module.make_scheduler
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline_module, "make_scheduler", recording_make_scheduler)
        result = model(case_a("source_image"), control, steps=settings["num_inference_steps"],
                       guidance_scale=settings["guidance_scale"], seed=settings["seed"], size=settings["height"])
    (recorder,) = schedulers
    return result, recorder


def test_video_matches_release(case_a_run, settings):
    case_a_run, _ = case_a_run
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


# Measured on CPU float32: noise ≤ 1.3e-5, latents ≤ 1.8e-5 (one step), ≤ 6.1e-5 (five chained steps),
# against |noise| ≤ 1.6 and |latents| ≤ 35. A wrong window fusion, guidance or scheduler step moves
# them by 1e-2 or more.
NOISE_TOL, STEP_LATENTS_TOL, CHAINED_LATENTS_TOL = 2e-4, 3e-4, 6e-4


def _sample(start: np.ndarray, steps: slice) -> RecordingScheduler:
    model = tiny_model()
    scheduler = release_ddim()
    scheduler.set_timesteps(5)
    scheduler.timesteps = scheduler.timesteps[steps]
    recorder = RecordingScheduler(scheduler)
    conditioning = Conditioning(text=model.text_embedding(), reference_latent=t(case_a("ref_image_latents")),
                                control=t(case_a("control")))  # control: uint8 (F, H, W, 3)
    denoiser = Denoiser(model.models, model.bank, conditioning=conditioning, guidance=True)
    sample(denoiser, recorder, latents=t(start), windows=sliding_windows(start.shape[2]), guidance_scale=7.5)
    return recorder


@pytest.mark.parametrize("step", range(5))
def test_each_step_from_the_release_latents(step):
    """Step i started from the release's own latents of step i − 1: a divergence fails at the step it starts.

    Compares the fused, guided noise of all 32 frames (windows + CFG) and the scheduler's output.
    """
    start = case_a("init_latents") if step == 0 else case_a("step_latents")[step - 1]
    recorder = _sample(start, slice(step, step + 1))
    assert max_abs(recorder.noise[0], case_a("step_noise_pred")[step]) < NOISE_TOL
    assert max_abs(recorder.latents[0], case_a("step_latents")[step]) < STEP_LATENTS_TOL


def test_the_pipeline_run_follows_the_release_trajectory(case_a_run):
    """The full run (five chained steps): every step's guided noise and latents, and the final latents."""
    _, recorder = case_a_run
    assert len(recorder.noise) == 5
    for step in range(5):
        assert max_abs(recorder.noise[step], case_a("step_noise_pred")[step]) < NOISE_TOL, step
        assert max_abs(recorder.latents[step], case_a("step_latents")[step]) < CHAINED_LATENTS_TOL, step
    assert max_abs(recorder.latents[-1], case_a("final_latents")) < CHAINED_LATENTS_TOL
