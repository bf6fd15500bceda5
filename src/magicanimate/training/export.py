"""Writing trained weights in the release layout, so ``MagicAnimate.from_pretrained`` loads them.

    weights/
      stable-diffusion-v1-5/   linked or copied from the starting weights (untouched; unet/ written
                               when the run re-initialised the UNet at other widths)
      sd-vae-ft-mse/           linked or copied (untouched)
      MagicAnimate/
        appearance_encoder/    config.json + diffusion_pytorch_model.safetensors (without the
                               24 tensors the release omits)
        densepose_controlnet/  config.json + diffusion_pytorch_model.safetensors
        temporal_attention/temporal_attention.ckpt   torch.save of the motion-module state dict
                               (released key names; the whole UNet when training started
                               from a whole-UNet file)
Components that did not train and came from a file are linked/copied instead of rewritten.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import diffusers
import torch
from safetensors.torch import save_file
from torch import nn

from magicanimate.weights.build import read_prediction_type, write_prediction_type
from magicanimate.weights.layout import WeightPaths
from magicanimate.weights.state_dict import DIFFUSERS_WEIGHT_NAMES

SAFETENSORS = DIFFUSERS_WEIGHT_NAMES[0]


def _config_dict(model: nn.Module, class_name: str) -> dict[str, Any]:
    config = {k: v for k, v in dict(model.config).items() if not k.startswith("_")}
    return {"_class_name": class_name, "_diffusers_version": diffusers.__version__, **config}


def write_diffusers_folder(model: nn.Module, folder: Path, *, class_name: str,
                           state: dict[str, torch.Tensor] | None = None) -> None:
    """config.json + diffusion_pytorch_model.safetensors of ``model`` (or of ``state``)."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in (state or model.state_dict()).items()}
    save_file(tensors, str(folder / SAFETENSORS))
    (folder / "config.json").write_text(json.dumps(_config_dict(model, class_name), indent=2, default=list))


def motion_state_dict(unet: nn.Module, *, whole_unet: bool = False) -> dict[str, torch.Tensor]:
    """The tensors of temporal_attention.ckpt: the motion modules (or the whole temporal UNet)."""
    return {k: v.detach().to("cpu").clone() for k, v in unet.state_dict().items()
            if whole_unet or "motion_modules" in k}


def link_or_copy(source: Path, target: Path, mode: str) -> None:
    """Make ``target`` show ``source`` (file or folder): symlink, hardlink (files) or copy."""
    source = source.resolve()
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode == "symlink":
        try:
            target.symlink_to(source, target_is_directory=source.is_dir())
            return
        except OSError:  # e.g. Windows without the privilege: fall back to copying
            pass
    if mode == "hardlink":
        if source.is_dir():
            shutil.copytree(source, target, copy_function=_hardlink_or_copy)
        else:
            _hardlink_or_copy(str(source), str(target))
        return
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)


def _hardlink_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def export_release_layout(
    target: Path,
    *,
    pretrained: Path,
    unet: nn.Module,
    appearance_encoder: nn.Module,
    controlnet: nn.Module,
    state: dict[str, dict[str, torch.Tensor]],
    rewrite: dict[str, bool],
    sources: dict[str, Path | None],
    whole_unet: bool,
    link_mode: str,
    prediction_type: str = "epsilon",
    spatial_unet: nn.Module | None = None,
) -> Path:
    """Write a complete release-layout folder at ``target`` (replaced atomically).

    ``state[part]`` overrides the weights written for a part (the EMA weights); ``rewrite``
    says which parts are written from memory rather than linked from ``sources``. When the
    trained ``prediction_type`` is not what ``pretrained`` declares, the SD folder is written
    with its parts linked and a scheduler config that declares it; a ``spatial_unet`` (the run's
    own starting UNet, of other widths than ``pretrained``'s) is written as its unet/.
    """
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    ma = tmp / "MagicAnimate"
    link_or_copy(pretrained / "sd-vae-ft-mse", tmp / "sd-vae-ft-mse", link_mode)
    sd = tmp / "stable-diffusion-v1-5"
    new_scheduler = read_prediction_type(WeightPaths.release_layout(pretrained)) != prediction_type
    if not new_scheduler and spatial_unet is None:
        link_or_copy(pretrained / sd.name, sd, link_mode)
    else:
        written = {"scheduler"} if new_scheduler else set()
        written |= {"unet"} if spatial_unet is not None else set()
        for child in (pretrained / sd.name).resolve().iterdir():
            if child.name not in written:
                link_or_copy(child, sd / child.name, link_mode)
        if new_scheduler:
            write_prediction_type(sd / "scheduler", prediction_type)
        if spatial_unet is not None:
            write_diffusers_folder(spatial_unet, sd / "unet", class_name="UNet2DConditionModel")

    def part(name: str, folder: Path, write) -> None:
        if rewrite[name] or sources.get(name) is None:
            write()
        else:
            link_or_copy(sources[name], folder, link_mode)

    part("appearance_encoder", ma / "appearance_encoder", lambda: write_diffusers_folder(
        appearance_encoder, ma / "appearance_encoder", class_name="AppearanceEncoderModel",
        state=state.get("appearance_encoder")))
    part("controlnet", ma / "densepose_controlnet", lambda: write_diffusers_folder(
        controlnet, ma / "densepose_controlnet", class_name="ControlNetModel", state=state.get("controlnet")))
    ckpt = ma / "temporal_attention" / "temporal_attention.ckpt"

    def write_motion() -> None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        tensors = motion_state_dict(unet, whole_unet=whole_unet)
        tensors.update({k: v.detach().cpu() for k, v in state.get("unet", {}).items() if k in tensors})
        torch.save(tensors, ckpt)

    part("temporal_attention", ckpt, write_motion)
    return _replace(target, tmp)


def _replace(target: Path, tmp: Path) -> Path:
    """Move the finished folder ``tmp`` to ``target``, removing whatever was there."""
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target


def export_autoencoder_layout(target: Path, *, pretrained: Path, vae: nn.Module, link_mode: str) -> Path:
    """Write a release-layout folder at ``target`` whose sd-vae-ft-mse/ holds ``vae`` (stage 0).

    Every other component is linked or copied from ``pretrained``; replaced atomically.
    """
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    for name in ("stable-diffusion-v1-5", "MagicAnimate"):
        if (pretrained / name).exists():
            link_or_copy(pretrained / name, tmp / name, link_mode)
    write_diffusers_folder(vae, tmp / "sd-vae-ft-mse", class_name="AutoencoderKL")
    return _replace(target, tmp)
