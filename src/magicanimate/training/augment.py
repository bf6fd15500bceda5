"""Geometric augmentation shared by an image and its DensePose: resize/crop and mirroring.

Mirroring a DensePose render is more than flipping pixels: the person's left becomes
their right, so every left/right part must take its partner's colour. The pairs are
DensePose's own horizontal-flip table (detectron2, ``DensePoseTransformData.
POINT_LABEL_SYMMETRIES``) over the 24 parts of the dp_segm renders:

| part (1-based)             | mirrored to |
|----------------------------|-------------|
| 1, 2 torso back / front    | itself      |
| 3 right hand, 4 left hand  | 4, 3        |
| 5 left foot, 6 right foot  | 6, 5        |
| 7, 9 right upper leg       | 8, 10       |
| 8, 10 left upper leg       | 7, 9        |
| 11, 13 right lower leg     | 12, 14      |
| 12, 14 left lower leg      | 11, 13      |
| 15, 17 left upper arm      | 16, 18      |
| 16, 18 right upper arm     | 15, 17      |
| 19, 21 left lower arm      | 20, 22      |
| 20, 22 right lower arm     | 19, 21      |
| 23 head right, 24 head left| 24, 23      |
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from magicanimate.io.densepose_colors import nearest_colour, part_colors

# MIRRORED_PART[k] is the part that part k becomes in a horizontally flipped image.
MIRRORED_PART = np.array([0, 1, 2, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17, 20, 19, 22, 21, 24, 23])


def part_labels(frames: np.ndarray) -> np.ndarray:
    """Part index of each pixel (..., H, W) from dp_segm colours (..., H, W, 3): the nearest palette colour."""
    return nearest_colour(frames, part_colors())


def mirror_densepose(frames: np.ndarray) -> np.ndarray:
    """Horizontally flip DensePose renders (..., H, W, 3) uint8, swapping left/right part colours.

    Each pixel is assigned its nearest part colour, re-coloured with the mirrored part's
    colour, and keeps its offset from the palette (so compression noise and anti-aliased
    edges survive the swap unchanged).
    """
    labels = part_labels(frames)
    palette = part_colors().astype(np.int16)
    offset = frames.astype(np.int16) - palette[labels]
    swapped = np.clip(palette[MIRRORED_PART[labels]] + offset, 0, 255).astype(np.uint8)
    return swapped[..., ::-1, :].copy()  # flip the W axis


def mirror_image(frames: np.ndarray) -> np.ndarray:
    """Horizontally flip images (..., H, W, 3)."""
    return frames[..., ::-1, :].copy()


def crop_box(source: tuple[int, int], target: tuple[int, int], rng: np.random.Generator | None
             ) -> tuple[float, float, float, float]:
    """Box (left, top, right, bottom) in source pixels of the largest target-aspect crop.

    ``source`` and ``target`` are (width, height). The box spans the full source width or
    height (a resize that covers the target, then a crop); ``rng`` places it at random,
    None centres it.
    """
    (sw, sh), (tw, th) = source, target
    scale = max(tw / sw, th / sh)  # cover the target
    cw, ch = tw / scale, th / scale  # crop size in source pixels
    u = (rng.random(), rng.random()) if rng is not None else (0.5, 0.5)
    left, top = (sw - cw) * u[0], (sh - ch) * u[1]
    return left, top, left + cw, top + ch


def resize_crop(frames: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int]) -> np.ndarray:
    """Cut ``box`` out of every frame (F, H, W, 3) uint8 and resize it to size = (W, H), PIL bicubic."""
    out = np.empty((frames.shape[0], size[1], size[0], 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        out[i] = np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BICUBIC, box=box))
    return out
