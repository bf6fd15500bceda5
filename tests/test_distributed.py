"""Windows split over two gloo processes give the single-process result."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from goldens import case_a, tiny_model
from magicanimate.runtime.distributed import WindowSplit


def _motion() -> np.ndarray:
    """40 DensePose frames (the fixture's 32, then its first 8 again)."""
    control = case_a("control")
    return np.concatenate([control, control[:8]])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        events = []
        result = tiny_model()(case_a("source_image"), _motion(), steps=2, size=64,
                              split=WindowSplit(rank, world), progress=events.append)
        np.save(os.path.join(out_dir, f"rank{rank}.npy"), result.frames)
        denoise = [e for e in events if e.stage == "denoise"]
        np.save(os.path.join(out_dir, f"windows{rank}.npy"), np.array(denoise[-1].total))
    finally:
        dist.destroy_process_group()


def test_two_processes_equal_one(tmp_path):
    torch.set_num_threads(1)
    single = tiny_model()(case_a("source_image"), _motion(), steps=2, size=64).frames
    mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, start_method="spawn")
    for rank in range(2):
        frames = np.load(tmp_path / f"rank{rank}.npy")
        assert frames.shape == single.shape == (40, 64, 64, 3)
        # Equal up to rounding: each rank batches a different set of frames through the
        # ControlNet (per-frame model); the fusion order is the single-process one.
        assert np.abs(frames - single).max() <= 5e-5  # measured 2.7e-6
    # 40 frames -> 48 padded -> 4 windows: each rank predicted 2 per step (x 2 steps)
    assert int(np.load(tmp_path / "windows0.npy")) == 4 and int(np.load(tmp_path / "windows1.npy")) == 4


def test_window_assignment_is_round_robin():
    assert WindowSplit(0, 2).local(5) == [0, 2, 4]
    assert WindowSplit(1, 2).local(5) == [1, 3]
    # one process: gather is the identity, no process group needed
    alone = {0: torch.zeros(1), 3: torch.ones(1)}
    assert WindowSplit(0, 1).gather(alone) is alone
    # two processes without an initialised group: torch.distributed's own error, not a silent partial result
    with pytest.raises(ValueError, match="process group has not been initialized"):
        WindowSplit(0, 2).gather({})
