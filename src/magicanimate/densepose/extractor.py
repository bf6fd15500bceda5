"""Public API: ``DensePoseExtractor`` turns RGB frames into DensePose part labels, boxes and dp_segm renderings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from magicanimate.densepose_render import colorize_parts
from magicanimate.errors import InputError

from .checkpoint import load_checkpoint
from .model import DensePoseRCNN
from .postprocess import PartPatch, draw_patches, part_labels, scale_boxes
from .preprocess import DEFAULT_MAX_SIZE, DEFAULT_SHORT_EDGE, resize_image, resized_shape, to_network_input
from .weights import densepose_weights_path

DEFAULT_MIN_SCORE = 0.8  # apply_net's --min_score as used by MagicAnimate's motion (vid2densepose uses 0.05)


@dataclass
class DensePoseOutput:
    """Per-frame detections and the composited fine part-label maps (detectron2's output order)."""

    labels: np.ndarray  # uint8 (H, W) or (F, H, W), 0 = background, 1..24 = parts
    boxes: list[np.ndarray]  # per frame float32 (N, 4) xyxy in input pixels
    scores: list[np.ndarray]  # per frame float32 (N,), descending
    patches: list[list[PartPatch]] = field(repr=False)  # per frame, per detection: labels in its box

    def render(self) -> np.ndarray:
        """dp_segm RGB uint8: labels through VIRIDIS at floor(k * 255 / 24), shape labels.shape + (3,)."""
        return colorize_parts(self.labels)


def _as_frames(frames: np.ndarray) -> tuple[np.ndarray, bool]:
    """Validate uint8 RGB frames; returns (F, H, W, 3) and whether a single image was given."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or frames.shape[-1] != 3:
        raise InputError(f"frames must be uint8 RGB (H, W, 3) or (F, H, W, 3), got {frames.dtype} {frames.shape}")
    single = frames.ndim == 3
    frames = frames[None] if single else frames
    if frames.shape[0] == 0 or min(frames.shape[1:3]) < 1:
        raise InputError(f"frames must not be empty, got shape {frames.shape}")
    return frames, single


class DensePoseExtractor:
    """detectron2 ``densepose_rcnn_R_50_FPN_s1x`` inference (+ vid2densepose drawing) in plain PyTorch."""

    def __init__(
        self, model: DensePoseRCNN, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None,
        detect_size: int = DEFAULT_SHORT_EDGE,
    ) -> None:
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = dtype or torch.float32
        self.detect_size = detect_size
        self.model = model.eval().to(device=self.device, dtype=self.dtype)

    @classmethod
    def from_pretrained(
        cls, path: str | Path | None = None, *, device: torch.device | str | None = None,
        dtype: torch.dtype | None = None, detect_size: int = DEFAULT_SHORT_EDGE,
    ) -> "DensePoseExtractor":
        """Load ``model_final_162be9.pkl`` (``path``, or the cached download when None) safely and strictly."""
        path = Path(path) if path is not None else densepose_weights_path()
        model = load_checkpoint(DensePoseRCNN(), path)
        return cls(model, device=device, dtype=dtype, detect_size=detect_size)

    def input_size(self, height: int, width: int, *, detect_size: int | None = None) -> tuple[int, int]:
        """The (h, w) the network sees for an image of (height, width)."""
        short = detect_size or self.detect_size
        max_size = round(DEFAULT_MAX_SIZE * short / DEFAULT_SHORT_EDGE)
        return resized_shape(height, width, short_edge=short, max_size=max_size)

    @torch.inference_mode()
    def detect(
        self, images: list[np.ndarray], *, min_score: float = DEFAULT_MIN_SCORE, detect_size: int | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray, list[PartPatch]]]:
        """One batch of RGB uint8 images: per image (boxes (N, 4), scores (N,), part patches), input pixels."""
        resized = [resize_image(im, self.input_size(*im.shape[:2], detect_size=detect_size)) for im in images]
        batch, sizes = to_network_input(resized, device=self.device, dtype=self.dtype)
        detections = self.model(batch, sizes, score_thresh=min_score)
        out = []
        for image, size, det in zip(images, sizes, detections):
            boxes, keep = scale_boxes(det.boxes, input_size=size, output_size=image.shape[:2])
            boxes, scores = boxes[keep], det.scores[keep]
            coarse, fine = det.charts.coarse_segm[keep], det.charts.fine_segm[keep]
            patches = [part_labels(coarse[i], fine[i], boxes[i]) for i in range(len(boxes))]
            out.append((boxes.cpu().numpy(), scores.float().cpu().numpy(), patches))
        return out

    def __call__(
        self, frames: np.ndarray, min_score: float = DEFAULT_MIN_SCORE, *, batch_size: int = 4,
        detect_size: int | None = None, progress: Callable[[int, int], None] | None = None,
    ) -> DensePoseOutput:
        """Detect people in uint8 RGB frames (H, W, 3) or (F, H, W, 3); ``progress(done, total)`` after each batch."""
        frames, single = _as_frames(frames)
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        boxes, scores, patches = [], [], []
        for start in range(0, len(frames), batch_size):
            for b, s, p in self.detect(list(frames[start: start + batch_size]), min_score=min_score,
                                       detect_size=detect_size):
                boxes.append(b)
                scores.append(s)
                patches.append(p)
            if progress is not None:
                progress(min(start + batch_size, len(frames)), len(frames))
        labels = np.stack([draw_patches(p, frames.shape[1:3]) for p in patches])
        return DensePoseOutput(labels=labels[0] if single else labels, boxes=boxes, scores=scores, patches=patches)
