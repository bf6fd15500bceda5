"""Full-size (SD 1.5) models built on the meta device map every released tensor, and nothing more."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import MANIFESTS, require
from magicanimate.weights.state_dict import check_state_dict, expected_tensors, merge_temporal_checkpoint
from magicanimate.weights.build import quiet_diffusers
from magicanimate.models.appearance_encoder import TRUNCATED_KEYS, AppearanceEncoder
from magicanimate.models.unet3d import TemporalUNet, TemporalUNetConfig


def manifest(name: str) -> dict[str, torch.Size]:
    return {k: torch.Size(v) for k, v in json.loads(require(MANIFESTS / name).read_text()).items()}


@pytest.fixture(scope="module")
def summary() -> dict:
    return json.loads(require(MANIFESTS / "summary.json").read_text())


def fake_tensors(shapes: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    """Meta tensors with the manifest's shapes: a stand-in for the 5 GB released files."""
    return {k: torch.empty(s, device="meta") for k, s in shapes.items()}


def test_temporal_unet_matches_manifest(summary):
    with torch.device("meta"):
        unet = TemporalUNet(TemporalUNetConfig.from_unet_config(summary["sd15_unet_config"]))
    expected = expected_tensors(unet)
    everything = manifest("unet3d_all_keys.json")
    assert expected == everything  # same keys, same shapes, nothing unmapped
    assert sum(p.numel() for p in unet.parameters()) == summary["parameter_counts"]["unet3d_total"]

    # The release applies temporal_attention.ckpt over the SD 1.5 UNet: both file shapes work.
    motion = manifest("unet3d_motion_module_keys.json")
    spatial = {k: v for k, v in everything.items() if k not in motion}
    assert len(motion) == summary["key_counts"]["unet3d_motion_module_keys.json"]
    merged, report = merge_temporal_checkpoint(expected, fake_tensors(spatial), fake_tensors(motion), "mm.ckpt")
    check_state_dict(expected, merged, "merged")
    assert (report.path, report.loaded) == ("whole-dict", 560)
    whole = {"state_dict": {"module." + k: v for k, v in fake_tensors(everything).items()}}
    merged, report = merge_temporal_checkpoint(expected, fake_tensors(spatial), whole, "unet.ckpt")
    check_state_dict(expected, merged, "merged")
    assert (report.path, report.loaded) == ("whole-dict", 1246)


def test_appearance_encoder_matches_manifest(summary):
    with torch.device("meta"), quiet_diffusers():
        encoder = AppearanceEncoder.from_unet_config(summary["sd15_unet_config"])
    released = manifest("appearance_encoder_keys.json")
    assert expected_tensors(encoder) == released
    omitted = summary["appearance_encoder_vs_sd15_unet2d"]["keys_missing_in_appearance_encoder"]
    assert sorted(omitted) == sorted(TRUNCATED_KEYS) and len(TRUNCATED_KEYS) == 24


def test_controlnet_matches_manifest(summary):
    from diffusers import ControlNetModel

    with torch.device("meta"), quiet_diffusers():
        controlnet = ControlNetModel.from_config(summary["controlnet_config"])
    assert expected_tensors(controlnet) == manifest("controlnet_keys.json")
    assert sum(p.numel() for p in controlnet.parameters()) == summary["parameter_counts"]["controlnet"]
