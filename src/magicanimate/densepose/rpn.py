"""Region proposal network (Ren et al., Faster R-CNN) over the FPN levels, inference only.

Anchors (one size per level, ratios 0.5/1/2, offset 0), the shared 3x3 conv head, delta
decoding, then detectron2's ``find_top_rpn_proposals``: top-k per level, clip, drop empty
boxes, NMS per level, and the best ``post_nms_topk`` over all levels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from magicanimate.densepose.boxes import apply_deltas, clip_boxes, nonempty
from magicanimate.densepose.roi_ops import batched_nms

ANCHOR_SIZES = (32, 64, 128, 256, 512)  # one per level p2..p6
ANCHOR_RATIOS = (0.5, 1.0, 2.0)


@dataclass(frozen=True)
class RPNConfig:
    """Test-time settings of ``densepose_rcnn_R_50_FPN_s1x`` (detectron2 defaults)."""

    pre_nms_topk: int = 1000  # per level
    post_nms_topk: int = 1000  # over all levels
    nms_thresh: float = 0.7


def cell_anchors(size: float, ratios: tuple[float, ...] = ANCHOR_RATIOS) -> torch.Tensor:
    """Anchors (A, 4) centred on the origin: for ratio a, w = sqrt(size^2 / a), h = a * w."""
    anchors = []
    for ratio in ratios:
        w = math.sqrt(size * size / ratio)
        h = ratio * w
        anchors.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return torch.tensor(anchors)


def grid_anchors(
    size: float, stride: int, *, grid: tuple[int, int], device: torch.device | str | None = None
) -> torch.Tensor:
    """All anchors (H*W*A, 4) of a level, location-major then anchor, xyxy in input pixels."""
    height, width = grid
    shifts_x = torch.arange(0, width * stride, step=stride, dtype=torch.float32, device=device)
    shifts_y = torch.arange(0, height * stride, step=stride, dtype=torch.float32, device=device)
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
    shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)  # (H, W) -> (H*W,)
    shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
    base = cell_anchors(size).to(device)
    return (shifts.view(-1, 1, 4) + base.view(1, -1, 4)).reshape(-1, 4)  # (H*W, A, 4) -> (H*W*A, 4)


class RPNHead(nn.Module):
    """Shared conv 3x3 + ReLU, then 1x1 objectness logits (A) and 1x1 box deltas (4A) per location."""

    def __init__(self, channels: int = 256, num_anchors: int = len(ANCHOR_RATIOS)) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.objectness_logits = nn.Conv2d(channels, num_anchors, 1)
        self.anchor_deltas = nn.Conv2d(channels, num_anchors * 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, H*W*A) and deltas (B, H*W*A, 4) of one level (B, C, H, W)."""
        t = F.relu(self.conv(x))
        logits = self.objectness_logits(t)
        deltas = self.anchor_deltas(t)
        b, a, h, w = logits.shape
        logits = logits.permute(0, 2, 3, 1).flatten(1)  # (B, A, H, W) -> (B, H*W*A)
        deltas = deltas.view(b, a, 4, h, w).permute(0, 3, 4, 1, 2).flatten(1, -2)  # -> (B, H*W*A, 4)
        return logits, deltas


class RPN(nn.Module):
    """Proposals per image: boxes (P, 4) xyxy in resized-input pixels and their logits (P,), by descending logit."""

    def __init__(self, config: RPNConfig = RPNConfig()) -> None:
        super().__init__()
        self.config = config
        self.rpn_head = RPNHead()

    def forward(
        self, features: list[torch.Tensor], image_sizes: list[tuple[int, int]], *, strides: tuple[int, ...]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Proposals for each image from the FPN levels p2..p6 (``features``, same order as ``strides``)."""
        num_images = features[0].shape[0]
        level_boxes, level_logits, level_ids = [], [], []
        for level, (x, stride, size) in enumerate(zip(features, strides, ANCHOR_SIZES)):
            logits, deltas = self.rpn_head(x)
            logits, deltas = logits.float(), deltas.float()  # box arithmetic stays float32 under half precision
            anchors = grid_anchors(size, stride, grid=tuple(x.shape[-2:]), device=x.device)
            anchors = anchors.unsqueeze(0).expand(num_images, -1, -1).reshape(-1, 4)  # (B*HWA, 4)
            proposals = apply_deltas(deltas.reshape(-1, 4), anchors, weights=(1.0, 1.0, 1.0, 1.0))  # (B*HWA, 4)
            proposals = proposals.view(num_images, -1, 4)  # (B*HWA, 4) -> (B, HWA, 4)
            k = min(logits.shape[1], self.config.pre_nms_topk)
            top_logits, top_idx = logits.topk(k, dim=1)
            batch = torch.arange(num_images, device=x.device)
            level_boxes.append(proposals[batch[:, None], top_idx])  # (B, k, 4)
            level_logits.append(top_logits)
            level_ids.append(torch.full((k,), level, dtype=torch.int64, device=x.device))
        boxes_all = torch.cat(level_boxes, dim=1)
        logits_all = torch.cat(level_logits, dim=1)
        ids_all = torch.cat(level_ids, dim=0)

        results = []
        for n, (height, width) in enumerate(image_sizes):
            boxes, logits, ids = boxes_all[n], logits_all[n], ids_all
            valid = torch.isfinite(boxes).all(dim=1) & torch.isfinite(logits)
            if not valid.all():
                boxes, logits, ids = boxes[valid], logits[valid], ids[valid]
            boxes = clip_boxes(boxes, (height, width))
            keep = nonempty(boxes)
            if keep.sum().item() != len(boxes):
                boxes, logits, ids = boxes[keep], logits[keep], ids[keep]
            keep = batched_nms(boxes, logits, groups=ids, iou_threshold=self.config.nms_thresh)
            keep = keep[: self.config.post_nms_topk]
            results.append((boxes[keep], logits[keep]))
        return results
