"""Resumable training checkpoints: trained parameters, optimiser, schedule, EMA, RNG, step.

    checkpoints/step_000500/
      trainable.safetensors   the trained parameters only (frozen weights come from the config)
      optimizer.pt            optimiser state (AdamW moments)
      scheduler.pt            learning-rate schedule state
      scaler.pt               fp16 loss-scaler state (fp16 runs only)
      ema.pt                  EMA shadow weights (EMA runs only)
      rng_rank{r}.pt          Python, NumPy and torch RNG states of each process (as tensors)
      state.json              step, elapsed time, config

Every ``.pt`` file holds only tensors and plain values and is read with
``torch.load(weights_only=True)``: a run folder from elsewhere cannot run code on resume
(a file that would is refused, see ``weights.state_dict.load_plain_torch_file``).

Data order, noise and timesteps are functions of (seed, step), so the state above is all a
run needs to continue exactly where it stopped.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from magicanimate.errors import InputError
from magicanimate.weights.state_dict import load_plain_torch_file

_STEP_DIR = re.compile(r"^step_(\d+)$")


@dataclass
class TrainingState:
    """What a checkpoint restores besides tensors."""

    step: int
    elapsed_seconds: float


def checkpoint_dir(root: Path, step: int) -> Path:
    """Folder of the checkpoint at ``step``."""
    return root / "checkpoints" / f"step_{step:06d}"


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoint folders under ``root/checkpoints``, oldest first."""
    folder = root / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir()
             if (m := _STEP_DIR.match(p.name)) and (p / "state.json").is_file()]
    return [p for _, p in sorted(found)]


def resolve_resume(resume: str, output: Path) -> Path | None:
    """'latest' (None when there is none yet), or a checkpoint folder."""
    if resume == "latest":
        found = list_checkpoints(output)
        return found[-1] if found else None
    path = Path(resume)
    if not (path / "state.json").is_file():
        raise InputError(f"--resume {resume}: not a checkpoint folder (no state.json); "
                         f"use 'latest' or a folder like {output}/checkpoints/step_000500")
    return path


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states of this process, as tensors and plain values."""
    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": torch.tensor(words, dtype=torch.int64), "gauss": gauss},
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore ``rng_state``."""
    py, npy = state["python"], state["numpy"]
    random.setstate((py["version"], tuple(int(w) for w in py["state"].tolist()), py["gauss"]))
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(folder: Path, *, trainable: dict[str, torch.Tensor], optimizer: Any, scheduler: Any,
                    scaler: Any, ema: Any, state: TrainingState, config: dict[str, Any]) -> None:
    """Write a checkpoint (main process; written to a temporary folder, then renamed)."""
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in trainable.items()}, str(tmp / "trainable.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    if scaler is not None:
        torch.save(scaler.state_dict(), tmp / "scaler.pt")
    if ema is not None:
        torch.save(ema.state_dict(), tmp / "ema.pt")
    (tmp / "state.json").write_text(json.dumps(
        {"step": state.step, "elapsed_seconds": state.elapsed_seconds, "config": config}, indent=2))
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)


def save_rng(folder: Path, rank: int) -> None:
    """This process's RNG states into a checkpoint folder (every process, after the main one wrote it)."""
    torch.save(rng_state(), folder / f"rng_rank{rank}.pt")


def load_checkpoint(folder: Path, *, named_params: dict[str, torch.nn.Parameter], optimizer: Any,
                    scheduler: Any, scaler: Any, ema: Any, rank: int) -> TrainingState:
    """Restore everything ``save_checkpoint`` wrote (and this rank's RNG) into the live objects."""
    tensors = load_file(str(folder / "trainable.safetensors"))
    if set(tensors) != set(named_params):
        extra, missing = set(tensors) - set(named_params), set(named_params) - set(tensors)
        raise InputError(f"checkpoint {folder} was written with other trainable parameters "
                         f"({len(missing)} missing, {len(extra)} unexpected, e.g. "
                         f"{sorted(missing or extra)[:3]}); resume with the same model.trainable")
    with torch.no_grad():
        for name, param in named_params.items():
            param.copy_(tensors[name].to(param.dtype))
    optimizer.load_state_dict(load_plain_torch_file(folder / "optimizer.pt"))
    scheduler.load_state_dict(load_plain_torch_file(folder / "scheduler.pt"))
    if scaler is not None and (folder / "scaler.pt").is_file():
        scaler.load_state_dict(load_plain_torch_file(folder / "scaler.pt"))
    if ema is not None:
        if not (folder / "ema.pt").is_file():
            raise InputError(f"checkpoint {folder} has no EMA state but ema.enabled is true")
        ema.load_state_dict(load_plain_torch_file(folder / "ema.pt"))
    rng_file = folder / f"rng_rank{rank}.pt"
    if rng_file.is_file():
        set_rng_state(load_plain_torch_file(rng_file))
    meta = json.loads((folder / "state.json").read_text())
    return TrainingState(step=int(meta["step"]), elapsed_seconds=float(meta["elapsed_seconds"]))


def prune_checkpoints(root: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (keep = 0: keep all)."""
    if keep <= 0:
        return
    for folder in list_checkpoints(root)[:-keep]:
        shutil.rmtree(folder, ignore_errors=True)
