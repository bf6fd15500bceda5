"""Files a user hands us never run code: resume checkpoints and weights load with weights_only=True."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from magicanimate.cli.main import main
from magicanimate.errors import WeightsError
from magicanimate.training.checkpoint import TrainingState, load_checkpoint, save_checkpoint, save_rng
from magicanimate.training.ema import EMA
from magicanimate.weights.state_dict import read_state_dict

SRC = Path(__file__).resolve().parents[1] / "src" / "magicanimate"
ALLOWED_UNPICKLER = SRC / "densepose" / "safe_pickle.py"


class _Payload:
    """Pickles as a call of os.system that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _tiny_training_state(seed: int):
    torch.manual_seed(seed)
    param = torch.nn.Parameter(torch.randn(4))
    optimizer = torch.optim.AdamW([param], lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 3))
    param.grad = torch.ones(4)
    optimizer.step()
    scheduler.step()
    return param, optimizer, scheduler, EMA([("w", param)], decay=0.9)


def _write_checkpoint(folder: Path) -> None:
    param, optimizer, scheduler, ema = _tiny_training_state(0)
    ema.update()
    save_checkpoint(folder, trainable={"w": param}, optimizer=optimizer, scheduler=scheduler, scaler=None,
                    ema=ema, state=TrainingState(step=1, elapsed_seconds=2.0), config={})
    save_rng(folder, 0)


def test_resume_restores_every_state_with_weights_only(tmp_path):
    folder = tmp_path / "step_000001"
    random.seed(5), np.random.seed(6), torch.manual_seed(7)
    np.random.normal()  # a cached Gaussian in NumPy's state
    _write_checkpoint(folder)  # reseeds torch; Python and NumPy states are the ones above
    expected = (random.random(), np.random.normal(), np.random.random())
    param, optimizer, scheduler, ema = _tiny_training_state(1)
    state = load_checkpoint(folder, named_params={"w": param}, optimizer=optimizer, scheduler=scheduler,
                            scaler=None, ema=ema, rank=0)
    assert state.step == 1 and (random.random(), np.random.normal(), np.random.random()) == expected
    for name in ["optimizer.pt", "scheduler.pt", "ema.pt", "rng_rank0.pt"]:
        torch.load(folder / name, weights_only=True)  # plain tensors and values only


@pytest.mark.parametrize("name", ["optimizer.pt", "scheduler.pt", "ema.pt", "rng_rank0.pt"])
def test_resume_refuses_a_checkpoint_file_that_holds_code(tmp_path, name):
    folder = tmp_path / "step_000001"
    _write_checkpoint(folder)
    marker = tmp_path / "payload_ran"
    torch.save({"state": _Payload(marker)}, folder / name)
    param, optimizer, scheduler, ema = _tiny_training_state(1)
    with pytest.raises(WeightsError, match=r"holds code .* and will not be loaded") as err:
        load_checkpoint(folder, named_params={"w": param}, optimizer=optimizer, scheduler=scheduler,
                        scaler=None, ema=ema, rank=0)
    assert "weights_only" not in str(err.value) and "\n" not in str(err.value)
    assert not marker.exists()


def test_train_resume_from_a_crafted_optimizer_file_is_one_error_line(tmp_path, capsys, monkeypatch):
    """The real command: `train --resume FOLDER` with a crafted optimizer.pt fails before running it."""
    folder = tmp_path / "run" / "checkpoints" / "step_000001"
    _write_checkpoint(folder)
    marker = tmp_path / "payload_ran"
    torch.save({"state": _Payload(marker)}, folder / "optimizer.pt")
    before = (folder / "optimizer.pt").read_bytes()

    def resume_only(cfg, *, resume):  # the trainer's resume step, without building the networks
        param, optimizer, scheduler, ema = _tiny_training_state(1)
        load_checkpoint(Path(resume), named_params={"w": param}, optimizer=optimizer, scheduler=scheduler,
                        scaler=None, ema=ema, rank=0)

    monkeypatch.setattr("magicanimate.training.train", resume_only)
    code = main(["train", "--stage", "2", "--output", str(tmp_path / "run"), "--resume", str(folder)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "holds code" in err[0] and "will not be loaded" in err[0]
    assert not marker.exists() and (folder / "optimizer.pt").read_bytes() == before


def test_weights_file_that_holds_code_is_refused_in_our_words(tmp_path):
    marker = tmp_path / "payload_ran"
    bad = tmp_path / "temporal_attention.ckpt"
    torch.save({"w": torch.ones(1), "x": _Payload(marker)}, bad)
    with pytest.raises(WeightsError, match=r"holds code \(a pickled call of \S*system\) and will not be loaded"):
        read_state_dict(bad)
    assert not marker.exists()


UNSAFE = {
    "torch.load without weights_only=True": re.compile(r"torch\.load\((?![^)]*weights_only=True)"),
    "pickle.load": re.compile(r"\bpickle\.loads?\("),
    "allow_pickle=True": re.compile(r"allow_pickle\s*=\s*True"),
    "unsafe YAML": re.compile(r"yaml\.(?:load|unsafe_load|full_load|load_all)\(|yaml\.(?:Unsafe|Full)?Loader\b"),
    "weights_only=False": re.compile(r"weights_only\s*=\s*False"),
}


def test_no_unsafe_deserialisation_anywhere_in_src():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path == ALLOWED_UNPICKLER:
            continue
        text = path.read_text()
        for what, pattern in UNSAFE.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(SRC)}:{line}: {what}")
    assert found == []
