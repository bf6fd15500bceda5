"""Packing a weights folder for shipping: one self-contained release-layout folder, no duplicates.

A training run's ``weights/`` links untouched components to earlier runs, and after training
the UNet's spatial layers its ``temporal_attention.ckpt`` holds the whole UNet while
``stable-diffusion-v1-5/unet/`` keeps the starting (random) spatial weights. The packed folder
has real files only, the UNet's spatial weights in ``unet/``, only the motion modules in
``temporal_attention.ckpt`` (as released), and every floating tensor in one dtype.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from magicanimate.errors import WeightsError
from magicanimate.models.appearance_encoder import TRUNCATED_KEYS
from magicanimate.weights.build import build_temporal_unet, read_prediction_type, verify_components, write_prediction_type
from magicanimate.weights.layout import WeightPaths
from magicanimate.weights.state_dict import TRANSFORMERS_WEIGHT_NAMES, find_weight_file, read_state_dict

TOKENIZER_FILES = ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json")


def _cast(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Floating tensors in ``dtype`` (contiguous, CPU); integer buffers unchanged."""
    return {k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous() for k, v in state.items()}


def _write_folder(source: Path, target: Path, state: dict[str, torch.Tensor], weight_name: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / "config.json", target / "config.json")
    save_file(state, str(target / weight_name))


def pack_weights(source: str | Path, target: str | Path, *, dtype: torch.dtype = torch.float16) -> WeightPaths:
    """Write ``source`` (a release-layout folder) as a compact, self-contained folder at ``target``."""
    src = WeightPaths.release_layout(source).require_complete()
    target = Path(target)
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    out = WeightPaths.release_layout(tmp)

    out.tokenizer.mkdir(parents=True)
    for name in TOKENIZER_FILES:
        if (src.tokenizer / name).is_file():
            shutil.copyfile(src.tokenizer / name, out.tokenizer / name)
    text = read_state_dict(find_weight_file(src.text_encoder, TRANSFORMERS_WEIGHT_NAMES))
    text.pop("text_model.embeddings.position_ids", None)  # a constant arange, rebuilt by the model
    _write_folder(src.text_encoder, out.text_encoder, _cast(text, dtype), TRANSFORMERS_WEIGHT_NAMES[0])

    unet, _ = build_temporal_unet(src.unet, src.temporal_attention)  # spatial + motion, as inference merges them
    state = unet.state_dict()
    spatial = {k: v for k, v in state.items() if "motion_modules" not in k}
    motion = {k: v for k, v in state.items() if "motion_modules" in k}
    _write_folder(src.unet, out.unet, _cast(spatial, dtype), "diffusion_pytorch_model.safetensors")
    out.temporal_attention.parent.mkdir(parents=True)
    torch.save(_cast(motion, dtype), out.temporal_attention)

    if src.scheduler_config.is_file():  # the prediction type (v-prediction weights declare it there)
        write_prediction_type(out.scheduler_config.parent, read_prediction_type(src))

    for name in ("vae", "appearance_encoder", "controlnet"):
        folder = getattr(src, name)
        tensors = read_state_dict(find_weight_file(folder))
        if name == "appearance_encoder":
            tensors = {k: v for k, v in tensors.items() if k not in TRUNCATED_KEYS}
        _write_folder(folder, getattr(out, name), _cast(tensors, dtype), "diffusion_pytorch_model.safetensors")

    bad = [f"{name}: {detail}" for name, status, detail in verify_components(out) if status != "ok"]
    if bad:
        raise WeightsError("packed weights do not load:\n  " + "\n  ".join(bad))
    (tmp / "PACKED.json").write_text(json.dumps({"source": str(Path(source)), "dtype": str(dtype).split(".")[-1],
                                                 "bytes": folder_bytes(tmp)}, indent=2) + "\n")
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return WeightPaths.release_layout(target)


def folder_bytes(folder: str | Path) -> int:
    """Total size of the files under ``folder`` (links followed)."""
    return sum((Path(top) / name).stat().st_size for top, _, files in os.walk(folder, followlinks=True)
               for name in files)
