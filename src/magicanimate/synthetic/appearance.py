"""Who is seen and where: identities (body, skin, hair, clothing with patterns) and backgrounds.

Clothing patterns are functions of surface coordinates in body units (``along`` a body
part's axis, ``around`` it), so a pattern is painted on the person and moves, turns and
scales with it instead of sliding over the image.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from magicanimate.synthetic.body import BodyShape, random_body

PATTERNS = ("solid", "hstripes", "vstripes", "checks", "dots", "two_tone")
TOPS = ("tank", "short_sleeves", "long_sleeves")
BOTTOMS = ("trousers", "shorts", "skirt")
HAIR_STYLES = ("buzz", "short", "bob", "long")
BACKGROUNDS = ("flat", "gradient", "stripes", "checks", "noise", "shapes", "room")

_SKIN = np.array([(255, 226, 200), (236, 192, 160), (205, 150, 108), (160, 104, 68), (108, 68, 44), (70, 45, 32)],
                 dtype=np.float64)
_HAIR = np.array([(28, 24, 24), (66, 44, 30), (118, 80, 46), (214, 184, 118), (150, 66, 36), (170, 168, 166)],
                 dtype=np.float64)


@dataclass(frozen=True)
class Garment:
    """A piece of clothing: a pattern of two colours (RGB 0-255) with a period in body units."""

    pattern: str
    colour: tuple[float, float, float]
    second: tuple[float, float, float]
    period: float
    split: float = 0.5  # two_tone: where along the part the second colour starts (0..1)


@dataclass(frozen=True)
class Identity:
    """One person's look: proportions, skin, hair and clothes."""

    body: BodyShape
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    hair_style: str
    top_kind: str
    top: Garment
    bottom_kind: str
    bottom: Garment
    shoes: tuple[float, float, float]


def _colour(rng: np.random.Generator, *, saturation: tuple[float, float] = (0.2, 0.95),
            value: tuple[float, float] = (0.2, 0.98)) -> tuple[float, float, float]:
    """A random clothing colour (RGB 0-255) from hue, saturation and value."""
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*saturation), rng.uniform(*value))
    return (255.0 * r, 255.0 * g, 255.0 * b)


def _garment(rng: np.random.Generator, patterns: tuple[str, ...]) -> Garment:
    """Draw a garment: a pattern and two contrasting colours."""
    first = _colour(rng)
    second = _colour(rng)
    if np.abs(np.subtract(first, second)).max() < 60:  # keep patterns visible
        second = tuple(255.0 - c for c in first)
    return Garment(pattern=str(rng.choice(patterns)), colour=first, second=second,
                   period=float(rng.uniform(0.035, 0.08)), split=float(rng.uniform(0.35, 0.65)))


def random_identity(rng: np.random.Generator) -> Identity:
    """Draw a person: body proportions, skin and hair tones, hair style, top, bottom and shoes."""
    body = random_body(rng)
    k = rng.uniform(0, len(_SKIN) - 1)
    skin = _SKIN[int(k)] + (k - int(k)) * (_SKIN[min(int(k) + 1, len(_SKIN) - 1)] - _SKIN[int(k)])
    hair = _HAIR[rng.integers(len(_HAIR))] * rng.uniform(0.85, 1.15)
    bottom_kind = str(rng.choice(BOTTOMS, p=[0.5, 0.2, 0.3]))
    return Identity(
        body=body,
        skin=tuple(float(c) for c in skin),
        hair=tuple(float(c) for c in np.clip(hair, 0, 255)),
        hair_style=str(rng.choice(HAIR_STYLES)),
        top_kind=str(rng.choice(TOPS)),
        top=_garment(rng, PATTERNS),
        bottom_kind=bottom_kind,
        bottom=_garment(rng, ("solid", "solid", "hstripes", "vstripes", "checks", "dots")),
        shoes=_colour(rng, value=(0.05, 0.9)),
    )


