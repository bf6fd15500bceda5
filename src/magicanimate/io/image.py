"""Reading reference images: any common format or array in, uint8 (H, W, 3) RGB out.

Every path through `load_image` ends in the same place: an 8-bit RGB array with
transparency composited on white, EXIF orientation applied and 16-bit data
scaled (not clipped) to 0-255. Resizing follows the release exactly:
`Image.fromarray(x).resize((w, h))`, i.e. PIL bicubic.
"""

from __future__ import annotations

import warnings
from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from magicanimate.errors import InputError

ImageSource = str | PathLike | Image.Image | np.ndarray

# Formats we promise to read; PIL may open more, but these are tested.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

# The largest image we decode: 64 megapixels (8000 x 8000) is far above what the model uses
# (512 px) and keeps a decode under 200 MB; a larger one is refused, never decoded.
MAX_IMAGE_PIXELS = 64_000_000

_WHITE = 255
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def load_image(source: ImageSource, *, what: str = "reference image") -> np.ndarray:
    """Load an image from a path, PIL image or array as uint8 (H, W, 3) RGB (``what`` names it in errors)."""
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source, name="image array")
    if isinstance(source, Image.Image):
        return _pil_to_rgb(source, name="PIL image")
    if isinstance(source, (str, PathLike)):
        return _read_path(Path(source), what=what)
    raise InputError(
        f"reference image must be a path, PIL.Image or numpy array, got {type(source).__name__}"
    )


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a uint8 image to size = (width, height) with PIL bicubic, as the release does."""
    width, height = size
    if image.shape[0] == height and image.shape[1] == width:
        return image
    if image.dtype != np.uint8:
        raise InputError(f"resize_image expects a uint8 image, got {image.dtype}")
    resized = Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(resized)


# --------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------


def check_image_file(path: str | PathLike, *, what: str = "reference image") -> tuple[int, int]:
    """(width, height) of an image file from its header, or the ``InputError`` that loading it would raise."""
    with _open_checked(Path(path), what=what) as image:
        return image.size


def _read_path(path: Path, *, what: str) -> np.ndarray:
    """Open an image file and convert it, turning every PIL failure into one InputError line."""
    with _open_checked(path, what=what) as image:
        try:
            image.load()  # decode now so truncated files fail here, inside the try
        except (OSError, SyntaxError, ValueError) as error:
            raise _unreadable(path, what, error) from None
        return _pil_to_rgb(image, name=str(path))


def _open_checked(path: Path, *, what: str) -> Image.Image:
    """The opened (not decoded) image, refused in our words when missing, unreadable or over the size limit."""
    if not path.exists():
        raise InputError(f"{what} not found: {path}")
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder, expected an image file")
    too_large = (f"{what} {path} has more than {MAX_IMAGE_PIXELS // 1_000_000} megapixels, the limit "
                 "(e.g. 8000x8000); it was not decoded: downscale it first (the model works at 512 px)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is checked below
            image = Image.open(path)
    except Image.DecompressionBombError:
        raise InputError(too_large) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise _unreadable(path, what, error) from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise InputError(f"{too_large} ({width}x{height})")
    return image


def _unreadable(path: Path, what: str, error: Exception) -> InputError:
    return InputError(f"cannot read {what} {path}: not a readable PNG/JPEG/WebP/BMP image "
                      f"or the file is corrupt ({error})")


# --------------------------------------------------------------------------
# PIL images
# --------------------------------------------------------------------------


def _pil_to_rgb(image: Image.Image, *, name: str) -> np.ndarray:
    """Apply EXIF orientation and convert any PIL mode to uint8 RGB."""
    if image.width == 0 or image.height == 0:
        raise InputError(f"{name} is empty ({image.width}x{image.height})")
    image = ImageOps.exif_transpose(image)
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "I":
        return _gray_to_rgb(_scale_16bit(np.asarray(image)))
    if image.mode == "F":
        return _gray_to_rgb(np.clip(np.asarray(image), 0, 255).round().astype(np.uint8))
    if _has_alpha(image):
        return _composite_on_white(image.convert("RGBA"))
    return np.asarray(image.convert("RGB"))


def _has_alpha(image: Image.Image) -> bool:
    """Whether the image carries transparency (alpha channel or a transparent palette entry)."""
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return True
    return image.mode in ("P", "L", "RGB") and "transparency" in image.info


def _composite_on_white(image: Image.Image) -> np.ndarray:
    """Blend an RGBA image over a white background (PIL's alpha compositing)."""
    background = Image.new("RGBA", image.size, (_WHITE, _WHITE, _WHITE, 255))
    return np.asarray(Image.alpha_composite(background, image).convert("RGB"))


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    """Map 16-bit samples 0..65535 linearly onto 0..255 (rounded), instead of clipping."""
    wide = np.clip(values.astype(np.float64), 0, 65535)
    return np.round(wide * (255.0 / 65535.0)).astype(np.uint8)


# --------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------


def _array_to_rgb(array: np.ndarray, *, name: str) -> np.ndarray:
    """Accept uint8 (H, W, 3) RGB, (H, W) or (H, W, 1) gray and (H, W, 4) RGBA arrays."""
    if array.dtype != np.uint8:
        raise InputError(f"{name} must be uint8, got {array.dtype} with shape {array.shape}")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 1):
        rgb = _gray_to_rgb(array.reshape(array.shape[0], array.shape[1]))  # (H, W) -> (H, W, 3)
    elif array.ndim == 3 and array.shape[2] == 3:
        rgb = array
    elif array.ndim == 3 and array.shape[2] == 4:
        rgb = _composite_on_white(Image.fromarray(np.ascontiguousarray(array)))
    else:
        raise InputError(
            f"{name} must have shape (H, W, 3), (H, W) or (H, W, 4), got {array.shape}"
        )
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InputError(f"{name} is empty, shape {array.shape}")
    return np.ascontiguousarray(rgb)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    """Repeat one uint8 channel three times: (H, W) -> (H, W, 3)."""
    return np.repeat(gray[:, :, None], 3, axis=2)
