"""Synthetic DensePose-style motion for demos and tests (no detector, no weights).

The released motions are detectron2 DensePose "dp_segm" renderings: each pixel
shows its body-part index k (0 = background, 1..24 = parts) through OpenCV's
VIRIDIS colormap at level floor(k * 255 / 24). `render_motion` draws a simple
person (ellipses and capsules) doing jumping jacks and colours it the same way,
so the frames look like the real motion inputs to every downstream step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from magicanimate.errors import InputError

NUM_PARTS = 24

# Control points of the viridis colormap: matplotlib's 256-entry viridis table
# (which OpenCV's COLORMAP_VIRIDIS copies) at every 17th entry, i.e. indices
# 0, 17, ..., 255, as RGB floats in [0, 1]. Linear interpolation between them
# stays within a few levels of the full table (most where blue bottoms out
# near 240); the colours of the released demo videos agree within coding noise.
_VIRIDIS_STEP = 17
_VIRIDIS_STOPS = (
    (0.267004, 0.004874, 0.329415),
    (0.282656, 0.100196, 0.422160),
    (0.277134, 0.185228, 0.489898),
    (0.253935, 0.265254, 0.529983),
    (0.221989, 0.339161, 0.548752),
    (0.190631, 0.407061, 0.556089),
    (0.163625, 0.471133, 0.558148),
    (0.139147, 0.533812, 0.555298),
    (0.120565, 0.596422, 0.543611),
    (0.134692, 0.658636, 0.517649),
    (0.208030, 0.718701, 0.472873),
    (0.327796, 0.773980, 0.406640),
    (0.477504, 0.821444, 0.318195),
    (0.647257, 0.858400, 0.209861),
    (0.824940, 0.884720, 0.106217),
    (0.993248, 0.906157, 0.143936),
)

# DensePose part indices (1-based) used below; pairs are (back/outer, front/inner).
TORSO = (1, 2)
RIGHT_HAND, LEFT_HAND, LEFT_FOOT, RIGHT_FOOT = 3, 4, 5, 6
UPPER_LEG_RIGHT, UPPER_LEG_LEFT = (7, 9), (8, 10)
LOWER_LEG_RIGHT, LOWER_LEG_LEFT = (11, 13), (12, 14)
UPPER_ARM_LEFT, UPPER_ARM_RIGHT = (15, 17), (16, 18)
LOWER_ARM_LEFT, LOWER_ARM_RIGHT = (19, 21), (20, 22)
HEAD = (23, 24)  # (person's right half = image left, left half)

# The exact dp_segm colours: OpenCV's COLORMAP_VIRIDIS entry floor(k * 255 / 24) for k = 0..24,
# i.e. round(255 * matplotlib viridis[level]) as RGB. Checked against detectron2's own renderings
# (tests/test_densepose_model.py); the interpolated table above is off by up to 6 levels here.
_PART_COLORS = (
    (68, 1, 84), (71, 16, 99), (72, 31, 112), (71, 44, 122), (68, 57, 131),
    (64, 70, 136), (59, 81, 139), (54, 93, 141), (49, 104, 142), (44, 113, 142),
    (40, 124, 142), (37, 133, 142), (33, 144, 141), (31, 154, 138), (32, 163, 134),
    (39, 173, 129), (53, 183, 121), (70, 192, 111), (92, 200, 99), (115, 208, 86),
    (142, 214, 69), (170, 220, 50), (197, 224, 33), (226, 228, 24), (253, 231, 37),
)


# --------------------------------------------------------------------------
# Colours
# --------------------------------------------------------------------------


def viridis_table() -> np.ndarray:
    """The 256-entry viridis colormap as uint8 (256, 3) RGB: exact at the 25 part levels, interpolated elsewhere."""
    colours = np.array(_VIRIDIS_STOPS, dtype=np.float64) * 255.0
    stops = np.arange(len(_VIRIDIS_STOPS)) * _VIRIDIS_STEP
    levels = np.arange(256)
    channels = [np.interp(levels, stops, colours[:, c]) for c in range(3)]
    table = np.round(np.stack(channels, axis=1)).astype(np.uint8)  # 3 x (256,) -> (256, 3)
    table[np.arange(NUM_PARTS + 1) * 255 // NUM_PARTS] = _PART_COLORS
    return table


def part_colors() -> np.ndarray:
    """RGB of part k = viridis(floor(k * 255 / 24)) for k = 0..24, as uint8 (25, 3) (OpenCV's exact values)."""
    return np.array(_PART_COLORS, dtype=np.uint8)


def background_color() -> tuple[int, int, int]:
    """The background colour, part 0 = viridis(0) = (68, 1, 84)."""
    return tuple(int(v) for v in part_colors()[0])


def colorize_parts(labels: np.ndarray) -> np.ndarray:
    """Map part labels (..., H, W) in 0..24 to DensePose dp_segm colours (..., H, W, 3) uint8."""
    if labels.dtype.kind not in "iu":
        raise InputError(f"part labels must be integers in 0..{NUM_PARTS}, got {labels.dtype}")
    if labels.min(initial=0) < 0 or labels.max(initial=0) > NUM_PARTS:
        raise InputError(f"part labels must be integers in 0..{NUM_PARTS}")
    return part_colors()[labels]


def person_mask(frames: np.ndarray, *, tolerance: int = 8) -> np.ndarray:
    """Pixels that are not background: (F, H, W, 3) uint8 -> (F, H, W) bool.

    A pixel is background when every channel is within `tolerance` of viridis(0),
    which absorbs video compression noise; part 1 is about 15 levels away.
    """
    if frames.dtype != np.uint8 or frames.shape[-1] != 3:
        raise InputError(
            f"person_mask expects uint8 (..., 3) frames, got {frames.dtype} {frames.shape}"
        )
    distance = np.abs(frames.astype(np.int16) - np.array(background_color(), dtype=np.int16))
    return distance.max(axis=-1) > tolerance


# --------------------------------------------------------------------------
# The figure
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Style:
    """Per-seed variation of the performer and the motion."""

    period: float  # frames per jumping-jack cycle
    phase: float  # radians at frame 0
    centre_x: float  # hip x as a fraction of the width
    scale: float  # body size relative to min(W, H)
    arm_reach: float  # how far the arms rise (radians at the top of the cycle)
    leg_spread: float  # radians the legs open
    arm_lag: float  # phase lag of the left arm (radians), breaks the symmetry


def _style(seed: int) -> _Style:
    """Draw a performer style from the seed."""
    rng = np.random.default_rng(seed)
    return _Style(
        period=float(rng.uniform(18.0, 30.0)),
        phase=float(rng.uniform(0.0, 2.0 * math.pi)),
        centre_x=float(rng.uniform(0.42, 0.58)),
        scale=float(rng.uniform(0.9, 1.0)),
        arm_reach=float(rng.uniform(2.0, 2.6)),
        leg_spread=float(rng.uniform(0.15, 0.3)),
        arm_lag=float(rng.uniform(0.0, 0.6)),
    )


def _towards(start: np.ndarray, angle: float, length: float) -> np.ndarray:
    """The point `length` away from `start`; angle 0 points down, positive turns to image right."""
    return start + length * np.array([math.sin(angle), math.cos(angle)])


# Painting: every primitive works on the (H, W) label image in pixel units
# (x right, y down) and only touches the bounding box of its shape.

Split = Literal["none", "sides", "halves"]


def _window(
    labels: np.ndarray, low: np.ndarray, high: np.ndarray
) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
    """Pixel-centre coordinates (xs, ys) of the clipped box [low, high], or None if it is empty."""
    height, width = labels.shape
    x0, y0 = max(0, math.floor(low[0])), max(0, math.floor(low[1]))
    x1, y1 = min(width, math.ceil(high[0]) + 1), min(height, math.ceil(high[1]) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64) + 0.5
    return (slice(y0, y1), slice(x0, x1)), xs, ys


def _paint_capsule(
    labels: np.ndarray,
    ends: tuple[np.ndarray, np.ndarray],
    radius: float,
    parts: tuple[int, int],
    *,
    body: np.ndarray,
) -> None:
    """Paint a limb; its outer third (away from `body`) gets parts[0], the rest parts[1]."""
    p0, p1 = ends
    window = _window(labels, np.minimum(p0, p1) - radius, np.maximum(p0, p1) + radius)
    if window is None:
        return
    box, xs, ys = window
    axis = p1 - p0
    t = ((xs - p0[0]) * axis[0] + (ys - p0[1]) * axis[1]) / max(float(axis @ axis), 1e-9)
    t = np.clip(t, 0.0, 1.0)
    off_x, off_y = xs - (p0[0] + t * axis[0]), ys - (p0[1] + t * axis[1])
    inside = off_x**2 + off_y**2 <= radius**2
    normal = np.array([-axis[1], axis[0]]) / max(float(np.hypot(*axis)), 1e-9)
    if normal @ ((p0 + p1) / 2 - body) < 0:
        normal = -normal  # point away from the body centre
    outer = off_x * normal[0] + off_y * normal[1] > radius / 3
    region = labels[box]
    region[inside] = np.where(outer, parts[0], parts[1])[inside]


def _paint_ellipse(
    labels: np.ndarray,
    centre: np.ndarray,
    radii: tuple[float, float],
    parts: tuple[int, int],
    *,
    angle: float = 0.0,
    split: Split = "none",
) -> None:
    """Paint a rotated ellipse; `split` picks where parts[0] goes (side strips or left half)."""
    reach = max(radii)
    window = _window(labels, centre - reach, centre + reach)
    if window is None:
        return
    box, xs, ys = window
    dx, dy = xs - centre[0], ys - centre[1]
    cos, sin = math.cos(angle), math.sin(angle)
    local_x = (cos * dx + sin * dy) / radii[0]
    local_y = (-sin * dx + cos * dy) / radii[1]
    inside = local_x**2 + local_y**2 <= 1.0
    if split == "sides":
        first = np.abs(local_x) > 0.65
    elif split == "halves":
        first = local_x < 0
    else:
        first = np.zeros_like(inside)
    region = labels[box]
    region[inside] = np.where(first, parts[0], parts[1])[inside]


def _draw_person(labels: np.ndarray, style: _Style, frame: int) -> None:
    """Draw one jumping-jack pose: legs, torso and head, then the arms in front."""
    height, width = labels.shape
    unit = min(width, height) * style.scale
    theta = 2.0 * math.pi * frame / style.period + style.phase
    opened = (1.0 - math.cos(theta)) / 2.0  # 0 = arms down, legs closed; 1 = arms up
    opened_left = (1.0 - math.cos(theta - style.arm_lag)) / 2.0
    hop = 0.03 * unit * math.sin(theta) ** 2
    lean = 0.06 * math.sin(theta / 2.0)

    hip = np.array([width * style.centre_x, height * 0.5 + 0.04 * unit - hop])
    shoulder = _towards(hip, math.pi + lean, 0.25 * unit)
    body = (hip + shoulder) / 2.0
    across = np.array([math.cos(lean), -math.sin(lean)])  # image-right direction across the body

    for sign, upper, lower, foot in (
        (-1.0, UPPER_LEG_RIGHT, LOWER_LEG_RIGHT, RIGHT_FOOT),
        (1.0, UPPER_LEG_LEFT, LOWER_LEG_LEFT, LEFT_FOOT),
    ):
        joint = hip + sign * 0.06 * unit * across
        thigh = sign * (0.05 + style.leg_spread * opened)
        knee = _towards(joint, thigh, 0.19 * unit)
        ankle = _towards(knee, thigh * 0.6, 0.18 * unit)
        _paint_capsule(labels, (joint, knee), 0.055 * unit, upper, body=body)
        _paint_capsule(labels, (knee, ankle), 0.042 * unit, lower, body=body)
        toe = ankle + unit * np.array([sign * 0.02, 0.01])
        _paint_ellipse(labels, toe, (0.055 * unit, 0.026 * unit), (foot, foot))

    torso_radii = (0.115 * unit, 0.165 * unit)
    _paint_ellipse(labels, body, torso_radii, TORSO, angle=-lean, split="sides")
    head = _towards(shoulder, math.pi + lean, 0.1 * unit)
    _paint_ellipse(labels, head, (0.055 * unit, 0.07 * unit), HEAD, angle=-lean, split="halves")

    for sign, raised, upper, lower, hand in (
        (-1.0, opened, UPPER_ARM_RIGHT, LOWER_ARM_RIGHT, RIGHT_HAND),
        (1.0, opened_left, UPPER_ARM_LEFT, LOWER_ARM_LEFT, LEFT_HAND),
    ):
        joint = shoulder + sign * 0.11 * unit * across
        arm = sign * (0.25 + style.arm_reach * raised)
        elbow = _towards(joint, arm, 0.15 * unit)
        wrist = _towards(elbow, arm + sign * 0.3 * math.sin(math.pi * raised), 0.14 * unit)
        _paint_capsule(labels, (joint, elbow), 0.04 * unit, upper, body=body)
        _paint_capsule(labels, (elbow, wrist), 0.033 * unit, lower, body=body)
        palm = _towards(wrist, arm, 0.02 * unit)
        _paint_ellipse(labels, palm, (0.036 * unit, 0.036 * unit), (hand, hand))


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def render_parts(
    num_frames: int, size: tuple[int, int] = (512, 512), *, seed: int = 0
) -> np.ndarray:
    """Part labels (F, H, W) uint8 in 0..24 of a person doing jumping jacks; size = (W, H)."""
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise InputError(f"num_frames must be an integer >= 1, got {num_frames!r}")
    width, height = size
    if width < 16 or height < 16:
        raise InputError(f"size must be at least 16x16, got {width}x{height}")
    style = _style(seed)
    labels = np.zeros((num_frames, height, width), dtype=np.uint8)
    for frame in range(num_frames):
        _draw_person(labels[frame], style, frame)
    return labels


def render_motion(
    num_frames: int, size: tuple[int, int] = (512, 512), *, seed: int = 0
) -> np.ndarray:
    """Synthetic DensePose dp_segm motion: uint8 (F, H, W, 3) frames, size = (W, H)."""
    return colorize_parts(render_parts(num_frames, size, seed=seed))
