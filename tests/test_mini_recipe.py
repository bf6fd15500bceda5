"""The mini model's recipe (docs/mini_model.md): configs, size budget, stage 0 (VAE), packing, `make mini-model`.

Runs on tiny sizes in seconds; the real training is `make mini-model`.
"""

from __future__ import annotations

import dataclasses

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO
from magicanimate.io.densepose_colors import background_color, part_colors
from magicanimate.models.appearance_encoder import TRUNCATED_KEYS
from magicanimate.models.vae import VAE_SCALE, fold_latent_scale
from magicanimate.training import load_config, train
from magicanimate.training.autoencoder import pixel_weights, weighted_mean
from magicanimate.training.config import parse_duration
from magicanimate.training.data import load_items
from magicanimate.weights.build import build_vae, verify_components
from magicanimate.weights.layout import MINI_SIZE, MINI_ZOOM, WeightPaths
from magicanimate.weights.pack import folder_bytes, pack_weights
from magicanimate.weights.random import MINI, TINY, random_models

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
CONFIGS = REPO / "configs" / "mini"
BUDGET_BYTES = 30_000_000  # issue 12: the shipped folder is at most 30 MB
BUDGET_SECONDS = 3 * 3600  # issue 12: `make mini-model` in at most 3 hours


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test here runs on one torch thread (see conftest)."""


def mini_configs():
    return [load_config(CONFIGS / f"stage{name}.yaml").check() for name in ("0", "1", "1b", "2")]


# ---------------------------------------------------------------------------------------
# Configs and sizes
# ---------------------------------------------------------------------------------------


def test_mini_configs_load_validate_and_chain():
    stages = mini_configs()
    assert [c.stage for c in stages] == [0, 1, 1, 2]  # stage 1, then stage 1 continued (1b)
    assert stages[0].model.pretrained == f"random:{MINI.name}"  # from nothing
    for before, after in zip(stages, stages[1:]):  # each stage starts from the previous one's export
        assert after.model.pretrained == f"{before.output}/weights"
    assert len({(c.data.width, c.data.height) for c in stages}) == 1
    # the denoiser stages draw stage 0's people MINI_ZOOM times larger: the framing the demo and CI use
    assert {c.data.root for c in stages[1:]} == {f"{stages[0].data.root},zoom={MINI_ZOOM}"}
    # stage 1 learns the velocity; the later stages inherit it from its export
    assert [c.model.prediction_type for c in stages] == ["", "v_prediction", "", ""]
    assert all(c.data.latent_cache for c in stages[1:])  # the frozen VAE's latents, encoded once
    # the data are rendered at the size the weights call native (UNet sample_size x the VAE's 8x)
    assert stages[0].data.width == stages[0].data.height == MINI.sample_size * 8 == MINI_SIZE
    assert stages[0].data.root.startswith("synthetic:")
    assert [c.data.num_frames for c in stages] == [1, 1, 1, 16]
    assert stages[1].model.trainable == stages[2].model.trainable  # 1b continues what stage 1 trains
    assert stages[1].model.controlnet_conditioning_channels == list(MINI.controlnet_embedding)
    # stage 1 re-initialises the denoiser wider than random:mini's; the later stages keep its widths
    assert [c.model.unet_channels for c in stages] == [[], [64, 64, 64, 64], [], []]
    assert stages[-1].model.trainable == ["unet.*motion_modules.*"]  # the paper's stage 2: motion modules only
    assert stages[-1].data.frame_threshold == stages[-1].data.image_threshold == 0  # stills carry no gradient
    assert all(c.mixed_precision == "no" and c.data.num_workers == 0 for c in stages)  # CPU settings


def test_mini_time_budgets_add_up_to_three_hours():
    budgets = [c.time_budget_seconds() for c in mini_configs()]
    assert all(b is not None for b in budgets), "every stage needs a hard time cap"
    assert sum(budgets) <= BUDGET_SECONDS - 10 * 60  # ten minutes for data, start-ups, exports, packing


def test_mini_size_fits_the_weight_budget():
    # the shipped architecture: stage 0's random:mini with the denoiser widths stage 1 re-initialises
    shipped_size = dataclasses.replace(MINI, unet_channels=tuple(mini_configs()[1].model.unet_channels))
    with torch.device("meta"):
        models = random_models(shipped_size, vocab_size=514)
    shipped = {
        "unet": sum(t.numel() for t in models["unet"].state_dict().values()),  # spatial + motion modules
        "appearance_encoder": sum(t.numel() for k, t in models["appearance_encoder"].state_dict().items()
                                  if k not in TRUNCATED_KEYS),
        **{k: sum(t.numel() for t in models[k].state_dict().values()) for k in ("controlnet", "vae", "text_encoder")},
    }
    total = sum(shipped.values())
    assert 2 * total <= BUDGET_BYTES, f"{total / 1e6:.1f} M parameters: {2 * total / 1e6:.1f} MB in float16"
    assert total > 5_000_000  # not the tiny fixture by mistake
    assert models["unet"].config.block_out_channels == shipped_size.unet_channels
    assert len(MINI.vae_channels) == 4  # the VAE downsamples 8x, as the pipeline assumes


def test_makefile_runs_every_stage_in_order_resumably():
    out = subprocess.run(["make", "-n", "mini-model", "PY=python", "MINI_RUNS=somewhere"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.replace("\\\n", " ")
    lines = [line for line in out.splitlines() if "magicanimate" in line]
    stages = [line.split("--stage ")[1].split()[0] for line in lines if "--stage" in line]
    assert stages == ["0", "1", "1", "2"]
    assert [line.split("--output ")[1].split()[0] for line in lines if "--stage" in line] == [
        "somewhere/stage0", "somewhere/stage1", "somewhere/stage1b", "somewhere/stage2"]
    assert all("--resume" in line for line in lines if "--stage" in line)
    # stages 1 to 2 share one table of the frozen VAE's latents
    assert [("data.latent_cache_dir=somewhere/latents" in line) for line in lines if "--stage" in line] == [
        False, True, True, True]
    # the last stage's export is shipped: the whole model, motion modules trained
    assert "pack-weights somewhere/stage2/weights" in out and "check-weights" in lines[-1]
    assert "install" not in out.split("\n")[0]  # PY given: no venv is built
    assert all(f"PYTHONPATH={REPO}/src" in line for line in lines)  # this checkout's code, whichever venv


# ---------------------------------------------------------------------------------------
# Stage 0: the VAE
# ---------------------------------------------------------------------------------------


def test_fold_latent_scale_keeps_reconstructions_and_scales_latents():
    torch.manual_seed(0)
    vae = random_models(TINY, vocab_size=514)["vae"].eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        before = vae.encode(x).latent_dist
        decoded = vae.decode(before.mean).sample
        fold_latent_scale(vae, 5.0)
        after = vae.encode(x).latent_dist
        torch.testing.assert_close(after.mean, 5.0 * before.mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(after.std, 5.0 * before.std, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(vae.decode(after.mean).sample, decoded, rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def stage0_run(tmp_path_factory):
    """Two steps of stage 0 on tiny sizes, from random weights, then a resume that only re-exports."""
    root = tmp_path_factory.mktemp("mini")
    values = {
        "stage": 0, "output": str(root / "stage0"), "max_steps": 2, "batch_size": 2, "checkpoint_every": 1,
        "fixed_batch_every": 1, "fixed_batch_size": 2, "model.pretrained": "random:tiny",
        "data.root": "synthetic:train=2,heldout=1,frames=4,size=64", "data.width": 64, "data.height": 64,
        "data.num_frames": 1, "data.num_workers": 0, "optim.learning_rate": 1e-3,
        "autoencoder.scale_samples": 8, "validation.every": 2,
    }
    mp = pytest.MonkeyPatch()
    mp.setenv("MAGICANIMATE_SYNTHETIC_CACHE", str(root / "data"))
    try:
        first = train(load_config(None, values))
        again = train(load_config(None, values), resume="latest")
        items, _ = load_items(load_config(None, values).data, "train")
    finally:
        mp.undo()
    return root / "stage0", first, again, items


def test_stage0_trains_and_exports_a_loadable_vae(stage0_run):
    out, first, again, items = stage0_run
    assert first.steps == 2 and first.stopped == "max_steps" and np.isfinite(first.final_loss)
    weights = WeightPaths.release_layout(out / "weights")
    assert all(status == "ok" for _, status, _ in verify_components(weights))
    assert not (out / "weights" / "sd-vae-ft-mse").is_symlink()  # written, the rest linked
    trained, initial = build_vae(weights.vae), build_vae(WeightPaths.release_layout(out / "random_init").vae)
    assert any(not torch.equal(a, b) for a, b in zip(trained.state_dict().values(), initial.state_dict().values()))
    assert (out / "samples" / "step_000002.png").is_file()
    # The latent spread is folded in: VAE_SCALE x latents of training frames is near unit variance
    # (the random VAE's is about 0.05).
    frames = np.load(items[0].source)[:4]  # (4, 64, 64, 3) uint8
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        std = (trained.encode(x).latent_dist.mean * VAE_SCALE).std().item()
    assert 0.4 < std < 2.5, std


def test_stage0_resume_after_the_end_only_re_exports(stage0_run):
    out, first, again, _ = stage0_run
    assert again.start_step == 2 and again.steps == 0
    assert again.weights == first.weights and (out / "weights" / "sd-vae-ft-mse").is_dir()


def test_stage0_refuses_clips():
    with pytest.raises(Exception, match="single frames"):
        load_config(None, {"stage": 0, "data.num_frames": 16}).check()


# ---------------------------------------------------------------------------------------
# Stage 1 from scratch and packing
# ---------------------------------------------------------------------------------------


def test_stage1_never_trains_the_bypassed_motion_modules():
    from magicanimate.training.model import TrainingModel

    models = random_models(TINY, vocab_size=514)
    net = TrainingModel(models["unet"], models["controlnet"], models["appearance_encoder"], use_motion_modules=False)
    chosen = net.select_trainable(["unet.*", "appearance_encoder.*", "controlnet.*"])
    assert chosen and not any("motion_modules" in name for name in chosen)
    assert any(name.startswith("unet.down_blocks") for name in chosen)


def test_pack_weights_is_compact_self_contained_and_loads(stage0_run, tmp_path):
    out = stage0_run[0]
    packed = tmp_path / "packed"
    pack_weights(out / "weights", packed, dtype=torch.float16)
    assert not [p for p in packed.rglob("*") if p.is_symlink()]
    assert all(status == "ok" for _, status, _ in verify_components(WeightPaths.release_layout(packed)))
    ckpt = torch.load(packed / "MagicAnimate" / "temporal_attention" / "temporal_attention.ckpt")
    assert ckpt and all("motion_modules" in k and v.dtype == torch.float16 for k, v in ckpt.items())
    assert folder_bytes(packed) < 0.6 * folder_bytes(out / "weights")  # float16, no duplicated UNet
    shutil.rmtree(packed)


def test_time_budget_durations_parse():
    assert parse_duration("25m") == 1500 and parse_duration("1h40m") == 6000


def test_pack_weights_command(stage0_run, tmp_path, capsys):
    from magicanimate.cli.main import main

    assert main(["pack-weights", str(stage0_run[0] / "weights"), str(tmp_path / "packed"), "--dtype", "float32"]) == 0
    assert "MB (float32)" in capsys.readouterr().out
    assert main(["check-weights", str(tmp_path / "packed")]) == 0
    assert main(["pack-weights", str(tmp_path / "missing"), str(tmp_path / "other")]) == 1


def test_stage0_foreground_weights_count_the_person_and_its_outline():
    control = np.empty((1, 1, 4, 5, 3), np.uint8)  # (b, f, H, W, 3)
    control[...] = background_color()
    control[0, 0, 1, 1] = part_colors()[1]  # one pixel of the person
    batch = {"reference": torch.zeros(1, 4, 5, 3, dtype=torch.uint8),
             "target": torch.zeros(1, 1, 4, 5, 3, dtype=torch.uint8), "control": torch.from_numpy(control)}
    weights = pixel_weights(batch, 4.0)
    expected_target = torch.ones(4, 5)
    expected_target[0:3, 0:3] = 5.0  # the pixel and its 8 neighbours count 1 + 4
    assert weights.shape == (2, 1, 4, 5)
    torch.testing.assert_close(weights[0, 0], torch.ones(4, 5))  # the reference has no DensePose
    torch.testing.assert_close(weights[1, 0], expected_target)


def test_weighted_mean_by_hand():
    values = torch.tensor([[[[1.0, 3.0]], [[5.0, 7.0]]]])  # (1, 2, 1, 2)
    weights = torch.tensor([[[[1.0, 3.0]]]])  # (1, 1, 1, 2)
    # channel 0: (1 + 9) / 4 = 2.5; channel 1: (5 + 21) / 4 = 6.5; mean 4.5
    assert weighted_mean(values, weights).item() == pytest.approx(4.5)


def test_stage0_trains_with_foreground_weight_and_crop(tmp_path, monkeypatch):
    monkeypatch.setenv("MAGICANIMATE_SYNTHETIC_CACHE", str(tmp_path / "data"))
    run = train(load_config(None, {
        "stage": 0, "output": str(tmp_path / "stage0"), "max_steps": 1, "batch_size": 2, "checkpoint_every": 1,
        "fixed_batch_every": 1, "fixed_batch_size": 2, "model.pretrained": "random:tiny",
        "data.root": "synthetic:train=2,heldout=1,frames=4,size=64", "data.width": 64, "data.height": 64,
        "data.num_frames": 1, "data.num_workers": 0, "autoencoder.foreground_weight": 4.0,
        "autoencoder.crop": 32, "autoencoder.scale_samples": 2, "validation.every": 0}))
    assert run.steps == 1 and np.isfinite(run.final_loss)
    with pytest.raises(Exception, match="foreground_weight"):
        load_config(None, {"stage": 0, "autoencoder.foreground_weight": -1}).check()
