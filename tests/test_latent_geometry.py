"""Any VAE geometry: the latent channels and downsampling are read from the VAE's config.

The released VAE makes 4 channels at 1/8 of the picture's side; a model trained from scratch
may choose others (docs/mini_model.md). These tests build a tiny model whose VAE has three
blocks (4x downsampling) and 8 latent channels and run sampling, training and the weight
checks on it; the expected shapes are worked out by hand from those two numbers.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from magicanimate.errors import WeightsError
from magicanimate.models.vae import latent_downsampling, latent_shape
from magicanimate.sampling.pipeline import MagicAnimate
from magicanimate.training import load_config, train
from magicanimate.weights.build import verify_components
from magicanimate.weights.layout import WeightPaths
from magicanimate.weights.random import SD15, TINY, random_models, write_random_weights

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
# 3 VAE blocks -> 2 halvings -> 4 pixels per latent; 8 latents per side at the native size -> 32 px.
# The ControlNet's pose embedding halves as often as the VAE: three widths.
FOUR_X = replace(TINY, name="tiny-4x", vae_channels=(32, 32, 32), latent_channels=8, sample_size=8,
                 controlnet_embedding=(16, 16, 32))


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test here runs on one torch thread (see conftest)."""


@pytest.fixture(scope="module")
def four_x_weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("four_x") / "weights"
    write_random_weights(root, FOUR_X, seed=0)
    return root


def test_latent_shape_of_the_released_vae_and_of_a_4x_vae():
    with torch.device("meta"):
        sd_vae = random_models(SD15, vocab_size=514)["vae"]
        four_x_vae = random_models(FOUR_X, vocab_size=514)["vae"]
    assert latent_downsampling(sd_vae) == 8 and latent_shape(sd_vae, 512, 768) == (4, 64, 96)
    assert latent_downsampling(four_x_vae) == 4 and latent_shape(four_x_vae, 64, 32) == (8, 16, 8)


def test_pipeline_samples_with_a_4x_vae_of_8_channels(four_x_weights):
    model = MagicAnimate.from_pretrained(four_x_weights, device="cpu", dtype=torch.float32)
    assert model.native_size == 32  # sample_size 8 x 4 pixels per latent
    assert tuple(model.initial_noise(8, 48, 32, seed=0, window=4).shape) == (1, 8, 8, 12, 8)
    latent = model.encode_reference(np.zeros((48, 32, 3), np.uint8))
    assert tuple(latent.shape) == (1, 8, 12, 8)
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    motion = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    frames = model(reference, motion, steps=2, seed=1).frames
    assert frames.shape == (4, 32, 32, 3) and np.isfinite(frames).all()


def test_stage0_and_stage1_train_a_4x_vae_of_8_channels(four_x_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("MAGICANIMATE_SYNTHETIC_CACHE", str(tmp_path / "data"))
    common = {"max_steps": 1, "batch_size": 2, "checkpoint_every": 1, "fixed_batch_every": 1,
              "fixed_batch_size": 2, "data.root": "synthetic:train=2,heldout=1,frames=4,size=64",
              "data.width": 64, "data.height": 64, "data.num_frames": 1, "data.num_workers": 0,
              "validation.every": 0}
    vae_run = train(load_config(None, {**common, "stage": 0, "output": str(tmp_path / "stage0"),
                                       "model.pretrained": str(four_x_weights),
                                       "autoencoder.scale_samples": 4}))
    assert vae_run.steps == 1 and np.isfinite(vae_run.final_loss)
    denoiser_run = train(load_config(None, {
        **common, "stage": 1, "output": str(tmp_path / "stage1"), "model.pretrained": vae_run.weights,
        "model.appearance_encoder": "unet", "model.controlnet": "unet", "model.motion_modules": "zero",
        "model.controlnet_conditioning_channels": list(FOUR_X.controlnet_embedding),
        "model.trainable": ["unet.*", "appearance_encoder.*", "controlnet.*"]}))
    assert denoiser_run.steps == 1 and np.isfinite(denoiser_run.final_loss)
    paths = WeightPaths.release_layout(denoiser_run.weights)
    assert all(status == "ok" for _, status, _ in verify_components(paths))
    assert json.loads(paths.vae.joinpath("config.json").read_text())["latent_channels"] == 8


def test_weights_whose_vae_does_not_match_the_unet_are_refused(four_x_weights, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(four_x_weights, mixed)
    tiny = write_random_weights(tmp_path / "tiny", TINY, seed=0)
    mixed_paths = WeightPaths.release_layout(mixed)
    shutil.rmtree(mixed_paths.vae)
    shutil.copytree(tiny.vae, mixed_paths.vae)  # 4 latent channels, the UNet takes 8
    rows = {name: (status, detail) for name, status, detail in verify_components(mixed_paths)}
    assert rows["vae"][0] == "ok" and rows["latent geometry"][0] == "mismatch"
    assert "makes 4 latent channels but unet in_channels 8" in rows["latent geometry"][1]
    with pytest.raises(WeightsError, match="do not belong together"):
        MagicAnimate.from_pretrained(mixed, device="cpu", dtype=torch.float32)


def test_a_controlnet_that_shrinks_the_pose_more_than_the_vae_is_refused(four_x_weights, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(four_x_weights, mixed)
    config_file = WeightPaths.release_layout(mixed).controlnet / "config.json"
    config = json.loads(config_file.read_text())
    config["conditioning_embedding_out_channels"] = [16, 16, 32, 32]  # 3 halvings, the VAE makes 2
    config_file.write_text(json.dumps(config))
    paths = WeightPaths.release_layout(mixed)
    rows = {name: (status, detail) for name, status, detail in verify_components(paths)}
    assert rows["latent geometry"][0] == "mismatch"
    assert "halves the picture 2 times but the controlnet's conditioning embedding 3 times" in rows["latent geometry"][1]
