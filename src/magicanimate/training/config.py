"""Training configuration: dataclasses are the schema; YAML files and ``--set`` only fill them.

Every field carries its documentation in ``metadata["help"]``; ``describe_fields`` turns it
into the CLI help and the table of docs/training.md, so names cannot drift.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from magicanimate.errors import InputError
from magicanimate.weights.layout import PREDICTION_TYPES


def opt(default: Any, help: str) -> Any:  # noqa: A002 - the natural name here
    """A dataclass field with a default and its one-line documentation."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help})
    return field(default=default, metadata={"help": help})


def nested(cls: type) -> Any:
    """A field holding a sub-config dataclass."""
    return field(default_factory=cls, metadata={"help": cls.__doc__.splitlines()[0] if cls.__doc__ else ""})


# ---------------------------------------------------------------------------------------
# The schema
# ---------------------------------------------------------------------------------------


@dataclass
class ModelConfig:
    """Starting weights and which parameters train."""

    pretrained: str = opt("pretrained_models", "folder in the release layout holding stable-diffusion-v1-5/ "
                          "and sd-vae-ft-mse/ (and MagicAnimate/ when 'release' sources are used), or "
                          "'random:SIZE' (tiny, mini, small, sd15): random weights of that size, written "
                          "once into OUTPUT/random_init (training from scratch)")
    appearance_encoder: str = opt("unet", "appearance encoder init: 'unet' (copy of the SD 1.5 UNet), "
                                  "'release' (pretrained/MagicAnimate/appearance_encoder) or a folder")
    controlnet: str = opt("unet", "DensePose ControlNet init: 'unet' (ControlNetModel.from_unet, as in the "
                          "ControlNet paper), 'release' (pretrained/MagicAnimate/densepose_controlnet) or a folder")
    motion_modules: str = opt("zero", "motion-module init: 'zero' (fresh, output layer zeroed: identity), "
                              "'release' (pretrained/MagicAnimate/temporal_attention/temporal_attention.ckpt) or a "
                              "file: an AnimateDiff v1 motion-module checkpoint or a temporal_attention.ckpt")
    controlnet_conditioning_channels: list[int] = opt(
        [16, 32, 96, 256], "channels of the ControlNet's DensePose embedding (controlnet='unet' only)")
    trainable: list[str] = opt(["appearance_encoder.*", "controlnet.*"],
                               "glob patterns over parameter names ('unet.', 'controlnet.', "
                               "'appearance_encoder.' prefixes); matching parameters train, the rest are frozen")
    gradient_checkpointing: bool = opt(False, "recompute activations in the backward pass (UNet blocks, "
                                       "ControlNet and appearance-encoder resnets): much less activation memory, "
                                       "one extra forward pass of compute")
    reference_dropout: float = opt(0.0, "probability that a sample is trained without reference attention "
                                   "(the unconditional branch of the release's guidance)")
    unet_channels: list[int] = opt([], "train the denoiser from random weights of these block widths (seeded by "
                                   "'seed'; e.g. [64, 64, 64, 64]) instead of the starting weights' UNet; the "
                                   "appearance encoder and ControlNet must then be 'unet' and the motion modules "
                                   "'zero' (from scratch); [] keeps the starting UNet")
    prediction_type: str = opt("", "what the denoiser learns to predict: '' (as the starting weights declare; "
                               "'epsilon' when they declare nothing, as SD 1.5 and the release), 'epsilon' (the "
                               "noise) or 'v_prediction' (the velocity alpha x noise - sigma x clean latent, "
                               "Salimans and Ho 2022: at high noise it is the clean frame itself). The export "
                               "declares it in stable-diffusion-v1-5/scheduler/scheduler_config.json")


