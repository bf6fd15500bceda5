"""The temporal denoising UNet: SD 1.5's UNet with AnimateDiff v1 motion modules.

Layout: every block takes and returns (b, c, f, h, w). Spatial layers (convolutions, spatial
transformers, up/down samplers) run per frame; the resnets normalise across the frames of
the window (see ``ResnetBlock3D``); motion modules attend along frames.
Parameter names equal SD 1.5's UNet for the spatial part and the released
``temporal_attention.ckpt`` for the motion modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Sequence

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from diffusers.models import Transformer2DModel
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.downsampling import Downsample2D
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.upsampling import Upsample2D
from einops import repeat
from torch import nn

from magicanimate.models.frame_layout import fold_frames, per_frame, unfold_frames
from magicanimate.models.motion_module import MotionModule, TemporalTransformerBlock
from magicanimate.models.blocks import ResnetBlock3D


@dataclass(frozen=True)
class TemporalUNetConfig:
    """The SD 1.5 UNet config keys the temporal UNet uses, plus the motion-module settings."""

    in_channels: int = 4
    out_channels: int = 4
    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    down_block_types: tuple[str, ...] = (
        "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D",
    )
    up_block_types: tuple[str, ...] = (
        "UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
    )
    layers_per_block: int = 2
    attention_head_dim: int | tuple[int, ...] = 8  # SD 1.5 naming: this is the head COUNT
    cross_attention_dim: int = 768
    norm_num_groups: int = 32
    norm_eps: float = 1e-5
    flip_sin_to_cos: bool = True
    freq_shift: int = 0
    mid_block_scale_factor: float = 1.0
    downsample_padding: int = 1
    motion_module_heads: int = 8
    motion_module_max_len: int = 24
    motion_module_blocks: int = 1
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_unet_config(cls, config: dict[str, Any]) -> "TemporalUNetConfig":
        """Build from a diffusers UNet2DConditionModel config.json (unknown keys kept in ``extra``)."""
        names = {f.name for f in fields(cls)} - {"extra"}
        known = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items() if k in names}
        unsupported = {
            k: config[k]
            for k in ("use_linear_projection", "upcast_attention", "only_cross_attention", "class_embed_type")
            if config.get(k) not in (None, False)
        }
        if unsupported:
            raise ValueError(f"UNet config options not supported by the temporal UNet: {unsupported}")
        return cls(**known, extra={k: v for k, v in config.items() if k not in names})

    def heads(self) -> tuple[int, ...]:
        """Number of spatial attention heads per down block."""
        h = self.attention_head_dim
        return tuple(h) if isinstance(h, (tuple, list)) else (h,) * len(self.block_out_channels)


def _spatial_transformer(channels: int, heads: int, cfg: TemporalUNetConfig) -> Transformer2DModel:
    return Transformer2DModel(
        num_attention_heads=heads,
        attention_head_dim=channels // heads,
        in_channels=channels,
        num_layers=1,
        cross_attention_dim=cfg.cross_attention_dim,
        norm_num_groups=cfg.norm_num_groups,
    )


def _spatial_transformers(channels: int, heads: int | None, n: int, cfg: TemporalUNetConfig) -> nn.ModuleList | None:
    """The ``n`` spatial transformers of a block (None for blocks without attention)."""
    return nn.ModuleList(_spatial_transformer(channels, heads, cfg) for _ in range(n)) if heads else None


def _motion_modules(channels: int, n: int, cfg: TemporalUNetConfig) -> nn.ModuleList:
    """The ``n`` motion modules of a block, one after each resnet (+ attention)."""
    return nn.ModuleList(
        MotionModule(channels, cfg.motion_module_heads, cfg.motion_module_blocks, cfg.motion_module_max_len)
        for _ in range(n)
    )


def _tile_batch(x: torch.Tensor, k: int) -> torch.Tensor:
    """``x`` repeated ``k`` times along the batch; a broadcast view (no memory) when the batch is 1."""
    if x.shape[0] == 1:
        return x.expand(k, *x.shape[1:])
    return x.repeat(k, *([1] * (x.ndim - 1)))


def _run_spatial_transformer(
    transformer: Transformer2DModel, x: torch.Tensor, text: torch.Tensor
) -> torch.Tensor:
    """Run a per-frame spatial transformer on (b, c, f, h, w) with text (b, n, d)."""
    num_frames = x.shape[2]
    text = repeat(text, "b n d -> (b f) n d", f=num_frames)  # same prompt for every frame
    out = transformer(fold_frames(x), encoder_hidden_states=text, return_dict=False)[0]
    return unfold_frames(out, num_frames)


# Which batch rows run the motion modules: True (all, the default), False (none: the UNet
# is then a per-frame image model, as for still-image samples of joint training), or a bool
# tensor (b,) choosing per row.
Temporal = bool | torch.Tensor


def _apply_motion(module: nn.Module, x: torch.Tensor, temporal: Temporal) -> torch.Tensor:
    """Run a motion module on the rows of x (b, c, f, h, w) selected by ``temporal``."""
    if isinstance(temporal, bool):
        return module(x) if temporal else x
    # Computed for every row so the module always takes part in the graph (DDP needs that).
    return torch.where(temporal.view(-1, 1, 1, 1, 1), module(x), x)  # (b,) -> (b, 1, 1, 1, 1): per-row choice


class DownBlock3D(nn.Module):
    """Resnets (+ spatial transformers) + motion modules, then an optional per-frame downsampler."""

    def __init__(self, cin: int, cout: int, temb: int, cfg: TemporalUNetConfig, *,
                 heads: int | None, add_downsample: bool):
        super().__init__()
        n = cfg.layers_per_block
        self.resnets = nn.ModuleList(
            ResnetBlock3D(cin if i == 0 else cout, cout, temb, groups=cfg.norm_num_groups, eps=cfg.norm_eps)
            for i in range(n)
        )
        self.attentions = _spatial_transformers(cout, heads, n, cfg)
        self.motion_modules = _motion_modules(cout, n, cfg)
        self.downsamplers = (
            nn.ModuleList([Downsample2D(cout, use_conv=True, out_channels=cout,
                                        padding=cfg.downsample_padding, name="op")])
            if add_downsample else None
        )

    def forward(self, x: torch.Tensor, temb: torch.Tensor, *, text: torch.Tensor, temporal: Temporal = True,
                downsample: bool = True) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Returns the block output and the skip tensors for the up path."""
        skips = ()
        for i, resnet in enumerate(self.resnets):
            x = resnet(x, temb)
            if self.attentions is not None:
                x = _run_spatial_transformer(self.attentions[i], x, text)
            x = _apply_motion(self.motion_modules[i], x, temporal)
            skips += (x,)
        if self.downsamplers is not None and downsample:
            x = per_frame(self.downsamplers[0], x)
            skips += (x,)
        return x, skips


