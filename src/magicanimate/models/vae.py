"""The SD 1.5 VAE's latent convention, shared by sampling, training and the tools."""

from __future__ import annotations

import math

import torch
from torch import nn

VAE_SCALE = 0.18215  # latents = posterior * VAE_SCALE (SD 1.5's scaling_factor)


def fold_latent_scale(vae: nn.Module, factor: float) -> None:
    """Rescale a VAE's latent space by ``factor`` in place, leaving decode(encode(x)) unchanged.

    A VAE trained from scratch has latents of any spread, while sampling and training use
    the fixed ``VAE_SCALE``. Folding ``factor`` into ``quant_conv`` (posterior mean x factor,
    log-variance + 2 ln factor) and its inverse into ``post_quant_conv`` makes
    ``VAE_SCALE x latents`` unit-variance without changing any image the VAE produces.
    """
    latent = vae.config.latent_channels
    with torch.no_grad():
        quant, post = vae.quant_conv, vae.post_quant_conv
        quant.weight[:latent] *= factor  # (2 latent, 2 latent, 1, 1): mean rows first, then log-variance
        quant.bias[:latent] *= factor
        quant.bias[latent:] += 2.0 * math.log(factor)
        post.weight[:, :latent] /= factor  # (latent, latent, 1, 1): input channels are the latents


def latent_downsampling(vae: nn.Module) -> int:
    """Pixels per latent along each side: 2 per encoder block after the first (SD 1.5's VAE: 8)."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def latent_shape(vae: nn.Module, height: int, width: int) -> tuple[int, int, int]:
    """(channels, h, w) of the latents of an ``height`` x ``width`` image (SD 1.5's VAE: 4, H/8, W/8)."""
    factor = latent_downsampling(vae)
    return vae.config.latent_channels, height // factor, width // factor
