"""Reference attention for training batches: one reference image per sample.

The inference processors (``models.reference_attention``) serve one reference shared by
the whole batch. In training every sample has its own reference, so the recorded tokens
are (b, l, c) and each of the sample's frames attends to its own sample's tokens. This is
the conditional path of the release's guidance; ``keep`` (b,) can switch a sample to the
unconditional path (plain self-attention) for reference dropout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention
from einops import rearrange, repeat

from magicanimate.models.reference_attention import ReferenceBank, self_attention


class BatchReferenceBank(ReferenceBank):
    """Recorded tokens (b, l, c) of a batch of references, kept in the dtype they were computed in."""

    def __init__(self) -> None:
        super().__init__(storage_dtype=None)  # no float16 rounding: gradients flow through
        self.keep: torch.Tensor | None = None  # (b,) bool: samples that attend to their reference

    def write(self, name: str, tokens: torch.Tensor) -> None:
        """Store (or, when activation checkpointing recomputes a layer, overwrite) the tokens of ``name``."""
        self.tokens[name] = tokens

    def clear(self) -> None:
        """Forget the tokens and the dropout mask."""
        super().clear()
        self.keep = None


class BatchRecordingProcessor:
    """Self-attention that records its input tokens (the appearance encoder of a batch)."""

    def __init__(self, bank: BatchReferenceBank, name: str):
        self.bank, self.name = bank, name

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, temb=None, **kwargs) -> torch.Tensor:
        self.bank.write(self.name, hidden_states)
        return self_attention(attn, hidden_states)


class BatchReferenceProcessor:
    """Self-attention with keys/values [own tokens, own sample's reference tokens] (the UNet)."""

    def __init__(self, bank: BatchReferenceBank, name: str):
        self.bank, self.name = bank, name

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, temb=None, **kwargs) -> torch.Tensor:
        if self.name not in self.bank.tokens:
            return self_attention(attn, hidden_states)
        reference = self.bank.tokens[self.name].to(hidden_states.dtype)  # (b, l_ref, c)
        frames = hidden_states.shape[0] // reference.shape[0]
        reference = repeat(reference, "b l c -> (b f) l c", f=frames)  # one copy per frame
        x = hidden_states  # ((b f), l, c)
        k = torch.cat([attn.to_k(x), attn.to_k(reference)], dim=1)  # ((b f), l + l_ref, c)
        v = torch.cat([attn.to_v(x), attn.to_v(reference)], dim=1)
        q, k, v = (rearrange(t, "n l (h e) -> n h l e", h=attn.heads) for t in (attn.to_q(x), k, v))
        mask = None
        if self.bank.keep is not None:
            # Dropped samples see only their own tokens: mask out the reference keys.
            keep = repeat(self.bank.keep, "b -> (b f)", f=frames)
            own = torch.ones(x.shape[0], x.shape[1], dtype=torch.bool, device=x.device)
            ref = keep[:, None].expand(-1, reference.shape[1])  # ((b f),) -> ((b f), l_ref)
            mask = torch.cat([own, ref], dim=1)[:, None, None, :]  # ((b f), 1, 1, l + l_ref)
        out = rearrange(F.scaled_dot_product_attention(q, k, v, attn_mask=mask), "n h l e -> n l (h e)")
        return attn.to_out[1](attn.to_out[0](out))
