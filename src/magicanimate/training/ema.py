"""Exponential moving average of the trained parameters (float32 shadow copies)."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn


class EMA:
    """Shadow weights w_ema <- d * w_ema + (1 - d) * w after every optimiser step."""

    def __init__(self, named_params: list[tuple[str, nn.Parameter]], *, decay: float, warmup: bool = True):
        self.params = dict(named_params)
        self.shadow = {n: p.detach().float().clone() for n, p in self.params.items()}
        self.decay, self.warmup, self.updates = decay, warmup, 0

    def current_decay(self) -> float:
        """The decay of the next update (warm-up: min(decay, (1 + n) / (10 + n)))."""
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        """One EMA step towards the current parameters."""
        d = self.current_decay()
        names = list(self.params)
        torch._foreach_lerp_([self.shadow[n] for n in names],
                             [self.params[n].detach().float() for n in names], 1.0 - d)
        self.updates += 1

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """Within this context the model's parameters hold the EMA weights."""
        backup = {n: p.detach().clone() for n, p in self.params.items()}
        with torch.no_grad():
            for name, param in self.params.items():
                param.copy_(self.shadow[name].to(param.dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for name, param in self.params.items():
                    param.copy_(backup[name])

    def state_dict(self) -> dict[str, object]:
        """Shadow tensors and the update count."""
        return {"shadow": self.shadow, "updates": self.updates}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore ``state_dict`` (tensors moved to the parameters' devices)."""
        shadow = state["shadow"]
        missing = set(self.shadow) - set(shadow)
        if missing:
            raise ValueError(f"EMA state lacks {len(missing)} parameters, e.g. {sorted(missing)[:3]}")
        self.shadow = {n: shadow[n].to(self.params[n].device, torch.float32) for n in self.shadow}
        self.updates = int(state["updates"])
