"""Model offload moves one component at a time and leaves the results unchanged.

On a CPU-only machine the device and the storage are both the CPU, so results alone cannot show
that anything moved. These tests watch the moves themselves (every `Module.to` call, or which
component the public `ModelOffload.activate` puts on the device); tests/test_gpu.py checks real
CUDA moves and memory where a GPU exists.
"""

from __future__ import annotations

import numpy as np
import torch

from conftest import TINY_WEIGHTS, require
from goldens import case_a
from magicanimate.runtime.offload import ModelOffload
from magicanimate.sampling.pipeline import MagicAnimate

DEVICE = torch.device("cpu", 0)  # equal in memory to "cpu", but a different torch.device: moves are visible


def test_only_one_component_is_active_and_moves_follow_the_calls(monkeypatch):
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    names = {id(a): "a", id(b): "b"}
    moves = []
    to = torch.nn.Module.to

    def recording_to(module, *args, **kwargs):
        if id(module) in names:
            moves.append((names[id(module)], torch.device(args[0])))
        return to(module, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", recording_to)
    cpu = torch.device("cpu")
    offload = ModelOffload(DEVICE, storage="cpu")
    offload.register(a)
    offload.register(b)
    assert moves == [("a", cpu), ("b", cpu)]  # both start in storage
    moves.clear()
    x = torch.zeros(1, 2)
    a(x), a(x), b(x), a(x)
    # a up; a again: nothing; b: a back first, then b up; a: b back, a up
    assert moves == [("a", DEVICE), ("a", cpu), ("b", DEVICE), ("b", cpu), ("a", DEVICE)]
    assert offload.active is a and offload.moves == 3
    offload.remove()
    b(x)
    assert offload.active is a  # hooks removed: calls no longer move anything


def test_offloaded_run_equals_the_plain_run(monkeypatch):
    weights = require(TINY_WEIGHTS)
    plain = MagicAnimate.from_pretrained(weights, device="cpu")(case_a("source_image"), case_a("control")[:8],
                                                                 steps=2, size=64).frames
    activated = []
    activate = ModelOffload.activate

    def recording_activate(self, component):
        if self.active is not component:
            activated.append(type(component).__name__)
        return activate(self, component)

    monkeypatch.setattr(ModelOffload, "activate", recording_activate)
    model = MagicAnimate.from_pretrained(weights, device="cpu").enable_model_offload()
    c = model.components
    kinds = {name: type(getattr(c, name)).__name__
             for name in ("text_encoder", "vae", "appearance_encoder", "controlnet", "unet")}
    frames = model(case_a("source_image"), case_a("control")[:8], steps=2, size=64).frames
    assert np.array_equal(frames, plain)
    # text, VAE encode, then per step: appearance encoder, ControlNet, UNet; then the VAE decode
    per_step = [kinds["appearance_encoder"], kinds["controlnet"], kinds["unet"]]
    assert activated == [kinds["text_encoder"], kinds["vae"], *per_step, *per_step, kinds["vae"]]
