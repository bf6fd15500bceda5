"""The latent table (``data.latent_cache``): the VAE posteriors of every training frame, stored once.

Checked against diffusers' ``AutoencoderKL.encode`` of the frames and of their mirror
images (flipped here with numpy), and against training without the table: the same
losses step by step, since only where the posterior comes from changes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL

from conftest import TINY_WEIGHTS, require
from magicanimate.errors import InputError
from magicanimate.io.image import load_image
from magicanimate.io.video import read_motion
from magicanimate.training import load_config, train
from magicanimate.training.data import load_items
from magicanimate.training.latent_cache import build_latent_table
from magicanimate.training.logger import TrainingLog
from magicanimate.training.synthetic import make_synthetic_dataset

pytestmark = [pytest.mark.filterwarnings("ignore::FutureWarning")]


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test here runs on one torch thread (see conftest)."""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    # clip000.mp4 (a video file), clip001/ (a frame folder), two still images
    return make_synthetic_dataset(tmp_path_factory.mktemp("data"), clips=2, frames=6, images=2)


@pytest.fixture(scope="module")
def vae():
    return AutoencoderKL.from_pretrained(require(TINY_WEIGHTS) / "sd-vae-ft-mse").eval()


def config(dataset, output, **overrides):
    values = {
        "stage": 1, "output": str(output), "seed": 5, "batch_size": 3, "max_steps": 4, "log_every": 1,
        "checkpoint_every": 100, "fixed_batch_every": 0,
        "model.pretrained": str(require(TINY_WEIGHTS)), "model.appearance_encoder": "release",
        "model.controlnet": "release", "model.motion_modules": "release",
        "data.root": str(dataset), "data.width": 64, "data.height": 64, "data.num_frames": 1,
        "data.num_workers": 0, "data.image_threshold": 0.3, "data.hflip_prob": 0.5,
        "optim.learning_rate": 1e-3,
    }
    values.update(overrides)
    return load_config(None, values)


def build(vae, dataset, folder, *, width=64, height=64):
    items, _ = load_items(config(dataset, folder).data, "train")
    table = build_latent_table(vae, items, folder=folder, width=width, height=height, chunk=4,
                               device=torch.device("cpu"), dtype=torch.float32)
    return items, table


def test_rows_hold_the_vae_posteriors_of_each_frame_and_its_mirror_image(vae, dataset, tmp_path):
    items, table = build(vae, dataset, tmp_path)
    assert table.table.shape == (6 + 6 + 1 + 1, 2, 2, 4, 8, 8)
    for item in items:
        frames = (load_image(item.source)[None] if item.kind == "image"
                  else read_motion(item.source).frames)  # (F, 64, 64, 3) uint8
        row = table.first_row[item.source]
        for mirrored, pixels in ((0, frames), (1, np.ascontiguousarray(frames[:, :, ::-1]))):
            x = torch.tensor(pixels).permute(0, 3, 1, 2).float() / 127.5 - 1
            with torch.no_grad():
                posterior = vae.encode(x).latent_dist
            stored = torch.from_numpy(np.array(table.table[row:row + len(frames), mirrored]))
            torch.testing.assert_close(stored[:, 0], posterior.mean, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(stored[:, 1], posterior.std, atol=1e-5, rtol=1e-4)
    # posterior() picks rows and sides: row 0's mirror image and the last row as stored
    mean, std = table.posterior(torch.tensor([[0, len(table.table) - 1]]), torch.tensor([[True, False]]))
    assert mean.shape == std.shape == (1, 2, 4, 8, 8)
    torch.testing.assert_close(mean[0, 0], torch.from_numpy(np.array(table.table[0, 1, 0])))
    torch.testing.assert_close(std[0, 1], torch.from_numpy(np.array(table.table[-1, 0, 1])))


def test_the_table_is_found_again_and_never_read_for_another_vae(vae, dataset, tmp_path):
    _, first = build(vae, dataset, tmp_path)
    stamp = first.path.stat().st_mtime_ns
    _, again = build(vae, dataset, tmp_path)
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp  # read, not encoded again
    other = AutoencoderKL.from_pretrained(TINY_WEIGHTS / "sd-vae-ft-mse").eval()
    with torch.no_grad():
        other.encoder.conv_in.bias.add_(0.1)
    _, changed = build(other, dataset, tmp_path)
    assert changed.path != first.path
    assert not np.allclose(changed.table[:, :, 0], first.table[:, :, 0])
    assert not list(tmp_path.glob(".*partial"))  # nothing half-written left behind


def test_frames_not_at_the_training_size_are_refused_in_one_line(vae, dataset, tmp_path):
    with pytest.raises(InputError, match=r"needs every frame stored at 32x32.*has 6 frames of 64x64") as err:
        build(vae, dataset, tmp_path, width=32, height=32)
    assert "\n" not in str(err.value)
    assert not list(tmp_path.glob("*.npy")) and not list(tmp_path.glob(".*partial"))


def test_stage_0_refuses_a_latent_table(dataset, tmp_path):
    cfg = config(dataset, tmp_path, stage=0, **{"data.latent_cache": True})
    with pytest.raises(InputError, match="stage 0 trains the VAE"):
        cfg.check()


@pytest.mark.slow
def test_training_on_the_table_follows_training_on_the_vae(dataset, tmp_path):
    plain = train(config(dataset, tmp_path / "plain"))
    cached = train(config(dataset, tmp_path / "cached", **{"data.latent_cache": True}))
    assert plain.steps == cached.steps == 4
    assert list((tmp_path / "cached" / "latents").glob("latents-*.npy"))
    losses = [[float(r["loss"]) for r in TrainingLog.read(run / "log.csv") if r["loss"]]
              for run in (tmp_path / "plain", tmp_path / "cached")]
    assert len(losses[0]) == 4
    np.testing.assert_allclose(losses[1][0], losses[0][0], rtol=1e-6)  # before any update: rounding only
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-3)  # later steps carry the rounding on
    # and the table is what the losses came from: a run with other draws gives other losses
    other = train(config(dataset, tmp_path / "other", seed=6, **{"data.latent_cache": True}))
    assert other.final_loss != cached.final_loss
