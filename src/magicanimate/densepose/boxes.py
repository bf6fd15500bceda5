"""Box arithmetic shared by the RPN and the box head: delta decoding, clipping, emptiness (xyxy, float32)."""

from __future__ import annotations

import math

import torch

# Largest log-scale change of width/height a delta may apply (detectron2's _DEFAULT_SCALE_CLAMP).
SCALE_CLAMP = math.log(1000.0 / 16)


def apply_deltas(
    deltas: torch.Tensor, boxes: torch.Tensor, *, weights: tuple[float, float, float, float]
) -> torch.Tensor:
    """Decode (dx, dy, dw, dh) deltas (R, 4k) relative to boxes (R, 4) into xyxy boxes (R, 4k) (R-CNN box coder)."""
    deltas = deltas.float()
    boxes = boxes.to(deltas.dtype)
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    ctr_x = boxes[:, 0] + 0.5 * widths
    ctr_y = boxes[:, 1] + 0.5 * heights
    wx, wy, ww, wh = weights
    dx = deltas[:, 0::4] / wx
    dy = deltas[:, 1::4] / wy
    dw = torch.clamp(deltas[:, 2::4] / ww, max=SCALE_CLAMP)
    dh = torch.clamp(deltas[:, 3::4] / wh, max=SCALE_CLAMP)
    pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
    pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
    pred_w = torch.exp(dw) * widths[:, None]
    pred_h = torch.exp(dh) * heights[:, None]
    x1 = pred_ctr_x - 0.5 * pred_w
    y1 = pred_ctr_y - 0.5 * pred_h
    x2 = pred_ctr_x + 0.5 * pred_w
    y2 = pred_ctr_y + 0.5 * pred_h
    return torch.stack((x1, y1, x2, y2), dim=-1).reshape(deltas.shape)  # (R, k, 4) -> (R, 4k)


def clip_boxes(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Clamp xyxy boxes (..., 4) into [0, width] x [0, height] of ``size`` = (height, width)."""
    height, width = size
    x1 = boxes[..., 0].clamp(min=0, max=width)
    y1 = boxes[..., 1].clamp(min=0, max=height)
    x2 = boxes[..., 2].clamp(min=0, max=width)
    y2 = boxes[..., 3].clamp(min=0, max=height)
    return torch.stack((x1, y1, x2, y2), dim=-1)


def nonempty(boxes: torch.Tensor) -> torch.Tensor:
    """Boolean mask of boxes (N, 4) with positive width and height."""
    return ((boxes[:, 2] - boxes[:, 0]) > 0) & ((boxes[:, 3] - boxes[:, 1]) > 0)