@dataclass
class DataConfig:
    """Dataset location, sampling and augmentation."""

    root: str = opt("", "dataset folder (layout: docs/training.md, 'Dataset format'), or "
                    "'synthetic:train=64,heldout=16,images=0,frames=32,size=128' for the generated set "
                    "(docs/synthetic_data.md; splits 'train' and 'heldout'; zoom=1.5 draws the people 1.5x larger)")
    index: str | None = opt(None, "CSV or JSON index inside root; None: discover videos/, densepose/, "
                            "images/, images_densepose/")
    split: str = opt("train", "index rows of this split are trained on")
    width: int = opt(512, "training width in pixels (multiple of 8)")
    height: int = opt(512, "training height in pixels (multiple of 8)")
    num_frames: int = opt(16, "frames per video sample (stage 1 requires 1; the motion modules see at most 24)")
    frame_stride: int = opt(1, "step between the sampled frames of a clip")
    random_crop: bool = opt(True, "crop at a random position after resizing to cover the training size "
                            "(else centre crop)")
    hflip_prob: float = opt(0.5, "probability of a horizontal flip (image and DensePose, with left/right "
                            "part colours swapped)")
    image_threshold: float = opt(0.0, "joint training tau1: a per-sample draw r in [0, 1) below tau1 gives a "
                                 "still image of the image set (reference = target = the image; temporal "
                                 "layers bypassed)")
    frame_threshold: float = opt(0.0, "joint training tau2: otherwise r < tau2 gives one video frame used as a "
                                 "still image (temporal layers bypassed); otherwise a video sample")
    num_workers: int = opt(4, "DataLoader worker processes that decode samples (0: in the training process)")
    latent_cache: bool = opt(False, "encode every training frame and its mirror image once with the frozen VAE "
                             "before the first step, and read the stored posteriors instead of encoding per "
                             "step (the same training up to float rounding; needs frames stored at "
                             "width x height)")
    latent_cache_dir: str | None = opt(None, "folder of the latent tables (named by a digest of the VAE, the size "
                                       "and the items, so runs can share one); None: <output>/latents")
    max_retries: int = opt(10, "unreadable items skipped per sample before the run stops with an error")


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule."""

    learning_rate: float = opt(1e-5, "peak learning rate (AdamW)")
    scale_lr: bool = opt(False, "multiply the learning rate by batch_size x accumulation x processes")
    adam_beta1: float = opt(0.9, "AdamW beta1")
    adam_beta2: float = opt(0.999, "AdamW beta2")
    adam_epsilon: float = opt(1e-8, "AdamW epsilon")
    weight_decay: float = opt(1e-2, "AdamW decoupled weight decay")
    use_8bit_adam: bool = opt(False, "bitsandbytes AdamW8bit (CUDA; needs the bitsandbytes package)")
    fused_adam: bool = opt(True, "torch's fused AdamW kernel (CUDA; CPU from torch 2.4, else the per-tensor "
                           "loop): the same update up to float rounding, ~4x faster on CPU")
    max_grad_norm: float = opt(1.0, "gradient-norm clip (0 disables)")
    lr_scheduler: str = opt("constant_with_warmup", "diffusers schedule name: constant, constant_with_warmup, "
                            "linear, cosine, ...")
    lr_warmup_steps: int = opt(0, "warm-up steps of the schedule")
    snr_gamma: float = opt(0.0, "Min-SNR-gamma loss weighting (weight min(SNR, gamma) / SNR per sample, "
                           "min(SNR, gamma) / (SNR + 1) under v-prediction; 5 is the paper's choice): low-noise "
                           "timesteps count less, high-noise ones as before. 0: unweighted, as the release")
    high_noise_cap: float = opt(0.0, "truncated-SNR loss weighting, capped: a sample weighs min(max(1, 1 / SNR), "
                                "this), so that high-noise timesteps, where a frame is drawn from the reference and "
                                "the DensePose, count as their clean-latent error. 0 or 1: unweighted, as the "
                                "release")
    foreground_weight: float = opt(0.0, "extra weight of the noise-prediction loss on the person: a latent cell "
                                   "counts 1 + this x the share of its pixels that are the person in the target "
                                   "frame's DensePose. 0: uniform, as the release")


@dataclass
class AutoencoderConfig:
    """Stage 0: training the VAE (AutoencoderKL) from scratch on the frames of the data set."""

    kl_weight: float = opt(1e-6, "weight of the KL divergence to N(0, I) beside the L1 reconstruction loss")
    mse_weight: float = opt(1.0, "weight of the squared-error reconstruction loss beside the L1 loss")
    crop: int = opt(0, "train on random crop x crop windows of the frames (multiple of 8; the VAE is "
                    "convolutional, so it still works on whole frames): more frames per second (0: whole frames)")
    foreground_weight: float = opt(0.0, "extra weight of the reconstruction loss on the person: pixels where the "
                                   "target frame's DensePose is not background (dilated by one pixel) count "
                                   "1 + this (reference frames, which have no DensePose, count 1). 0: uniform")
    scale_samples: int = opt(64, "frames encoded at export to fold the latent spread into the VAE, so "
                             "0.18215 x latents has unit variance (0: no folding)")


@dataclass
class EmaConfig:
    """Exponential moving average of the trained weights."""

    enabled: bool = opt(False, "keep an EMA of the trained parameters; exported weights are then the EMA")
    decay: float = opt(0.9999, "EMA decay per optimiser step")
    warmup: bool = opt(True, "use decay min(decay, (1 + n) / (10 + n)) over the first steps")


@dataclass
class ValidationConfig:
    """Periodic sample videos written with the inference pipeline."""

    every: int = opt(0, "write a sample video every N steps and at the end (0: never)")
    reference: str | None = opt(None, "reference image; None: first frame of the first clip of 'split'")
    motion: str | None = opt(None, "DensePose motion; None: the DensePose of that clip")
    split: str = opt("val", "index split used when reference/motion are None (falls back to training items)")
    num_frames: int = opt(16, "frames of the sample video")
    steps: int = opt(25, "DDIM steps")
    guidance_scale: float = opt(7.5, "classifier-free guidance scale")
    seed: int = opt(1, "sampling seed")


@dataclass
class TrainConfig:
    """Everything one training run needs."""

    stage: int = opt(1, "0: the VAE (autoencoder) on single frames; 1: appearance encoder + ControlNet on single "
                     "frames; 2: motion modules on clips")
    output: str = opt("runs/train", "run folder: checkpoints/, weights/ (release layout), log.csv, loss.png, samples/")
    seed: int = opt(0, "seed of data order, noise and timesteps (a resumed run continues the same streams)")
    batch_size: int = opt(1, "samples per process per micro-batch")
    gradient_accumulation_steps: int = opt(1, "micro-batches per optimiser step")
    max_steps: int = opt(1000, "optimiser steps of the whole run")
    time_budget: str | None = opt(None, "stop (checkpoint + export) before this wall time, e.g. '3600', '90m', "
                                  "'11h30m'")
    mixed_precision: str = opt("no", "'no', 'fp16' or 'bf16': frozen models in that dtype, autocast for the rest")
    checkpoint_every: int = opt(500, "save a resumable checkpoint every N steps (and at the end)")
    keep_checkpoints: int = opt(3, "checkpoints kept (oldest deleted first; 0 keeps all)")
    log_every: int = opt(1, "write loss and learning rate to log.csv every N steps")
    progress_every: int = opt(10, "print a progress line (step, loss, lr, s/step, ETA) on stderr every N steps "
                              "(0: never)")
    plot_every: int = opt(50, "redraw loss.png every N steps (and at the end)")
    fixed_batch_every: int = opt(0, "evaluate the loss of one fixed batch (fixed noise and timesteps) every N "
                                 "steps: a noise-free training curve (0: never)")
    fixed_batch_size: int = opt(4, "samples in the fixed batch")
    tensorboard: bool = opt(False, "also log to TensorBoard (needs the tensorboard package)")
    link_untouched: str = opt("symlink", "how weights/ gets the untouched SD 1.5 and VAE folders: symlink, "
                              "hardlink or copy")
    ddp_find_unused_parameters: bool = opt(False, "DDP option for trainable sets some steps do not use")
    vae_chunk: int = opt(16, "frames per VAE encode call")
    model: ModelConfig = nested(ModelConfig)
    data: DataConfig = nested(DataConfig)
    optim: OptimConfig = nested(OptimConfig)
    autoencoder: AutoencoderConfig = nested(AutoencoderConfig)
    ema: EmaConfig = nested(EmaConfig)
    validation: ValidationConfig = nested(ValidationConfig)

    def time_budget_seconds(self) -> float | None:
        """``time_budget`` in seconds, or None."""
        return None if self.time_budget is None else parse_duration(self.time_budget)

    def check(self) -> "TrainConfig":
        """Raise ``InputError`` on inconsistent settings; returns self."""
        d = self.data
        problems = []
        if self.stage not in (0, 1, 2):
            problems.append(f"stage must be 0, 1 or 2, got {self.stage}")
        if self.stage in (0, 1) and d.num_frames != 1:
            problems.append(f"stage {self.stage} trains on single frames: data.num_frames must be 1, "
                            f"got {d.num_frames}")
        if self.stage == 0 and d.latent_cache:
            problems.append("data.latent_cache stores the frozen VAE's latents; stage 0 trains the VAE, so it "
                            "cannot use one")
        a = self.autoencoder
        if min(a.kl_weight, a.mse_weight, a.foreground_weight, a.scale_samples) < 0:
            problems.append("autoencoder.kl_weight, mse_weight, foreground_weight and scale_samples must be >= 0")
        if a.crop and (a.crop % 8 or a.crop < 8 or a.crop > min(d.width, d.height)):
            problems.append(f"autoencoder.crop must be 0 or a multiple of 8 up to the frame size, got {a.crop}")
        if not 1 <= d.num_frames <= 24:
            problems.append(f"data.num_frames must be in 1..24 (motion-module positions), got {d.num_frames}")
        if d.width % 8 or d.height % 8 or d.width < 8 or d.height < 8:
            problems.append(f"data.width/height must be positive multiples of 8, got {d.width}x{d.height}")
        for name in ("image_threshold", "frame_threshold", "hflip_prob"):
            if not 0.0 <= getattr(d, name) <= 1.0:
                problems.append(f"data.{name} must be in [0, 1], got {getattr(d, name)}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            problems.append(f"mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}")
        if self.link_untouched not in ("symlink", "hardlink", "copy"):
            problems.append(f"link_untouched must be symlink, hardlink or copy, got {self.link_untouched!r}")
        for name in ("batch_size", "gradient_accumulation_steps", "max_steps", "checkpoint_every", "log_every",
                     "plot_every", "fixed_batch_size", "vae_chunk"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.optim.foreground_weight < 0:
            problems.append(f"optim.foreground_weight must be >= 0 (0: uniform), got {self.optim.foreground_weight}")
        if self.optim.snr_gamma < 0:
            problems.append(f"optim.snr_gamma must be >= 0 (0: unweighted), got {self.optim.snr_gamma}")
        if self.model.prediction_type not in ("", *PREDICTION_TYPES):
            problems.append(f"model.prediction_type must be '' (as the starting weights) or one of "
                            f"{', '.join(PREDICTION_TYPES)}, got {self.model.prediction_type!r}")
        if not self.optim.high_noise_cap >= 0:
            problems.append(f"optim.high_noise_cap must be >= 0 (0: unweighted), got {self.optim.high_noise_cap}")
        if self.progress_every < 0:
            problems.append(f"progress_every must be >= 0, got {self.progress_every}")
        if not self.model.trainable:
            problems.append("model.trainable selects no parameters")
        if self.model.unet_channels:
            m = self.model
            if any(w < 32 or w % 32 for w in m.unet_channels):
                problems.append(f"model.unet_channels must be multiples of 32 (the motion modules normalise with "
                                f"32 groups), got {m.unet_channels}")
            if (m.appearance_encoder, m.controlnet, m.motion_modules) != ("unet", "unet", "zero"):
                problems.append("model.unet_channels starts the denoiser from scratch: model.appearance_encoder and "
                                "model.controlnet must be 'unet' and model.motion_modules 'zero'")
        if not 0.0 <= self.model.reference_dropout <= 1.0:
            problems.append(f"model.reference_dropout must be in [0, 1], got {self.model.reference_dropout}")
        if self.time_budget is not None:
            try:
                parse_duration(self.time_budget)
            except InputError as err:
                problems.append(str(err))
        if problems:
            raise InputError("invalid training config:\n  " + "\n  ".join(problems))
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (for saving next to the run)."""
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------
# Filling the schema
# ---------------------------------------------------------------------------------------


