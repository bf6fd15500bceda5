"""Input preparation as detectron2's ``DefaultPredictor``: shortest-edge resize, BGR mean subtraction, pad to /32."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

PIXEL_MEAN_BGR = (103.53, 116.28, 123.675)
SIZE_DIVISIBILITY = 32
DEFAULT_SHORT_EDGE = 800
DEFAULT_MAX_SIZE = 1333


def resized_shape(height: int, width: int, *, short_edge: int = DEFAULT_SHORT_EDGE,
                  max_size: int = DEFAULT_MAX_SIZE) -> tuple[int, int]:
    """(h, w) after ``ResizeShortestEdge``: short side to ``short_edge``, long side at most ``max_size``."""
    scale = short_edge * 1.0 / min(height, width)
    new_h, new_w = (short_edge, scale * width) if height < width else (scale * height, short_edge)
    if max(new_h, new_w) > max_size:
        scale = max_size * 1.0 / max(new_h, new_w)
        new_h, new_w = new_h * scale, new_w * scale
    return int(new_h + 0.5), int(new_w + 0.5)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a uint8 (H, W, 3) image to (h, w) with PIL bilinear (antialiased when shrinking), as detectron2 does."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def to_network_input(
    images: list[np.ndarray], *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Stack resized RGB uint8 images into a normalised BGR batch (B, 3, H32, W32) zero-padded to /32, with sizes."""
    sizes = [tuple(im.shape[:2]) for im in images]
    pad_h = -(-max(h for h, _ in sizes) // SIZE_DIVISIBILITY) * SIZE_DIVISIBILITY
    pad_w = -(-max(w for _, w in sizes) // SIZE_DIVISIBILITY) * SIZE_DIVISIBILITY
    batch = torch.zeros((len(images), 3, pad_h, pad_w), dtype=torch.float32, device=device)
    mean = torch.tensor(PIXEL_MEAN_BGR, dtype=torch.float32, device=device).view(3, 1, 1)  # (3,) -> (3, 1, 1)
    for i, image in enumerate(images):
        bgr = torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1])).to(device)
        chw = bgr.permute(2, 0, 1).float()  # (h, w, 3) -> (3, h, w)
        batch[i, :, : chw.shape[1], : chw.shape[2]] = chw - mean  # PIXEL_STD is 1
    return batch.to(dtype), sizes
