"""Reading a public weight file and mapping every tensor of it onto one of our modules, strictly."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from magicanimate.errors import WeightsError

# BatchNorm counters are absent from files saved before PyTorch 0.4.1 (the 3D ResNet, 2017);
# they never affect inference, so a file may or may not carry them.
OPTIONAL_SUFFIXES = ("num_batches_tracked",)


@dataclass
class LoadReport:
    """What a strict load did: tensors copied and file keys deliberately left out."""

    loaded: int
    ignored: list[str] = field(default_factory=list)


def read_state_dict(path: str | Path, *, unwrap: tuple[str, ...] = ("state_dict",)) -> dict[str, torch.Tensor]:
    """Load a torch pickle safely (weights_only) and return its tensor dict, unwrapping e.g. {'state_dict': ...}."""
    try:
        obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"cannot read weight file {path}: {exc}") from exc
    for key in unwrap:
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path} does not hold a state dict (found {type(obj).__name__})")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError(f"{path} holds no tensors")
    return tensors


def load_mapped(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    rename: Callable[[str], str | None],
    what: str,
) -> LoadReport:
    """Copy every tensor of `state_dict` into `module` under `rename(key)` (None = documented as unused).

    Fails with WeightsError when a file key maps to nothing, when a module tensor receives
    nothing, or when shapes differ, so a wrong or truncated file can never load silently.
    """
    target = module.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    unexpected: list[str] = []
    for key, tensor in state_dict.items():
        new = rename(key)
        if new is None:
            ignored.append(key)
        elif new not in target:
            unexpected.append(key)
        elif new in mapped:
            raise WeightsError(f"{what}: two file keys map onto '{new}'")
        else:
            mapped[new] = tensor
    missing = [k for k in target if k not in mapped and not k.endswith(OPTIONAL_SUFFIXES)]
    if unexpected or missing:
        raise WeightsError(
            f"{what}: the weight file does not match the network "
            f"({len(missing)} missing, e.g. {missing[:3]}; {len(unexpected)} unexpected, e.g. {unexpected[:3]}); "
            "is it the documented file?"
        )
    bad = [(k, tuple(v.shape), tuple(target[k].shape)) for k, v in mapped.items() if v.shape != target[k].shape]
    if bad:
        raise WeightsError(f"{what}: shape mismatch for {len(bad)} tensors, e.g. {bad[:3]} (file, network)")
    with torch.no_grad():
        for name, tensor in mapped.items():
            target[name].copy_(tensor.to(target[name].dtype))
    return LoadReport(loaded=len(mapped), ignored=ignored)
