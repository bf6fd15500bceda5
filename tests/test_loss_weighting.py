"""Loss weighting (opt-in ``optim.snr_gamma``, ``optim.high_noise_cap``, ``optim.foreground_weight``): hand-worked values."""

from types import SimpleNamespace

import numpy as np

import pytest
import torch

from magicanimate.errors import InputError
from magicanimate.training.config import TrainConfig
from magicanimate.io.densepose_colors import background_color, part_colors
from magicanimate.training.loss_weighting import (epsilon_loss_scale, high_noise_weights, min_snr_weights,
                                                  person_cell_weights, signal_to_noise)
from magicanimate.training.trainer import Trainer


def test_weights_are_min_snr_gamma_over_snr():
    alphas_cumprod = torch.tensor([0.9, 0.5, 0.1])  # SNR 9, 1, 1/9
    t = torch.tensor([0, 1, 2, 0])
    torch.testing.assert_close(signal_to_noise(alphas_cumprod, t), torch.tensor([9.0, 1.0, 1 / 9, 9.0]))
    torch.testing.assert_close(min_snr_weights(alphas_cumprod, t, gamma=5.0), torch.tensor([5 / 9, 1.0, 1.0, 5 / 9]))
    torch.testing.assert_close(min_snr_weights(alphas_cumprod, t, gamma=0.0), torch.ones(4))


def test_the_training_loss_weighs_each_sample_by_its_timestep():
    class Echo(torch.nn.Module):  # "predicts" the given tensor, so the error per sample is known
        def forward(self, *, pred, timesteps):
            return pred

    noise = torch.zeros(2, 4, 3, 2, 2)
    pred = torch.stack([torch.full((4, 3, 2, 2), 1.0), torch.full((4, 3, 2, 2), 2.0)])  # MSE 1 and 4
    inputs = {"pred": pred, "timesteps": torch.tensor([0, 2]), "target": noise}
    stub = SimpleNamespace(cfg=SimpleNamespace(optim=SimpleNamespace(snr_gamma=5.0, high_noise_cap=0.0)),
                           noise_scheduler=SimpleNamespace(alphas_cumprod=torch.tensor([0.9, 0.5, 0.1])),
                           prediction_type="epsilon")
    weighted = Trainer._loss(stub, Echo(), dict(inputs))
    assert float(weighted) == pytest.approx((1 * 5 / 9 + 4 * 1.0) / 2)
    stub.cfg.optim.snr_gamma = 0.0
    assert float(Trainer._loss(stub, Echo(), dict(inputs))) == pytest.approx((1 + 4) / 2)  # the release's


def test_min_snr_on_a_v_predicting_denoiser_is_min_snr_gamma_over_snr_plus_one():
    # Hang et al. 2023, the v-prediction form: min(SNR, gamma) / (SNR + 1).
    alphas_cumprod = torch.tensor([0.9, 0.5, 0.1])  # SNR 9, 1, 1/9
    t = torch.tensor([0, 1, 2])
    scale = epsilon_loss_scale(alphas_cumprod, t, prediction_type="v_prediction")
    torch.testing.assert_close(min_snr_weights(alphas_cumprod, t, gamma=5.0) * scale,
                               torch.tensor([5 / 10, 1 / 2, (1 / 9) / (10 / 9)]))
    torch.testing.assert_close(epsilon_loss_scale(alphas_cumprod, t, prediction_type="epsilon"), torch.ones(3))


def test_a_weighted_v_loss_is_the_weighted_epsilon_loss():
    # The same network output scored as a velocity: its Min-SNR loss equals the epsilon form's.
    alphas_cumprod = torch.tensor([0.9, 0.5, 0.1])
    t = torch.tensor([0, 2])
    alpha, sigma = alphas_cumprod[t].sqrt(), (1 - alphas_cumprod[t]).sqrt()
    g = torch.Generator().manual_seed(0)
    clean, noise = torch.randn(2, 4, 1, 2, 2, generator=g), torch.randn(2, 4, 1, 2, 2, generator=g)
    eps_guess = noise + 0.3 * torch.randn(2, 4, 1, 2, 2, generator=g)
    shape = (2, 1, 1, 1, 1)
    noisy = alpha.view(shape) * clean + sigma.view(shape) * noise
    clean_guess = (noisy - sigma.view(shape) * eps_guess) / alpha.view(shape)  # the same prediction
    velocity = alpha.view(shape) * noise - sigma.view(shape) * clean
    velocity_guess = alpha.view(shape) * eps_guess - sigma.view(shape) * clean_guess

    class Echo(torch.nn.Module):
        def forward(self, *, pred, timesteps):
            return pred

    def loss(prediction_type, pred, target):
        stub = SimpleNamespace(cfg=SimpleNamespace(optim=SimpleNamespace(snr_gamma=5.0, high_noise_cap=0.0)),
                               noise_scheduler=SimpleNamespace(alphas_cumprod=alphas_cumprod),
                               prediction_type=prediction_type)
        return float(Trainer._loss(stub, Echo(), {"pred": pred, "timesteps": t, "target": target}))

    assert loss("v_prediction", velocity_guess, velocity) == pytest.approx(loss("epsilon", eps_guess, noise), rel=1e-5)


