"""The Fast R-CNN box head: multi-level ROIAlign pooling, two FC layers, class scores and box refinement.

Inference follows detectron2's ``fast_rcnn_inference``: softmax, decode class-agnostic deltas
with weights (10, 10, 5, 5), clip, keep ``score > threshold`` (strict), NMS 0.5, top 100.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from magicanimate.densepose.boxes import apply_deltas, clip_boxes
from magicanimate.densepose.roi_ops import batched_nms, roi_align

BOX_REG_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


@dataclass(frozen=True)
class BoxHeadConfig:
    """Test-time settings of the box head (detectron2 defaults of the DensePose config)."""

    pooler_resolution: int = 7
    sampling_ratio: int = 2
    nms_thresh: float = 0.5
    detections_per_image: int = 100


def assign_levels(boxes: torch.Tensor, *, min_level: int = 2, max_level: int = 5,
                  canonical_size: float = 224.0, canonical_level: int = 4) -> torch.Tensor:
    """FPN level index (0 = min_level) of each box (N, 4): floor(4 + log2(sqrt(area) / 224 + 1e-8)), clamped."""
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    levels = torch.floor(canonical_level + torch.log2(torch.sqrt(areas) / canonical_size + 1e-8))
    return levels.clamp(min=min_level, max=max_level).to(torch.int64) - min_level


def pool_levels(
    features: list[torch.Tensor], boxes: list[torch.Tensor], *, strides: tuple[int, ...],
    output_size: int, sampling_ratio: int,
) -> torch.Tensor:
    """ROIAlign (aligned=False) of every image's boxes on its FPN level: (sum N_i, C, S, S)."""
    rois = torch.cat([torch.cat([torch.full_like(b[:, :1], i), b], dim=1) for i, b in enumerate(boxes)])
    first = features[0]
    out = first.new_zeros((rois.shape[0], first.shape[1], output_size, output_size))
    if len(features) == 1:
        return roi_align(first, rois, output_size=output_size, spatial_scale=1.0 / strides[0],
                         sampling_ratio=sampling_ratio)
    levels = assign_levels(rois[:, 1:], min_level=2, max_level=1 + len(features))
    for level, (x, stride) in enumerate(zip(features, strides)):
        index = torch.nonzero(levels == level).squeeze(1)
        if index.numel():
            out[index] = roi_align(x, rois[index], output_size=output_size, spatial_scale=1.0 / stride,
                                   sampling_ratio=sampling_ratio)
    return out


class FastRCNNOutputLayers(nn.Module):
    """Class logits (person, background) and class-agnostic box deltas from the 1024-d box feature."""

    def __init__(self, dim: int = 1024, num_classes: int = 1) -> None:
        super().__init__()
        self.cls_score = nn.Linear(dim, num_classes + 1)
        self.bbox_pred = nn.Linear(dim, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cls_score(x), self.bbox_pred(x)


class BoxHead(nn.Module):
    """Two fully connected layers (1024, ReLU) over the flattened 256x7x7 pooled features."""

    def __init__(self, channels: int = 256, resolution: int = 7, dim: int = 1024) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels * resolution * resolution, dim)
        self.fc2 = nn.Linear(dim, dim)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc2(F.relu(self.fc1(pooled.flatten(1)))))  # (R, C, 7, 7) -> (R, C*49)


def detect(
    logits: torch.Tensor, deltas: torch.Tensor, proposals: torch.Tensor, *,
    image_size: tuple[int, int], score_thresh: float, config: BoxHeadConfig = BoxHeadConfig(),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Final person boxes (N, 4) in resized-input pixels and scores (N,), descending, for one image."""
    boxes = apply_deltas(deltas, proposals, weights=BOX_REG_WEIGHTS)  # (R, 4): class-agnostic regression
    scores = F.softmax(logits.float(), dim=-1)
    valid = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores).all(dim=1)
    if not valid.all():
        boxes, scores = boxes[valid], scores[valid]
    scores = scores[:, :-1]  # drop the background column
    boxes = clip_boxes(boxes, image_size).view(-1, 1, 4)  # one regression class: (R, 1, 4)
    mask = scores > score_thresh
    index = mask.nonzero()
    boxes = boxes[index[:, 0], 0]
    scores = scores[mask]
    keep = batched_nms(boxes, scores, groups=index[:, 1], iou_threshold=config.nms_thresh)
    keep = keep[: config.detections_per_image]
    return boxes[keep], scores[keep]
