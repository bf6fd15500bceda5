"""Device and dtype resolution: the one place that turns "auto", "cuda:1", "float16" into torch objects."""

from __future__ import annotations

import torch

from magicanimate.errors import InputError

DTYPE_NAMES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(name: str | torch.device | None) -> torch.device:
    """``None``/"auto" -> the default device; a name -> a checked ``torch.device``."""
    if name is None or name == "auto":
        return default_device()
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device {str(name)!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name} was asked for but no CUDA device is available")
    return device


def resolve_dtype(name: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``None``/"auto" -> float16 on CUDA, float32 elsewhere; a name -> the torch dtype."""
    if isinstance(name, torch.dtype):
        return name
    if name is None or name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if name not in DTYPE_NAMES:
        raise InputError(f"unknown dtype {name!r}: use auto, {', '.join(DTYPE_NAMES)}")
    return DTYPE_NAMES[name]


def resolve_device_dtype(device: str | torch.device | None,
                         dtype: str | torch.dtype | None) -> tuple[torch.device, torch.dtype]:
    """Both at once (see ``resolve_device`` and ``resolve_dtype``)."""
    dev = resolve_device(device)
    return dev, resolve_dtype(dtype, dev)
