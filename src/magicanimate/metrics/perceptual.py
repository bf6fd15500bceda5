"""LPIPS between paired frames, with DisCo's input convention or the one LPIPS was trained for."""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange
from torch import nn

from magicanimate.errors import InputError
from magicanimate.metrics.features import network_placement
from magicanimate.metrics.arrays import Video, check_pair, match_size, to_uint8

# DisCo feeds torchvision's ToTensor output, [0, 1], to a network that expects [-1, 1].
LPIPS_INPUT_RANGES = ("disco", "standard")


def _lpips_input(frames: np.ndarray, input_range: str, device: torch.device) -> torch.Tensor:
    x = rearrange(torch.from_numpy(frames).to(device=device, dtype=torch.float32) / 255.0, "b h w c -> b c h w")
    return x if input_range == "disco" else 2.0 * x - 1.0


@torch.inference_mode()
def lpips_per_frame(
    generated: np.ndarray,
    ground_truth: np.ndarray,
    network: nn.Module,
    *,
    input_range: str = "disco",
    batch_size: int = 8,
) -> np.ndarray:
    """LPIPS per frame of two same-shape uint8 videos; input_range 'disco' ([0, 1]) or 'standard' ([-1, 1])."""
    if input_range not in LPIPS_INPUT_RANGES:
        raise InputError(f"LPIPS input range must be one of {LPIPS_INPUT_RANGES}, got '{input_range}'")
    device, _ = network_placement(network)
    scores = []
    for i in range(0, len(generated), batch_size):
        a = _lpips_input(generated[i : i + batch_size], input_range, device)
        b = _lpips_input(ground_truth[i : i + batch_size], input_range, device)
        scores.append(network(a, b).double().cpu().numpy())
    return np.concatenate(scores)


def lpips(
    generated: Video,
    ground_truth: Video,
    *,
    network: nn.Module | None = None,
    input_range: str = "disco",
    batch_size: int = 8,
    cache_dir: str | None = None,
) -> float:
    """LPIPS-VGG between paired frames, averaged over frames ('disco' = the paper's [0, 1] inputs)."""
    gt = to_uint8(ground_truth, name="ground_truth")
    gen = to_uint8(generated, name="generated")
    check_pair(gen, gt)
    if network is None:
        from magicanimate.metrics.networks import load_lpips_network

        network = load_lpips_network(cache_dir=cache_dir)
    return float(lpips_per_frame(match_size(gen, gt), gt, network, input_range=input_range,
                                 batch_size=batch_size).mean())
