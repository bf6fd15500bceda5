"""Model offload: each component sits in CPU memory and moves to the accelerator only to run.

Peak accelerator memory becomes the largest component plus activations instead of all
components together. Each component is moved when one of its trigger submodules is
called (a forward pre-hook) and the previously active component goes back, so only
one component occupies the device at a time.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


class ModelOffload:
    """Keeps at most one registered component on ``device``; the others on ``storage``."""

    def __init__(self, device: torch.device | str, storage: torch.device | str = "cpu"):
        self.device, self.storage = torch.device(device), torch.device(storage)
        self.active: nn.Module | None = None
        self.moves = 0
        self._handles = []

    def register(self, component: nn.Module, triggers: Iterable[nn.Module] | None = None) -> None:
        """Move ``component`` to storage now and onto the device whenever a trigger runs."""
        component.to(self.storage)

        def pre_hook(_module, _args):
            self.activate(component)

        for trigger in triggers or [component]:
            self._handles.append(trigger.register_forward_pre_hook(pre_hook))

    def activate(self, component: nn.Module) -> None:
        """Put ``component`` on the device, sending the previous one back to storage."""
        if self.active is component:
            return
        if self.active is not None:
            self.active.to(self.storage)
        component.to(self.device)
        self.active = component
        self.moves += 1

    def remove(self) -> None:
        """Remove the hooks (components stay where they are)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
