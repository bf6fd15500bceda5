"""Starting weights of a training run: SD 1.5, the release, AnimateDiff v1, or a previous run.

Loading goes through ``magicanimate.weights.build`` and ``WeightPaths`` (the release layout);
every tensor is checked. Each trained component remembers the file it came from, so an
export can link untouched components instead of rewriting them.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import ControlNetModel, UNet2DConditionModel

from magicanimate.weights.state_dict import check_state_dict, expected_tensors, find_weight_file, merge_temporal_checkpoint, read_state_dict
from magicanimate.weights.build import (
    Components,
    quiet_diffusers,
    build_appearance_encoder, build_controlnet, build_text_encoder, build_vae, load_tokenizer, read_config,
)
from magicanimate.errors import InputError, WeightsError
from magicanimate.models.appearance_encoder import TRUNCATED_KEYS, AppearanceEncoder
from magicanimate.models.init import init_motion_modules_as_identity
from magicanimate.models.unet3d import TemporalUNet, TemporalUNetConfig
from magicanimate.weights.layout import WeightPaths
from magicanimate.training.config import ModelConfig, TrainConfig

log = logging.getLogger(__name__)


@dataclass
class StartingModels:
    """Every model of a run (CPU, float32), with where each trainable component came from."""

    models: Components
    paths: WeightPaths
    # Files/folders holding exactly the initial weights (None: built here, e.g. from the UNet).
    sources: dict[str, Path | None] = field(default_factory=dict)
    unet_spatial_from_checkpoint: bool = False  # temporal_attention.ckpt held a whole UNet
    # The random UNet built at model.unet_channels' widths: the export's stable-diffusion-v1-5/unet.
    fresh_spatial_unet: UNet2DConditionModel | None = None
    notes: list[str] = field(default_factory=list)


def _require(paths: WeightPaths, names: list[str]) -> None:
    problems = [p for p in paths.problems() if p.split(":")[0] in names]
    if problems:
        raise WeightsError("incomplete starting weights:\n  " + "\n  ".join(problems))


def _spatial_unet_weights(paths: WeightPaths) -> tuple[dict[str, Any], dict[str, torch.Tensor], Path]:
    config = read_config(paths.unet)
    file = find_weight_file(paths.unet)
    return config, read_state_dict(file), file


def widened_unet_config(unet_config: dict[str, Any], channels: list[int]) -> dict[str, Any]:
    """``unet_config`` with ``channels`` as its block widths (one per block)."""
    widths = unet_config["block_out_channels"]
    if len(channels) != len(widths):
        raise InputError(f"model.unet_channels has {len(channels)} widths; the starting UNet has "
                         f"{len(widths)} blocks ({widths})")
    return {**unet_config, "block_out_channels": list(channels)}


def fresh_spatial_unet(unet_config: dict[str, Any], channels: list[int], *, seed: int) -> UNet2DConditionModel:
    """A random SD 1.5 UNet like ``unet_config`` with ``channels`` as its block widths.

    Seeded as ``weights.random`` seeds its UNet, so it equals ``write_random_weights``' UNet of those
    widths for the same seed; the global random state is left as it was.
    """
    config = {k: v for k, v in widened_unet_config(unet_config, channels).items() if not k.startswith("_")}
    with torch.random.fork_rng(), quiet_diffusers():
        torch.manual_seed(seed)
        return UNet2DConditionModel(**config)


def build_unet(cfg: ModelConfig, paths: WeightPaths, unet_config: dict[str, Any],
               spatial: dict[str, torch.Tensor], spatial_file: Path) -> tuple[TemporalUNet, Path | None, bool, str]:
    """SD 1.5 UNet + motion modules from ``cfg.motion_modules``; (unet, source, whole-UNet ckpt, note)."""
    with quiet_diffusers():
        unet = TemporalUNet(TemporalUNetConfig.from_unet_config(unet_config))  # fresh motion modules
    expected = expected_tensors(unet)
    source = cfg.motion_modules
    if source == "zero":
        init_motion_modules_as_identity(unet)
        motion = {k: v for k, v in unet.state_dict().items() if "motion_modules" in k}
        merged, whole, file, note = {**spatial, **motion}, False, None, "motion modules: fresh (zero output layer)"
    else:
        file = paths.temporal_attention if source == "release" else Path(source)
        if not file.is_file():
            raise WeightsError(f"motion-module checkpoint not found: {file} (model.motion_modules={source!r})")
        checkpoint = read_state_dict(file)
        merged, report = merge_temporal_checkpoint(expected, spatial, checkpoint, str(file))
        raw = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else {}
        # A whole-UNet file (as released) also replaces the SD 1.5 spatial weights.
        whole = report.path == "whole-dict" and any("motion_modules" not in k for k in raw)
        note = f"motion modules: {report.describe()}"
    check_state_dict(expected, merged, f"{spatial_file} + motion modules ({source})")
    unet.load_state_dict(merged)
    return unet, file, whole, note


def build_appearance(cfg: ModelConfig, paths: WeightPaths, unet_config: dict[str, Any],
                     spatial: dict[str, torch.Tensor]) -> tuple[AppearanceEncoder, Path | None, str]:
    """Appearance encoder: a copy of the SD 1.5 UNet (truncated) or a released/previous one."""
    if cfg.appearance_encoder == "unet":
        with quiet_diffusers():
            model = AppearanceEncoder.from_unet_config(unet_config)
        sd = {k: v for k, v in spatial.items() if k not in TRUNCATED_KEYS}
        check_state_dict(expected_tensors(model), sd, "SD 1.5 UNet -> appearance encoder")
        model.load_state_dict(sd)
        return model, None, "appearance encoder: copy of the SD 1.5 UNet"
    folder = paths.appearance_encoder if cfg.appearance_encoder == "release" else Path(cfg.appearance_encoder)
    return build_appearance_encoder(folder), folder, f"appearance encoder: {folder}"


def build_control(cfg: ModelConfig, paths: WeightPaths, unet_config: dict[str, Any],
                  spatial: dict[str, torch.Tensor]) -> tuple[ControlNetModel, Path | None, str]:
    """DensePose ControlNet: from the SD 1.5 UNet (encoder copied, zero convolutions) or released/previous."""
    if cfg.controlnet == "unet":
        with quiet_diffusers():
            unet2d = UNet2DConditionModel.from_config({k: v for k, v in unet_config.items() if not k.startswith("_")})
            check_state_dict(expected_tensors(unet2d), spatial, "SD 1.5 UNet")
            unet2d.load_state_dict(spatial)
            model = ControlNetModel.from_unet(
                unet2d, conditioning_embedding_out_channels=tuple(cfg.controlnet_conditioning_channels))
        return model, None, "ControlNet: from the SD 1.5 UNet (ControlNetModel.from_unet)"
    folder = paths.controlnet if cfg.controlnet == "release" else Path(cfg.controlnet)
    return build_controlnet(folder), folder, f"ControlNet: {folder}"


def build_starting_models(cfg: ModelConfig, *, seed: int) -> StartingModels:
    """Load every model a run needs (CPU, float32); fresh layers are initialised from ``seed``."""
    paths = WeightPaths.release_layout(cfg.pretrained)
    if not Path(cfg.pretrained).is_dir():
        raise WeightsError(f"model.pretrained folder not found: {cfg.pretrained}")
    needed = ["tokenizer", "text_encoder", "unet", "vae"]
    needed += ["appearance_encoder"] if cfg.appearance_encoder == "release" else []
    needed += ["controlnet"] if cfg.controlnet == "release" else []
    needed += ["temporal_attention"] if cfg.motion_modules == "release" else []
    _require(paths, needed)
    for key in ("appearance_encoder", "controlnet"):
        value = getattr(cfg, key)
        if value not in ("unet", "release") and not Path(value).is_dir():
            raise WeightsError(f"model.{key}={value!r}: expected 'unet', 'release' or an existing folder")

    torch.manual_seed(seed)  # fresh layers (motion modules, ControlNet zero convs) equal on every process
    unet_config, spatial, spatial_file = _spatial_unet_weights(paths)
    fresh = fresh_spatial_unet(unet_config, cfg.unet_channels, seed=seed) if cfg.unet_channels else None
    if fresh is not None:
        unet_config = widened_unet_config(unet_config, cfg.unet_channels)
        spatial = fresh.state_dict()
    unet, unet_source, whole, unet_note = build_unet(cfg, paths, unet_config, spatial, spatial_file)
    appearance, appearance_source, appearance_note = build_appearance(cfg, paths, unet_config, spatial)
    controlnet, controlnet_source, controlnet_note = build_control(cfg, paths, unet_config, spatial)
    del spatial
    models = Components(tokenizer=load_tokenizer(paths.tokenizer), text_encoder=build_text_encoder(paths.text_encoder),
                        vae=build_vae(paths.vae), unet=unet, appearance_encoder=appearance, controlnet=controlnet)
    return StartingModels(
        models=models,
        paths=paths,
        sources={"temporal_attention": unet_source, "appearance_encoder": appearance_source,
                 "controlnet": controlnet_source},
        unet_spatial_from_checkpoint=whole,
        fresh_spatial_unet=fresh,
        notes=[unet_note, appearance_note, controlnet_note]
        + ([f"UNet: random, block widths {cfg.unet_channels} (model.unet_channels)"] if fresh is not None else []),
    )


RANDOM_PREFIX = "random:"


def resolve_pretrained(pretrained: str, output: Path, *, seed: int, write: bool = True) -> Path:
    """The folder of ``model.pretrained``; 'random:SIZE' writes random weights once into OUTPUT/random_init.

    The folder is written by one process (``write``) and reused when it is already complete,
    so a resumed run starts from the same random weights (they depend only on ``seed``).
    """
    if not pretrained.startswith(RANDOM_PREFIX):
        return Path(pretrained)
    from magicanimate.weights.random import SIZES, write_random_weights

    name = pretrained[len(RANDOM_PREFIX):]
    if name not in SIZES:
        raise InputError(f"model.pretrained={pretrained!r}: unknown size {name!r}; known: {', '.join(sorted(SIZES))}")
    folder = output / "random_init"
    if write and (WeightPaths.release_layout(folder).problems() or not (folder / ".complete").is_file()):
        tmp = output / "random_init.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        write_random_weights(tmp, SIZES[name], seed=seed)
        (tmp / ".complete").write_text(f"{pretrained} seed {seed}\n")
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    return folder


def check_before_run(cfg: TrainConfig) -> None:
    """What can be checked before the run folder is made: starting weights, stage, schedule name."""
    from diffusers.optimization import SchedulerType

    check_trainable_for_stage(cfg.stage, cfg.model.trainable)
    pretrained = cfg.model.pretrained
    if pretrained.startswith(RANDOM_PREFIX):
        from magicanimate.weights.random import SIZES

        name = pretrained[len(RANDOM_PREFIX):]
        if name not in SIZES:
            raise InputError(f"model.pretrained={pretrained!r}: unknown size {name!r}; known: {', '.join(sorted(SIZES))}")
    elif not Path(pretrained).is_dir():
        raise WeightsError(f"model.pretrained folder not found: {pretrained}")
    schedules = [t.value for t in SchedulerType]
    if cfg.optim.lr_scheduler not in schedules:
        raise InputError(f"optim.lr_scheduler must be one of {', '.join(schedules)}, got {cfg.optim.lr_scheduler!r}")


def check_trainable_for_stage(stage: int, trainable: list[str]) -> None:
    """Stage 1 bypasses the motion modules, so they cannot train there."""
    if stage == 1 and any("motion_modules" in name for name in trainable):
        raise InputError("stage 1 bypasses the motion modules (single frames): remove them from model.trainable")
