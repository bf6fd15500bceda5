"""Model offload moves one component at a time and leaves the results unchanged."""

from __future__ import annotations

import numpy as np
import torch

from conftest import TINY_WEIGHTS, require
from goldens import case_a
from magicanimate.runtime.offload import ModelOffload
from magicanimate.sampling.pipeline import MagicAnimate


def test_only_one_component_is_active_and_moves_follow_the_calls():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    offload = ModelOffload("cpu", storage="cpu")
    offload.register(a)
    offload.register(b)
    x = torch.zeros(1, 2)
    a(x), a(x), b(x), a(x)
    assert offload.active is a and offload.moves == 3  # a, b, a: repeated calls do not move


def test_offloaded_run_equals_the_plain_run():
    weights = require(TINY_WEIGHTS)
    plain = MagicAnimate.from_pretrained(weights, device="cpu")(case_a("source_image"), case_a("control")[:8],
                                                                 steps=2, size=64).frames
    model = MagicAnimate.from_pretrained(weights, device="cpu").enable_model_offload()
    frames = model(case_a("source_image"), case_a("control")[:8], steps=2, size=64).frames
    assert np.array_equal(frames, plain)
    # text, VAE encode, then per step: appearance encoder, ControlNet, UNet; then the VAE
    assert model._offload.moves == 2 + 2 * 3 + 1