_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$")


def parse_duration(text: str | float | int) -> float:
    """'5400', '90m', '1h30m', '45s' -> seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if not match or not any(match.groups()):
            raise InputError(f"time budget {text!r} is not a duration like 5400, 90m or 1h30m")
        h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = h * 3600 + m * 60 + s
    if seconds <= 0:
        raise InputError(f"time budget must be positive, got {text!r}")
    return seconds


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_config(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert one YAML value to the annotated type (int, float, bool, str, list, optional)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value] if not isinstance(value, str) else [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise InputError(f"config key {key}: expected a list, got {value!r}")
        return [_coerce(v, item, key) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        raise InputError(f"config key {key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise InputError(f"config key {key}: expected an integer, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise InputError(f"config key {key}: expected an integer, got {value!r}") from None
        if number != int(number):
            raise InputError(f"config key {key}: expected an integer, got {value!r}")
        return int(number)
    if tp is float:
        if isinstance(value, bool):
            raise InputError(f"config key {key}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InputError(f"config key {key}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, bool):  # YAML 1.1 reads unquoted no/yes as booleans
            return "yes" if value else "no"
        if isinstance(value, (dict, list)) or value is None:
            raise InputError(f"config key {key}: expected a string, got {value!r}")
        return str(value)
    raise TypeError(f"unsupported config type {tp} for {key}")


def _fill(instance: Any, data: dict[str, Any], prefix: str = "") -> None:
    """Set the fields of ``instance`` (a config dataclass) from a nested mapping, strictly."""
    if not isinstance(data, dict):
        raise InputError(f"config section {prefix.rstrip('.') or '<root>'} must be a mapping, got {data!r}")
    hints = _field_types(type(instance))
    names = {f.name for f in dataclasses.fields(instance)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"unknown config keys {[prefix + k for k in unknown]}; known in "
                         f"{prefix.rstrip('.') or 'the top level'}: {sorted(names)}")
    for key, value in data.items():
        tp = hints[key]
        if _is_config(tp):
            _fill(getattr(instance, key), value or {}, f"{prefix}{key}.")
        else:
            setattr(instance, key, _coerce(value, tp, prefix + key))


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults, then the YAML file, then dotted-key ``overrides`` ({'data.width': 256})."""
    config = TrainConfig()
    if path is not None:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise InputError(f"config file not found: {path}") from None
        except yaml.YAMLError as err:
            raise InputError(f"config file {path} is not valid YAML: {err}") from err
        _fill(config, data)
    for key, value in (overrides or {}).items():
        set_value(config, key, value)
    return config


