"""Validation samples: the current weights run through the inference pipeline, written as videos."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from magicanimate.weights.build import Components
from magicanimate.errors import InputError
from magicanimate.io.image import load_image, resize_image
from magicanimate.sampling.pipeline import MagicAnimate
from magicanimate.io.video import read_motion, write_video
from magicanimate.training.config import TrainConfig
from magicanimate.training.data import FrameReader, Item, load_items

log = logging.getLogger(__name__)


@dataclass
class ValidationInputs:
    """Reference image (H, W, 3), DensePose motion (F, H, W, 3), the clip's real frames if known, fps."""

    reference: np.ndarray
    motion: np.ndarray
    truth: np.ndarray | None
    fps: float


def validation_inputs(cfg: TrainConfig, training_items: list[Item]) -> ValidationInputs:
    """The configured reference/motion, else the first clip of the validation split (or of training)."""
    v = cfg.validation
    if v.reference and v.motion:
        motion = read_motion(v.motion, max_frames=v.num_frames)
        return ValidationInputs(load_image(v.reference), motion.frames, None, motion.fps or 25.0)
    if v.reference or v.motion:
        raise InputError("validation.reference and validation.motion must be given together")
    try:
        items, _ = load_items(cfg.data, v.split)
    except InputError:
        items = []
    clips = [i for i in items if i.kind == "video"] or [i for i in training_items if i.kind == "video"]
    if not clips:
        raise InputError("validation needs a video clip (or validation.reference + validation.motion)")
    reader, clip = FrameReader(), clips[0]
    length, fps = reader.info(clip.source)
    indices = list(range(min(v.num_frames, length)))
    truth = reader.frames(clip.source, indices)
    return ValidationInputs(truth[0], reader.frames(clip.densepose, indices), truth, fps or 25.0)


def write_sample(path: Path, model: MagicAnimate, inputs: ValidationInputs, cfg: TrainConfig) -> Path:
    """Animate the validation inputs; write [DensePose | generated | real frames] side by side."""
    v, size = cfg.validation, (cfg.data.width, cfg.data.height)
    result = model(inputs.reference, inputs.motion, steps=v.steps, guidance_scale=v.guidance_scale,
                   seed=v.seed, size=size, fit="crop")
    generated = np.round(result.frames * 255).astype(np.uint8)
    h, w = generated.shape[1:3]
    panels = [np.stack([resize_image(f, (w, h)) for f in inputs.motion]), generated]
    if inputs.truth is not None:
        panels.append(np.stack([resize_image(f, (w, h)) for f in inputs.truth]))
    return write_video(path, np.concatenate(panels, axis=2), inputs.fps, overwrite=True)  # side by side along W


def sampling_model(components: Components, *, device: torch.device) -> MagicAnimate:
    """A ``MagicAnimate`` on the live training modules (no copies); float32 reference tokens."""
    return MagicAnimate(components, device=device, dtype=torch.float32, reference_bank_dtype=None)