def test_high_noise_weights_are_one_over_snr_between_one_and_the_cap():
    alphas_cumprod = torch.tensor([0.9, 0.5, 0.2, 0.01])  # SNR 9, 1, 1/4, 1/99
    t = torch.tensor([0, 1, 2, 3])
    torch.testing.assert_close(high_noise_weights(alphas_cumprod, t, cap=50.0), torch.tensor([1.0, 1.0, 4.0, 50.0]))
    torch.testing.assert_close(high_noise_weights(alphas_cumprod, t, cap=200.0), torch.tensor([1.0, 1.0, 4.0, 99.0]))
    torch.testing.assert_close(high_noise_weights(alphas_cumprod, t, cap=0.0), torch.ones(4))


def test_the_two_timestep_weightings_multiply_in_the_training_loss():
    class Echo(torch.nn.Module):
        def forward(self, *, pred, timesteps):
            return pred

    noise = torch.zeros(3, 4, 1, 2, 2)
    pred = torch.stack([torch.full((4, 1, 2, 2), v) for v in (1.0, 2.0, 1.0)])  # MSE 1, 4, 1
    inputs = {"pred": pred, "timesteps": torch.tensor([0, 2, 3]), "target": noise}  # SNR 9, 1/4, 1/99
    stub = SimpleNamespace(cfg=SimpleNamespace(optim=SimpleNamespace(snr_gamma=0.0, high_noise_cap=10.0)),
                           noise_scheduler=SimpleNamespace(alphas_cumprod=torch.tensor([0.9, 0.5, 0.2, 0.01])),
                           prediction_type="epsilon")
    assert float(Trainer._loss(stub, Echo(), dict(inputs))) == pytest.approx((1 + 4 * 4 + 1 * 10) / 3)
    stub.cfg.optim.snr_gamma = 5.0  # also 5/9 on the first sample
    assert float(Trainer._loss(stub, Echo(), dict(inputs))) == pytest.approx((5 / 9 + 4 * 4 + 1 * 10) / 3)


def test_a_negative_or_nan_high_noise_cap_is_refused():
    for bad in (-1.0, float("nan")):
        cfg = TrainConfig()
        cfg.optim.high_noise_cap = bad
        with pytest.raises(InputError, match="high_noise_cap"):
            cfg.check()


def test_a_negative_gamma_is_refused():
    cfg = TrainConfig()
    cfg.optim.snr_gamma = -1.0
    with pytest.raises(InputError, match="snr_gamma"):
        cfg.check()


def _densepose(person: np.ndarray) -> torch.Tensor:
    """A uint8 DensePose render (1, 1, H, W, 3): part 1's colour where ``person`` (H, W) is true, else background."""
    frame = np.empty((*person.shape, 3), np.uint8)
    frame[:] = background_color()
    frame[person] = part_colors()[1]
    return torch.from_numpy(frame)[None, None]


def test_a_latent_cell_weighs_one_plus_w_times_its_person_share():
    person = np.zeros((16, 16), bool)
    person[0:8, 0:12] = True  # cell (0, 0) all person, cell (0, 1) half, the bottom row none
    weights = person_cell_weights(_densepose(person), foreground_weight=4.0, downsampling=8)
    assert weights.shape == (1, 1, 1, 2, 2)
    torch.testing.assert_close(weights[0, 0, 0], torch.tensor([[5.0, 3.0], [1.0, 1.0]]))


def test_the_training_loss_weighs_each_latent_cell():
    class Echo(torch.nn.Module):
        def forward(self, *, pred, timesteps):
            return pred

    pred = torch.zeros(1, 4, 1, 2, 2)
    pred[0, :, 0, 1, 1] = 2.0  # squared error 4 in the bottom-right cell only, over its 4 channels
    person = np.zeros((16, 16), bool)
    person[8:16, 8:16] = True  # that cell is all person
    cell_weights = person_cell_weights(_densepose(person), foreground_weight=3.0, downsampling=8)
    inputs = {"pred": pred, "timesteps": torch.tensor([0]), "target": torch.zeros_like(pred), "cell_weights": cell_weights}
    stub = SimpleNamespace(cfg=SimpleNamespace(optim=SimpleNamespace(snr_gamma=0.0, high_noise_cap=0.0)), noise_scheduler=None)
    # weights 1, 1, 1, 4: (4 x 4) / (1 + 1 + 1 + 4) per channel, the same in each of the 4 channels
    assert float(Trainer._loss(stub, Echo(), dict(inputs))) == pytest.approx(16 / 7)
    inputs["cell_weights"] = None  # uniform, as the release: 4 / 4 cells
    assert float(Trainer._loss(stub, Echo(), dict(inputs))) == pytest.approx(1.0)


def test_a_negative_foreground_weight_is_refused():
    cfg = TrainConfig()
    cfg.optim.foreground_weight = -1.0
    with pytest.raises(InputError, match="foreground_weight"):
        cfg.check()
