"""v-prediction (opt-in ``model.prediction_type``): declared by the weights, honoured by sampling and training.

The release's weights declare nothing and predict the noise; weights trained with
v-prediction say so in ``stable-diffusion-v1-5/scheduler/scheduler_config.json``.
"""

from __future__ import annotations

import json

import pytest
import torch

from conftest import TINY_WEIGHTS, require
from magicanimate.errors import InputError, WeightsError
from magicanimate.sampling.pipeline import MagicAnimate
from magicanimate.sampling.schedulers import make_scheduler
from magicanimate.training import load_config, train
from magicanimate.training.synthetic import make_synthetic_dataset
from magicanimate.training.trainer import Trainer
from magicanimate.weights.build import read_prediction_type, verify_components
from magicanimate.weights.layout import WeightPaths
from magicanimate.weights.pack import pack_weights


def _declaring(tmp_path, text: str) -> WeightPaths:
    paths = WeightPaths.release_layout(tmp_path)
    paths.scheduler_config.parent.mkdir(parents=True)
    paths.scheduler_config.write_text(text)
    return paths


def test_weights_without_a_scheduler_config_predict_the_noise(tmp_path):
    assert read_prediction_type(WeightPaths.release_layout(tmp_path)) == "epsilon"
    assert read_prediction_type(_declaring(tmp_path, "{}")) == "epsilon"  # SD 1.5's config names none


def test_the_released_sd15_scheduler_config_means_epsilon():
    """SD 1.5's own scheduler config (kept in the release-made tiny weights) names no prediction type."""
    paths = WeightPaths.release_layout(require(TINY_WEIGHTS))
    assert json.loads(paths.scheduler_config.read_text())["_class_name"] == "PNDMScheduler"
    assert read_prediction_type(paths) == "epsilon"


def test_a_declared_v_prediction_is_read(tmp_path):
    paths = _declaring(tmp_path, json.dumps({"_class_name": "PNDMScheduler", "prediction_type": "v_prediction"}))
    assert read_prediction_type(paths) == "v_prediction"


@pytest.mark.parametrize("text, message", [
    ("{not json", "not a readable JSON"),
    (json.dumps({"prediction_type": "sample"}), "'sample' is not supported"),
    (json.dumps(["v_prediction"]), "is not supported"),
])
def test_a_bad_scheduler_config_is_one_clear_error(tmp_path, text, message):
    with pytest.raises(WeightsError, match=message):
        read_prediction_type(_declaring(tmp_path, text))


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_ddim_with_an_oracle_denoiser_returns_the_clean_latent(prediction_type):
    """A denoiser that knows the clean latent x0 and answers in the scheduler's parametrisation."""
    torch.manual_seed(0)
    x0 = torch.randn(1, 4, 2, 3, 3)
    scheduler = make_scheduler("ddim", prediction_type=prediction_type)
    scheduler.set_timesteps(10)
    latents = torch.randn_like(x0)
    alphas_cumprod = scheduler.alphas_cumprod
    for t in scheduler.timesteps:
        a, s = alphas_cumprod[t].sqrt(), (1 - alphas_cumprod[t]).sqrt()
        eps = (latents - a * x0) / s  # the noise that latents holds over x0
        answer = eps if prediction_type == "epsilon" else a * eps - s * x0  # Salimans and Ho's velocity
        latents = scheduler.step(answer, t, latents, eta=0.0).prev_sample
    torch.testing.assert_close(latents, x0, atol=1e-4, rtol=1e-4)


def test_an_unknown_prediction_type_is_refused():
    with pytest.raises(ValueError, match="unknown prediction type"):
        make_scheduler("ddim", prediction_type="sample")
    cfg = load_config(None, {"model.prediction_type": "sample"})
    with pytest.raises(InputError, match="prediction_type"):
        cfg.check()


@pytest.mark.slow
def test_training_with_v_prediction_declares_it_and_the_next_stage_inherits_it(tmp_path, one_torch_thread):
    data = make_synthetic_dataset(tmp_path / "data", clips=2, frames=8, images=0)
    tiny = require(TINY_WEIGHTS)

    def config(output, pretrained, **extra):
        values = {"stage": 1, "output": str(output), "seed": 1, "batch_size": 2, "max_steps": 2,
                  "checkpoint_every": 2, "fixed_batch_every": 0, "model.pretrained": str(pretrained),
                  "model.appearance_encoder": "release", "model.controlnet": "release",
                  "model.motion_modules": "release", "data.root": str(data), "data.width": 64, "data.height": 64,
                  "data.num_frames": 1, "data.num_workers": 0, "optim.learning_rate": 1e-4}
        return load_config(None, {**values, **extra})

    starting_config = WeightPaths.release_layout(tiny).scheduler_config.read_bytes()
    train(config(tmp_path / "v", tiny, **{"model.prediction_type": "v_prediction"}))
    exported = WeightPaths.release_layout(tmp_path / "v" / "weights")
    assert read_prediction_type(exported) == "v_prediction"
    assert WeightPaths.release_layout(tiny).scheduler_config.read_bytes() == starting_config  # untouched
    assert ("prediction type", "ok") in {row[:2] for row in verify_components(exported)}
    model = MagicAnimate.from_pretrained(tmp_path / "v" / "weights", device="cpu", dtype=torch.float32)
    assert model.components.prediction_type == "v_prediction"
    assert read_prediction_type(pack_weights(tmp_path / "v" / "weights", tmp_path / "packed")) == "v_prediction"

    # The next stage, with the default '' (as the starting weights), trains v-prediction too.
    inherited = Trainer(config(tmp_path / "next", tmp_path / "v" / "weights"))
    assert inherited.prediction_type == "v_prediction"
    assert inherited.noise_scheduler.config.prediction_type == "v_prediction"
    plain = Trainer(config(tmp_path / "plain", tiny))
    assert plain.prediction_type == "epsilon"
