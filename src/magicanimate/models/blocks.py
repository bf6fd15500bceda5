"""Resnet block of the temporal UNet, with the release's cross-frame GroupNorm."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from magicanimate.models.frame_layout import per_frame


class ResnetBlock3D(nn.Module):
    """SD resnet block on (b, c, f, h, w) video tensors.

    Written here instead of reusing diffusers' ``ResnetBlock2D`` because the release
    (AnimateDiff v1) applies both GroupNorms to the 5-D tensor: each group's statistics
    span all frames of the window, not one frame. The 3x3 convolutions run per frame.
    Parameter names equal SD 1.5's, so the 2-D checkpoint loads unchanged.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        temb_channels: int,
        *,
        groups: int = 32,
        eps: float = 1e-5,
        output_scale_factor: float = 1.0,
    ):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_channels, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = (
            nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None
        )
        self.output_scale_factor = output_scale_factor

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """x: (b, c_in, f, h, w), temb: (b, temb_channels) -> (b, c_out, f, h, w)."""
        h = per_frame(self.conv1, F.silu(self.norm1(x)))  # norm over (group, f, h, w)
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None, None]
        h = per_frame(self.conv2, self.dropout(F.silu(self.norm2(h))))
        shortcut = per_frame(self.conv_shortcut, x) if self.conv_shortcut is not None else x
        return (shortcut + h) / self.output_scale_factor
