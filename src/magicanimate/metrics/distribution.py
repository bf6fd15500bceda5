"""Distribution metrics over sets of videos: FID (frames), FID-VID (3D ResNet-50) and FVD (I3D)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn

from magicanimate.metrics.features import i3d_unit_features, inception_features, resnet3d_unit_features
from magicanimate.metrics.arrays import Video, as_video_list, to_uint8
from magicanimate.metrics.frechet import frechet_from_features
from magicanimate.metrics.units import UNIT_FRAMES, video_units

Videos = Video | Sequence[Video]


def _uint8_set(videos: Videos, name: str) -> list[np.ndarray]:
    return [to_uint8(v, name=f"{name}[{i}]") for i, v in enumerate(as_video_list(videos, name=name))]


def fid(
    generated: Videos,
    ground_truth: Videos,
    *,
    network: nn.Module | None = None,
    batch_size: int = 32,
    cache_dir: str | None = None,
) -> float:
    """FID: Fréchet distance of InceptionV3 pool features over all frames of all videos, pooled."""
    if network is None:
        from magicanimate.metrics.networks import load_inception_network

        network = load_inception_network(cache_dir=cache_dir)
    feats = [
        np.concatenate([inception_features(v, network, batch_size=batch_size) for v in _uint8_set(s, name)])
        for s, name in ((generated, "generated"), (ground_truth, "ground_truth"))
    ]
    return frechet_from_features(*feats)


def video_feature_resnet3d(video: np.ndarray, network: nn.Module, *, unit_frames: int = UNIT_FRAMES,
                           batch_size: int = 4) -> np.ndarray:
    """One (2048,) FID-VID vector per video: 16-frame segments (last padded), features averaged."""
    units = video_units(len(video), unit_frames=unit_frames, stride=unit_frames)
    return resnet3d_unit_features(video, units, network, batch_size=batch_size).mean(axis=0)


def fid_vid(
    generated: Videos,
    ground_truth: Videos,
    *,
    network: nn.Module | None = None,
    unit_frames: int = UNIT_FRAMES,
    batch_size: int = 4,
    cache_dir: str | None = None,
) -> float:
    """FID-VID: Fréchet distance of per-video 3D ResNet-50 features (segments at 112², averaged)."""
    if network is None:
        from magicanimate.metrics.networks import load_resnet3d_network

        network = load_resnet3d_network(cache_dir=cache_dir)
    feats = [
        np.stack([video_feature_resnet3d(v, network, unit_frames=unit_frames, batch_size=batch_size)
                  for v in _uint8_set(s, name)])
        for s, name in ((generated, "generated"), (ground_truth, "ground_truth"))
    ]
    return frechet_from_features(*feats)


def fvd(
    generated: Videos,
    ground_truth: Videos,
    *,
    network: nn.Module | None = None,
    unit_frames: int = UNIT_FRAMES,
    stride: int = UNIT_FRAMES,
    batch_size: int = 4,
    cache_dir: str | None = None,
) -> float:
    """FVD: Fréchet distance of I3D logits (224², [-1, 1]) over the 16-frame units of all videos."""
    if network is None:
        from magicanimate.metrics.networks import load_i3d_network

        network = load_i3d_network(cache_dir=cache_dir)
    feats = []
    for s, name in ((generated, "generated"), (ground_truth, "ground_truth")):
        per_video = [
            i3d_unit_features(v, video_units(len(v), unit_frames=unit_frames, stride=stride), network,
                              batch_size=batch_size)
            for v in _uint8_set(s, name)
        ]
        feats.append(np.concatenate(per_video))
    return frechet_from_features(*feats)
