"""The SD 1.5 VAE's latent convention, shared by sampling, training and the tools."""

from __future__ import annotations

VAE_SCALE = 0.18215  # latents = posterior * VAE_SCALE (SD 1.5's scaling_factor)
