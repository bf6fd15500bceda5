"""The paper's evaluation (DisCo's protocol): L1, PSNR, SSIM, LPIPS, FID, FID-VID and FVD.

Videos are (F, H, W, 3) numpy arrays or torch tensors, floats in [0, 1] or uint8. Paired
metrics pair frames by index and resize generated frames to the ground-truth size; the
distribution metrics compare sets of videos. See docs/metrics.md for the protocol.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule; imported on first use, so that the command line's parser (which needs
# only the protocol and download tables) does not import torch.
_EXPORTS = {
    "fid": "distribution", "fid_vid": "distribution", "fvd": "distribution",
    "l1": "frame_metrics", "l1_disco": "frame_metrics", "psnr": "frame_metrics", "psnr_disco": "frame_metrics",
    "ssim": "frame_metrics",
    "frechet_distance": "frechet", "frechet_from_features": "frechet", "gaussian_stats": "frechet",
    "FeatureNetworks": "networks", "load_feature_networks": "networks", "random_feature_networks": "networks",
    "lpips": "perceptual",
    "video_units": "units",
    "WEIGHT_FILES": "downloads", "download_weights": "downloads", "metrics_dir": "downloads",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'magicanimate.metrics' has no attribute {name!r}")
    return getattr(importlib.import_module(f"magicanimate.metrics.{_EXPORTS[name]}"), name)
