"""The appearance encoder: a truncated SD 1.5 UNet whose hidden states feed reference attention."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from diffusers import UNet2DConditionModel
from einops import rearrange

from magicanimate.models.reference_attention import (
    RecordingAttnProcessor,
    ReferenceAttnProcessor,
    ReferenceBank,
    install_processors,
    restore_processors,
)

# The released appearance encoder omits these 24 tensors: everything after the normalised
# input of the last transformer block of the last up block is never used.
_LAST = "up_blocks.3.attentions.2"
TRUNCATED_KEYS = tuple(
    ["conv_norm_out.weight", "conv_norm_out.bias", "conv_out.weight", "conv_out.bias",
     f"{_LAST}.proj_out.weight", f"{_LAST}.proj_out.bias"]
    + [f"{_LAST}.transformer_blocks.0.{a}.{p}" for a in ("attn1", "attn2")
       for p in ("to_q.weight", "to_k.weight", "to_v.weight", "to_out.0.weight", "to_out.0.bias")]
    + [f"{_LAST}.transformer_blocks.0.{p}" for p in (
        "ff.net.0.proj.weight", "ff.net.0.proj.bias", "ff.net.2.weight", "ff.net.2.bias",
        "norm2.weight", "norm2.bias", "norm3.weight", "norm3.bias")]
)


class AppearanceEncoder(UNet2DConditionModel):
    """SD 1.5 UNet run up to the last recorded token; its output is the ``ReferenceBank``.

    A subclass of diffusers' UNet with its own ``forward``: the released weights stop at
    the last up block's final ``norm1``, so the layers after it are removed (``truncate``)
    and the forward stops there. It records into the bank passed to ``forward``.
    """

    @classmethod
    def from_unet_config(cls, config: dict[str, Any]) -> "AppearanceEncoder":
        """Build (on the current default device) from a UNet config and truncate as released."""
        config = {k: v for k, v in config.items() if not k.startswith("_")}
        model = cls.from_config(config)
        model.truncate()
        return model

    def truncate(self) -> None:
        """Drop the layers whose weights the release does not ship."""
        last = self.up_blocks[-1].attentions[-1]
        block = last.transformer_blocks[0]
        for owner, name in ((self, "conv_norm_out"), (self, "conv_out"), (last, "proj_out"),
                            (block, "attn1"), (block, "attn2"), (block, "ff"), (block, "norm2"),
                            (block, "norm3")):
            setattr(owner, name, None)
        self.conv_act = None

    def last_block_name(self) -> str:
        """Name of the last recorded transformer block (written by ``forward`` itself)."""
        return f"up_blocks.{len(self.up_blocks) - 1}.attentions.{len(self.up_blocks[-1].attentions) - 1}.transformer_blocks.0"

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | int,
                encoder_hidden_states: torch.Tensor, bank: ReferenceBank) -> None:  # type: ignore[override]
        """Record the reference tokens of ``sample`` (b, c, h, w) at ``timestep`` into ``bank``.

        The mid/up self-attention layers record through the processors that
        ``connect_reference_attention`` installed (with the same bank); the last block here.
        """
        up_factor = 2 ** (len(self.up_blocks) - 1)
        needs_sizes = any(s % up_factor for s in sample.shape[-2:])
        t = torch.as_tensor(timestep, device=sample.device).reshape(-1).expand(sample.shape[0])  # -> (b,)
        temb = self.time_embedding(self.time_proj(t).to(self.dtype))
        text = encoder_hidden_states

        x = self.conv_in(sample)
        skips: tuple[torch.Tensor, ...] = (x,)
        for block in self.down_blocks:
            if getattr(block, "has_cross_attention", False):
                x, res = block(hidden_states=x, temb=temb, encoder_hidden_states=text)
            else:
                x, res = block(hidden_states=x, temb=temb)
            skips += res
        x = self.mid_block(x, temb, encoder_hidden_states=text)

        for i, block in enumerate(self.up_blocks[:-1]):
            n = len(block.resnets)
            block_skips, skips = skips[-n:], skips[:-n]
            size = tuple(skips[-1].shape[-2:]) if needs_sizes else None
            if getattr(block, "has_cross_attention", False):
                x = block(hidden_states=x, temb=temb, res_hidden_states_tuple=block_skips,
                          encoder_hidden_states=text, upsample_size=size)
            else:
                x = block(hidden_states=x, temb=temb, res_hidden_states_tuple=block_skips, upsample_size=size)

        # Last up block by hand: it ends at the final transformer block's norm1.
        last = self.up_blocks[-1]
        for i, resnet in enumerate(last.resnets):
            x = resnet(torch.cat([x, skips[-1]], dim=1), temb)
            skips = skips[:-1]
            attention = last.attentions[i]
            if i < len(last.resnets) - 1:
                x = attention(x, encoder_hidden_states=text, return_dict=False)[0]
            else:
                h = attention.proj_in(attention.norm(x))
                h = rearrange(h, "b c h w -> b (h w) c")  # tokens
                bank.write(self.last_block_name(), attention.transformer_blocks[0].norm1(h))


class AttentionConnection:
    """The processors installed by ``connect_reference_attention``; ``disconnect`` puts the old ones back."""

    def __init__(self, layers: list[str], previous: list[tuple[nn.Module, dict[str, Any]]]):
        self.layers = layers
        self._previous = previous

    def disconnect(self) -> None:
        """Restore the processors that were there before."""
        for model, processors in self._previous:
            restore_processors(model, processors)
        self._previous = []


def connect_reference_attention(
    appearance_encoder: AppearanceEncoder,
    unet: nn.Module,
    bank: ReferenceBank,
    *,
    recorder: type = RecordingAttnProcessor,
    reader: type = ReferenceAttnProcessor,
) -> AttentionConnection:
    """Install the reference-attention processors once: the encoder records into ``bank``, the UNet reads it.

    Returns the connection (fusion layer names, and ``disconnect`` to restore the previous
    processors). Raises ValueError when the two models' fusion layers differ.
    """
    before = [(appearance_encoder, install_processors(appearance_encoder, bank, recorder)),
              (unet, install_processors(unet, bank, reader))]
    writers = sorted([*before[0][1], appearance_encoder.last_block_name()])
    readers = sorted(before[1][1])
    if writers != readers:
        for model, processors in before:
            restore_processors(model, processors)
        raise ValueError(f"appearance encoder and UNet fusion layers differ: {writers} vs {readers}")
    return AttentionConnection(readers, before)
