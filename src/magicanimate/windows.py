"""Frame windows of the sampler: padding, the closed-loop sliding schedule and fusion counts.

Pure functions of integers, tested without a model.
"""

from __future__ import annotations


def padded_length(num_frames: int, window: int = 16) -> int:
    """Length after padding the motion at the end to a multiple of ``window``."""
    if num_frames < 1:
        raise ValueError("need at least one frame")
    return -(-num_frames // window) * window


def sliding_windows(num_frames: int, window: int = 16, overlap: int = 4,
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
