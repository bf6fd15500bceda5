"""The paper's evaluation (DisCo's protocol): L1, PSNR, SSIM, LPIPS, FID, FID-VID and FVD.

Videos are (F, H, W, 3) numpy arrays or torch tensors, floats in [0, 1] or uint8. Paired
metrics pair frames by index and resize generated frames to the ground-truth size; the
distribution metrics compare sets of videos. See docs/metrics.md for the protocol.
"""

from magicanimate.metrics.distribution import fid, fid_vid, fvd
from magicanimate.metrics.frame_metrics import l1, l1_disco, psnr, psnr_disco, ssim
from magicanimate.metrics.frechet import frechet_distance, frechet_from_features, gaussian_stats
from magicanimate.metrics.networks import FeatureNetworks, load_feature_networks, random_feature_networks
from magicanimate.metrics.perceptual import lpips
from magicanimate.metrics.units import video_units
from magicanimate.metrics.downloads import WEIGHT_FILES, download_weights, metrics_dir

__all__ = [
    "WEIGHT_FILES",
    "FeatureNetworks",
    "download_weights",
    "fid",
    "fid_vid",
    "frechet_distance",
    "frechet_from_features",
    "fvd",
    "gaussian_stats",
    "l1",
    "l1_disco",
    "load_feature_networks",
    "lpips",
    "metrics_dir",
    "psnr",
    "psnr_disco",
    "random_feature_networks",
    "ssim",
    "video_units",
]
