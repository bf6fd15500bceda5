"""Stage 1 end to end on a tiny synthetic set, starting from the tiny release weights.

Fine-tunes the appearance encoder and ControlNet (image-video joint: some samples are
still images), checks the fixed-batch loss goes down, that an interrupted run resumed from
its checkpoint follows the uninterrupted trajectory exactly, and that the exported weights
load into ``MagicAnimate`` and change its output.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_WEIGHTS, require
from magicanimate.io.densepose_colors import colorize_parts
from magicanimate.synthetic.simple_person import render_parts
from magicanimate.sampling.pipeline import MagicAnimate
from magicanimate.training import load_config, train
from magicanimate.training.logger import TrainingLog, format_duration, progress_line
from magicanimate.training.synthetic import make_synthetic_dataset
from magicanimate.training.trainer import Trainer
from magicanimate.io.video import read_motion, write_video

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::FutureWarning")]
STEPS = 24


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test here runs on one torch thread (see conftest)."""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = make_synthetic_dataset(tmp_path_factory.mktemp("data"), clips=2, frames=16, images=2)
    labels = render_parts(16, (64, 64), seed=7)  # a clip whose DensePose is too short: skipped, reported
    write_video(root / "videos" / "broken.mp4", colorize_parts(labels), 25.0)
    write_video(root / "densepose" / "broken.mp4", colorize_parts(labels[:10]), 25.0)
    return root


def stage1_config(dataset, output, **overrides):
    values = {
        "stage": 1, "output": str(output), "seed": 3, "batch_size": 2, "max_steps": STEPS,
        "checkpoint_every": 12, "fixed_batch_every": 12, "fixed_batch_size": 4,
        "model.pretrained": str(require(TINY_WEIGHTS)), "model.appearance_encoder": "release",
        "model.controlnet": "release", "model.motion_modules": "release",
        "data.root": str(dataset), "data.width": 64, "data.height": 64, "data.num_frames": 1,
        "data.num_workers": 0, "data.image_threshold": 0.25,
        "optim.learning_rate": 1e-3, "optim.lr_scheduler": "linear", "optim.lr_warmup_steps": 4,
    }
    values.update(overrides)
    return load_config(None, values)


def losses(run) -> list[tuple[str, str, str]]:
    return [(r["step"], r["loss"], r.get("fixed_loss", "")) for r in TrainingLog.read(run / "log.csv")]


@pytest.fixture(scope="module")
def uninterrupted(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("stage1_a")
    summary = train(stage1_config(dataset, out, **{"validation.every": STEPS, "validation.steps": 2,
                                                   "validation.num_frames": 8}))
    return out, summary


def test_loss_goes_down_and_outputs_are_written(uninterrupted):
    out, summary = uninterrupted
    assert summary.steps == STEPS and summary.stopped == "max_steps"
    rows = TrainingLog.read(out / "log.csv")
    fixed = {int(r["step"]): float(r["fixed_loss"]) for r in rows if r["fixed_loss"]}
    assert sorted(fixed) == [0, 12, 24]
    print(f"stage 1 fixed-batch loss: {fixed}; {summary.steps_per_second:.2f} steps/s")
    assert fixed[12] < fixed[0] and fixed[24] < 0.95 * fixed[0]
    assert sum(int(r["images"]) for r in rows if r["images"]) > 0  # joint training drew still images
    lrs = [float(r["lr"]) for r in rows if r["loss"]]
    assert lrs[0] == pytest.approx(1e-3 / 4) and lrs[-1] == pytest.approx(0.0, abs=1e-12)  # warm-up, linear decay
    assert "broken.mp4" in (out / "skipped.txt").read_text()
    assert Image.open(out / "loss.png").size == (900, 560)
    sample = read_motion(out / "samples" / f"step_{STEPS:06d}.mp4")
    assert sample.frames.shape == (8, 64, 192, 3)  # DensePose | generated | real frames
    assert json.loads((out / "summary.json").read_text())["steps"] == STEPS
    assert [p.name for p in sorted((out / "checkpoints").iterdir())] == ["step_000012", "step_000024"]


def test_resume_reproduces_the_uninterrupted_run(dataset, uninterrupted, tmp_path, monkeypatch):
    out_a, summary_a = uninterrupted
    out = tmp_path / "stage1_b"
    after_step = Trainer._after_step

    def interrupt_at_8(self, *args):  # SIGTERM (a preempted job) after step 8
        after_step(self, *args)
        if self.step == 8:
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(Trainer, "_after_step", interrupt_at_8)
    first = train(stage1_config(dataset, out, checkpoint_every=6))
    assert (first.steps, first.stopped) == (8, "signal")
    monkeypatch.setattr(Trainer, "_after_step", after_step)
    second = train(stage1_config(dataset, out, checkpoint_every=6), resume="latest")
    assert (second.start_step, second.steps) == (8, STEPS - 8)
    assert losses(out) == losses(out_a)  # every logged loss, bit for bit
    assert second.rank_digests == summary_a.rank_digests  # the trained weights, bit for bit


def test_exported_weights_load_and_change_the_output(dataset, uninterrupted):
    out, _ = uninterrupted
    reference = np.asarray(Image.open(dataset / "images" / "image000.png"))
    motion = read_motion(dataset / "densepose" / "clip000.mp4", max_frames=8)

    def animate(weights):
        model = MagicAnimate.from_pretrained(weights, device="cpu", dtype=torch.float32)
        return model(reference, motion, steps=3, size=64, seed=1).frames

    base, trained = animate(require(TINY_WEIGHTS)), animate(out / "weights")
    assert trained.shape == base.shape == (8, 64, 64, 3)
    print(f"trained vs starting weights: mean |diff| {np.abs(trained - base).mean():.4f}")
    assert np.abs(trained - base).mean() > 1e-3


class TickClock:
    """Stands in for the `time` module: monotonic() advances one "second" per call, whatever the machine."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 1.0
        return self.now

    def __getattr__(self, name):
        return getattr(time, name)


def test_time_budget_stops_cleanly(dataset, tmp_path, monkeypatch, capsys):
    """Deterministic: the trainer's clock ticks once per reading, so the stop does not depend on speed.

    A step reads the clock at least twice (start, end) and, on this path, at most ~10 times; so a
    40-tick budget stops after 2 to 20 steps (< STEPS) on any machine, with one step's margin kept.
    """
    monkeypatch.setattr(sys.modules[Trainer.__module__], "time", TickClock())
    summary = train(stage1_config(dataset, tmp_path / "budget", time_budget="40s", progress_every=2))
    assert summary.stopped == "time_budget"
    progress = [line for line in capsys.readouterr().err.splitlines() if line.startswith("step ")]
    assert len(progress) == summary.steps // 2  # a line every 2 steps: the user sees the run move
    assert re.fullmatch(r"step 2/24  loss \S+  lr \S+  \S+ s/step  ETA \d+(m\d\ds|s)", progress[0])
    assert 2 <= summary.steps <= 20
    assert (tmp_path / "budget" / "checkpoints" / f"step_{summary.steps:06d}" / "state.json").is_file()
    assert (tmp_path / "budget" / "weights" / "MagicAnimate" / "densepose_controlnet" / "config.json").is_file()


def test_progress_line_gives_loss_speed_and_time_left():
    line = progress_line(step=100, max_steps=1000, loss=0.123456, lr=1e-5, seconds_per_step=4.5)
    assert line == "step 100/1000  loss 0.1235  lr 1e-05  4.5 s/step  ETA 1h07m30s"
    assert format_duration(42) == "42s" and format_duration(125) == "2m05s"