def set_value(config: TrainConfig, key: str, value: Any) -> None:
    """Set one dotted key ('optim.learning_rate'); strings are parsed as YAML scalars first."""
    *parents, leaf = key.split(".")
    target = config
    for i, part in enumerate(parents):
        if not hasattr(target, part) or not dataclasses.is_dataclass(getattr(target, part)):
            raise _unknown_key(key)
        target = getattr(target, part)
    names = {f.name for f in dataclasses.fields(target)}
    if leaf not in names or _is_config(_field_types(type(target))[leaf]):
        raise _unknown_key(key)
    tp = _field_types(type(target))[leaf]
    if isinstance(value, str):
        if _is_text(tp):  # keep text as typed ('no' is not a boolean here), null aside
            value = None if value.strip().lower() in ("null", "none", "~") and _is_optional(tp) else value
        else:
            try:
                value = yaml.safe_load(value) if value.strip() else value
            except yaml.YAMLError:
                pass
    setattr(target, leaf, _coerce(value, tp, key))


def _is_optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def _is_text(tp: Any) -> bool:
    return tp is str or (_is_optional(tp) and str in typing.get_args(tp))


def _unknown_key(key: str) -> InputError:
    known = [name for name, _ in iter_fields(TrainConfig)]
    close = difflib.get_close_matches(key, known, n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else "; `magicanimate train --help` lists every key"
    return InputError(f"unknown config key {key!r}{hint}")


def parse_assignments(items: list[str]) -> dict[str, str]:
    """['data.width=256', ...] -> {'data.width': '256'}."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value
    return out


def iter_fields(cls: type = TrainConfig, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field]]:
    """(dotted name, field) of every leaf field of the schema, in declaration order."""
    hints = _field_types(cls)
    for f in dataclasses.fields(cls):
        if _is_config(hints[f.name]):
            yield from iter_fields(hints[f.name], f"{prefix}{f.name}.")
        else:
            yield prefix + f.name, f


def describe_fields() -> list[tuple[str, str, str]]:
    """(dotted name, default, help) of every leaf field: the documentation of the schema."""
    rows = []
    for name, f in iter_fields():
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        rows.append((name, yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("..."
                                                                                                 ).strip(),
                     f.metadata.get("help", "")))
    return rows


def save_config(config: TrainConfig, path: Path) -> None:
    """Write the resolved config as YAML (it reloads with ``load_config``)."""
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
