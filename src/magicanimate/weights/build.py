"""Building each model from its config and loading its released weights, strictly."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from diffusers import AutoencoderKL, ControlNetModel
from torch import nn

from magicanimate.weights.state_dict import (
    TRANSFORMERS_WEIGHT_NAMES, TemporalLoadReport, convert_legacy_vae_keys, expected_tensors,
    find_weight_file, load_strict, merge_temporal_checkpoint, read_state_dict, read_tensor_shapes,
)
from magicanimate.errors import WeightsError
from magicanimate.models.appearance_encoder import TRUNCATED_KEYS, AppearanceEncoder
from magicanimate.models.unet3d import TemporalUNet, TemporalUNetConfig
from magicanimate.weights.layout import PREDICTION_TYPES, WeightPaths

log = logging.getLogger(__name__)


def read_config(folder: Path) -> dict[str, Any]:
    """The config.json of a diffusers/transformers folder."""
    path = Path(folder) / "config.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsError(f"missing {path}") from None
    except json.JSONDecodeError as err:
        raise WeightsError(f"{path} is not valid JSON: {err}") from err


def read_prediction_type(paths: WeightPaths) -> str:
    """What the weights' denoiser predicts: the SD folder's scheduler config says; "epsilon" when it is absent.

    SD 2.x marks its v-prediction models there; SD 1.5 and the release predict the noise, so
    for them this is "epsilon" and sampling is unchanged. Nothing else in that file is read.
    """
    path = paths.scheduler_config
    if not path.is_file():
        return "epsilon"
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WeightsError(f"{path} is not a readable JSON scheduler config: {err}") from err
    value = config.get("prediction_type", "epsilon") if isinstance(config, dict) else None
    if value not in PREDICTION_TYPES:
        raise WeightsError(f"{path}: prediction_type {value!r} is not supported (one of {', '.join(PREDICTION_TYPES)})")
    return value


def write_prediction_type(folder: Path, prediction_type: str) -> Path:
    """Write ``folder``/scheduler_config.json declaring ``prediction_type`` (the rest is the release's DDIM)."""
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"unknown prediction type {prediction_type!r}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scheduler_config.json"
    path.write_text(json.dumps({"_class_name": "DDIMScheduler", "prediction_type": prediction_type,
                                "_note": "magicanimate reads only prediction_type; the betas are the release's"},
                               indent=2) + "\n")
    return path


@contextlib.contextmanager
def quiet_diffusers() -> Iterator[None]:
    """Silence diffusers' config-key and dtype-cast warnings (harmless for these models)."""
    from diffusers.utils import logging as dlog

    level = dlog.get_verbosity()
    dlog.set_verbosity_error()
    try:
        yield
    finally:
        dlog.set_verbosity(level)


def prepare_for_inference(module: nn.Module, *, device: torch.device | str, dtype: torch.dtype) -> nn.Module:
    """``module`` on ``device`` in ``dtype``, in eval mode, without gradients."""
    with quiet_diffusers():  # diffusers warns on every dtype cast of its models
        return module.to(device=device, dtype=dtype).eval().requires_grad_(False)


def _reader(check_only: bool):
    return read_tensor_shapes if check_only else read_state_dict


def build_temporal_unet(unet_dir: Path, temporal_ckpt: Path, *,
                        check_only: bool = False) -> tuple[TemporalUNet, TemporalLoadReport]:
    """The temporal UNet from SD 1.5's unet folder plus temporal_attention.ckpt (float32, CPU).

    ``check_only``: verify every key and shape without reading the tensor data (the model
    stays on the meta device). The same flag exists on every ``build_*`` function.
    """
    read = _reader(check_only)
    cfg = TemporalUNetConfig.from_unet_config(read_config(unet_dir))
    with torch.device("meta"), quiet_diffusers():
        unet = TemporalUNet(cfg)
    expected = expected_tensors(unet)
    spatial_file = find_weight_file(unet_dir)
    spatial = read(spatial_file)
    merged, report = merge_temporal_checkpoint(expected, spatial, read(temporal_ckpt), str(temporal_ckpt))
    load_strict(unet, merged, f"{spatial_file} + {temporal_ckpt}", check_only=check_only)
    return unet, report


def build_appearance_encoder(folder: Path, *, check_only: bool = False) -> AppearanceEncoder:
    """The truncated appearance encoder (the 24 unused tensors may be absent)."""
    with torch.device("meta"), quiet_diffusers():
        model = AppearanceEncoder.from_unet_config(read_config(folder))
    file = find_weight_file(folder)
    sd = {k: v for k, v in _reader(check_only)(file).items() if k not in TRUNCATED_KEYS}
    load_strict(model, sd, str(file), check_only=check_only)
    return model


def build_controlnet(folder: Path, *, check_only: bool = False) -> ControlNetModel:
    """The DensePose ControlNet (a standard diffusers ControlNet)."""
    cfg = {k: v for k, v in read_config(folder).items() if not k.startswith("_")}
    with torch.device("meta"), quiet_diffusers():
        model = ControlNetModel.from_config(cfg)
    file = find_weight_file(folder)
    load_strict(model, _reader(check_only)(file), str(file), check_only=check_only)
    return model


def build_vae(folder: Path, *, check_only: bool = False) -> AutoencoderKL:
    """The VAE (sd-vae-ft-mse in the release), accepting pre-0.14 attention key names."""
    cfg = {k: v for k, v in read_config(folder).items() if not k.startswith("_")}
    with torch.device("meta"), quiet_diffusers():
        model = AutoencoderKL.from_config(cfg)
    file = find_weight_file(folder)
    load_strict(model, convert_legacy_vae_keys(_reader(check_only)(file)), str(file), check_only=check_only)
    return model


def build_text_encoder(folder: Path, *, check_only: bool = False) -> nn.Module:
    """CLIP text encoder (transformers). Built on CPU: it has non-persistent buffers."""
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(**{k: v for k, v in read_config(folder).items() if not k.startswith("_")})
    with torch.device("meta" if check_only else "cpu"):
        model = CLIPTextModel(config)
    file = find_weight_file(folder, TRANSFORMERS_WEIGHT_NAMES)
    sd = _align_prefix(_reader(check_only)(file), set(expected_tensors(model)), "text_model.")
    sd.pop("embeddings.position_ids", None)  # older files persist this constant arange
    sd.pop("text_model.embeddings.position_ids", None)
    load_strict(model, sd, str(file), check_only=check_only)
    return model


def _align_prefix(sd: dict[str, Any], expected: set[str], prefix: str) -> dict[str, Any]:
    """Add or strip ``prefix`` so the file's keys use the model's naming.

    transformers 5 names CLIP text weights without the ``text_model.`` prefix that the
    released (transformers 4) files carry.
    """
    model_has = any(k.startswith(prefix) for k in expected)
    file_has = any(k.startswith(prefix) for k in sd)
    if model_has and not file_has:
        return {prefix + k: v for k, v in sd.items()}
    if file_has and not model_has:
        return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in sd.items()}
    return sd


