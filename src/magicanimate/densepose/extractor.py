"""Public API: ``DensePoseExtractor`` turns RGB frames into DensePose part labels, boxes and dp_segm renderings."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from magicanimate.io.densepose_colors import colorize_parts
from magicanimate.errors import InputError

from magicanimate.densepose.safe_pickle import load_checkpoint
from magicanimate.densepose.rcnn import DensePoseRCNN
from magicanimate.densepose.postprocess import PartPatch, draw_patches, part_labels, scale_boxes
from magicanimate.densepose.preprocess import DEFAULT_MAX_SIZE, DEFAULT_SHORT_EDGE, resize_image, resized_shape, to_network_input
from magicanimate.densepose.download import densepose_weights_path

DEFAULT_MIN_SCORE = 0.8  # apply_net's --min_score as used by MagicAnimate's motion (vid2densepose uses 0.05)


@dataclass
class FrameDetections:
    """One frame's detections: boxes (N, 4) xyxy and scores (N,) in input pixels, per-detection part patches."""

    size: tuple[int, int]  # (H, W) of the frame
    boxes: np.ndarray
    scores: np.ndarray
    patches: list[PartPatch]

    def labels(self) -> np.ndarray:
        """The composited label map (H, W) of all detections, detectron2's drawing order."""
        return draw_patches(self.patches, self.size)


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

    @classmethod
    def from_frames(cls, frames: list[FrameDetections], *, single: bool = False) -> "DensePoseOutput":
        """Collect per-frame detections; labels (F, H, W), or (H, W) when ``single``."""
        labels = np.stack([f.labels() for f in frames])
        return cls(labels=labels[0] if single else labels, boxes=[f.boxes for f in frames],
                   scores=[f.scores for f in frames], patches=[f.patches for f in frames])


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
    ) -> list[FrameDetections]:
        """Detections of one batch of uint8 RGB images (H, W, 3), in input pixels."""
        resized = [resize_image(im, self.input_size(*im.shape[:2], detect_size=detect_size)) for im in images]
        batch, sizes = to_network_input(resized, device=self.device, dtype=self.dtype)
        detections = self.model(batch, sizes, score_thresh=min_score)
        out = []
        for image, size, det in zip(images, sizes, detections):
            boxes, keep = scale_boxes(det.boxes, input_size=size, output_size=image.shape[:2])
            boxes, scores = boxes[keep], det.scores[keep]
            coarse, fine = det.charts.coarse_segm[keep], det.charts.fine_segm[keep]
            patches = [part_labels(coarse[i], fine[i], boxes[i]) for i in range(len(boxes))]
            out.append(FrameDetections(size=tuple(image.shape[:2]), boxes=boxes.cpu().numpy(),
                                       scores=scores.float().cpu().numpy(), patches=patches))
        return out

    def stream(
        self, frames: Iterable[np.ndarray], min_score: float = DEFAULT_MIN_SCORE, *, batch_size: int = 4,
        detect_size: int | None = None,
    ) -> Iterator[FrameDetections]:
        """Detections frame by frame from any iterable of uint8 RGB frames (H, W, 3), ``batch_size`` at a time."""
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        batch: list[np.ndarray] = []
        for frame in frames:
            frame = np.asarray(frame)
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3 or min(frame.shape[:2]) < 1:
                raise InputError(f"each frame must be uint8 RGB (H, W, 3), got {frame.dtype} {frame.shape}")
            batch.append(frame)
            if len(batch) == batch_size:
                yield from self.detect(batch, min_score=min_score, detect_size=detect_size)
                batch = []
        if batch:
            yield from self.detect(batch, min_score=min_score, detect_size=detect_size)

    def __call__(
        self, frames: np.ndarray, min_score: float = DEFAULT_MIN_SCORE, *, batch_size: int = 4,
        detect_size: int | None = None, progress: Callable[[int, int], None] | None = None,
    ) -> DensePoseOutput:
        """Detect people in uint8 RGB frames (H, W, 3) or (F, H, W, 3); ``progress(done, total)`` after each batch."""
        frames, single = _as_frames(frames)
        results = []
        for result in self.stream(frames, min_score, batch_size=batch_size, detect_size=detect_size):
            results.append(result)
            if progress is not None and (len(results) % batch_size == 0 or len(results) == len(frames)):
                progress(len(results), len(frames))
        return DensePoseOutput.from_frames(results, single=single)
