"""The training network against the inference path, per-row motion bypass, checkpointing, init, export."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import TINY_WEIGHTS, require
from magicanimate.weights.build import load_components
from magicanimate.models.appearance_encoder import TRUNCATED_KEYS
from magicanimate.models.appearance_encoder import connect_reference_attention
from magicanimate.models.reference_attention import ReferenceBank
from magicanimate.training.starting_models import build_starting_models
from magicanimate.training.config import ModelConfig
from magicanimate.training.export import export_release_layout
from magicanimate.training.model import TrainingModel
from magicanimate.weights.layout import WeightPaths

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test here runs on one torch thread (see conftest)."""


def fresh_components():
    return load_components(WeightPaths.release_layout(require(TINY_WEIGHTS)), device="cpu", dtype=torch.float32)


def inputs(b: int, f: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "noisy": torch.randn(b, 4, f, 8, 8, generator=g),
        "timesteps": torch.tensor([301, 802][:b]),
        "reference": torch.randn(b, 4, 8, 8, generator=g),
        "control": torch.rand(b, 3, f, 64, 64, generator=g),
        "text": torch.randn(1, 77, 32, generator=g).expand(b, -1, -1),
    }


def test_training_forward_equals_inference_paths():
    """One sample through TrainingModel == the release's conditional half; dropped reference == unconditional."""
    c = fresh_components()
    x = inputs(1, 4)
    t, f = x["timesteps"][0], 4
    # The inference path: the release's processors, one shared reference, CFG batch [uncond, cond].
    bank = ReferenceBank(storage_dtype=None)
    connect_reference_attention(c.appearance_encoder, c.unet, bank)
    with torch.no_grad(), bank.step():
        c.appearance_encoder(x["reference"], t, x["text"], bank)
        down, mid = c.controlnet(x["noisy"][0].permute(1, 0, 2, 3), t, encoder_hidden_states=x["text"].expand(f, -1, -1),
                                 controlnet_cond=x["control"][0].permute(1, 0, 2, 3), return_dict=False)
        down = [r.permute(1, 0, 2, 3)[None] for r in down]  # (f, c, h, w) -> (1, c, f, h, w)
        with bank.reading(slice(f, None)):
            uncond, cond = c.unet(x["noisy"].expand(2, -1, -1, -1, -1), t, x["text"].expand(2, -1, -1),
                                  down_block_additional_residuals=down,
                                  mid_block_additional_residual=mid.permute(1, 0, 2, 3)[None]).chunk(2)
    net = TrainingModel(c.unet, c.controlnet, c.appearance_encoder, use_motion_modules=True)
    with torch.no_grad():
        ours = net(**x, temporal=torch.tensor([True]))
        dropped = net(**x, temporal=torch.tensor([True]), keep_reference=torch.tensor([False]))
    assert (ours - cond).abs().max() < 1e-5
    assert (dropped - uncond).abs().max() < 1e-5
    assert (cond - uncond).abs().max() > 1e-3


def test_batch_rows_are_independent_and_motion_bypass_is_per_row():
    c = fresh_components()
    net = TrainingModel(c.unet, c.controlnet, c.appearance_encoder, use_motion_modules=True)
    x = inputs(2, 3, seed=1)
    with torch.no_grad():
        both = net(**x, temporal=torch.tensor([True, False]))
        first = net(**{k: v[:1] for k, v in x.items()}, temporal=torch.tensor([True]))
        second = net(**{k: v[1:] for k, v in x.items()}, temporal=torch.tensor([False]))
        second_motion = net(**{k: v[1:] for k, v in x.items()}, temporal=torch.tensor([True]))
        # A bypassed row is the per-frame image model: frames do not influence each other through
        # the motion modules (the resnets still normalise over the window's frames, as released).
        unet_bypassed = c.unet(x["noisy"][1:], 802, x["text"][:1], temporal=False)
        unet_default = c.unet(x["noisy"][1:], 802, x["text"][:1])
    assert (both[:1] - first).abs().max() < 1e-5
    assert (both[1:] - second).abs().max() < 1e-5
    assert (second - second_motion).abs().max() > 1e-4
    assert (unet_bypassed - unet_default).abs().max() > 1e-4


