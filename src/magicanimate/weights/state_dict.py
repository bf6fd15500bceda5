"""Reading weight files and mapping every tensor onto a model, strictly: one framework for every model.

Every load checks with ``check_state_dict``: a key the model does not know, a tensor the
file does not provide or a shape mismatch raises ``WeightsError`` naming the keys and the
file. ``load_strict`` loads files whose keys are the model's (the MagicAnimate
components); ``load_mapped`` renames the keys of a public file first (the metric
networks). ``merge_temporal_checkpoint`` reproduces how the release applies
``temporal_attention.ckpt``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import nn

from magicanimate.errors import WeightsError

log = logging.getLogger(__name__)

DIFFUSERS_WEIGHT_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
TRANSFORMERS_WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")


def find_weight_file(folder: Path, names: Iterable[str] = DIFFUSERS_WEIGHT_NAMES) -> Path:
    """The first existing weight file of ``names`` in ``folder`` (safetensors preferred)."""
    names = tuple(names)
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise WeightsError(f"no weight file in {folder}: expected one of {', '.join(names)}")


def read_state_dict(path: str | Path, *, unwrap: tuple[str, ...] = ()) -> dict[str, Any]:
    """Load a .safetensors file or a torch pickle (``weights_only=True``) onto the CPU.

    ``unwrap``: keys of a wrapping mapping to descend into, e.g. ``("state_dict",)``.
    """
    path = Path(path)
    obj = _read(path)
    for key in unwrap:
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path} does not hold a state dict (found {type(obj).__name__})")
    return dict(obj)


def tensors_only(state_dict: Mapping[str, Any], source: str | Path) -> dict[str, torch.Tensor]:
    """The tensor entries of a state dict (files may carry counters or metadata); at least one."""
    tensors = {k: v for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError(f"{source} holds no tensors")
    return tensors


def load_plain_torch_file(path: str | Path, *, mmap: bool = False) -> Any:
    """A torch file's tensors and plain values, read with ``weights_only=True``: never code.

    A pickle that would import or call anything else is refused in our words (torch's own
    text suggests switching ``weights_only`` off, which would run it).
    """
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        found = _CODE_IN_PICKLE.search(str(err))
        if found or _pickle_makes_calls(Path(path)):
            what = f"a pickled call of {found.group(1)}" if found else "pickled calls"
            raise WeightsError(f"{path} holds code ({what}) and will not be loaded; "
                               "only tensors and plain values are read") from None
        raise WeightsError(f"cannot read weight file {path}: not a torch file of tensors and plain values "
                           "(corrupt or truncated)") from None
    except RuntimeError as err:
        if mmap and "mmap" in str(err):
            raise  # a legacy (non-zip) file: the caller reads it again without mmap
        first_line = str(err).split(". ")[0]
        raise WeightsError(f"cannot read weight file {path}: corrupt or truncated ({first_line})") from None


_CODE_IN_PICKLE = re.compile(r"(?:GLOBAL|global:?|function) ([\w.]+)")
_CALL_OPCODES = {"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"}


def _pickle_makes_calls(path: Path) -> bool:
    """Whether the pickle in ``path`` (plain, or a torch zip's data.pkl) imports or calls anything.

    Only read when torch refused the file, to tell code from corruption; ``pickletools``
    walks the opcodes without executing any of them.
    """
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith("data.pkl")]
                data = archive.read(names[0]) if names else b""
        else:
            data = path.read_bytes()
        return any(op.name in _CALL_OPCODES for op, _, _ in pickletools.genops(data))
    except Exception:  # noqa: BLE001 - not a readable pickle at all: corruption, not code
        return False


def _read(path: Path) -> Any:
    """The object stored in a weight file."""
    if not path.is_file():
        raise WeightsError(f"weight file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        try:  # zip-format checkpoints are memory-mapped: a 5 GB file need not be read at once
            return load_plain_torch_file(path, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            return load_plain_torch_file(path)
    except WeightsError:
        raise
    except Exception as err:  # corrupt, truncated, or a pickle with non-tensor objects
        raise WeightsError(f"cannot read weight file {path}: {err}") from err


def read_tensor_shapes(path: Path) -> dict[str, Any]:
    """Like ``read_state_dict`` but with meta tensors (shapes only, no data read)."""
    path = Path(path)
    if path.suffix == ".safetensors" and path.is_file():
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                return {k: torch.empty(f.get_slice(k).get_shape(), device="meta") for k in f.keys()}
        except Exception as err:
            raise WeightsError(f"cannot read weight file {path}: {err}") from err
    return _to_meta(read_state_dict(path))


def _to_meta(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return torch.empty(obj.shape, device="meta")
    if isinstance(obj, Mapping):
        return {k: _to_meta(v) for k, v in obj.items()}
    return obj


def _names(keys: Iterable[str], limit: int = 8) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", … ({len(keys)} in all)" if len(keys) > limit else "")


def expected_tensors(module: nn.Module) -> dict[str, torch.Size]:
    """Names and shapes of everything a state dict must provide (parameters + persistent buffers)."""
    return {k: v.shape for k, v in module.state_dict(keep_vars=True).items()}


def check_state_dict(
    expected: Mapping[str, torch.Size],
    state_dict: Mapping[str, Any],
    source: str,
    *,
    allow_missing: Iterable[str] = (),
) -> None:
    """Raise ``WeightsError`` unless ``state_dict`` maps exactly onto ``expected``."""
    allow_missing = set(allow_missing)
    problems = []
    unexpected = set(state_dict) - set(expected)
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (keys the model does not know): {_names(unexpected)}")
    missing = set(expected) - set(state_dict) - allow_missing
    if missing:
        problems.append(f"{len(missing)} missing (model tensors the file does not provide): {_names(missing)}")
    mismatched = [
        f"{k} (file {tuple(state_dict[k].shape)}, model {tuple(expected[k])})"
        for k in sorted(set(state_dict) & set(expected))
        if not isinstance(state_dict[k], torch.Tensor) or tuple(state_dict[k].shape) != tuple(expected[k])
    ]
    if mismatched:
        problems.append(f"shape mismatch for {len(mismatched)} tensors: {_names(mismatched)}")
    if problems:
        raise WeightsError(f"{source} does not match the model: " + "; ".join(problems))


def load_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str, *,
                allow_missing: Iterable[str] = (), check_only: bool = False) -> nn.Module:
    """Check, then load ``state_dict`` into ``module`` (built on the meta device or not).

    With ``check_only`` the module is left as it is (for verifying files without loading).
    """
    check_state_dict(expected_tensors(module), state_dict, source, allow_missing=allow_missing)
    if check_only:
        return module
    module.load_state_dict(state_dict, strict=False, assign=True)
    left = [n for n, t in list(module.named_parameters()) + list(module.named_buffers()) if t.is_meta]
    if left:
        raise WeightsError(f"{source}: tensors left uninitialised after loading: {_names(left)}")
    return module


# BatchNorm counters are absent from files saved before PyTorch 0.4.1 (the 3D ResNet, 2017);
# they never affect inference, so a file may or may not carry them.
OPTIONAL_SUFFIXES = ("num_batches_tracked",)


@dataclass
class LoadReport:
    """What a mapped load did: tensors copied and file keys deliberately left out."""

    loaded: int
    ignored: list[str] = field(default_factory=list)


def load_mapped(module: nn.Module, state_dict: Mapping[str, torch.Tensor], *,
                rename: Callable[[str], str | None], what: str) -> LoadReport:
    """Copy every tensor of ``state_dict`` into ``module`` under ``rename(key)`` (None = documented as unused).

    Strict as ``load_strict`` (``check_state_dict``): a file key that maps to nothing, a module
    tensor that receives nothing (BatchNorm counters aside) or a shape mismatch raises
    ``WeightsError``, so a wrong or truncated file can never load silently.
    """
    mapped: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for key, tensor in state_dict.items():
        new = rename(key)
        if new is None:
            ignored.append(key)
        elif new in mapped:
            raise WeightsError(f"{what}: two file keys map onto '{new}'")
        else:
            mapped[new] = tensor
    target = module.state_dict()
    optional = [k for k in target if k.endswith(OPTIONAL_SUFFIXES)]
    try:
        check_state_dict({k: v.shape for k, v in target.items()}, mapped, what, allow_missing=optional)
    except WeightsError as err:
        raise WeightsError(f"{err}; is it the documented file?") from None
    with torch.no_grad():
        for name, tensor in mapped.items():
            target[name].copy_(tensor.to(target[name].dtype))
    return LoadReport(loaded=len(mapped), ignored=ignored)


# ---------------------------------------------------------------------------------------
# Legacy key names
# ---------------------------------------------------------------------------------------

_LEGACY_VAE_ATTENTION = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


def convert_legacy_vae_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the VAE mid-block attention keys of pre-0.14 diffusers files (query → to_q, …)."""
    out = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if ".mid_block.attentions." in key and len(parts) >= 2 and parts[-2] in _LEGACY_VAE_ATTENTION:
            key = ".".join(parts[:-2] + [_LEGACY_VAE_ATTENTION[parts[-2]], parts[-1]])
            if value.ndim == 4:  # old 1x1 conv form of a linear layer
                value = value[:, :, 0, 0]
        out[key] = value
    return out


# ---------------------------------------------------------------------------------------
# temporal_attention.ckpt, applied as the release applies it
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemporalLoadReport:
    """How temporal_attention.ckpt was applied."""

    path: str  # "whole-dict" or "motion-modules-only"
    loaded: int  # tensors taken from the file
    ignored: int  # tensors in the file the release also ignores (fallback path only)
    source: str

    def describe(self) -> str:
        """One line for the log."""
        if self.path == "whole-dict":
            return f"{self.source}: loaded all {self.loaded} tensors of the file into the temporal UNet"
        return (f"{self.source}: the whole dict did not fit the temporal UNet, so (as the release does) "
                f"only its {self.loaded} motion-module tensors were loaded; {self.ignored} others ignored")


def _strip_module_prefix(key: str) -> str:
    # The release keeps the text after the last "module." of keys that start with it.
    return key.split("module.")[-1] if key.startswith("module.") else key


def merge_temporal_checkpoint(
    expected: Mapping[str, torch.Size],
    base: Mapping[str, torch.Tensor],
    checkpoint: Any,
    source: str,
) -> tuple[dict[str, torch.Tensor], TemporalLoadReport]:
    """Overlay ``temporal_attention.ckpt`` on the SD 1.5 UNet weights, deciding as the release.

    1. Take ``checkpoint['state_dict']`` if present; strip a leading ``module.`` from keys.
    2. If every key is a known temporal-UNet tensor of the right shape, load them all (a
       file holding the whole fine-tuned UNet replaces the SD 1.5 spatial weights too).
    3. Otherwise keep only keys containing ``motion_modules`` (from the dict of step 1),
       strip a leading ``unet.``, and load those; an unknown key among them is an error.
    The merged dict must then cover the model exactly (checked by the caller).
    """
    if not isinstance(checkpoint, Mapping):
        raise WeightsError(f"{source} is not a state dict (found {type(checkpoint).__name__})")
    raw = checkpoint["state_dict"] if "state_dict" in checkpoint else checkpoint
    if not isinstance(raw, Mapping):
        raise WeightsError(f"{source}: 'state_dict' is not a dict")
    stripped = {_strip_module_prefix(k): v for k, v in raw.items()}

    def fits(key: str, value: Any) -> bool:
        return key in expected and isinstance(value, torch.Tensor) and tuple(value.shape) == tuple(expected[key])

    if all(fits(k, v) for k, v in stripped.items()):
        report = TemporalLoadReport("whole-dict", len(stripped), 0, source)
        merged = {**base, **stripped}
    else:
        motion = {}
        for key, value in stripped.items():
            if "motion_modules" in key:
                motion[key[len("unet."):] if key.startswith("unet.") else key] = value
        bad = [k for k, v in motion.items() if not fits(k, v)]
        if bad:
            raise WeightsError(f"{source}: motion-module tensors that do not fit the temporal UNet: {_names(bad)}")
        if not motion:
            raise WeightsError(f"{source} holds no motion-module tensors (keys like "
                               f"'down_blocks.0.motion_modules.0.…'); is it the right file?")
        report = TemporalLoadReport("motion-modules-only", len(motion), len(stripped) - len(motion), source)
        merged = {**base, **motion}
    log.info(report.describe())
    return merged, report
