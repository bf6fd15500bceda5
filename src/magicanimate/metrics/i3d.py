"""I3D (Carreira & Zisserman 2017, Inception-v1 inflated to 3D) for FVD: Kinetics-400 logits.

Names follow piergiaj/pytorch-i3d, the layout of VideoGPT's `i3d_pretrained_400.pt` (converted
from the TF-Hub model used by the original FVD) that DisCo loads. Convolutions and max pools use
TensorFlow 'SAME' padding computed from the input size; the logits are averaged over time.
Input: clips at 224×224 scaled to [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from magicanimate.weights.state_dict import LoadReport, load_mapped

INPUT_SIZE = 224
NUM_CLASSES = 400


def same_padding(size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...]) -> tuple[int, ...]:
    """TF 'SAME' padding for (t, h, w), as F.pad's (w0, w1, h0, h1, t0, t1); the extra pixel goes last."""
    pads: list[int] = []
    for s, k, st in reversed(list(zip(size, kernel, stride))):
        total = max(k - st, 0) if s % st == 0 else max(k - s % st, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


class Unit3D(nn.Module):
    """Conv3d with SAME padding → optional BatchNorm(eps 1e-3) → optional ReLU."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), *, bn: bool = True,
                 relu: bool = True, bias: bool = False) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, stride=self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=1e-3) if bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(F.pad(x, same_padding(tuple(x.shape[2:]), self.kernel, self.stride)))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPoolSame(nn.Module):
    """Max pool with SAME padding; padding is zeros (inputs are post-ReLU, so this equals TF's)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, same_padding(tuple(x.shape[2:]), self.kernel, self.stride))
        return F.max_pool3d(x, self.kernel, self.stride)


class Mixed(nn.Module):
    """Inception module: 1x1 | 1x1→3x3 | 1x1→3x3 | maxpool→1x1, concatenated on channels."""

    def __init__(self, cin: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(cin, widths[0])
        self.b1a = Unit3D(cin, widths[1])
        self.b1b = Unit3D(widths[1], widths[2], (3, 3, 3))
        self.b2a = Unit3D(cin, widths[3])
        self.b2b = Unit3D(widths[3], widths[4], (3, 3, 3))
        self.b3a = MaxPoolSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, widths[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


# (name, input channels, branch widths) for every Inception module, in order.
MIXED = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)


class InceptionI3D(nn.Module):
    """(B, 3, T, 224, 224) in [-1, 1] → (B, 400) Kinetics logits averaged over time."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        for name, cin, widths in MIXED:
            self.add_module(name, Mixed(cin, widths))
        self.MaxPool3d_4a_3x3 = MaxPoolSame((3, 3, 3), (2, 2, 2))
        self.MaxPool3d_5a_2x2 = MaxPoolSame((2, 2, 2), (2, 2, 2))
        self.logits = Unit3D(1024, num_classes, bn=False, relu=False, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv3d_1a_7x7(x)  # B 64 T/2 112 112
        x = self.MaxPool3d_2a_3x3(x)  # B 64 T/2 56 56
        x = self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x))  # B 192 T/2 56 56
        x = self.MaxPool3d_3a_3x3(x)  # B 192 T/2 28 28
        x = self.Mixed_3c(self.Mixed_3b(x))  # B 480 T/2 28 28
        x = self.MaxPool3d_4a_3x3(x)  # B 480 T/4 14 14
        for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            x = getattr(self, name)(x)  # → B 832 T/4 14 14
        x = self.MaxPool3d_5a_2x2(x)  # B 832 T/8 7 7
        x = self.Mixed_5c(self.Mixed_5b(x))  # B 1024 T/8 7 7
        x = F.avg_pool3d(x, kernel_size=(1, 7, 7), stride=1)  # B 1024 T/8 1 1 (dropout: identity at eval)
        x = self.logits(x)  # B 400 T/8 1 1
        if x.shape[3:] != (1, 1):
            raise ValueError(f"InceptionI3D expects {INPUT_SIZE}×{INPUT_SIZE} frames, got {tuple(x.shape)} logits")
        return x.flatten(2).mean(dim=2)  # (B, 400, T/8·1·1) → B 400


def load_i3d(model: InceptionI3D, state_dict: dict[str, torch.Tensor]) -> LoadReport:
    """Load `i3d_pretrained_400.pt` (pytorch-i3d key names) strictly."""
    return load_mapped(model, state_dict, rename=lambda k: k.removeprefix("module."), what="I3D (FVD)")