class MidBlock3D(nn.Module):
    """resnet -> spatial transformer -> resnet; no motion module (as released)."""

    def __init__(self, channels: int, temb: int, heads: int, cfg: TemporalUNetConfig):
        super().__init__()
        kw = dict(groups=cfg.norm_num_groups, eps=cfg.norm_eps, output_scale_factor=cfg.mid_block_scale_factor)
        self.resnets = nn.ModuleList(
            [ResnetBlock3D(channels, channels, temb, **kw), ResnetBlock3D(channels, channels, temb, **kw)]
        )
        self.attentions = nn.ModuleList([_spatial_transformer(channels, heads, cfg)])

    def forward(self, x: torch.Tensor, temb: torch.Tensor, *, text: torch.Tensor) -> torch.Tensor:
        """Resnet, spatial transformer, resnet on (b, c, f, h, w)."""
        x = self.resnets[0](x, temb)
        x = _run_spatial_transformer(self.attentions[0], x, text)
        return self.resnets[1](x, temb)


class UpBlock3D(nn.Module):
    """Concatenate skips, resnets (+ spatial transformers) + motion modules, optional upsampler."""

    def __init__(self, cin: int, cprev: int, cout: int, temb: int, cfg: TemporalUNetConfig, *,
                 heads: int | None, add_upsample: bool):
        super().__init__()
        n = cfg.layers_per_block + 1
        self.resnets = nn.ModuleList(
            ResnetBlock3D(
                (cprev if i == 0 else cout) + (cin if i == n - 1 else cout), cout, temb,
                groups=cfg.norm_num_groups, eps=cfg.norm_eps,
            )
            for i in range(n)
        )
        self.attentions = _spatial_transformers(cout, heads, n, cfg)
        self.motion_modules = _motion_modules(cout, n, cfg)
        self.upsamplers = (
            nn.ModuleList([Upsample2D(cout, use_conv=True, out_channels=cout)]) if add_upsample else None
        )

    def forward(self, x: torch.Tensor, skips: Sequence[torch.Tensor], *, temb: torch.Tensor,
                text: torch.Tensor, upsample_size: tuple[int, int] | None = None,
                temporal: Temporal = True) -> torch.Tensor:
        skips = list(skips)
        for i, resnet in enumerate(self.resnets):
            x = torch.cat([x, skips.pop()], dim=1)  # channels: previous + skip
            x = resnet(x, temb)
            if self.attentions is not None:
                x = _run_spatial_transformer(self.attentions[i], x, text)
            x = _apply_motion(self.motion_modules[i], x, temporal)
        if self.upsamplers is not None:
            x = per_frame(self.upsamplers[0], x, output_size=upsample_size)
        return x


