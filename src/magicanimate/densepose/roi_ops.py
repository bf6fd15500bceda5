"""ROIAlign and (batched) NMS in plain torch, matching torchvision's CPU kernels operation by operation.

detectron2 calls ``torchvision.ops.roi_align`` / ``nms`` / ``batched_nms``; their CPU kernels
(``torchvision/csrc/ops/cpu/{roi_align_kernel.cpp, roi_align_common.h, nms_kernel.cpp}``) work
in float32 with a fixed order of operations. The functions here repeat that order with tensor
ops, so results agree bit for bit with the reference on the same inputs (including which of
two near-equal boxes NMS keeps).
"""

from __future__ import annotations

import numpy as np
import torch

# torchvision.ops.batched_nms switches from the coordinate-offset trick to one NMS per class
# above this many box coordinates on CPU (20000 on CUDA). We always follow the CPU rule, which
# is what the golden data was made with; both paths give the same boxes up to float rounding.
_VANILLA_BATCHED_NMS_NUMEL = 4000


# --------------------------------------------------------------------------
# NMS
# --------------------------------------------------------------------------


def pairwise_iou(boxes: torch.Tensor) -> torch.Tensor:
    """IoU matrix (N, N) of xyxy boxes, in the CPU kernel's float order: inter / ((a_i + a_j) - inter)."""
    x1, y1, x2, y2 = boxes.unbind(dim=1)
    areas = (x2 - x1) * (y2 - y1)
    xx1 = torch.maximum(x1[:, None], x1[None, :])
    yy1 = torch.maximum(y1[:, None], y1[None, :])
    xx2 = torch.minimum(x2[:, None], x2[None, :])
    yy2 = torch.minimum(y2[:, None], y2[None, :])
    inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
    return inter / (areas[:, None] + areas[None, :] - inter)


