"""Per-timestep weights of the noise-prediction loss (opt-in; the release trains unweighted).

Min-SNR-gamma (Hang et al., "Efficient Diffusion Training via Min-SNR Weighting Strategy",
ICCV 2023) for epsilon prediction: a sample noised to timestep t weighs
min(SNR(t), gamma) / SNR(t), where SNR(t) = alpha_bar(t) / (1 - alpha_bar(t)). Low-noise
timesteps, whose epsilon errors are large but matter little for the sample, are weighed
down; high-noise timesteps, which decide a frame's layout and colours, keep weight 1.
"""

from __future__ import annotations

import torch


def signal_to_noise(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """SNR(t) = alpha_bar / (1 - alpha_bar) at each of ``timesteps`` (float32, on their device)."""
    alpha_bar = alphas_cumprod.to(timesteps.device, torch.float32)[timesteps]
    return alpha_bar / (1.0 - alpha_bar)


def min_snr_weights(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor, *, gamma: float) -> torch.Tensor:
    """min(SNR(t), gamma) / SNR(t) per timestep (epsilon prediction); all ones when gamma <= 0."""
    if gamma <= 0:
        return torch.ones(timesteps.shape, device=timesteps.device)
    snr = signal_to_noise(alphas_cumprod, timesteps)
    return torch.clamp(snr, max=gamma) / snr
