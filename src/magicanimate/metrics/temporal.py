"""Temporal error against a ground-truth video: how wrong the change from frame to frame is.

A per-frame metric (PSNR, L1) cannot tell a smooth video from one that flickers around the
right frames; this one can. For consecutive frames t, t+1 the generated change
g[t+1] - g[t] is compared with the true change y[t+1] - y[t]: the error of a pair is the
mean absolute difference of the two changes over pixels and channels (0-255 scale). A
static flicker-free copy of the truth scores 0; a video whose frames are right but jitter
scores the jitter.

``seam_pairs`` picks the pairs that straddle the boundaries of ``window``-frame segments
(15 -> 16, 31 -> 32, ...): where windows sampled without fusion meet, so that fusion's
effect (the paper's sliding-window ablation) is measured where it acts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from magicanimate.errors import InputError
from magicanimate.metrics.arrays import Video, check_pair, resize_bilinear_uint8, to_uint8


def frame_change_error_per_pair(generated: Video, ground_truth: Video) -> np.ndarray:
    """(F - 1,) mean |(g[t+1] - g[t]) - (y[t+1] - y[t])| per consecutive pair, 0-255 scale."""
    truth = to_uint8(ground_truth, name="ground truth").astype(np.float64)
    frames = to_uint8(generated, name="generated")
    check_pair(frames, truth)
    frames = resize_bilinear_uint8(frames, truth.shape[1:3]).astype(np.float64)
    if truth.shape[0] < 2:
        raise InputError("a temporal error needs at least 2 frames")
    return np.abs(np.diff(frames, axis=0) - np.diff(truth, axis=0)).mean(axis=(1, 2, 3))


def frame_change_error(generated: Video, ground_truth: Video, *, pairs: Sequence[int] | None = None) -> float:
    """Mean frame-to-frame change error over all consecutive pairs, or over ``pairs`` (index t: t -> t+1)."""
    per_pair = frame_change_error_per_pair(generated, ground_truth)
    if pairs is None:
        return float(per_pair.mean())
    pairs = list(pairs)
    if not pairs or min(pairs) < 0 or max(pairs) >= per_pair.shape[0]:
        raise InputError(f"pairs must be in 0..{per_pair.shape[0] - 1}, got {pairs}")
    return float(per_pair[pairs].mean())


def seam_pairs(num_frames: int, window: int) -> list[int]:
    """Pair indices t (t -> t+1) where consecutive ``window``-frame segments meet: window-1, 2*window-1, ..."""
    if window < 1:
        raise InputError(f"window must be >= 1, got {window}")
    return list(range(window - 1, num_frames - 1, window))