def test_gradient_checkpointing_gives_the_same_gradients():
    def grads(checkpointing: bool) -> tuple[float, dict[str, torch.Tensor]]:
        c = fresh_components()
        net = TrainingModel(c.unet, c.controlnet, c.appearance_encoder, use_motion_modules=True)
        net.select_trainable(["appearance_encoder.*", "controlnet.*", "unet.*motion_modules.*"])
        if checkpointing:
            for part in (net.unet, net.controlnet, net.appearance_encoder):
                part.enable_gradient_checkpointing()
        net.train()
        loss = net(**inputs(2, 2, seed=2), temporal=torch.tensor([True, True])).square().mean()
        loss.backward()
        return loss.item(), {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}

    loss_a, grads_a = grads(False)
    loss_b, grads_b = grads(True)
    assert loss_a == pytest.approx(loss_b, abs=1e-6)
    assert grads_a.keys() == grads_b.keys()
    assert any(n.startswith("appearance_encoder.") for n in grads_a)  # gradients reach the reference path
    assert any("motion_modules" in n for n in grads_a) and any(n.startswith("controlnet.") for n in grads_a)
    for name in grads_a:
        assert (grads_a[name] - grads_b[name]).abs().max() <= 1e-5 * (1 + grads_a[name].abs().max()), name


def test_init_from_sd_and_from_animatediff_checkpoint(tmp_path):
    released = torch.load(TINY_WEIGHTS / "MagicAnimate" / "temporal_attention" / "temporal_attention.ckpt",
                          weights_only=True)
    # AnimateDiff v1 files: the motion-module state dict with the original key names; some
    # trainers wrap it in 'state_dict' with DDP's 'module.' prefix.
    torch.save(released, tmp_path / "mm_sd_v15.ckpt")
    torch.save({"state_dict": {f"module.{k}": v for k, v in released.items()}}, tmp_path / "wrapped.ckpt")
    for name in ("mm_sd_v15.ckpt", "wrapped.ckpt"):
        start = build_starting_models(ModelConfig(pretrained=str(TINY_WEIGHTS), motion_modules=str(tmp_path / name)),
                                      seed=0)
        state = start.models.unet.state_dict()
        assert all(torch.equal(state[k], v) for k, v in released.items())
        assert not start.unet_spatial_from_checkpoint
    # From SD 1.5: appearance encoder = the UNet's weights; ControlNet = the UNet's encoder
    # with zero-initialised output convolutions; fresh motion modules start as the identity.
    start = build_starting_models(ModelConfig(pretrained=str(TINY_WEIGHTS)), seed=0)
    spatial = torch.load(TINY_WEIGHTS / "stable-diffusion-v1-5" / "unet" / "diffusion_pytorch_model.bin",
                         weights_only=True)
    assert torch.equal(start.models.appearance_encoder.state_dict()["mid_block.attentions.0.proj_in.weight"],
                       spatial["mid_block.attentions.0.proj_in.weight"])
    assert torch.equal(start.models.controlnet.state_dict()["down_blocks.1.resnets.0.conv1.weight"],
                       spatial["down_blocks.1.resnets.0.conv1.weight"])
    assert start.models.controlnet.controlnet_mid_block.weight.abs().max() == 0
    x = torch.randn(1, 32, 4, 8, 8)
    with torch.no_grad():
        assert torch.equal(start.models.unet.down_blocks[0].motion_modules[0](x), x)
    assert start.sources == {"temporal_attention": None, "appearance_encoder": None, "controlnet": None}


def test_export_is_the_release_layout(tmp_path):
    start = build_starting_models(ModelConfig(pretrained=str(TINY_WEIGHTS), motion_modules="release"), seed=0)
    target = export_release_layout(
        tmp_path / "weights", pretrained=TINY_WEIGHTS, unet=start.models.unet, appearance_encoder=start.models.appearance_encoder,
        controlnet=start.models.controlnet, state={}, rewrite={"appearance_encoder": True, "controlnet": True,
                                                        "temporal_attention": False},
        sources=start.sources, whole_unet=False, link_mode="copy")
    ma = target / "MagicAnimate"
    from safetensors.torch import load_file

    encoder = load_file(ma / "appearance_encoder" / "diffusion_pytorch_model.safetensors")
    assert not set(TRUNCATED_KEYS) & set(encoder) and len(encoder) > 100
    assert json.loads((ma / "appearance_encoder" / "config.json").read_text())["_class_name"] == "AppearanceEncoderModel"
    assert json.loads((ma / "densepose_controlnet" / "config.json").read_text())["_class_name"] == "ControlNetModel"
    motion = torch.load(ma / "temporal_attention" / "temporal_attention.ckpt", weights_only=True)
    assert set(motion) == {k for k in start.models.unet.state_dict() if "motion_modules" in k}
    assert (target / "stable-diffusion-v1-5" / "unet" / "config.json").is_file()
    # The exported folder loads strictly.
    components = load_components(WeightPaths.release_layout(target), device="cpu", dtype=torch.float32)
    assert components.temporal_report.path == "whole-dict"
