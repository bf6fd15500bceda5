"""Reading detectron2 model-zoo pickles (``{"model": {name: ndarray}, ...}``) without executing anything.

``pickle.load`` would call whatever callable a file names. ``NumpyOnlyUnpickler`` resolves only
the few globals that numpy arrays, numpy scalars and plain containers need; any other global
(``os.system``, ``subprocess.Popen``, ``builtins.eval``, ...) stops the load before it is called.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from magicanimate.weights.state_dict import check_state_dict
from magicanimate.errors import WeightsError

# Tensors detectron2 checkpoints of some versions carry that inference does not use
# (the input normalisation, fixed by the config).
IGNORED_KEYS = frozenset({"pixel_mean", "pixel_std"})


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The globals numpy pickles reference (numpy 1.x and 2.x module names) and plain containers."""
    import _codecs
    import collections

    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # protocol <= 2 pickles of Python 3 store bytes as _codecs.encode(str, "latin1")
        ("_codecs", "encode"): _codecs.encode,
        ("collections", "OrderedDict"): collections.OrderedDict,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    return allowed


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays/scalars, dicts, lists, strings and numbers, nothing else."""

    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        """The allowed global ``module.name``; anything else stops the load before it can be called."""
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed") from None

    def persistent_load(self, pid: Any) -> Any:
        """Refuse persistent ids (torch-style storages): model-zoo pickles have none."""
        raise pickle.UnpicklingError("persistent ids are not allowed")


def read_model_zoo_pickle(path: str | Path) -> dict[str, torch.Tensor]:
    """The float tensors of a detectron2 ``.pkl`` checkpoint, read with ``NumpyOnlyUnpickler``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"DensePose weight file not found: {path}")
    try:
        with open(path, "rb") as f:
            data = NumpyOnlyUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as err:
        what = "code" if "global" in str(err) else "pickled objects other than numpy arrays"
        raise WeightsError(f"{path} holds {what} ({err}) and will not be loaded: a detectron2 checkpoint "
                           "holds only numpy arrays, and nothing from this file was run") from err
    except Exception as err:  # truncated file, wrong format, ...
        raise WeightsError(f"cannot read DensePose weight file {path}: {type(err).__name__}: {err}") from err
    model = data.get("model") if isinstance(data, Mapping) else None
    if not isinstance(model, Mapping):
        raise WeightsError(f"{path} is not a detectron2 checkpoint (no 'model' dictionary of arrays)")
    tensors = {}
    for name, value in model.items():
        if name in IGNORED_KEYS:
            continue
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            raise WeightsError(f"{path}: entry '{name}' is not a float array ({type(value).__name__})")
        tensors[str(name)] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    return tensors


def expected_shapes() -> dict[str, torch.Size]:
    """Name -> shape of every tensor of ``DensePoseRCNN`` (built on the meta device: no memory, no init)."""
    from magicanimate.densepose.rcnn import DensePoseRCNN

    with torch.device("meta"):
        model = DensePoseRCNN()
    return {name: t.shape for name, t in model.state_dict().items()}


def check_densepose_weights(path: str | Path) -> Path:
    """Verify a DensePose checkpoint without building the model: safe to read, every key and shape right."""
    check_state_dict(expected_shapes(), read_model_zoo_pickle(path), str(path))
    return Path(path)


def load_checkpoint(module: nn.Module, path: str | Path) -> nn.Module:
    """Load a model-zoo pickle into ``module`` after checking every key and shape (errors name them)."""
    tensors = read_model_zoo_pickle(path)
    expected = {name: t.shape for name, t in module.state_dict().items()}
    check_state_dict(expected, tensors, str(path))
    module.load_state_dict(tensors, strict=True)
    return module
