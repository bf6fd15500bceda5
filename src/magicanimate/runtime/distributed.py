"""Splitting the windows of one video across processes (torch.distributed, e.g. torchrun).

Every rank runs the appearance encoder and the scheduler; rank r predicts windows
r, r + world_size, ... (as the release's multi-GPU demo), then all predictions are
gathered and every rank fuses them in window order, so the result equals the
single-process run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterator

import torch


@dataclass(frozen=True)
class WindowSplit:
    """Which windows this process predicts; ``world_size == 1`` is the single-process case."""

    rank: int = 0
    world_size: int = 1

    def local(self, num_windows: int) -> list[int]:
        """Indices of the windows this rank predicts."""
        return list(range(self.rank, num_windows, self.world_size))

    def predictions(self, num_windows: int, predict: Callable[[int], torch.Tensor]) -> Iterator[torch.Tensor]:
        """Every window's prediction in window order: this rank's computed by ``predict``, the others gathered.

        Single-process, the windows are predicted one at a time as the caller consumes them.
        """
        if self.world_size == 1:
            for j in range(num_windows):
                yield predict(j)
            return
        gathered = self.gather({j: predict(j) for j in self.local(num_windows)})
        for j in range(num_windows):
            yield gathered[j]

    def gather(self, predictions: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        """Every rank's predictions, on every rank (window index -> tensor on this rank's device)."""
        if self.world_size == 1:
            return predictions
        import torch.distributed as dist

        device = next(iter(predictions.values())).device if predictions else torch.device("cpu")
        mine = {j: p.cpu() for j, p in predictions.items()}
        everyone: list[dict[int, torch.Tensor] | None] = [None] * self.world_size
        dist.all_gather_object(everyone, mine)
        merged: dict[int, torch.Tensor] = {}
        for part in everyone:
            merged.update({j: p.to(device) for j, p in (part or {}).items()})
        return merged


def split_from_environment() -> WindowSplit:
    """Join the process group set up by torchrun (``WORLD_SIZE`` > 1), else single-process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return WindowSplit()
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return WindowSplit(dist.get_rank(), dist.get_world_size())


def local_device() -> torch.device:
    """This rank's device: cuda:LOCAL_RANK when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        index = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")
