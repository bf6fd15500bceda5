"""Several processes (torch.distributed, e.g. torchrun): whole jobs per rank, or the windows of one video split.

Window split: every rank of a group runs the appearance encoder and the scheduler; rank r
predicts windows r, r + size, ... (as the release's multi-GPU demo), then all predictions
are gathered and every rank fuses them in window order, so the result equals the
single-process run.

Batches (``assign_jobs``): each pending job goes to one rank, round-robin; only when there
are fewer pending jobs than ranks does a long job (more than one window) get a group of
ranks that split its windows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Iterator, Sequence

import torch


@dataclass(frozen=True)
class WindowSplit:
    """Which windows this process predicts; ``world_size == 1`` is the single-process case."""

    rank: int = 0
    world_size: int = 1
    group: Any = field(default=None, compare=False, repr=False)  # a torch.distributed group; None: the default

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
        dist.all_gather_object(everyone, mine, group=self.group)
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
        dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
    return WindowSplit(dist.get_rank(), dist.get_world_size())


# A batch's ranks wait for each other (plan, groups, summary) while others run whole jobs: hours.
COLLECTIVE_TIMEOUT = timedelta(hours=24)


def assign_jobs(long_jobs: Sequence[bool], world_size: int) -> list[tuple[int, ...]]:
    """The ranks of each pending job (``long_jobs[k]``: job k has more than one window).

    With at least as many jobs as ranks (or one rank), job k goes whole to rank k % world_size.
    With fewer jobs than ranks, job k gets ranks k, k + P, k + 2P, ... (P jobs) to split its
    windows if it is long, else rank k alone; ranks left over idle.
    """
    jobs = len(long_jobs)
    if world_size <= 1 or jobs >= world_size:
        return [(k % max(world_size, 1),) for k in range(jobs)]
    return [tuple(range(k, world_size, jobs)) if long else (k,) for k, long in enumerate(long_jobs)]


class Coordinator:
    """Small messages between the ranks of a batch over a gloo group (CPU objects, long timeout)."""

    def __init__(self, split: WindowSplit):
        self.rank, self.world_size = split.rank, split.world_size
        self.group = None
        if self.world_size > 1:
            import torch.distributed as dist

            self.group = dist.new_group(backend="gloo", timeout=COLLECTIVE_TIMEOUT)

    def broadcast(self, obj: Any, *, src: int = 0, group: Any = None) -> Any:
        """``obj`` of rank ``src`` (a global rank), on every rank of ``group`` (default: all)."""
        if self.world_size == 1:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=src, group=group if group is not None else self.group)
        return box[0]

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order."""
        if self.world_size == 1:
            return [obj]
        import torch.distributed as dist

        everyone: list[Any] = [None] * self.world_size
        dist.all_gather_object(everyone, obj, group=self.group)
        return everyone

    def split_for(self, ranks: tuple[int, ...]) -> tuple[WindowSplit | None, Any]:
        """The window split of a job run by ``ranks``, and a gloo group of them for small messages.

        Every rank must call it, for every job, in the same order. ``(None, None)`` on ranks
        outside ``ranks``; a job of one rank needs no process group (``(WindowSplit(), None)``).
        """
        if len(ranks) == 1:
            return (WindowSplit(), None) if self.rank == ranks[0] else (None, None)
        import torch.distributed as dist

        group = dist.new_group(ranks=list(ranks), timeout=COLLECTIVE_TIMEOUT)
        control = dist.new_group(ranks=list(ranks), backend="gloo", timeout=COLLECTIVE_TIMEOUT)
        if self.rank not in ranks:
            return None, None
        return WindowSplit(ranks.index(self.rank), len(ranks), group), control


def local_device() -> torch.device:
    """This rank's device: cuda:LOCAL_RANK when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        index = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")
