"""The text condition: MagicAnimate's only prompt is the empty one."""

from __future__ import annotations

import torch
from torch import nn


def empty_prompt_embedding(tokenizer, text_encoder: nn.Module, *, device: torch.device) -> torch.Tensor:
    """CLIP embedding of the empty prompt, (1, 77, d), padded to the tokenizer's maximum length."""
    ids = tokenizer("", padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids.to(device)
    with torch.no_grad():
        return text_encoder(ids)[0]
