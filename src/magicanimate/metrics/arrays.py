"""Video arrays in, checked: (F, H, W, 3) numpy or torch, floats in [0, 1] or uint8; and resizing them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from PIL import Image

from magicanimate.errors import InputError
from magicanimate.io.video import frames_to_uint8

Video = Union[np.ndarray, torch.Tensor]


def to_uint8(video: Video, *, name: str = "video") -> np.ndarray:
    """(F, H, W, 3) video as uint8: uint8 is kept, floats in [0, 1] become round(255·x)."""
    array = video.detach().cpu().numpy() if isinstance(video, torch.Tensor) else np.asarray(video)
    return frames_to_uint8(array, name=name)


def to_float(video: Video, *, name: str = "video") -> np.ndarray:
    """(F, H, W, 3) video as float64 in [0, 1]: uint8 is divided by 255, floats are kept."""
    array = video.detach().cpu().numpy() if isinstance(video, torch.Tensor) else np.asarray(video)
    if array.dtype == np.uint8:
        return to_uint8(array, name=name).astype(np.float64) / 255.0
    to_uint8(array, name=name)  # shape and dtype checks only
    return array.astype(np.float64)


def as_video_list(videos: Video | Sequence[Video], *, name: str) -> list[Video]:
    """A set of videos: one (F, H, W, 3) array, or a sequence of them."""
    if isinstance(videos, (np.ndarray, torch.Tensor)) and videos.ndim == 4:
        return [videos]
    videos = list(videos)
    if not videos:
        raise InputError(f"{name}: empty set of videos")
    return videos


def check_pair(generated: np.ndarray, ground_truth: np.ndarray) -> None:
    """Paired metrics need the same number of frames (frames are paired by index)."""
    if generated.shape[0] != ground_truth.shape[0]:
        raise InputError(
            f"generated video has {generated.shape[0]} frames but ground truth has {ground_truth.shape[0]}; "
            "frames are paired by index"
        )


def resize_bilinear_uint8(video: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a uint8 (F, H, W, 3) video to (height, width), half-pixel centres, no antialias.

    Same sampling geometry as OpenCV's INTER_LINEAR (which DisCo uses); values agree within
    one 8-bit level, the difference being OpenCV's fixed-point rounding.
    """
    if video.shape[1:3] == tuple(size):
        return video
    x = rearrange(torch.from_numpy(video).float(), "f h w c -> f c h w")
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False)
    x = rearrange(x, "f c h w -> f h w c")
    return x.round().clamp(0, 255).to(torch.uint8).numpy()


def match_size(generated: np.ndarray, ground_truth: np.ndarray) -> np.ndarray:
    """The generated uint8 video resized to the ground truth's frame size (the protocol's first step)."""
    return resize_bilinear_uint8(generated, ground_truth.shape[1:3])


def resize_bicubic_float(video: np.ndarray, size: int) -> np.ndarray:
    """(F, H, W, 3) uint8 → (F, size, size, 3) float32 on the 0-255 scale, PIL bicubic per channel in float.

    clean-fid's "clean" resizer, which DisCo applies before every feature network: no
    quantisation after resizing, so bicubic overshoot below 0 and above 255 is kept.
    """
    out = np.empty((video.shape[0], size, size, 3), dtype=np.float32)
    for f, frame in enumerate(video):
        for c in range(3):
            channel = Image.fromarray(frame[:, :, c].astype(np.float32))  # mode "F"
            out[f, :, :, c] = np.asarray(channel.resize((size, size), resample=Image.Resampling.BICUBIC))
    return out
