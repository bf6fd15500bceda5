"""DensePose heads (Güler et al., DensePose; detectron2 ``DensePoseROIHeads``): decoder, conv head, chart predictor."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

NUM_COARSE = 2  # background / person
NUM_PARTS = 24  # fine part labels 1..24, 0 = background
DECODER_STRIDE = 4


class Decoder(nn.Module):
    """Panoptic-FPN merge of p2..p5 at stride 4: per level conv3x3+ReLU (+ bilinear 2x) steps, summed, 1x1 conv."""

    in_features = ("p2", "p3", "p4", "p5")
    strides = (4, 8, 16, 32)

    def __init__(self, channels: int = 256) -> None:
        super().__init__()
        for name, stride in zip(self.in_features, self.strides):
            ops: list[nn.Module] = []
            for _ in range(max(1, stride.bit_length() - DECODER_STRIDE.bit_length())):
                ops.append(nn.Conv2d(channels, channels, 3, padding=1))
                if stride != DECODER_STRIDE:
                    ops.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.add_module(name, _ConvReluSequence(*ops))
        self.predictor = nn.Conv2d(channels, channels, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Features p2..p5 -> (B, 256, H/4, W/4)."""
        x = getattr(self, self.in_features[0])(features[0])
        for name, feature in zip(self.in_features[1:], features[1:]):
            x = x + getattr(self, name)(feature)
        return self.predictor(x)


class _ConvReluSequence(nn.Sequential):
    """A Sequential applying ReLU after each conv; the ReLU takes no index, so keys read p4.0, p4.2 as in detectron2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for op in self:
            x = F.relu(op(x)) if isinstance(op, nn.Conv2d) else op(x)
        return x


class DensePoseHead(nn.Module):
    """Eight conv3x3 (512) + ReLU layers on the 28x28 pooled decoder features (``DensePoseV1ConvXHead``)."""

    def __init__(self, channels: int = 256, dim: int = 512, num_convs: int = 8) -> None:
        super().__init__()
        self.num_convs = num_convs
        for i in range(num_convs):
            self.add_module(f"body_conv_fcn{i + 1}", nn.Conv2d(channels if i == 0 else dim, dim, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.num_convs):
            x = F.relu(getattr(self, f"body_conv_fcn{i + 1}")(x))
        return x


@dataclass
class ChartOutputs:
    """DensePose chart predictions at 112x112 per box: coarse (R, 2), fine (R, 25), u (R, 25), v (R, 25)."""

    coarse_segm: torch.Tensor
    fine_segm: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor


class ChartPredictor(nn.Module):
    """Transposed conv 4x4/2 (56x56) then bilinear 2x (112x112) for coarse/fine segmentation and U, V."""

    def __init__(self, dim: int = 512) -> None:
        super().__init__()
        channels = NUM_PARTS + 1
        self.ann_index_lowres = nn.ConvTranspose2d(dim, NUM_COARSE, 4, stride=2, padding=1)
        self.index_uv_lowres = nn.ConvTranspose2d(dim, channels, 4, stride=2, padding=1)
        self.u_lowres = nn.ConvTranspose2d(dim, channels, 4, stride=2, padding=1)
        self.v_lowres = nn.ConvTranspose2d(dim, channels, 4, stride=2, padding=1)

    @staticmethod
    def _upsample(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor, *, with_uv: bool = True) -> ChartOutputs:
        """Chart outputs of the head features (R, 512, 28, 28); U/V are skipped (empty) without ``with_uv``."""
        coarse = self._upsample(self.ann_index_lowres(x))
        fine = self._upsample(self.index_uv_lowres(x))
        if with_uv:
            u, v = self._upsample(self.u_lowres(x)), self._upsample(self.v_lowres(x))
        else:
            u = v = x.new_zeros((x.shape[0], 0, *fine.shape[-2:]))
        return ChartOutputs(coarse_segm=coarse, fine_segm=fine, u=u, v=v)
