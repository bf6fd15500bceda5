"""ROIAlign and NMS on hand-made inputs whose answers are known in closed form."""

from __future__ import annotations

import math

import torch

from magicanimate.densepose.roi_ops import batched_nms, nms, roi_align
from magicanimate.densepose.rpn import cell_anchors, grid_anchors


def _ramp(height: int = 12, width: int = 16) -> torch.Tensor:
    """f(x, y) = 2x + 3y + 1 sampled at integer pixel positions: bilinear interpolation reproduces it exactly."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    return (2 * xs + 3 * ys + 1)[None, None]  # (1, 1, H, W)


def test_roi_align_of_a_linear_ramp_is_the_ramp_at_bin_centres() -> None:
    features = _ramp()
    # box (2, 1)-(10, 9) at scale 1/2: feature coords (1, 0.5)-(5, 4.5), 2x2 bins of 2 x 2, 2x2 samples
    rois = torch.tensor([[0.0, 2.0, 1.0, 10.0, 9.0]])
    out = roi_align(features, rois, output_size=2, spatial_scale=0.5, sampling_ratio=2)
    # bin centres: x in {2, 4}, y in {1.5, 3.5}; the mean of 4 samples of a linear function = its centre value
    expected = torch.tensor([[2 * 2 + 3 * 1.5 + 1, 2 * 4 + 3 * 1.5 + 1], [2 * 2 + 3 * 3.5 + 1, 2 * 4 + 3 * 3.5 + 1]])
    torch.testing.assert_close(out[0, 0], expected)


def test_roi_align_unaligned_small_boxes_grow_to_one_pixel_and_clamp_at_borders() -> None:
    features = _ramp(6, 6)
    # a degenerate box at the far corner: width/height forced to 1; samples beyond the last pixel clamp to it
    rois = torch.tensor([[0.0, 5.0, 5.0, 5.0, 5.0]])
    out = roi_align(features, rois, output_size=1, sampling_ratio=2, spatial_scale=1.0)
    torch.testing.assert_close(out[0, 0, 0, 0], torch.tensor(2 * 5 + 3 * 5 + 1.0))
    # samples entirely outside (< -1) contribute zero
    far = roi_align(features, torch.tensor([[0.0, -20.0, -20.0, -10.0, -10.0]]), output_size=2,
                    sampling_ratio=2, spatial_scale=1.0)
    assert (far == 0).all()


def test_roi_align_uses_each_rois_batch_index() -> None:
    features = torch.cat([_ramp(), 10 * _ramp()])  # (2, 1, H, W)
    rois = torch.tensor([[1.0, 2.0, 1.0, 10.0, 9.0], [0.0, 2.0, 1.0, 10.0, 9.0]])
    out = roi_align(features, rois, output_size=2, spatial_scale=0.5, sampling_ratio=2)
    torch.testing.assert_close(out[0], 10 * out[1])


def test_nms_keeps_the_best_of_each_overlapping_group_in_score_order() -> None:
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.95, 0.5, 0.3])
    # IoU(0, 1) = 81 / 119 = 0.68: kept at 0.7, suppressed at 0.5
    assert nms(boxes, scores, iou_threshold=0.7).tolist() == [1, 0, 2]
    assert nms(boxes, scores, iou_threshold=0.5).tolist() == [1, 2]


def test_nms_breaks_score_ties_by_input_order() -> None:
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], dtype=torch.float32)
    assert nms(boxes, torch.tensor([0.5, 0.5, 0.5]), iou_threshold=0.5).tolist() == [0]


def test_batched_nms_never_suppresses_across_groups_on_both_paths() -> None:
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8])
    assert batched_nms(boxes, scores, groups=torch.tensor([0, 1]), iou_threshold=0.5).tolist() == [0, 1]
    assert batched_nms(boxes, scores, groups=torch.tensor([0, 0]), iou_threshold=0.5).tolist() == [0]
    many = boxes.repeat(600, 1)  # 4800 coordinates: the one-NMS-per-group path
    groups = torch.arange(1200) % 2
    kept = batched_nms(many, torch.linspace(1, 0, 1200), groups=groups, iou_threshold=0.5)
    assert kept.tolist() == [0, 1]


def test_anchors_have_the_requested_area_and_ratio_on_the_stride_grid() -> None:
    base = cell_anchors(64)
    w, h = base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]
    torch.testing.assert_close(w * h, torch.full((3,), 64.0 * 64))
    torch.testing.assert_close(h / w, torch.tensor([0.5, 1.0, 2.0]))
    anchors = grid_anchors(64, 16, grid=(2, 3))
    assert anchors.shape == (2 * 3 * 3, 4)
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    torch.testing.assert_close(centres[3 * 4], torch.tensor([16.0, 16.0]))  # location (y=1, x=1), first ratio
    assert math.isclose(float(anchors[0, 0]), -math.sqrt(64 * 64 / 0.5) / 2, rel_tol=1e-6)
