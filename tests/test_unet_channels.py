"""``model.unet_channels``: a stage 1 that starts the denoiser from random weights of other widths.

The mini recipe's stage 0 starts from ``random:mini``; its stage 1 re-initialises the UNet wider.
These runs use the quick-start config (tiny weights, synthetic data, a few steps on the CPU).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from diffusers import UNet2DConditionModel

from magicanimate.cli.main import main
from magicanimate.training.starting_models import fresh_spatial_unet
from magicanimate.weights.random import TINY

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "configs" / "quickstart.yaml"
WIDE = [32, 64, 64, 64]  # TINY's UNet is (32, 32, 32, 32)


def _train(output: Path, *settings: str, stage: int = 1, steps: int = 2) -> int:
    args = ["train", "--stage", str(stage), "--config", str(QUICKSTART), "--output", str(output),
            "--max-steps", str(steps)]
    for setting in settings:
        args += ["--set", setting]
    return main(args)


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory):
    """Stage 1 from random:tiny with the UNet re-initialised at WIDE and trained with the rest."""
    output = tmp_path_factory.mktemp("wide") / "stage1"
    code = _train(output, f"model.unet_channels=[{','.join(map(str, WIDE))}]",
                  "model.trainable=[unet.*,appearance_encoder.*,controlnet.*]")
    assert code == 0
    return output


def test_the_fresh_unet_has_the_widths_and_leaves_the_global_seed_alone():
    config = TINY.unet_config()
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    unet = fresh_spatial_unet(config, WIDE, seed=7)
    assert torch.equal(torch.rand(3), expected_next)  # the run's own random stream is untouched
    assert list(unet.config.block_out_channels) == WIDE
    assert unet.conv_in.out_channels == WIDE[0] and unet.up_blocks[-1].resnets[-1].out_channels == WIDE[0]
    # the same widths and seed give the same weights whatever the starting UNet's widths were
    again = fresh_spatial_unet({**config, "block_out_channels": [64, 64, 64, 64]}, WIDE, seed=7)
    assert all(torch.equal(a, b) for a, b in zip(unet.state_dict().values(), again.state_dict().values()))
    other = fresh_spatial_unet(config, WIDE, seed=8)
    assert not torch.equal(unet.conv_in.weight, other.conv_in.weight)


def test_the_export_carries_the_new_widths_everywhere(wide_run, capsys):
    weights = wide_run / "weights"
    unet_config = json.loads((weights / "stable-diffusion-v1-5" / "unet" / "config.json").read_text())
    assert unet_config["block_out_channels"] == WIDE
    for part in ("appearance_encoder", "densepose_controlnet"):
        config = json.loads((weights / "MagicAnimate" / part / "config.json").read_text())
        assert config["block_out_channels"] == WIDE, part
    ckpt = torch.load(weights / "MagicAnimate" / "temporal_attention" / "temporal_attention.ckpt",
                      map_location="cpu", weights_only=True)
    assert ckpt["conv_in.weight"].shape[0] == WIDE[0]  # the whole trained UNet, at the new widths
    # the starting folder's own UNet is untouched (the export writes its own unet/, not into the link)
    start = json.loads((wide_run / "random_init" / "stable-diffusion-v1-5" / "unet" / "config.json").read_text())
    assert start["block_out_channels"] == list(TINY.unet_channels)
    assert main(["check-weights", str(weights)]) == 0, capsys.readouterr().out


def test_the_next_stage_continues_from_the_wider_export(wide_run, tmp_path):
    code = _train(tmp_path / "stage1b", f"model.pretrained={wide_run / 'weights'}",
                  "model.appearance_encoder=release", "model.controlnet=release", "model.motion_modules=release",
                  "model.trainable=[unet.*,appearance_encoder.*,controlnet.*]", steps=1)
    assert code == 0
    loaded = UNet2DConditionModel.from_pretrained(tmp_path / "stage1b" / "weights" / "stable-diffusion-v1-5" / "unet")
    assert list(loaded.config.block_out_channels) == WIDE


@pytest.mark.parametrize("settings,message", [
    (["model.unet_channels=[32,48,64,64]"], "model.unet_channels must be multiples of 32"),
    (["model.unet_channels=[64,64,64,64]", "model.controlnet=release"],
     "model.unet_channels starts the denoiser from scratch"),
    (["model.unet_channels=[64,64,64]"], "model.unet_channels has 3 widths; the starting UNet has 4 blocks"),
])
def test_bad_widths_are_one_line_errors(tmp_path, capsys, settings, message):
    code = _train(tmp_path / "bad", *settings)
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: ") and message in err and "Traceback" not in err, err
