"""Folding the frame axis into the batch axis and back (one layout everywhere: b c f h w)."""

from __future__ import annotations

import torch
from einops import rearrange


def fold_frames(x: torch.Tensor) -> torch.Tensor:
    """(b, c, f, h, w) -> ((b f), c, h, w) so a 2-D module runs on every frame."""
    return rearrange(x, "b c f h w -> (b f) c h w")


def unfold_frames(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """((b f), c, h, w) -> (b, c, f, h, w), contiguous.

    Contiguous because the cross-frame GroupNorms read it next: eager GroupNorm would copy
    a permuted view anyway, and compiled graphs require a contiguous input there.
    """
    return rearrange(x, "(b f) c h w -> b c f h w", f=num_frames).contiguous()


def per_frame(module: torch.nn.Module, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """Apply a 2-D module to each frame of a (b, c, f, h, w) video tensor."""
    num_frames = x.shape[2]
    return unfold_frames(module(fold_frames(x), *args, **kwargs), num_frames)
