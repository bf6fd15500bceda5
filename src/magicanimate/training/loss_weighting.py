"""Weights of the noise-prediction loss (opt-in; the release trains unweighted).

Per latent cell (``optim.foreground_weight``): a cell weighs 1 + w x the share of its pixels
that are the person in the target frame's DensePose, so that the background, about 85 % of a
synthetic frame, does not decide most of the gradient.

Per timestep:

Min-SNR-gamma (Hang et al., "Efficient Diffusion Training via Min-SNR Weighting Strategy",
ICCV 2023) for epsilon prediction: a sample noised to timestep t weighs
min(SNR(t), gamma) / SNR(t), where SNR(t) = alpha_bar(t) / (1 - alpha_bar(t)). Low-noise
timesteps, whose epsilon errors are large but matter little for the sample, are weighed
down; high-noise timesteps, which decide a frame's layout and colours, keep weight 1.

Truncated SNR (Salimans and Ho, "Progressive Distillation for Fast Sampling of Diffusion
Models", ICLR 2022), capped: a sample weighs min(max(1, 1 / SNR(t)), cap). Uncapped, it is
the loss on the predicted clean latent where noise dominates (SNR < 1) and the noise loss
elsewhere. With the epsilon loss alone a timestep near 1000 weighs about 1/600 of what its
clean-latent error means for the sample (the release's linear betas: SNR(999) = 0.0016), so the network learns little about drawing a frame
from its conditions (the reference and the DensePose); this weighs those timesteps up.
The two weightings multiply.

Both are defined on the epsilon loss. A v-predicting denoiser's loss is the epsilon loss
divided by alpha_bar(t) (the velocity error is the noise error over sqrt(alpha_bar)), so
its weights are multiplied by alpha_bar(t) (``epsilon_loss_scale``): Min-SNR then reads
min(SNR, gamma) / (SNR + 1), the paper's form for v-prediction.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from magicanimate.io.densepose_colors import person_mask


def signal_to_noise(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """SNR(t) = alpha_bar / (1 - alpha_bar) at each of ``timesteps`` (float32, on their device)."""
    alpha_bar = alphas_cumprod.to(timesteps.device, torch.float32)[timesteps]
    return alpha_bar / (1.0 - alpha_bar)


def epsilon_loss_scale(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor, *,
                       prediction_type: str) -> torch.Tensor:
    """What turns a sample's loss in ``prediction_type`` into its epsilon loss: 1, or alpha_bar(t) for v."""
    if prediction_type == "epsilon":
        return torch.ones(timesteps.shape, device=timesteps.device)
    if prediction_type == "v_prediction":
        return alphas_cumprod.to(timesteps.device, torch.float32)[timesteps]
    raise ValueError(f"unknown prediction type {prediction_type!r}")


def min_snr_weights(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor, *, gamma: float) -> torch.Tensor:
    """min(SNR(t), gamma) / SNR(t) per timestep (epsilon prediction); all ones when gamma <= 0."""
    if gamma <= 0:
        return torch.ones(timesteps.shape, device=timesteps.device)
    snr = signal_to_noise(alphas_cumprod, timesteps)
    return torch.clamp(snr, max=gamma) / snr


def high_noise_weights(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor, *, cap: float) -> torch.Tensor:
    """min(max(1, 1 / SNR(t)), cap) per timestep; all ones when cap <= 1."""
    if cap <= 1:
        return torch.ones(timesteps.shape, device=timesteps.device)
    snr = signal_to_noise(alphas_cumprod, timesteps)
    return torch.clamp(1.0 / snr, min=1.0, max=cap)


def person_cell_weights(control: torch.Tensor, *, foreground_weight: float, downsampling: int) -> torch.Tensor:
    """Loss weight per latent cell, (b, 1, f, h, w): 1 + ``foreground_weight`` x the cell's person share.

    ``control`` is the uint8 DensePose batch (b, f, H, W, 3); the person is every pixel that is
    not the DensePose background; a cell covers ``downsampling`` x ``downsampling`` pixels.
    """
    b, f = control.shape[:2]
    mask = torch.from_numpy(person_mask(np.asarray(control)).astype(np.float32))  # (b, f, H, W)
    share = F.avg_pool2d(mask.flatten(0, 1)[:, None], kernel_size=downsampling)  # (b f, 1, h, w)
    share = share.reshape(b, f, *share.shape[2:])[:, None]  # (b, 1, f, h, w)
    return 1.0 + foreground_weight * share


def weighted_sample_means(errors: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-sample weighted mean of ``errors`` (b, c, f, h, w) with ``weights`` (b, 1, f, h, w) shared by channels: (b,)."""
    totals = (errors * weights).sum(dim=(1, 2, 3, 4))
    return totals / (weights.sum(dim=(1, 2, 3, 4)) * errors.shape[1])
