"""The whole ``densepose_rcnn_R_50_FPN_s1x`` network: FPN backbone, RPN, box head and DensePose heads.

Module names mirror detectron2's so ``state_dict()`` keys equal the checkpoint's 335 names.
``DensePoseRCNN.forward`` runs the inference path on a batch of preprocessed images and
returns per-image detections in resized-input coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from magicanimate.densepose.backbone import FPN
from magicanimate.densepose.box_head import BoxHead, BoxHeadConfig, FastRCNNOutputLayers, detect, pool_levels
from magicanimate.densepose.densepose_head import DECODER_STRIDE, ChartOutputs, ChartPredictor, Decoder, DensePoseHead
from magicanimate.densepose.rpn import RPN

BOX_LEVELS = ("p2", "p3", "p4", "p5")
BOX_STRIDES = (4, 8, 16, 32)
DENSEPOSE_RESOLUTION = 28
DENSEPOSE_SAMPLING_RATIO = 2


@dataclass
class Detections:
    """One image's detections: boxes (N, 4) xyxy in resized-input pixels, scores (N,) descending, chart outputs."""

    boxes: torch.Tensor
    scores: torch.Tensor
    charts: ChartOutputs


class ROIHeads(nn.Module):
    """Box head + box predictor, and the DensePose decoder, head and predictor (detectron2 ``DensePoseROIHeads``)."""

    def __init__(self, config: BoxHeadConfig = BoxHeadConfig()) -> None:
        super().__init__()
        self.config = config
        self.box_head = BoxHead(resolution=config.pooler_resolution)
        self.box_predictor = FastRCNNOutputLayers()
        self.decoder = Decoder()
        self.densepose_head = DensePoseHead()
        self.densepose_predictor = ChartPredictor()

    def box_outputs(
        self, features: list[torch.Tensor], proposals: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits (R, 2) and box deltas (R, 4) for all images' proposals, concatenated."""
        pooled = pool_levels(features, proposals, strides=BOX_STRIDES, output_size=self.config.pooler_resolution,
                             sampling_ratio=self.config.sampling_ratio)
        logits, deltas = self.box_predictor(self.box_head(pooled))
        return logits.float(), deltas.float()

    def densepose(
        self, features: list[torch.Tensor], boxes: list[torch.Tensor], *, with_uv: bool = True
    ) -> ChartOutputs:
        """Chart outputs (112x112) for every image's boxes (resized-input xyxy), concatenated."""
        if sum(len(b) for b in boxes) == 0:
            empty = features[0].new_zeros((0, 0, 4 * DENSEPOSE_RESOLUTION, 4 * DENSEPOSE_RESOLUTION))
            return ChartOutputs(empty, empty, empty, empty)
        decoded = self.decoder(features)
        pooled = pool_levels([decoded], boxes, strides=(DECODER_STRIDE,), output_size=DENSEPOSE_RESOLUTION,
                             sampling_ratio=DENSEPOSE_SAMPLING_RATIO)
        return self.densepose_predictor(self.densepose_head(pooled), with_uv=with_uv)


class DensePoseRCNN(nn.Module):
    """DensePose R-CNN (Güler et al. 2018) with a ResNet-50-FPN backbone, inference only."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = FPN()
        self.proposal_generator = RPN()
        self.roi_heads = ROIHeads()

    def forward(
        self, images: torch.Tensor, image_sizes: list[tuple[int, int]], *, score_thresh: float, with_uv: bool = False
    ) -> list[Detections]:
        """Detections for normalised, padded images (B, 3, H, W) whose valid sizes are ``image_sizes`` (h, w)."""
        features = self.backbone(images)
        pyramid = [features[name] for name in FPN.levels]
        proposals = self.proposal_generator(pyramid, image_sizes, strides=FPN.strides)
        box_features = [features[name] for name in BOX_LEVELS]
        proposal_boxes = [boxes for boxes, _ in proposals]
        logits, deltas = self.roi_heads.box_outputs(box_features, proposal_boxes)
        boxes, scores = [], []
        start = 0
        for size, image_proposals in zip(image_sizes, proposal_boxes):
            end = start + len(image_proposals)
            b, s = detect(logits[start:end], deltas[start:end], image_proposals, image_size=size,
                          score_thresh=score_thresh, config=self.roi_heads.config)
            boxes.append(b)
            scores.append(s)
            start = end
        charts = self.roi_heads.densepose(box_features, boxes, with_uv=with_uv)
        out, start = [], 0
        for b, s in zip(boxes, scores):
            end = start + len(b)
            part = ChartOutputs(*(getattr(charts, k)[start:end] for k in ("coarse_segm", "fine_segm", "u", "v")))
            out.append(Detections(boxes=b, scores=s, charts=part))
            start = end
        return out
