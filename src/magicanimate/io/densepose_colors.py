"""DensePose ``dp_segm`` colours: part labels 0..24 <-> the RGB of the released motion videos.

The released motions are detectron2 DensePose "dp_segm" renderings: each pixel
shows its body-part index k (0 = background, 1..24 = parts) through OpenCV's
VIRIDIS colormap at level floor(k * 255 / 24).
"""

from __future__ import annotations

import numpy as np

from magicanimate.errors import InputError

NUM_PARTS = 24

# DensePose part indices (1-based) ; pairs are (back/outer, front/inner).
TORSO = (1, 2)
RIGHT_HAND, LEFT_HAND, LEFT_FOOT, RIGHT_FOOT = 3, 4, 5, 6
UPPER_LEG_RIGHT, UPPER_LEG_LEFT = (7, 9), (8, 10)
LOWER_LEG_RIGHT, LOWER_LEG_LEFT = (11, 13), (12, 14)
UPPER_ARM_LEFT, UPPER_ARM_RIGHT = (15, 17), (16, 18)
LOWER_ARM_LEFT, LOWER_ARM_RIGHT = (19, 21), (20, 22)
HEAD = (23, 24)  # (person's right half = image left, left half)

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


def nearest_colour(frames: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Index (..., H, W) uint8 of the palette colour (K, 3) nearest to each pixel of frames (..., H, W, 3).

    Ties go to the first such palette entry. Pixels that are exactly a palette colour (all
    of a lossless render) are looked up; only the others are measured against every colour.
    """
    palette = np.asarray(palette, dtype=np.int32)
    if frames.dtype != np.uint8 or palette.min() < 0 or palette.max() > 255:
        return _nearest_by_distance(frames, palette)
    keys = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]  # (K,) packed RGB
    order = np.argsort(keys, kind="stable")  # duplicates keep their order: the first comes first
    sorted_keys = keys[order]
    pixel_keys = (frames[..., 0].astype(np.int32) << 16) | (frames[..., 1].astype(np.int32) << 8) | frames[..., 2]
    at = np.minimum(np.searchsorted(sorted_keys, pixel_keys), len(keys) - 1)  # (..., H, W)
    exact = sorted_keys[at] == pixel_keys
    index = order[at].astype(np.uint8)
    if not exact.all():
        index[~exact] = _nearest_by_distance(frames[~exact], palette)
    return index


def _nearest_by_distance(frames: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """``nearest_colour`` by squared RGB distance to every palette colour (int32 (K, 3); K passes)."""
    pixels = frames.astype(np.int32)
    best = np.full(frames.shape[:-1], np.iinfo(np.int32).max, dtype=np.int32)
    index = np.zeros(frames.shape[:-1], dtype=np.uint8)
    for k, colour in enumerate(palette):  # K passes, memory of one frame stack
        distance = ((pixels - colour) ** 2).sum(axis=-1)
        closer = distance < best
        best[closer], index[closer] = distance[closer], k
    return index


def parts_from_colours(frames: np.ndarray, *, tolerance: int = 8) -> np.ndarray:
    """Part labels (..., H, W) uint8 of dp_segm frames (..., H, W, 3) uint8: the nearest part colour, 0 on background.

    Background is decided as in ``person_mask``; every other pixel takes the part 1..24 whose
    colour is nearest (squared RGB distance), which absorbs video compression noise.
    """
    parts = nearest_colour(frames, part_colors()[1:]) + 1  # nearest of parts 1..24
    return np.where(person_mask(frames, tolerance=tolerance), parts, 0).astype(np.uint8)
