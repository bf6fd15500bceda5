"""From network outputs to what MagicAnimate consumes: boxes in image pixels and the fine part-label map.

Reproduces detectron2's ``detector_postprocess`` (scale, clip, drop empty boxes) and the
vid2densepose ``dp_segm`` drawing (``DensePoseResultsFineSegmentationVisualizer``, alpha 1):
each detection's 112x112 segmentation is resized bilinearly to its truncated box, labelled
``fine.argmax * (coarse.argmax > 0)`` and pasted where the label is non-zero, in detection
order, so later (lower-score) detections overwrite earlier ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from magicanimate.densepose.boxes import clip_boxes, nonempty


def scale_boxes(
    boxes: torch.Tensor, *, input_size: tuple[int, int], output_size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes (N, 4) from resized-input to original pixels, clipped; returns (boxes, mask of non-empty ones)."""
    scale_x = output_size[1] / input_size[1]
    scale_y = output_size[0] / input_size[0]
    boxes = boxes.clone()
    boxes[:, 0::2] *= scale_x
    boxes[:, 1::2] *= scale_y
    boxes = clip_boxes(boxes, output_size)
    return boxes, nonempty(boxes)


@dataclass
class PartPatch:
    """One detection's part labels: ``labels`` (h, w) uint8 to be drawn with top-left corner (x, y)."""

    x: int
    y: int
    labels: np.ndarray


def box_xywh_int(box: torch.Tensor | np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, w, h) of an xyxy float32 box, each truncated toward zero (w = x1 - x0 in float32)."""
    b = np.asarray(box, dtype=np.float32)
    return int(b[0]), int(b[1]), int(b[2] - b[0]), int(b[3] - b[1])


def part_labels(coarse_segm: torch.Tensor, fine_segm: torch.Tensor, box: torch.Tensor) -> PartPatch:
    """Labels of one detection in its box: fine argmax (1..24) where coarse argmax is foreground, else 0."""
    x, y, w, h = box_xywh_int(box.detach().cpu())
    size = (max(h, 1), max(w, 1))
    coarse = F.interpolate(coarse_segm[None].float(), size, mode="bilinear", align_corners=False).argmax(dim=1)
    fine = F.interpolate(fine_segm[None].float(), size, mode="bilinear", align_corners=False).argmax(dim=1)
    labels = (fine * (coarse > 0).long())[0]
    if w <= 0 or h <= 0:  # the visualizer draws nothing for a box under one pixel wide or high
        labels = labels[:0, :0]
    return PartPatch(x=x, y=y, labels=labels.to(torch.uint8).cpu().numpy())


def draw_patches(patches: list[PartPatch], size: tuple[int, int]) -> np.ndarray:
    """Label map (H, W) uint8: each patch's non-zero labels overwrite the canvas, in list order."""
    canvas = np.zeros(size, dtype=np.uint8)
    for patch in patches:
        region = canvas[patch.y: patch.y + patch.labels.shape[0], patch.x: patch.x + patch.labels.shape[1]]
        labels = patch.labels[: region.shape[0], : region.shape[1]]
        np.copyto(region, labels, where=labels > 0)
    return canvas
