"""Loading detectron2 model-zoo pickles: only numpy arrays come out, and every key and shape is checked."""

from __future__ import annotations

import collections
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from densepose_goldens import densepose_weights  # noqa: F401

from magicanimate.densepose.safe_pickle import check_densepose_weights, load_checkpoint, read_model_zoo_pickle
from magicanimate.densepose.rcnn import DensePoseRCNN
from magicanimate.densepose.download import FILENAME, densepose_weights_path
from magicanimate.errors import WeightsError


class _CreatesFile:
    """A pickle payload: unpickling it calls os.system to create a file."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def _write(path: Path, model: dict, *, protocol: int = 2) -> Path:
    with open(path, "wb") as f:
        pickle.dump({"model": model, "__author__": "test"}, f, protocol=protocol)
    return path


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _write(tmp_path / "evil.pkl", {"weight": np.zeros(3, np.float32), "x": _CreatesFile(marker)})
    with pytest.raises(WeightsError, match="evil.pkl") as err:
        read_model_zoo_pickle(path)
    assert "system" in str(err.value) and "holds code" in str(err.value) and "will not be loaded" in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4])
def test_numpy_pickles_of_both_protocols_load_as_float32_tensors(tmp_path: Path, protocol: int) -> None:
    # detectron2 model-zoo files: protocol 2 (bytes as _codecs.encode), read with encoding="latin1"
    model = collections.OrderedDict(weight=np.arange(6, dtype=np.float32).reshape(3, 2),
                                    bias=np.ones(3, dtype=np.float64), pixel_mean=np.zeros(3, np.float32))
    tensors = read_model_zoo_pickle(_write(tmp_path / "ok.pkl", model, protocol=protocol))
    assert set(tensors) == {"weight", "bias"}  # pixel_mean/std of older files are documented as unused
    assert all(t.dtype == torch.float32 for t in tensors.values())
    layer = load_checkpoint(nn.Linear(2, 3), tmp_path / "ok.pkl")
    torch.testing.assert_close(layer.weight, torch.arange(6.0).reshape(3, 2))


def test_key_and_shape_errors_name_the_keys_and_the_file(tmp_path: Path) -> None:
    model = {"weight": np.zeros((3, 5), np.float32), "extra.thing": np.zeros(1, np.float32)}
    with pytest.raises(WeightsError) as err:
        load_checkpoint(nn.Linear(2, 3), _write(tmp_path / "bad.pkl", model))
    message = str(err.value)
    for text in ("bad.pkl", "extra.thing", "bias", "weight", "(3, 5)"):
        assert text in message


def test_non_array_entries_and_other_files_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not a float array"):
        read_model_zoo_pickle(_write(tmp_path / "s.pkl", {"weight": "hello"}))
    (tmp_path / "t.pkl").write_bytes(b"not a pickle")
    with pytest.raises(WeightsError, match="t.pkl"):
        read_model_zoo_pickle(tmp_path / "t.pkl")
    with pytest.raises(WeightsError, match="not found"):
        read_model_zoo_pickle(tmp_path / "missing.pkl")


def test_model_has_exactly_the_335_checkpoint_tensors() -> None:
    state = DensePoseRCNN().state_dict()
    assert len(state) == 335
    assert tuple(state["roi_heads.decoder.p5.4.weight"].shape) == (256, 256, 3, 3)
    assert tuple(state["roi_heads.densepose_predictor.index_uv_lowres.weight"].shape) == (512, 25, 4, 4)
    assert "backbone.bottom_up.res3.0.shortcut.norm.running_var" in state


def test_cached_path_error_says_how_to_download(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="download --densepose"):
        densepose_weights_path(tmp_path)
    assert densepose_weights_path(tmp_path, must_exist=False) == tmp_path / FILENAME


def test_check_densepose_weights_accepts_the_fixture_file_and_names_what_is_wrong(
    densepose_weights, tmp_path: Path  # noqa: F811
) -> None:
    assert check_densepose_weights(densepose_weights) == densepose_weights
    with pytest.raises(WeightsError) as err:
        check_densepose_weights(_write(tmp_path / "partial.pkl",
                                       {"backbone.fpn_lateral2.weight": np.zeros(3, np.float32)}))
    message = str(err.value)
    assert "partial.pkl" in message and "backbone.fpn_lateral2.weight (file (3,)" in message
    assert "334 in all" in message  # the missing ones, named (the list is shortened)
