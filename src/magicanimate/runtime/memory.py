"""How much memory a device has: the figure a size is checked against before loading weights."""

from __future__ import annotations

import os

import torch

from magicanimate.errors import InputError

# Plan as if the device had this many GiB (a shared GPU, leaving room for other processes; tests).
MEMORY_ENV = "MAGICANIMATE_DEVICE_MEMORY_GIB"
GIB = 2**30


def system_memory_bytes() -> int:
    """Physical memory of this machine (the CPU device's memory)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume no limit worth checking
        return 2**62


def device_memory_bytes(device: torch.device) -> int:
    """Total memory of ``device``: the GPU's own, system memory for the CPU; ``MAGICANIMATE_DEVICE_MEMORY_GIB`` overrides."""
    override = os.environ.get(MEMORY_ENV)
    if override:
        try:
            value = float(override)
        except ValueError:
            value = -1.0
        if not value > 0 or value == float("inf"):
            raise InputError(f"{MEMORY_ENV} must be a number of GiB above 0, got {override!r}")
        return int(value * GIB)
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    return system_memory_bytes()
