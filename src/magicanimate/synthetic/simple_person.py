"""A simple synthetic person doing jumping jacks, as DensePose part labels (demos and tests).

`render_motion` draws a person (ellipses and capsules) and colours it as the
released dp_segm motions are coloured, so the frames look like the real motion
inputs to every downstream step; `synthetic_reference` paints the same figure as
a clothed person on a simple background.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageFilter

from magicanimate.errors import InputError
from magicanimate.io.densepose_colors import (
    HEAD,
    LEFT_FOOT,
    LEFT_HAND,
    LOWER_ARM_LEFT,
    LOWER_ARM_RIGHT,
    LOWER_LEG_LEFT,
    LOWER_LEG_RIGHT,
    RIGHT_FOOT,
    RIGHT_HAND,
    TORSO,
    UPPER_ARM_LEFT,
    UPPER_ARM_RIGHT,
    UPPER_LEG_LEFT,
    UPPER_LEG_RIGHT,
    colorize_parts,
)

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


# Clothing colours by DensePose part (index = part, 0 = background, drawn separately).
_SKIN, _SHIRT, _TROUSERS, _SHOES = (224, 178, 148), (196, 64, 72), (52, 72, 122), (40, 36, 38)
_PART_RGB = np.array([(0, 0, 0), _SHIRT, _SHIRT, _SKIN, _SKIN, _SHOES, _SHOES, *[_TROUSERS] * 8,
                      *[_SHIRT] * 4, *[_SKIN] * 4, _SKIN, _SKIN], dtype=np.uint8)


def synthetic_reference(size: tuple[int, int] = (512, 512), *, seed: int = 0) -> np.ndarray:
    """A synthetic reference photo: the person of ``render_motion``'s first pose, clothed, uint8 (H, W, 3)."""
    width, height = size
    labels = render_parts(1, size, seed=seed)[0]
    rows = np.linspace(0.0, 1.0, height)[:, None, None]  # (H, 1, 1): wall gradient, then floor
    wall = (1 - rows) * np.array([206, 222, 236]) + rows * np.array([236, 226, 206])
    floor = np.array([178, 150, 120]) * (rows > 0.86)
    background = np.where(rows > 0.86, floor, wall) * np.ones((1, width, 1))  # (H, W, 3)
    image = np.where(labels[..., None] > 0, _PART_RGB[labels], background).astype(np.uint8)
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(0.8)))