def paint_garment(garment: Garment, *, along: np.ndarray, around: np.ndarray,
                  fraction: np.ndarray | None = None) -> np.ndarray:
    """Colours (..., 3) of a garment at surface coordinates (body units); ``fraction`` = 0..1 along the part."""
    first, second = np.asarray(garment.colour), np.asarray(garment.second)
    p = garment.period
    if garment.pattern == "hstripes":
        use_second = np.floor(along / p) % 2 == 1
    elif garment.pattern == "vstripes":
        use_second = np.floor(around / p) % 2 == 1
    elif garment.pattern == "checks":
        use_second = (np.floor(along / p) + np.floor(around / p)) % 2 == 1
    elif garment.pattern == "dots":
        da = (along / p) % 1.0 - 0.5
        dr = (around / p) % 1.0 - 0.5
        use_second = da * da + dr * dr < 0.09
    elif garment.pattern == "two_tone":
        use_second = (fraction if fraction is not None else np.zeros_like(along)) > garment.split
    else:
        use_second = np.zeros(np.shape(along), dtype=bool)
    return np.where(use_second[..., None], second, first)


# ---------------------------------------------------------------------------------------
# Backgrounds
# ---------------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Low-frequency noise (H, W) in [0, 1]: a random grid, bilinearly interpolated."""
    grid = rng.random((cells + 1, cells + 1))
    ys = np.linspace(0, cells, height, endpoint=False)
    xs = np.linspace(0, cells, width, endpoint=False)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx  # (H, W)
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def make_background(rng: np.random.Generator, *, size: tuple[int, int], kind: str | None = None) -> np.ndarray:
    """A static scene (H, W, 3) uint8 of a random (or the given) kind; size = (W, H)."""
    width, height = size
    kind = kind or str(rng.choice(BACKGROUNDS))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    ys, xs = ys / height, xs / width
    a = np.asarray(_colour(rng, saturation=(0.0, 0.7)))
    b = np.asarray(_colour(rng, saturation=(0.0, 0.7)))
    if kind == "flat":
        image = np.broadcast_to(a, (height, width, 3))
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * xs + np.sin(angle) * ys
        ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-9)
        image = a + ramp[..., None] * (b - a)
    elif kind in ("stripes", "checks"):
        period = rng.uniform(0.06, 0.2)
        angle = rng.uniform(0, np.pi)
        u = (np.cos(angle) * xs + np.sin(angle) * ys) / period
        v = (-np.sin(angle) * xs + np.cos(angle) * ys) / period
        on = np.floor(u) % 2 == 1 if kind == "stripes" else (np.floor(u) + np.floor(v)) % 2 == 1
        b = a + (b - a) * rng.uniform(0.25, 0.6)  # low contrast, like wallpaper
        image = np.where(on[..., None], b, a)
    elif kind == "noise":
        noise = _smooth_noise(rng, height, width, int(rng.integers(3, 9)))
        image = a + noise[..., None] * (b - a)
    elif kind == "shapes":
        image = np.array(np.broadcast_to(a, (height, width, 3)))
        for _ in range(int(rng.integers(3, 9))):
            colour = np.asarray(_colour(rng, saturation=(0.0, 0.8)))
            cx, cy, r = rng.random(), rng.random(), rng.uniform(0.05, 0.25)
            if rng.random() < 0.5:
                inside = (xs - cx) ** 2 + (ys - cy) ** 2 < r * r
            else:
                inside = (np.abs(xs - cx) < r) & (np.abs(ys - cy) < r * rng.uniform(0.3, 1.5))
            image[inside] = colour
    else:  # room: a wall with a gradient over a floor
        horizon = rng.uniform(0.55, 0.8)
        wall = a * (0.85 + 0.15 * ys[..., None] / horizon)
        floor = b * (0.75 + 0.25 * (ys[..., None] - horizon) / (1 - horizon))
        image = np.where((ys < horizon)[..., None], wall, floor)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)
