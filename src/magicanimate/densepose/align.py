"""Global alignment of driving motion to the reference person (one scale + translation, MimicMotion-style).

Statistics of a person in a label map (pixel centres at +0.5):
- body height: the 0.5 %..99.5 % quantile range of the foreground rows (robust to stray pixels);
- anchor: the median (x, y) of the torso pixels (parts 1, 2), or of all foreground pixels when no
  torso is visible.
Over a clip, each statistic is the median over the frames where the person is seen. The fit maps
driving pixels to reference pixels by ``p_ref = scale * p_drv + offset`` with
``scale = height_ref / height_drv`` and the driving anchor landing on the reference anchor, so the
driving person stands where the reference person stands with the reference's body height.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from magicanimate.errors import InputError

TORSO_PARTS = (1, 2)
EXTENT_QUANTILES = (0.005, 0.995)


@dataclass(frozen=True)
class PersonStats:
    """Robust size and position of the person in one label map (pixels)."""

    height: float
    anchor: tuple[float, float]  # (x, y)


@dataclass(frozen=True)
class Alignment:
    """Similarity without rotation: reference pixel = scale * driving pixel + offset (x, y)."""

    scale: float
    offset: tuple[float, float]


def person_stats(labels: np.ndarray) -> PersonStats | None:
    """Body height and torso anchor of the foreground of one (H, W) label map; None when it is empty."""
    rows, cols = np.nonzero(labels)
    if rows.size == 0:
        return None
    low, high = np.quantile(rows + 0.5, EXTENT_QUANTILES)
    torso = np.isin(labels, TORSO_PARTS)
    if torso.any():
        rows, cols = np.nonzero(torso)
    anchor = (float(np.median(cols + 0.5)), float(np.median(rows + 0.5)))
    return PersonStats(height=float(max(high - low, 1.0)), anchor=anchor)


def clip_stats(labels: np.ndarray) -> PersonStats | None:
    """Median of the per-frame statistics over the frames (F, H, W) where a person is seen."""
    stats = [s for s in map(person_stats, labels) if s is not None]
    if not stats:
        return None
    return PersonStats(
        height=float(np.median([s.height for s in stats])),
        anchor=(float(np.median([s.anchor[0] for s in stats])), float(np.median([s.anchor[1] for s in stats]))),
    )


def fit_alignment(driving: np.ndarray, reference: np.ndarray) -> Alignment:
    """Scale + translation taking the driving clip's person (F, H, W) onto the reference person (H', W')."""
    drv = clip_stats(driving)
    ref = person_stats(reference)
    if drv is None:
        raise InputError("cannot align: no person was detected in the driving video")
    if ref is None:
        raise InputError("cannot align: no person was detected in the reference image")
    scale = ref.height / drv.height
    offset = (ref.anchor[0] - scale * drv.anchor[0], ref.anchor[1] - scale * drv.anchor[1])
    return Alignment(scale=scale, offset=offset)


def apply_alignment(labels: np.ndarray, alignment: Alignment, *, size: tuple[int, int] | None = None) -> np.ndarray:
    """Warp label maps (..., H, W) by ``alignment`` with nearest-neighbour sampling into (..., h, w) = ``size``."""
    height, width = size or labels.shape[-2:]
    # For each output pixel centre, the driving pixel it comes from (inverse map, then floor = nearest pixel).
    xs = np.floor(((np.arange(width) + 0.5) - alignment.offset[0]) / alignment.scale).astype(np.int64)
    ys = np.floor(((np.arange(height) + 0.5) - alignment.offset[1]) / alignment.scale).astype(np.int64)
    x_ok = (xs >= 0) & (xs < labels.shape[-1])
    y_ok = (ys >= 0) & (ys < labels.shape[-2])
    out = labels[..., np.clip(ys, 0, labels.shape[-2] - 1)[:, None], np.clip(xs, 0, labels.shape[-1] - 1)[None, :]]
    return np.where(y_ok[:, None] & x_ok[None, :], out, 0).astype(labels.dtype)


def align_motion(driving: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Driving labels (F, H, W) re-placed to stand where the reference person (H', W') stands, at size (H', W')."""
    return apply_alignment(driving, fit_alignment(driving, reference), size=reference.shape[-2:])
