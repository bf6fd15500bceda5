"""Min-SNR-gamma loss weighting (opt-in ``optim.snr_gamma``): hand-worked values."""

from types import SimpleNamespace

import pytest
import torch

from magicanimate.errors import InputError
from magicanimate.training.config import TrainConfig
from magicanimate.training.loss_weighting import min_snr_weights, signal_to_noise
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
    inputs = {"pred": pred, "timesteps": torch.tensor([0, 2]), "noise": noise}
    stub = SimpleNamespace(cfg=SimpleNamespace(optim=SimpleNamespace(snr_gamma=5.0)),
                           noise_scheduler=SimpleNamespace(alphas_cumprod=torch.tensor([0.9, 0.5, 0.1])))
    weighted = Trainer._loss(stub, Echo(), dict(inputs))
    assert float(weighted) == pytest.approx((1 * 5 / 9 + 4 * 1.0) / 2)
    stub.cfg.optim.snr_gamma = 0.0
    assert float(Trainer._loss(stub, Echo(), dict(inputs))) == pytest.approx((1 + 4) / 2)  # the release's


def test_a_negative_gamma_is_refused():
    cfg = TrainConfig()
    cfg.optim.snr_gamma = -1.0
    with pytest.raises(InputError, match="snr_gamma"):
        cfg.check()
