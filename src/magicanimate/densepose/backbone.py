"""ResNet-50 with frozen BatchNorm and a feature pyramid (Lin et al., FPN), as detectron2 builds them.

Parameter names follow detectron2's ``state_dict()`` (``bottom_up.res2.0.conv1.norm.running_var``,
``fpn_lateral2.weight``, ...) so the official checkpoint loads without renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics and affine parameters (all buffers), eps 1e-5."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(channels))
        self.register_buffer("bias", torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels) - eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # detectron2 uses this fused op at inference; the same op keeps the rounding identical.
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=False, eps=self.eps)


class ConvNorm(nn.Conv2d):
    """A bias-free convolution followed by frozen BatchNorm (detectron2's ``Conv2d(norm=...)``)."""

    def __init__(self, cin: int, cout: int, kernel: int, *, stride: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.norm = FrozenBatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(super().forward(x))


class Stem(nn.Module):
    """conv 7x7/2 + FrozenBN + ReLU + max-pool 3x3/2: stride 4, 64 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ConvNorm(3, 64, 7, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.relu(self.conv1(x)), kernel_size=3, stride=2, padding=1)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 residual block; the stride sits in the first 1x1 (``STRIDE_IN_1X1``)."""

    def __init__(self, cin: int, bottleneck: int, cout: int, *, stride: int) -> None:
        super().__init__()
        self.shortcut = ConvNorm(cin, cout, 1, stride=stride) if cin != cout else None
        self.conv1 = ConvNorm(cin, bottleneck, 1, stride=stride)
        self.conv2 = ConvNorm(bottleneck, bottleneck, 3)
        self.conv3 = ConvNorm(bottleneck, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv1(x))
        out = F.relu(self.conv2(out))
        out = self.conv3(out)
        shortcut = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + shortcut)


# (name, blocks, bottleneck channels, output channels, first stride)
RESNET50_STAGES = (("res2", 3, 64, 256, 1), ("res3", 4, 128, 512, 2),
                   ("res4", 6, 256, 1024, 2), ("res5", 3, 512, 2048, 2))


class ResNet50(nn.Module):
    """ResNet-50 returning res2..res5 (strides 4, 8, 16, 32)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = Stem()
        cin = 64
        for name, blocks, bottleneck, cout, stride in RESNET50_STAGES:
            stage = [Bottleneck(cin if b == 0 else cout, bottleneck, cout, stride=stride if b == 0 else 1)
                     for b in range(blocks)]
            self.add_module(name, nn.Sequential(*stage))
            cin = cout

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Stage outputs res2..res5 of images (B, 3, H, W)."""
        out = {}
        x = self.stem(x)
        for name, *_ in RESNET50_STAGES:
            x = getattr(self, name)(x)
            out[name] = x
        return out


class FPN(nn.Module):
    """ResNet-50 + FPN: p2..p5 (256 ch, sum fusion, nearest 2x top-down) and p6 = max-pool(p5, 1, stride 2)."""

    levels = ("p2", "p3", "p4", "p5", "p6")
    strides = (4, 8, 16, 32, 64)

    def __init__(self, channels: int = 256) -> None:
        super().__init__()
        self.bottom_up = ResNet50()
        for level, (_, _, _, cin, _) in zip(range(2, 6), RESNET50_STAGES):
            self.add_module(f"fpn_lateral{level}", nn.Conv2d(cin, channels, 1))
            self.add_module(f"fpn_output{level}", nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pyramid features of normalised, padded images (B, 3, H, W), H and W multiples of 32."""
        bottom_up = self.bottom_up(images)
        prev = self.fpn_lateral5(bottom_up["res5"])
        out = {"p5": self.fpn_output5(prev)}
        for level in (4, 3, 2):
            top_down = F.interpolate(prev, scale_factor=2.0, mode="nearest")
            prev = getattr(self, f"fpn_lateral{level}")(bottom_up[f"res{level}"]) + top_down
            out[f"p{level}"] = getattr(self, f"fpn_output{level}")(prev)
        out["p6"] = F.max_pool2d(out["p5"], kernel_size=1, stride=2, padding=0)
        return {name: out[name] for name in self.levels}
