"""The shipped mini model (issue 12, item 6): it loads, passes check-weights, and animates a held-out person.

The thresholds come from the measurements in docs/mini_model.md ("The eighth full run", the
shipped weights) minus a safety margin; the ground truth is the synthetic generator's true
video, which the model never saw (held-out identity, held-out motion family), drawn as large as
the people the model trained on (``MINI_ZOOM``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from magicanimate.cli.main import main
from magicanimate.metrics import psnr
from magicanimate.metrics.person import silhouette_iou
from magicanimate.options import SampleOptions
from magicanimate.sampling.pipeline import MagicAnimate
from magicanimate.synthetic.dataset import make_reference, make_sample, split_specs
from magicanimate.weights.layout import MINI_SIZE, MINI_WEIGHTS, MINI_ZOOM
from magicanimate.weights.pack import folder_bytes

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

HELD_OUT_FRAMES = 24  # issue 12: at least 24 frames, so two 16-frame windows overlap and fuse
# Measured on this clip (docs/mini_model.md, "The eighth full run"): +2.34 dB over copying the
# reference (18.50 vs 16.15 dB), silhouette IoU 0.514 (copying: 0.329); the thresholds keep a
# safety margin for other CPUs' rounding. The second run's weights, shipped until the seventh
# run's, score +1.70 dB and IoU 0.524 on this clip, so the PSNR threshold tells them apart.
PSNR_MARGIN_DB = 1.9
IOU_THRESHOLD = 0.47


@pytest.fixture(scope="module")
def mini_model():
    return MagicAnimate.from_pretrained(MINI_WEIGHTS, device="cpu", dtype=torch.float32)


def test_the_mini_weights_are_shipped_within_the_size_budget():
    assert MINI_WEIGHTS.is_dir(), f"{MINI_WEIGHTS} is missing: the package ships the mini model"
    assert folder_bytes(MINI_WEIGHTS) <= 30_000_000  # issue 12: at most 30 MB


def test_the_mini_weights_have_the_recipes_denoiser_widths():
    from magicanimate.training import load_config
    from magicanimate.weights.random import size_of_folder

    stage1 = load_config(Path(__file__).resolve().parents[1] / "configs" / "mini" / "stage1.yaml")
    assert list(size_of_folder("mini").unet_channels) == stage1.model.unet_channels


def test_the_mini_weights_pass_check_weights(capsys):
    assert main(["check-weights", "mini"]) == 0
    assert "8 of 8 checks ok" in capsys.readouterr().out


def test_the_mini_weights_load_at_their_native_size(mini_model):
    assert mini_model.native_size == MINI_SIZE
    assert mini_model.dtype == torch.float32  # stored as float16, cast on loading


def test_a_held_out_person_follows_a_held_out_motion(mini_model, one_torch_thread):
    spec = split_specs("heldout", count=1, num_frames=HELD_OUT_FRAMES, size=(MINI_SIZE, MINI_SIZE),
                       zoom=MINI_ZOOM)[0]
    sample = make_sample(spec)
    reference, _ = make_reference(spec)
    generated = mini_model.animate(reference, sample.densepose, options=SampleOptions(seed=1, steps=25)).frames
    assert generated.shape == sample.appearance.shape

    copied = np.repeat(reference[None], HELD_OUT_FRAMES, axis=0)
    gain = psnr(generated, sample.appearance) - psnr(copied, sample.appearance)
    assert gain >= PSNR_MARGIN_DB, f"PSNR only {gain:+.2f} dB against copying the reference"
    iou = silhouette_iou(generated, sample.labels, background=sample.background)
    assert iou >= IOU_THRESHOLD, f"silhouette IoU {iou:.3f}"