def load_tokenizer(folder: Path):
    """The CLIP tokenizer of SD 1.5."""
    from transformers import CLIPTokenizer

    if not (Path(folder) / "vocab.json").is_file():
        raise WeightsError(f"tokenizer files not found in {folder} (vocab.json, merges.txt)")
    return CLIPTokenizer.from_pretrained(str(folder))


def verify_components(paths: WeightPaths) -> list[tuple[str, str, str]]:
    """(component, "ok" | "missing" | "mismatch", detail) for every component, reading no tensor data."""
    present = {line.split(":")[0] for line in paths.problems()}
    checks = [  # (row, the components it reads, check)
        ("tokenizer", ("tokenizer",), lambda: (load_tokenizer(paths.tokenizer), "vocab.json + merges.txt")[1]),
        ("text_encoder", ("text_encoder",), lambda: _count(build_text_encoder(paths.text_encoder, check_only=True))),
        ("vae", ("vae",), lambda: _count(build_vae(paths.vae, check_only=True))),
        ("unet + temporal_attention", ("unet", "temporal_attention"), lambda: _unet_detail(paths)),
        ("appearance_encoder", ("appearance_encoder",),
         lambda: _count(build_appearance_encoder(paths.appearance_encoder, check_only=True))),
        ("controlnet", ("controlnet",), lambda: _count(build_controlnet(paths.controlnet, check_only=True))),
        ("latent geometry", ("vae", "unet", "appearance_encoder", "controlnet"), lambda: check_latent_geometry(paths)),
        ("prediction type", ("unet",), lambda: _prediction_detail(paths)),
    ]
    results = []
    for name, parts, check in checks:
        if any(p in present for p in parts):
            detail = "; ".join(line for line in paths.problems() if line.split(":")[0] in parts)
            results.append((name, "missing", detail))
            continue
        try:
            results.append((name, "ok", check()))
        except WeightsError as err:
            results.append((name, "mismatch", str(err)))
    return results


