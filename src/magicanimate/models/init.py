"""Initialisation of fresh layers, one function per model: used by training and by the random-weight builders."""

from __future__ import annotations

import torch
from torch import nn

from magicanimate.models.unet3d import TemporalUNet

CONTROLNET_ZERO_LAYERS = ("controlnet_down_blocks", "controlnet_mid_block", "controlnet_cond_embedding.conv_out")


def init_motion_modules_as_identity(unet: TemporalUNet) -> None:
    """AnimateDiff's zero_initialize: every temporal transformer's output projection starts at zero,
    so fresh motion modules pass their input through unchanged."""
    for name, module in unet.named_modules():
        if name.endswith("temporal_transformer"):
            nn.init.zeros_(module.proj_out.weight)
            nn.init.zeros_(module.proj_out.bias)


def init_controlnet_zero_layers_randomly(controlnet: nn.Module, generator: torch.Generator, *,
                                         scale: float = 0.05) -> None:
    """Give the ControlNet's zero-initialised output convolutions small random values (N(0, scale²)),
    so that in an untrained random model the motion input changes the result."""
    with torch.no_grad():
        for name, param in controlnet.named_parameters():
            if name.startswith(CONTROLNET_ZERO_LAYERS):
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
