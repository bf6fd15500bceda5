"""Frame windows of the sampler: padding, the closed-loop sliding schedule and their fusion.

Pure functions, tested without a model.
"""

from __future__ import annotations

from typing import Iterable

import torch

from magicanimate.options import WINDOW


def padded_length(num_frames: int, window: int = WINDOW) -> int:
    """Length after padding the motion at the end to a multiple of ``window``."""
    if num_frames < 1:
        raise ValueError("need at least one frame")
    return -(-num_frames // window) * window


def sliding_windows(num_frames: int, window: int = WINDOW, overlap: int = 4,
                    closed_loop: bool = True) -> list[list[int]]:
    """Frame indices of each window, as the release's "uniform" context schedule at step 0.

    Windows start at 0, window-overlap, 2*(window-overlap), ... while the start is below
    ``num_frames`` (closed loop) and indices wrap around modulo ``num_frames``, so the last
    window mixes the end of the video with its beginning. A video no longer than one
    window is a single window.
    """
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be in [0, {window}), got {overlap}")
    if num_frames <= window:
        return [list(range(num_frames))]
    stop = num_frames if closed_loop else num_frames - overlap
    return [[i % num_frames for i in range(start, start + window)]
            for start in range(0, stop, window - overlap)]


def window_counts(windows: list[list[int]], num_frames: int) -> list[int]:
    """How many windows contain each frame (the divisor of the fused prediction)."""
    counts = [0] * num_frames
    for w in windows:
        for i in w:
            counts[i] += 1
    if min(counts) == 0:
        raise ValueError("some frames are in no window")
    return counts


def fuse_windows(predictions: Iterable[torch.Tensor], windows: list[list[int]], *, num_frames: int) -> torch.Tensor:
    """Average each frame's predictions over the windows that contain it.

    ``predictions`` yields one (b, c, f, h, w) tensor per window, in the order of
    ``windows``; the result is (b, c, num_frames, h, w). The sum is accumulated as the
    predictions arrive, so a lazy iterable keeps one window in memory at a time.
    """
    counts = window_counts(windows, num_frames)
    total: torch.Tensor | None = None
    for frames, prediction in zip(windows, predictions, strict=True):
        if total is None:
            b, c, _, h, w = prediction.shape
            total = prediction.new_zeros((b, c, num_frames, h, w))
        total[:, :, frames] += prediction
    if total is None:
        raise ValueError("no window predictions to fuse")
    divisor = torch.tensor(counts, device=total.device, dtype=total.dtype).view(1, 1, -1, 1, 1)  # (F,) -> frames axis
    return total / divisor