def _prediction_detail(paths: WeightPaths) -> str:
    value = read_prediction_type(paths)
    source = paths.scheduler_config if paths.scheduler_config.is_file() else "no scheduler config: SD 1.5's"
    return f"{value} ({source})"


def check_latent_geometry(paths: WeightPaths) -> str:
    """Check that the VAE's latents are what the UNet, appearance encoder and ControlNet take:
    as many channels, and the ControlNet's conditioning embedding shrinks the pose as much as the VAE."""
    vae = read_config(paths.vae)
    channels = vae.get("latent_channels", 4)
    halvings = len(vae.get("block_out_channels", [0] * 4)) - 1
    wrong = []
    for name, folder, keys in (("unet", paths.unet, ("in_channels", "out_channels")),
                               ("appearance_encoder", paths.appearance_encoder, ("in_channels",)),
                               ("controlnet", paths.controlnet, ("in_channels",))):
        config = read_config(folder)
        wrong += [f"{name} {key} {config.get(key, 4)}" for key in keys if config.get(key, 4) != channels]
    if wrong:
        raise WeightsError(f"the vae makes {channels} latent channels but {', '.join(wrong)}: "
                           "these components do not belong together")
    embedding = read_config(paths.controlnet).get("conditioning_embedding_out_channels", [16, 32, 96, 256])
    if len(embedding) - 1 != halvings:
        raise WeightsError(f"the vae halves the picture {halvings} times but the controlnet's conditioning "
                           f"embedding {len(embedding) - 1} times: these components do not belong together")
    return f"{channels} channels at 1/{2 ** halvings} of the picture's side, as every denoiser part takes"


def _count(module: nn.Module) -> str:
    return f"{len(expected_tensors(module))} tensors, all keys and shapes match"


def _unet_detail(paths: WeightPaths) -> str:
    unet, report = build_temporal_unet(paths.unet, paths.temporal_attention, check_only=True)
    return f"{_count(unet)}; temporal_attention.ckpt applied as {report.path} ({report.loaded} tensors)"


@dataclass
class Components:
    """Every model MagicAnimate runs, on one device and dtype."""

    tokenizer: Any
    text_encoder: nn.Module
    vae: AutoencoderKL
    unet: TemporalUNet
    appearance_encoder: AppearanceEncoder
    controlnet: ControlNetModel
    temporal_report: TemporalLoadReport | None = None
    prediction_type: str = "epsilon"  # what the denoiser predicts (the scheduler's config)


def load_components(paths: WeightPaths, *, device: torch.device | str, dtype: torch.dtype) -> Components:
    """Load all components from ``paths`` (every tensor checked) onto ``device`` in ``dtype``."""
    paths.require_complete()
    check_latent_geometry(paths)
    prediction_type = read_prediction_type(paths)
    unet, report = build_temporal_unet(paths.unet, paths.temporal_attention)
    log.info("temporal UNet: %s", report.describe())
    return Components(
        tokenizer=load_tokenizer(paths.tokenizer),
        text_encoder=prepare_for_inference(build_text_encoder(paths.text_encoder), device=device, dtype=dtype),
        vae=prepare_for_inference(build_vae(paths.vae), device=device, dtype=dtype),
        unet=prepare_for_inference(unet, device=device, dtype=dtype),
        appearance_encoder=prepare_for_inference(build_appearance_encoder(paths.appearance_encoder), device=device, dtype=dtype),
        controlnet=prepare_for_inference(build_controlnet(paths.controlnet), device=device, dtype=dtype),
        temporal_report=report,
        prediction_type=prediction_type,
    )