@dataclass
class FeatureCache:
    """DeepCache-style reuse (Ma et al. 2023, lossy): the input of the last up block.

    A call with ``reuse=False`` (or an empty cache) runs the whole UNet and stores the
    features entering the last up block; a call with ``reuse=True`` runs only the shallow
    path (``conv_in``, the first down block, the last up block) on the stored features.
    """

    features: torch.Tensor | None = None
    reuse: bool = False


class TemporalUNet(nn.Module):
    """Denoising UNet over a window of frames: (b, c, f, h, w) -> predicted noise, same shape."""

    def __init__(self, cfg: TemporalUNetConfig):
        super().__init__()
        self.config = cfg
        ch = cfg.block_out_channels
        heads = cfg.heads()
        temb = ch[0] * 4
        self.conv_in = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)
        self.time_proj = Timesteps(ch[0], cfg.flip_sin_to_cos, cfg.freq_shift)
        self.time_embedding = TimestepEmbedding(ch[0], temb)

        self.down_blocks = nn.ModuleList()
        for i, kind in enumerate(cfg.down_block_types):
            self.down_blocks.append(DownBlock3D(
                ch[max(i - 1, 0)], ch[i], temb, cfg,
                heads=heads[i] if kind.startswith("CrossAttn") else None,
                add_downsample=i < len(ch) - 1,
            ))
        self.mid_block = MidBlock3D(ch[-1], temb, heads[-1], cfg)

        self.up_blocks = nn.ModuleList()
        rch, rheads = list(reversed(ch)), list(reversed(heads))
        for i, kind in enumerate(cfg.up_block_types):
            self.up_blocks.append(UpBlock3D(
                rch[min(i + 1, len(ch) - 1)], rch[max(i - 1, 0)], rch[i], temb, cfg,
                heads=rheads[i] if kind.startswith("CrossAttn") else None,
                add_upsample=i < len(ch) - 1,
            ))
        self.conv_norm_out = nn.GroupNorm(cfg.norm_num_groups, ch[0], eps=cfg.norm_eps)
        self.conv_out = nn.Conv2d(ch[0], cfg.out_channels, 3, padding=1)
        self.gradient_checkpointing = False

    def enable_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute each block's activations in the backward pass (training memory)."""
        self.gradient_checkpointing = enabled

    def set_feed_forward_chunking(self, rows: int | None) -> None:
        """Run every feed-forward (spatial and temporal) on ``rows`` batch rows at a time; None = all.

        Same function; lowers peak activation memory (the GEGLU hidden layer is 8x the
        block width), at the cost of more, smaller matrix products.
        """
        if rows is not None and rows < 1:
            raise ValueError(f"feed-forward chunk must be >= 1 rows, got {rows}")
        for module in self.modules():
            if isinstance(module, BasicTransformerBlock):
                module.set_chunk_feed_forward(rows, dim=0)
            elif isinstance(module, TemporalTransformerBlock):
                module.ff_chunk_size = rows

    def _run_block(self, block: nn.Module, *args: Any, **kwargs: Any) -> Any:
        """Call ``block``, under activation checkpointing when enabled and gradients are on."""
        if self.gradient_checkpointing and torch.is_grad_enabled():
            # Non-reentrant: tensors read inside the block (reference tokens) still get gradients.
            return torch.utils.checkpoint.checkpoint(block, *args, use_reentrant=False, **kwargs)
        return block(*args, **kwargs)

    @property
    def dtype(self) -> torch.dtype:
        return self.conv_in.weight.dtype

    def time_embed(self, timestep: torch.Tensor | int, batch: int, device: torch.device) -> torch.Tensor:
        """Sinusoidal timestep features -> MLP, shape (batch, 4 * c0)."""
        t = torch.as_tensor(timestep, device=device).reshape(-1).expand(batch)  # () or (1,) or (b,) -> (b,)
        return self.time_embedding(self.time_proj(t).to(self.dtype))

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | int,
        encoder_hidden_states: torch.Tensor,
        *,
        down_block_additional_residuals: Sequence[torch.Tensor] | None = None,
        mid_block_additional_residual: torch.Tensor | None = None,
        temporal: Temporal = True,
        repeat_batch_at_mid: int = 1,
        feature_cache: FeatureCache | None = None,
    ) -> torch.Tensor:
        """sample (b, c, f, h, w); text (b, n, d); ControlNet residuals as (b, c, f, h, w).

        ``temporal``: which rows run the motion modules (True: all; False: none, a per-frame
        image model; or a bool tensor (b,)).
        ``repeat_batch_at_mid=k`` runs the down path once and repeats its activations k times
        along the batch before the mid block: the output equals a call on ``sample`` repeated
        k times, for callers whose rows only start to differ in the mid/up blocks (the
        release's CFG halves: reference attention begins in the mid block).
        ``feature_cache``: opt-in DeepCache-style reuse of deep features (see ``FeatureCache``).
        """
        if feature_cache is not None and feature_cache.reuse and feature_cache.features is not None:
            return self._shallow_forward(sample, timestep, text=encoder_hidden_states,
                                         down_residuals=down_block_additional_residuals, temporal=temporal,
                                         repeat_batch_at_mid=repeat_batch_at_mid, features=feature_cache.features)
        up_factor = 2 ** (len(self.up_blocks) - 1)
        needs_sizes = any(s % up_factor for s in sample.shape[-2:])
        temb = self.time_embed(timestep, sample.shape[0], sample.device)

        x = per_frame(self.conv_in, sample)
        skips: tuple[torch.Tensor, ...] = (x,)
        for block in self.down_blocks:
            x, block_skips = self._run_block(block, x, temb, text=encoder_hidden_states, temporal=temporal)
            skips += block_skips
        if down_block_additional_residuals is not None:
            if len(down_block_additional_residuals) != len(skips):
                raise ValueError(f"expected {len(skips)} ControlNet residuals, got {len(down_block_additional_residuals)}")
            skips = tuple(s + r for s, r in zip(skips, down_block_additional_residuals))

        if repeat_batch_at_mid > 1:
            if not isinstance(temporal, bool):
                raise ValueError("repeat_batch_at_mid needs temporal=True or False, not per-row flags")
            k = repeat_batch_at_mid
            # (b, ...) -> (k b, ...): the batch tiled k times, as a call on the tiled sample would have it
            x, temb, encoder_hidden_states = (v.repeat(k, *([1] * (v.ndim - 1))) for v in (x, temb, encoder_hidden_states))
            skips = tuple(_tile_batch(s, k) for s in skips)
        x = self._run_block(self.mid_block, x, temb, text=encoder_hidden_states)
        if mid_block_additional_residual is not None:
            x = x + mid_block_additional_residual

        n_res = self.config.layers_per_block + 1
        for i, block in enumerate(self.up_blocks):
            block_skips, skips = skips[-n_res:], skips[:-n_res]
            size = tuple(skips[-1].shape[-2:]) if needs_sizes and skips else None
            if feature_cache is not None and i == len(self.up_blocks) - 1:
                feature_cache.features = x
            x = self._run_block(block, x, block_skips, temb=temb, text=encoder_hidden_states, upsample_size=size,
                                temporal=temporal)
        return self._head(x)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        x = F.silu(self.conv_norm_out(x))  # GroupNorm on 5-D: statistics across frames
        return per_frame(self.conv_out, x)

    def _shallow_forward(self, sample: torch.Tensor, timestep: torch.Tensor | int, *, text: torch.Tensor,
                         down_residuals: Sequence[torch.Tensor] | None, temporal: Temporal,
                         repeat_batch_at_mid: int, features: torch.Tensor) -> torch.Tensor:
        """conv_in + first down block (no downsampler) + last up block on cached deep features."""
        temb = self.time_embed(timestep, sample.shape[0], sample.device)
        x = per_frame(self.conv_in, sample)
        _, block_skips = self.down_blocks[0](x, temb, text=text, temporal=temporal, downsample=False)
        skips = (x,) + block_skips
        if down_residuals is not None:
            skips = tuple(s + r for s, r in zip(skips, down_residuals[: len(skips)]))
        if repeat_batch_at_mid > 1:
            k = repeat_batch_at_mid
            temb, text = temb.repeat(k, 1), text.repeat(k, 1, 1)  # (b, d) -> (k b, d), (b, n, d) -> (k b, n, d)
            skips = tuple(_tile_batch(s, k) for s in skips)
        x = self.up_blocks[-1](features, skips, temb=temb, text=text, temporal=temporal)
        return self._head(x)
