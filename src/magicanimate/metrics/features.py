"""Protocol preprocessing and batched feature extraction for the three feature networks.

Every network sees frames resized with clean-fid's float bicubic resizer (as DisCo does):
- InceptionV3: 299×299, (x − 128) / 128 on the 0-255 scale (the TF graph's own scaling);
- 3D ResNet-50: 112×112, x − ActivityNet mean (0-255 scale), 16-frame units;
- I3D: 224×224, x / 127.5 − 1, 16-frame units.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from einops import rearrange
from torch import nn

from magicanimate.metrics import i3d as i3d_net
from magicanimate.metrics import inception as inception_net
from magicanimate.metrics import resnet3d as resnet3d_net
from magicanimate.metrics.arrays import resize_bicubic_float


def network_placement(network: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and dtype of a network's parameters (CPU float32 for a parameter-free module)."""
    param = next(network.parameters(), None)
    return (param.device, param.dtype) if param is not None else (torch.device("cpu"), torch.float32)


@torch.inference_mode()
def _run(network: nn.Module, batch: np.ndarray) -> np.ndarray:
    device, dtype = network_placement(network)
    return network(torch.from_numpy(batch).to(device=device, dtype=dtype)).double().cpu().numpy()


def inception_inputs(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 → (N, 3, 299, 299) float32 network input."""
    resized = resize_bicubic_float(frames, inception_net.INPUT_SIZE)
    return rearrange((resized - 128.0) / 128.0, "n h w c -> n c h w").astype(np.float32)


def inception_features(frames: np.ndarray, network: nn.Module, *, batch_size: int = 32) -> np.ndarray:
    """(N, H, W, 3) uint8 frames → (N, 2048) InceptionV3 pool features (float64)."""
    out = [_run(network, inception_inputs(frames[i : i + batch_size])) for i in range(0, len(frames), batch_size)]
    return np.concatenate(out, axis=0)


def _unit_batches(clips: np.ndarray, units: Sequence[np.ndarray], batch_size: int):
    for i in range(0, len(units), batch_size):
        batch = np.stack([clips[idx] for idx in units[i : i + batch_size]])  # U F H W C
        yield rearrange(batch, "u f h w c -> u c f h w").astype(np.float32)


def resnet3d_unit_features(
    video: np.ndarray, units: Sequence[np.ndarray], network: nn.Module, *, batch_size: int = 4
) -> np.ndarray:
    """(F, H, W, 3) uint8 video and unit indices → (U, 2048) 3D ResNet-50 features, one per unit."""
    resized = resize_bicubic_float(video, resnet3d_net.INPUT_SIZE) - np.float32(resnet3d_net.MEAN_RGB_255)
    return np.concatenate([_run(network, b) for b in _unit_batches(resized, units, batch_size)], axis=0)


def i3d_unit_features(
    video: np.ndarray, units: Sequence[np.ndarray], network: nn.Module, *, batch_size: int = 4
) -> np.ndarray:
    """(F, H, W, 3) uint8 video and unit indices → (U, 400) I3D logits (time-averaged), one per unit."""
    resized = resize_bicubic_float(video, i3d_net.INPUT_SIZE) / np.float32(127.5) - np.float32(1.0)
    return np.concatenate([_run(network, b) for b in _unit_batches(resized, units, batch_size)], axis=0)
