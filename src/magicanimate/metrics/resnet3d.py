"""3D ResNet-50 (Hara et al. 2017, shortcut type B) for FID-VID: 2048-d pooled Kinetics-400 features.

The layout and names follow kenshohara's 2017 release (`resnet-50-kinetics.pth`, the file DisCo
loads), whose keys carry a `module.` prefix from DataParallel. Input: 16 frames at 112×112,
0-255 RGB minus the ActivityNet mean, no division by a std.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from magicanimate.weights.state_dict import LoadReport, load_mapped

INPUT_FRAMES = 16
INPUT_SIZE = 112
FEATURE_DIM = 2048
# Per-channel RGB mean (0-255) subtracted before the network, as in the release and DisCo.
MEAN_RGB_255 = (114.7748, 107.7354, 99.4750)


class Bottleneck(nn.Module):
    """1x1x1 → 3x3x3 (carries the stride) → 1x1x1 with 4× expansion and a residual."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(cin, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * 4)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ResNet3D50(nn.Module):
    """(B, 3, 16, 112, 112) mean-subtracted 0-255 RGB → (B, 2048) pooled features."""

    def __init__(self, *, num_frames: int = INPUT_FRAMES, size: int = INPUT_SIZE, num_classes: int = 400) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 64, kernel_size=7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.inplanes = 64
        self.layer1 = self._make_layer(64, 3, stride=1)
        self.layer2 = self._make_layer(128, 4, stride=2)
        self.layer3 = self._make_layer(256, 6, stride=2)
        self.layer4 = self._make_layer(512, 3, stride=2)
        # The release pools with a fixed window sized for its clip (1×4×4 for 16×112×112).
        self.pool_kernel = (math.ceil(num_frames / 16), math.ceil(size / 32), math.ceil(size / 32))
        # The Kinetics classifier is kept so the file loads whole; features are taken before it.
        self.fc = nn.Linear(512 * Bottleneck.expansion, num_classes)

    def _make_layer(self, planes: int, blocks: int, *, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, planes * Bottleneck.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(planes * Bottleneck.expansion),
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))  # B 64 16 56 56
        x = F.max_pool3d(x, kernel_size=3, stride=2, padding=1)  # B 64 8 28 28
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # B 2048 1 4 4
        x = F.avg_pool3d(x, kernel_size=self.pool_kernel, stride=1)  # B 2048 1 1 1
        if x.shape[2:].numel() != 1:
            raise ValueError(
                f"ResNet3D50 expects {INPUT_FRAMES}×{INPUT_SIZE}² clips, got {tuple(x.shape)} after pooling"
            )
        return x.flatten(1)  # B 2048


def load_resnet3d(model: ResNet3D50, state_dict: dict[str, torch.Tensor]) -> LoadReport:
    """Load `resnet-50-kinetics.pth` (its 'state_dict', keys prefixed 'module.') strictly."""
    return load_mapped(model, state_dict, rename=lambda k: k.removeprefix("module."), what="3D ResNet-50 (FID-VID)")
