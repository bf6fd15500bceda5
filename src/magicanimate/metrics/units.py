"""Cutting a video into fixed-length frame units for the video feature networks (pure index logic)."""

from __future__ import annotations

import numpy as np

UNIT_FRAMES = 16


def video_units(num_frames: int, *, unit_frames: int = UNIT_FRAMES, stride: int = UNIT_FRAMES) -> list[np.ndarray]:
    """Frame indices of each unit of `unit_frames` frames, starting every `stride` frames.

    - stride == unit_frames (segments): non-overlapping units covering every frame; the last
      one is padded by repeating the video's final frame (DisCo's FID-VID segmenting).
    - stride < unit_frames (sliding windows): only complete windows, as DisCo builds its
      16-frame clips from frame folders (stride 1).
    A video shorter than one unit gives a single padded unit in both cases.
    """
    if num_frames < 1 or unit_frames < 1 or stride < 1:
        raise ValueError(f"need positive sizes: num_frames={num_frames}, unit_frames={unit_frames}, stride={stride}")
    if stride > unit_frames:
        raise ValueError(f"stride {stride} larger than the unit ({unit_frames}) would skip frames")
    if num_frames <= unit_frames or stride == unit_frames:
        starts = range(0, num_frames, unit_frames)
    else:
        starts = range(0, num_frames - unit_frames + 1, stride)
    last = num_frames - 1
    return [np.minimum(np.arange(s, s + unit_frames), last) for s in starts]
