"""Stage 2 end to end: motion modules from an AnimateDiff v1 file, image-video joint training.

Starts from the tiny release weights (appearance encoder and ControlNet frozen) with the
motion modules read from an AnimateDiff-v1-style checkpoint; trains on 8-frame clips
(plus a couple of steps on 16-frame clips) with still-image and single-frame samples mixed
in, EMA and gradient accumulation on.
"""

from __future__ import annotations

import signal

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_WEIGHTS, require
from magicanimate.sampling.pipeline import MagicAnimate
from magicanimate.training import load_config, train
from magicanimate.training.logger import TrainingLog
from magicanimate.training.synthetic import make_synthetic_dataset
from magicanimate.training.trainer import Trainer
from magicanimate.io.video import read_motion

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]
STEPS = 16


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test here runs on one torch thread (see conftest)."""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("data"), clips=2, frames=24, images=2, seed=1)


@pytest.fixture(scope="module")
def animatediff_file(tmp_path_factory):
    """An AnimateDiff v1 motion-module checkpoint: the motion state dict under the original key names."""
    released = torch.load(require(TINY_WEIGHTS) / "MagicAnimate" / "temporal_attention" / "temporal_attention.ckpt",
                          weights_only=True)
    path = tmp_path_factory.mktemp("animatediff") / "mm_sd_v15.ckpt"
    torch.save(released, path)
    return path


def stage2_config(dataset, output, motion_modules, **overrides):
    values = {
        "stage": 2, "output": str(output), "seed": 5, "batch_size": 1, "gradient_accumulation_steps": 2,
        "max_steps": STEPS, "checkpoint_every": 8, "fixed_batch_every": 8, "fixed_batch_size": 2,
        "model.pretrained": str(require(TINY_WEIGHTS)), "model.appearance_encoder": "release",
        "model.controlnet": "release", "model.motion_modules": str(motion_modules),
        "model.trainable": ["unet.*motion_modules.*"],
        "data.root": str(dataset), "data.width": 64, "data.height": 64, "data.num_frames": 8,
        "data.num_workers": 0, "data.image_threshold": 0.2, "data.frame_threshold": 0.35,
        "ema.enabled": True, "ema.decay": 0.9, "optim.learning_rate": 1e-3,
    }
    values.update(overrides)
    return load_config(None, values)


def losses(run) -> list[tuple[str, str, str]]:
    return [(r["step"], r["loss"], r.get("fixed_loss", "")) for r in TrainingLog.read(run / "log.csv")]


@pytest.fixture(scope="module")
def uninterrupted(dataset, animatediff_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("stage2_a")
    return out, train(stage2_config(dataset, out, animatediff_file))


def test_loss_goes_down_with_joint_training(uninterrupted):
    out, summary = uninterrupted
    rows = TrainingLog.read(out / "log.csv")
    fixed = {int(r["step"]): float(r["fixed_loss"]) for r in rows if r["fixed_loss"]}
    print(f"stage 2 fixed-batch loss: {fixed}; {summary.steps_per_second:.2f} steps/s")
    assert sorted(fixed) == [0, 8, 16]
    assert fixed[8] < fixed[0] and fixed[16] < 0.97 * fixed[0]
    stills = sum(int(r["images"]) for r in rows if r["images"])
    assert 0 < stills < 2 * STEPS  # some samples were stills (temporal layers bypassed), most clips


def test_resume_reproduces_the_uninterrupted_run(dataset, animatediff_file, uninterrupted, tmp_path, monkeypatch):
    out_a, summary_a = uninterrupted
    out = tmp_path / "stage2_b"
    after_step = Trainer._after_step

    def interrupt_at_5(self, *args):
        after_step(self, *args)
        if self.step == 5:
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(Trainer, "_after_step", interrupt_at_5)
    first = train(stage2_config(dataset, out, animatediff_file))
    assert (first.steps, first.stopped) == (5, "signal")
    monkeypatch.setattr(Trainer, "_after_step", after_step)
    second = train(stage2_config(dataset, out, animatediff_file), resume=str(out / "checkpoints" / "step_000005"))
    assert (second.start_step, second.steps) == (5, STEPS - 5)
    assert losses(out) == losses(out_a)
    assert second.rank_digests == summary_a.rank_digests  # parameters; the EMA state went through resume too
    a = torch.load(out_a / "weights" / "MagicAnimate" / "temporal_attention" / "temporal_attention.ckpt")
    b = torch.load(out / "weights" / "MagicAnimate" / "temporal_attention" / "temporal_attention.ckpt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # exported EMA weights


def test_sixteen_frame_clips_with_checkpointing(dataset, tmp_path):
    summary = train(stage2_config(dataset, tmp_path / "f16", "release", **{
        "max_steps": 2, "gradient_accumulation_steps": 1, "fixed_batch_every": 0, "data.num_frames": 16,
        "data.image_threshold": 0.0, "data.frame_threshold": 0.0, "model.gradient_checkpointing": True,
        "ema.enabled": False}))
    rows = TrainingLog.read(tmp_path / "f16" / "log.csv")
    assert summary.steps == 2 and all(np.isfinite(float(r["loss"])) for r in rows)


def test_exported_weights_load_and_change_the_output(dataset, uninterrupted):
    out, _ = uninterrupted
    ma = out / "weights" / "MagicAnimate"
    # Frozen components are linked from the starting weights, not rewritten.
    assert (ma / "appearance_encoder").resolve() == (require(TINY_WEIGHTS) / "MagicAnimate" / "appearance_encoder").resolve()
    reference = np.asarray(Image.open(dataset / "images" / "image000.png"))
    motion = read_motion(dataset / "densepose" / "clip000.mp4", max_frames=16)

    def animate(weights):
        model = MagicAnimate.from_pretrained(weights, device="cpu", dtype=torch.float32)
        return model(reference, motion, steps=3, size=64, seed=1).frames

    base, trained = animate(require(TINY_WEIGHTS)), animate(out / "weights")
    print(f"trained vs starting weights: mean |diff| {np.abs(trained - base).mean():.4f}")
    assert np.abs(trained - base).mean() > 1e-3
