"""AnimateDiff v1 ("Vanilla") motion module: self-attention along the frame axis.

Parameter names follow the released checkpoints
(``…motion_modules.N.temporal_transformer.transformer_blocks.0.attention_blocks.K.to_q.weight``),
so ``temporal_attention.ckpt`` loads without renaming.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.models.attention import FeedForward
from einops import rearrange
from torch import nn

from magicanimate.models.frame_layout import fold_frames, unfold_frames


def sinusoidal_table(max_len: int, dim: int) -> torch.Tensor:
    """Transformer sinusoidal position table (Vaswani et al. 2017), shape (1, max_len, dim)."""
    position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(1, max_len, dim)
    table[0, :, 0::2] = torch.sin(position * frequency)
    table[0, :, 1::2] = torch.cos(position * frequency)
    return table


def frame_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Softmax attention over a few frames, (n, heads, frames, e) each.

    ``scaled_dot_product_attention``, except float32 on the CPU, where for sequences this
    short two batched matmuls are 2-3x faster than the fused kernel (same function).
    """
    if q.device.type == "cpu" and q.dtype == torch.float32 and q.shape[-2] <= 32:
        scores = torch.matmul(q, k.transpose(-1, -2)).mul_(q.shape[-1] ** -0.5)  # (n, heads, f, f)
        return torch.matmul(scores.softmax(dim=-1), v)
    return F.scaled_dot_product_attention(q, k, v)


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal encoding of the frame position to each token sequence."""

    def __init__(self, dim: int, max_len: int = 24):
        super().__init__()
        # Persistent: the released checkpoints carry this buffer (`pos_encoder.pe`).
        self.register_buffer("pe", sinusoidal_table(max_len, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, frames, dim)."""
        if x.shape[1] > self.pe.shape[1]:
            raise ValueError(
                f"a window of {x.shape[1]} frames exceeds the motion module's "
                f"position table ({self.pe.shape[1]} positions)"
            )
        return x + self.pe[:, : x.shape[1]].to(x.dtype)


class TemporalSelfAttention(nn.Module):
    """Multi-head self-attention over frames, for every spatial position independently."""

    def __init__(self, dim: int, heads: int, max_len: int = 24):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(0.0)])
        self.pos_encoder = PositionalEncoding(dim, max_len)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        """x: ((b f), tokens, c) normalised tokens -> same shape."""
        tokens = x.shape[1]
        x = rearrange(x, "(b f) d c -> (b d) f c", f=num_frames)  # sequences along frames
        x = self.pos_encoder(x)
        q, k, v = (
            rearrange(proj(x), "n f (h e) -> n h f e", h=self.heads)  # split heads
            for proj in (self.to_q, self.to_k, self.to_v)
        )
        out = frame_attention(q, k, v)
        out = rearrange(out, "n h f e -> n f (h e)")  # merge heads
        out = self.to_out[1](self.to_out[0](out))
        return rearrange(out, "(b d) f c -> (b f) d c", d=tokens)


class TemporalTransformerBlock(nn.Module):
    """Two temporal self-attention layers and a GEGLU feed-forward, each pre-normed and residual."""

    def __init__(self, dim: int, heads: int, max_len: int = 24, num_attention_layers: int = 2):
        super().__init__()
        self.attention_blocks = nn.ModuleList(
            TemporalSelfAttention(dim, heads, max_len) for _ in range(num_attention_layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(num_attention_layers))
        self.ff = FeedForward(dim, activation_fn="geglu")
        self.ff_norm = nn.LayerNorm(dim)
        self.ff_chunk_size: int | None = None  # rows per feed-forward call (memory), None = all

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        """x: ((b f), tokens, c)."""
        for attention, norm in zip(self.attention_blocks, self.norms):
            x = attention(norm(x), num_frames) + x
        h = self.ff_norm(x)
        if self.ff_chunk_size:  # same result; the GEGLU's 8x-wide hidden layer exists for a few rows at a time
            return torch.cat([self.ff(part) for part in h.split(self.ff_chunk_size)]) + x
        return self.ff(h) + x


class TemporalTransformer(nn.Module):
    """GroupNorm (per frame) -> proj_in -> temporal transformer blocks -> proj_out, plus residual."""

    def __init__(self, channels: int, heads: int = 8, num_blocks: int = 1, max_len: int = 24):
        super().__init__()
        # 32 groups regardless of the UNet's norm_num_groups, as in AnimateDiff v1.
        self.norm = nn.GroupNorm(32, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        self.transformer_blocks = nn.ModuleList(
            TemporalTransformerBlock(channels, heads, max_len) for _ in range(num_blocks)
        )
        self.proj_out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (b, c, f, h, w) -> same shape."""
        num_frames, height = x.shape[2], x.shape[3]
        residual = fold_frames(x)  # ((b f), c, h, w)
        h = rearrange(self.norm(residual), "n c h w -> n (h w) c")  # tokens per frame
        h = self.proj_in(h)
        for block in self.transformer_blocks:
            h = block(h, num_frames)
        h = self.proj_out(h)
        h = rearrange(h, "n (h w) c -> n c h w", h=height)  # back to feature maps
        return unfold_frames(h + residual, num_frames)


class MotionModule(nn.Module):
    """The motion module inserted after each resnet+attention layer of the temporal UNet."""

    def __init__(self, channels: int, heads: int = 8, num_blocks: int = 1, max_len: int = 24):
        super().__init__()
        if channels % heads:
            raise ValueError(f"{channels} channels do not split into {heads} heads")
        self.temporal_transformer = TemporalTransformer(channels, heads, num_blocks, max_len)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (b, c, f, h, w) -> same shape (the residual is inside the transformer)."""
        return self.temporal_transformer(x)