def nms(boxes: torch.Tensor, scores: torch.Tensor, *, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS: indices of kept boxes, highest score first (stable descending sort on ties)."""
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    # The greedy pass is sequential; do it on the host over a precomputed overlap matrix.
    overlaps = (pairwise_iou(boxes[order].float()).double() > iou_threshold).cpu().numpy()
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i]
    return order[torch.as_tensor(keep, dtype=torch.long, device=boxes.device)]


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, *, groups: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """NMS within each group id; kept indices sorted by descending score (torchvision's two CPU paths)."""
    boxes = boxes.float()
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    if boxes.numel() > _VANILLA_BATCHED_NMS_NUMEL:
        keep_mask = torch.zeros_like(scores, dtype=torch.bool)
        for group in torch.unique(groups):
            members = torch.where(groups == group)[0]
            keep_mask[members[nms(boxes[members], scores[members], iou_threshold=iou_threshold)]] = True
        kept = torch.where(keep_mask)[0]
        return kept[scores[kept].sort(descending=True).indices]
    # Coordinate trick: shift each group far enough apart that boxes of different groups never overlap.
    max_coordinate = boxes.max()
    offsets = groups.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    return nms(boxes + offsets[:, None], scores, iou_threshold=iou_threshold)


# --------------------------------------------------------------------------
# ROIAlign
# --------------------------------------------------------------------------


def _sample_axis(
    start: torch.Tensor, bin_size: torch.Tensor, pooled: int, grid: int, limit: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear taps along one axis per roi: (low, high, weight_low, weight_high, valid), each (R, pooled*grid)."""
    device = start.device
    p = torch.arange(pooled, dtype=torch.float32, device=device).repeat_interleave(grid)  # (pooled*grid,)
    i = torch.arange(grid, dtype=torch.float32, device=device).repeat(pooled) + 0.5
    grid_f = torch.tensor(float(grid), dtype=torch.float32, device=device)
    # yy = roi_start + p * bin_size + (i + .5) * bin_size / grid, evaluated left to right in float32
    coord = (start[:, None] + p[None, :] * bin_size[:, None]) + (i[None, :] * bin_size[:, None]) / grid_f
    valid = (coord >= -1.0) & (coord <= limit)
    coord = coord.clamp(min=0)
    low = coord.to(torch.long)  # truncation; coord >= 0 here
    at_edge = low >= limit - 1
    low = torch.where(at_edge, torch.full_like(low, limit - 1), low)
    high = torch.where(at_edge, low, low + 1)
    coord = torch.where(at_edge, low.to(coord.dtype), coord)
    frac = coord - low.to(coord.dtype)
    return low, high, 1.0 - frac, frac, valid


def roi_align(
    features: torch.Tensor,
    rois: torch.Tensor,
    *,
    output_size: int,
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool = False,
    max_elements: int = 1 << 22,
) -> torch.Tensor:
    """ROIAlign (He et al., Mask R-CNN): features (N, C, H, W), rois (R, 5) [batch, x1, y1, x2, y2] -> (R, C, S, S)."""
    if sampling_ratio <= 0:
        raise ValueError("only a fixed sampling_ratio > 0 is implemented (the DensePose configs use 2)")
    num_images, channels, height, width = features.shape
    out = features.new_zeros((rois.shape[0], channels, output_size, output_size))
    if rois.shape[0] == 0:
        return out
    # Sample positions and weights in float32 (as the reference), whatever the feature dtype.
    rois = rois.float()
    scale = torch.tensor(spatial_scale, dtype=torch.float32, device=features.device)
    offset = 0.5 if aligned else 0.0
    start_x = rois[:, 1] * scale - offset
    start_y = rois[:, 2] * scale - offset
    roi_w = rois[:, 3] * scale - offset - start_x
    roi_h = rois[:, 4] * scale - offset - start_y
    if not aligned:  # force malformed rois to be 1x1
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    pooled = torch.tensor(float(output_size), dtype=torch.float32, device=features.device)
    y_low, y_high, y_wl, y_wh, y_ok = _sample_axis(start_y, roi_h / pooled, output_size, sampling_ratio, height)
    x_low, x_high, x_wl, x_wh, x_ok = _sample_axis(start_x, roi_w / pooled, output_size, sampling_ratio, width)

    flat = features.flatten(2).transpose(1, 2)  # (N, C, H, W) -> (N, H*W, C)
    batch = rois[:, 0].to(torch.long)
    g, s = sampling_ratio, output_size
    chunk = max(1, max_elements // ((s * g) ** 2 * channels))
    for begin in range(0, rois.shape[0], chunk):
        r = slice(begin, begin + chunk)
        valid = (y_ok[r][:, :, None] & x_ok[r][:, None, :]).float()  # (R, S*g, S*g)
        acc = None
        taps = []
        for ys, wy in ((y_low[r], y_wl[r]), (y_high[r], y_wh[r])):  # w1..w4 order: (lo,lo) (lo,hi) (hi,lo) (hi,hi)
            for xs, wx in ((x_low[r], x_wl[r]), (x_high[r], x_wh[r])):
                weight = ((wy[:, :, None] * wx[:, None, :]) * valid).to(features.dtype)  # (R, S*g, S*g)
                index = torch.where(valid > 0, ys[:, :, None] * width + xs[:, None, :], 0)  # (R, S*g, S*g)
                values = flat[batch[r][:, None], index.flatten(1)]  # (R, S*g*S*g, C)
                values = values.view(*index.shape, channels)  # (R, S*g, S*g, C)
                taps.append(weight[..., None] * values)
        sample = ((taps[0] + taps[1]) + taps[2]) + taps[3]  # (R, S*g, S*g, C)
        sample = sample.view(sample.shape[0], s, g, s, g, channels)  # (R, ph, iy, pw, ix, C)
        for iy in range(g):
            for ix in range(g):
                term = sample[:, :, iy, :, ix, :]  # (R, ph, pw, C)
                acc = term if acc is None else acc + term
        count = torch.tensor(float(g * g), dtype=features.dtype, device=features.device)
        out[r] = (acc / count).permute(0, 3, 1, 2)  # (R, ph, pw, C) -> (R, C, ph, pw)
    return out
