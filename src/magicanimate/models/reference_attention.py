"""Reference attention: the appearance encoder's tokens become extra keys/values of the UNet.

The appearance encoder *records* the normalised input of each self-attention layer
(``norm1`` output, the tensor fed to ``attn1``) of its mid and up blocks into a
``ReferenceBank``; the temporal UNet's layers of the same name then *read* it: their
self-attention uses keys/values from ``[own tokens, recorded tokens]`` (concatenated along
the token axis). Both directions are diffusers attention processors holding the bank
object; nothing is attached to the modules themselves.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention
from einops import rearrange
from torch import nn

# Blocks whose self-attention takes part ("midup" fusion of the release).
FUSION_PREFIXES = ("mid_block.", "up_blocks.")


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    return rearrange(x, "n l (h e) -> n h l e", h=heads)  # (n, heads, tokens, head_dim)


def _project_out(attn: Attention, out: torch.Tensor) -> torch.Tensor:
    out = rearrange(out, "n h l e -> n l (h e)")  # merge heads
    return attn.to_out[1](attn.to_out[0](out))


def self_attention(attn: Attention, x: torch.Tensor) -> torch.Tensor:
    """Plain multi-head self-attention of ``attn`` on tokens x: (n, l, c)."""
    q, k, v = (_split_heads(p(x), attn.heads) for p in (attn.to_q, attn.to_k, attn.to_v))
    return _project_out(attn, F.scaled_dot_product_attention(q, k, v))


class ReferenceBank:
    """Recorded appearance tokens of one denoising step, keyed by transformer-block name.

    ``storage_dtype=torch.float16`` reproduces the release, which rounds the recorded tokens
    to float16 before use even in float32 runs; ``None`` keeps them as computed.
    ``reference_rows`` selects the batch rows (flattened ``(b f)``) that attend to the
    reference; the others use plain self-attention (the release's unconditional half).
    """

    def __init__(self, storage_dtype: torch.dtype | None = torch.float16, *, release_structure: bool = False):
        self.storage_dtype = storage_dtype
        # True: compute as the release does (reference attention for every row on the
        # concatenated tokens, then overwrite the plain rows); same function, more work.
        self.release_structure = release_structure
        self.tokens: dict[str, torch.Tensor] = {}
        self.reference_rows: slice | None = None
        self._projected: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def write(self, name: str, tokens: torch.Tensor) -> None:
        """Store the tokens (1, l, c) recorded by block ``name``."""
        if name in self.tokens:
            raise RuntimeError(f"reference bank already holds tokens for {name}; clear it between steps")
        self.tokens[name] = tokens.to(self.storage_dtype) if self.storage_dtype else tokens

    def projected(self, name: str, attn: Attention, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of the recorded tokens for ``attn``: computed once per step and layer."""
        key = (name, id(attn))
        if key not in self._projected:
            if name not in self.tokens:
                raise RuntimeError(f"no reference tokens recorded for {name}")
            tokens = self.tokens[name].to(dtype)
            self._projected[key] = (attn.to_k(tokens), attn.to_v(tokens))
        return self._projected[key]

    def clear(self) -> None:
        """Forget everything recorded (called after every denoising step)."""
        self.tokens.clear()
        self._projected.clear()
        self.reference_rows = None

    @contextlib.contextmanager
    def step(self) -> Iterator["ReferenceBank"]:
        """Context of one denoising step: the bank is empty on entry and cleared on exit."""
        self.clear()
        try:
            yield self
        finally:
            self.clear()

    @contextlib.contextmanager
    def reading(self, reference_rows: slice) -> Iterator["ReferenceBank"]:
        """Within this context the UNet's reader layers apply reference attention to these rows."""
        previous, self.reference_rows = self.reference_rows, reference_rows
        try:
            yield self
        finally:
            self.reference_rows = previous


class RecordingAttnProcessor:
    """Self-attention that also records its input tokens into the bank (appearance encoder)."""

    def __init__(self, bank: ReferenceBank, name: str):
        self.bank, self.name = bank, name

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, temb=None, **kwargs) -> torch.Tensor:
        if hidden_states.shape[0] != 1:
            raise ValueError("the appearance encoder runs on one reference image (batch 1)")
        self.bank.write(self.name, hidden_states)
        return self_attention(attn, hidden_states)


class ReferenceAttnProcessor:
    """Self-attention whose keys/values also include the recorded reference tokens (UNet)."""

    def __init__(self, bank: ReferenceBank, name: str):
        self.bank, self.name = bank, name

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, temb=None, **kwargs) -> torch.Tensor:
        rows = self.bank.reference_rows
        if rows is None:
            return self_attention(attn, hidden_states)
        if self.bank.release_structure:
            return self._as_released(attn, hidden_states, rows)
        x = hidden_states[rows]  # (n_ref, l, c)
        ref_k, ref_v = self.bank.projected(self.name, attn, x.dtype)  # (1, l_ref, c)
        n = x.shape[0]
        k = torch.cat([attn.to_k(x), ref_k.expand(n, -1, -1)], dim=1)  # (n, l + l_ref, c)
        v = torch.cat([attn.to_v(x), ref_v.expand(n, -1, -1)], dim=1)
        q, k, v = (_split_heads(t, attn.heads) for t in (attn.to_q(x), k, v))
        with_reference = _project_out(attn, F.scaled_dot_product_attention(q, k, v))
        parts = []
        if rows.start:
            parts.append(self_attention(attn, hidden_states[: rows.start]))
        parts.append(with_reference)
        if rows.stop is not None and rows.stop < hidden_states.shape[0]:
            parts.append(self_attention(attn, hidden_states[rows.stop:]))
        return torch.cat(parts) if len(parts) > 1 else with_reference

    def _as_released(self, attn: Attention, hidden_states: torch.Tensor, rows: slice) -> torch.Tensor:
        """The release's computation: every row attends to [own, reference] tokens projected
        together, then the rows outside ``rows`` are replaced by plain self-attention."""
        tokens = self.bank.tokens[self.name].to(hidden_states.dtype)
        n = hidden_states.shape[0]
        context = torch.cat([hidden_states, tokens.expand(n, -1, -1)], dim=1)  # (n, l + l_ref, c)
        q, k, v = (_split_heads(p(t), attn.heads) for p, t in
                   ((attn.to_q, hidden_states), (attn.to_k, context), (attn.to_v, context)))
        out = _project_out(attn, F.scaled_dot_product_attention(q, k, v))
        start, stop, _ = rows.indices(n)
        return torch.cat([self_attention(attn, hidden_states[:start]), out[start:stop],
                          self_attention(attn, hidden_states[stop:])])


def fusion_layers(model: nn.Module) -> dict[str, Attention]:
    """Self-attention layers of the mid and up blocks, keyed by their transformer-block name."""
    layers = {}
    for name, module in model.named_modules():
        if name.endswith(".attn1") and isinstance(module, Attention) and name.startswith(FUSION_PREFIXES):
            layers[name[: -len(".attn1")]] = module
    return layers


def install_processors(model: nn.Module, bank: ReferenceBank, processor_cls: type) -> dict[str, Any]:
    """Set ``processor_cls(bank, name)`` on every fusion layer of ``model``; returns the previous processors by name."""
    previous = {}
    for name, attn in fusion_layers(model).items():
        previous[name] = attn.processor
        attn.set_processor(processor_cls(bank, name))
    return previous


def restore_processors(model: nn.Module, previous: dict[str, Any]) -> None:
    """Put back processors returned by ``install_processors``."""
    layers = fusion_layers(model)
    for name, processor in previous.items():
        layers[name].set_processor(processor)
