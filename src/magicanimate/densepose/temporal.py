"""Temporal smoothing of DensePose motion against per-frame flicker, and the flicker measure.

``smooth = N`` does two things:
1. boxes of one followed person (``people`` = largest/track) are replaced by their centred moving
   average over N frames before the part labels are drawn (``smooth_boxes``), so the drawn
   person stops jittering in place and size;
2. every pixel's label becomes the most frequent label (mode) over the centred window of N frames
   (``smooth_labels``; windows are cut at the clip ends; ties keep the frame's own label if it is
   among the most frequent, else the smallest such label).
"""

from __future__ import annotations

import numpy as np

from magicanimate.densepose.densepose_head import NUM_PARTS


def _window(t: int, n: int, length: int) -> slice:
    """The centred window of n frames around t, cut at the clip ends."""
    before = (n - 1) // 2
    return slice(max(0, t - before), min(length, t - before + n))


def smooth_boxes(boxes: list[np.ndarray | None], window: int) -> list[np.ndarray | None]:
    """Centred moving average over ``window`` frames of one person's box per frame (None = not seen)."""
    if window <= 1:
        return list(boxes)
    out: list[np.ndarray | None] = []
    for t, box in enumerate(boxes):
        if box is None:
            out.append(None)
            continue
        seen = [b for b in boxes[_window(t, window, len(boxes))] if b is not None]
        out.append(np.mean(np.stack(seen), axis=0).astype(np.float32))
    return out


def smooth_labels(labels: np.ndarray, window: int) -> np.ndarray:
    """Per-pixel mode of the part labels (F, H, W) over a centred window of ``window`` frames."""
    if window <= 1 or labels.shape[0] <= 1:
        return labels.copy()
    out = np.empty_like(labels)
    for t in range(labels.shape[0]):
        stack = labels[_window(t, window, labels.shape[0])]
        counts = np.stack([(stack == k).sum(axis=0) for k in range(NUM_PARTS + 1)])  # (25, H, W)
        best = counts.max(axis=0)
        own = np.take_along_axis(counts, labels[t][None].astype(np.int64), axis=0)[0]
        out[t] = np.where(own == best, labels[t], counts.argmax(axis=0))
    return out


def label_flicker(labels: np.ndarray) -> float:
    """Fraction of foreground pixels (in either frame) whose label changes between consecutive frames, averaged."""
    if labels.shape[0] < 2:
        return 0.0
    changed, foreground = 0, 0
    for a, b in zip(labels[:-1], labels[1:]):
        fg = (a > 0) | (b > 0)
        changed += int((fg & (a != b)).sum())
        foreground += int(fg.sum())
    return changed / max(foreground, 1)
