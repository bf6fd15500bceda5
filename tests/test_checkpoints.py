"""Strict checkpoint loading: every tensor accounted for, the release's temporal-checkpoint rule."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import save_file

from conftest import TINY_WEIGHTS, require
from magicanimate.weights.state_dict import (
    check_state_dict, convert_legacy_vae_keys, merge_temporal_checkpoint, read_state_dict,
)
from magicanimate.weights.build import build_appearance_encoder, build_temporal_unet
from magicanimate.errors import WeightsError
from magicanimate.sampling.pipeline import MagicAnimate
from magicanimate.weights.layout import WeightPaths

EXPECTED = {"a.weight": torch.Size([2, 3]), "down_blocks.0.motion_modules.0.w": torch.Size([4])}
BASE = {"a.weight": torch.zeros(2, 3)}
MOTION = {"down_blocks.0.motion_modules.0.w": torch.ones(4)}


def test_check_names_unknown_missing_and_mismatched_keys():
    bad = {"a.weight": torch.zeros(3, 2), "stray.bias": torch.zeros(1)}
    with pytest.raises(WeightsError) as err:
        check_state_dict(EXPECTED, bad, "model.safetensors")
    msg = str(err.value)
    assert "model.safetensors" in msg and "stray.bias" in msg
    assert "down_blocks.0.motion_modules.0.w" in msg and "a.weight (file (3, 2), model (2, 3))" in msg


def test_temporal_plain_motion_dict_loads_whole():
    merged, report = merge_temporal_checkpoint(EXPECTED, BASE, dict(MOTION), "t.ckpt")
    assert report.path == "whole-dict" and report.loaded == 1
    assert torch.equal(merged["down_blocks.0.motion_modules.0.w"], torch.ones(4))


def test_temporal_wrapped_and_module_prefixed():
    ckpt = {"state_dict": {"module.a.weight": torch.ones(2, 3), "module.down_blocks.0.motion_modules.0.w": torch.ones(4)}}
    merged, report = merge_temporal_checkpoint(EXPECTED, BASE, ckpt, "t.ckpt")
    assert report.path == "whole-dict" and report.loaded == 2
    assert torch.equal(merged["a.weight"], torch.ones(2, 3))  # a whole-UNet file replaces SD weights


def test_temporal_fallback_keeps_motion_modules_only():
    ckpt = {"global_step": 100, "state_dict": {
        "unet.a.weight": torch.ones(2, 3), "unet.down_blocks.0.motion_modules.0.w": torch.full((4,), 2.0),
        "optimizer.x": torch.zeros(1)}}
    merged, report = merge_temporal_checkpoint(EXPECTED, BASE, ckpt, "t.ckpt")
    assert (report.path, report.loaded, report.ignored) == ("motion-modules-only", 1, 2)
    assert torch.equal(merged["a.weight"], torch.zeros(2, 3))  # SD weights kept, as the release does
    assert torch.equal(merged["down_blocks.0.motion_modules.0.w"], torch.full((4,), 2.0))
    assert "only its 1 motion-module tensors" in report.describe()


def test_temporal_fallback_rejects_unknown_or_misshaped_motion_keys():
    with pytest.raises(WeightsError, match="motion_modules.9"):
        merge_temporal_checkpoint(EXPECTED, BASE, {"x": 1, "down_blocks.0.motion_modules.9.w": torch.ones(4)}, "t.ckpt")
    with pytest.raises(WeightsError, match=r"t\.ckpt"):
        merge_temporal_checkpoint(EXPECTED, BASE, {"down_blocks.0.motion_modules.0.w": torch.ones(5)}, "t.ckpt")
    with pytest.raises(WeightsError, match="no motion-module tensors"):
        merge_temporal_checkpoint(EXPECTED, BASE, {"other": torch.ones(1)}, "t.ckpt")


def test_legacy_vae_attention_names_are_converted():
    sd = {"decoder.mid_block.attentions.0.query.weight": torch.zeros(4, 4, 1, 1),
          "decoder.mid_block.attentions.0.proj_attn.bias": torch.zeros(4),
          "decoder.conv_in.weight": torch.zeros(1)}
    out = convert_legacy_vae_keys(sd)
    assert set(out) == {"decoder.mid_block.attentions.0.to_q.weight", "decoder.mid_block.attentions.0.to_out.0.bias",
                        "decoder.conv_in.weight"}
    assert out["decoder.mid_block.attentions.0.to_q.weight"].shape == (4, 4)


def _copy_weights(tmp_path):
    root = tmp_path / "weights"
    shutil.copytree(require(TINY_WEIGHTS), root)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return root


def test_temporal_ckpt_missing_motion_tensor_is_an_error(tmp_path):
    root = _copy_weights(tmp_path)
    ckpt_path = root / "MagicAnimate/temporal_attention/temporal_attention.ckpt"
    sd = torch.load(ckpt_path, weights_only=True)
    dropped = sorted(sd)[5]
    del sd[dropped]
    torch.save(sd, ckpt_path)
    with pytest.raises(WeightsError) as err:
        build_temporal_unet(root / "stable-diffusion-v1-5/unet", ckpt_path)
    assert dropped in str(err.value) and "temporal_attention.ckpt" in str(err.value)


def test_appearance_encoder_may_omit_only_the_truncated_tensors(tmp_path):
    root = _copy_weights(tmp_path)
    folder = root / "MagicAnimate/appearance_encoder"
    sd = read_state_dict(folder / "diffusion_pytorch_model.safetensors")
    build_appearance_encoder(folder)  # as released: loads
    sd["conv_out.weight"] = torch.zeros(4, 32, 3, 3)  # a full UNet file carries the unused tensors too
    del sd["conv_in.bias"]
    save_file(sd, str(folder / "diffusion_pytorch_model.safetensors"))
    with pytest.raises(WeightsError, match="conv_in.bias"):
        build_appearance_encoder(folder)


def test_bin_and_safetensors_and_overrides(tmp_path):
    root = _copy_weights(tmp_path)
    unet = root / "stable-diffusion-v1-5/unet"
    sd = torch.load(unet / "diffusion_pytorch_model.bin", weights_only=True)
    save_file(sd, str(unet / "diffusion_pytorch_model.safetensors"))
    (unet / "diffusion_pytorch_model.bin").unlink()
    moved = tmp_path / "elsewhere" / "controlnet"
    shutil.move(str(root / "MagicAnimate/densepose_controlnet"), moved)
    with pytest.raises(WeightsError, match="controlnet"):
        MagicAnimate.from_pretrained(root, device="cpu")
    model = MagicAnimate.from_pretrained(root, device="cpu", controlnet=moved)
    assert model.components.temporal_report.path == "whole-dict"
    assert model.dtype == torch.float32


def test_missing_components_are_all_listed(tmp_path):
    paths = WeightPaths.release_layout(tmp_path)
    problems = paths.problems()
    assert len(problems) >= 7
    with pytest.raises(WeightsError, match="temporal_attention"):
        paths.require_complete()


def test_corrupt_file_is_a_weights_error(tmp_path):
    bad = tmp_path / "temporal_attention.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        read_state_dict(bad)


def test_hub_offline_and_not_cached_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from magicanimate.weights.layout import hub_weight_paths

    with pytest.raises(WeightsError) as err:
        hub_weight_paths(local_files_only=True, cache_dir=tmp_path / "hf")
    assert "magicanimate download" in str(err.value) and "zcxu-eric/MagicAnimate" in str(err.value)
