"""LPIPS v0.1 with the VGG16 trunk (Zhang et al. 2018): a learned perceptual distance.

Two files make the network: torchvision's ImageNet VGG16 (`features.N.*` keys, conv layers
0..28) and the LPIPS linear calibration (`lin{k}.model.1.weight`, one 1x1 conv per tapped layer).
Inputs are expected in [-1, 1]; a fixed per-channel shift/scale is applied first, features at
relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 are unit-normalised over channels, their squared
differences weighted by the linear layers, averaged over space and summed over layers.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from magicanimate.weights.state_dict import LoadReport, load_mapped

# VGG16 "D" configuration; "M" is a 2x2 max pool. Indices match torchvision's `features`.
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
# End (exclusive) of each tapped slice of `features`: after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
TAP_ENDS = (4, 9, 16, 23, 30)
TAP_CHANNELS = (64, 128, 256, 512, 512)
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


def _vgg16_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for item in VGG16_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(cin, int(item), kernel_size=3, padding=1), nn.ReLU()]
            cin = int(item)
    return nn.Sequential(*layers)  # 30 modules: indices 0..29, ending with relu5_3


class LPIPSVGG(nn.Module):
    """(B, 3, H, W), (B, 3, H, W) in [-1, 1] → (B,) LPIPS distances."""

    def __init__(self) -> None:
        super().__init__()
        self.features = _vgg16_features()
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in TAP_CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)  # (3,) -> NCHW
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)  # (3,) -> NCHW

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised activations at the five tapped ReLUs."""
        x = (x - self.shift) / self.scale
        out, start = [], 0
        for end in TAP_ENDS:
            for layer in self.features[start:end]:
                x = layer(x)
            # LPIPS divides by the channel norm plus 1e-10 (not a clamp).
            out.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
            start = end
        return out

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        total = x0.new_zeros(x0.shape[0])
        for head, a, b in zip(self.heads, self.taps(x0), self.taps(x1)):
            total = total + head((a - b).pow(2)).mean(dim=(1, 2, 3))  # (B, 1, h, w) → (B,)
        return total


_LIN_KEY = re.compile(r"^lin(\d)\.model\.1\.weight$")


def load_vgg16_trunk(model: LPIPSVGG, state_dict: dict[str, torch.Tensor]) -> LoadReport:
    """Load torchvision's `vgg16-397923af.pth` into the trunk; its `classifier.*` is unused by LPIPS."""
    sub = nn.ModuleDict({"features": model.features})
    return load_mapped(sub, state_dict, rename=lambda k: None if k.startswith("classifier.") else k,
                       what="VGG16 trunk (LPIPS)")


def load_lpips_heads(model: LPIPSVGG, state_dict: dict[str, torch.Tensor]) -> LoadReport:
    """Load LPIPS v0.1 `vgg.pth` (`lin{k}.model.1.weight`) into the five 1x1 heads."""

    def rename(key: str) -> str | None:
        match = _LIN_KEY.match(key)
        return f"{match.group(1)}.weight" if match else key

    return load_mapped(model.heads, state_dict, rename=rename, what="LPIPS linear layers")
