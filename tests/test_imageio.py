"""Reference-image loading: every format and mode ends as uint8 (H, W, 3) RGB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import INPUTS, TINY, require
from PIL import Image

from magicanimate.errors import InputError
from magicanimate.io.image import load_image, resize_image


def _pattern(height: int = 24, width: int = 32) -> np.ndarray:
    """A smooth colour pattern (JPEG-friendly) as uint8 (H, W, 3)."""
    ys, xs = np.mgrid[0:height, 0:width]
    red = xs * 255 // (width - 1)
    green = ys * 255 // (height - 1)
    blue = np.full_like(xs, 90)
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)  # 3 x (H, W) -> (H, W, 3)


# --------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "options", "tolerance"),
    [
        (".png", {}, 0),
        (".bmp", {}, 0),
        (".webp", {"lossless": True}, 0),
        (".jpg", {"quality": 95}, 6),
        (".jpeg", {"quality": 95}, 6),
    ],
)
def test_reads_common_formats(tmp_path: Path, suffix: str, options: dict, tolerance: int) -> None:
    expected = _pattern()
    path = tmp_path / f"ref{suffix}"
    Image.fromarray(expected).save(path, **options)
    image = load_image(path)
    assert image.dtype == np.uint8 and image.shape == (24, 32, 3)
    assert np.abs(image.astype(int) - expected).mean() <= tolerance


def test_accepts_str_path_and_pil_image(tmp_path: Path) -> None:
    expected = _pattern()
    path = tmp_path / "ref.png"
    Image.fromarray(expected).save(path)
    np.testing.assert_array_equal(load_image(str(path)), expected)
    np.testing.assert_array_equal(load_image(Image.fromarray(expected)), expected)


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., :3] = (200, 20, 40)
    rgba[0, 0, 3] = 0  # fully transparent -> white
    rgba[0, 1, 3] = 255  # opaque -> the colour itself
    rgba[0, 2, 3] = 128  # half -> halfway to white
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba).save(path)
    image = load_image(path)
    np.testing.assert_array_equal(image[0, 0], (255, 255, 255))
    np.testing.assert_array_equal(image[0, 1], (200, 20, 40))
    np.testing.assert_allclose(image[0, 2], (228, 137, 147), atol=2)


def test_la_and_transparent_palette_are_composited_on_white(tmp_path: Path) -> None:
    la = Image.new("LA", (2, 1), (50, 255))
    la.putpixel((1, 0), (50, 0))
    la.save(tmp_path / "la.png")
    np.testing.assert_array_equal(load_image(tmp_path / "la.png")[0], [(50, 50, 50), (255,) * 3])

    palette = Image.new("P", (2, 1), 0)
    palette.putpalette([10, 200, 30, 0, 0, 0] + [0] * 762)
    palette.putpixel((1, 0), 1)
    palette.save(tmp_path / "p.png", transparency=1)
    np.testing.assert_array_equal(load_image(tmp_path / "p.png")[0], [(10, 200, 30), (255,) * 3])


def test_grayscale_and_palette_become_rgb(tmp_path: Path) -> None:
    Image.new("L", (4, 3), 77).save(tmp_path / "gray.png")
    gray = load_image(tmp_path / "gray.png")
    assert gray.shape == (3, 4, 3)
    assert (gray == 77).all()

    palette = Image.new("P", (4, 3), 2)
    palette.putpalette([0, 0, 0, 1, 1, 1, 9, 120, 250] + [0] * 759)
    palette.save(tmp_path / "pal.png")
    assert (load_image(tmp_path / "pal.png") == (9, 120, 250)).all()


def test_sixteen_bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 64, 32896, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    image = load_image(path)
    assert image.shape == (1, 4, 3)
    np.testing.assert_array_equal(image[0, :, 0], [0, 64, 128, 255])
    assert (image[..., 0] == image[..., 2]).all()


def test_cmyk_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path, quality=95)  # pure red in CMYK
    image = load_image(path)
    assert image.shape == (8, 8, 3)
    np.testing.assert_allclose(image.mean(axis=(0, 1)), (255, 0, 0), atol=6)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((16, 32, 3), dtype=np.uint8)
    pixels[:] = (0, 0, 255)
    pixels[:8, :16] = (255, 0, 0)  # red top-left quadrant as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    image = load_image(path)
    assert image.shape == (32, 16, 3)  # portrait after rotation
    assert image[2, -2, 0] > 200 and image[2, -2, 2] < 60  # red is now top-right
    assert image[-2, 2, 2] > 200  # bottom-left is blue


# --------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------


def test_array_inputs() -> None:
    rgb = _pattern()
    np.testing.assert_array_equal(load_image(rgb), rgb)
    gray = rgb[..., 0]
    np.testing.assert_array_equal(load_image(gray), np.repeat(gray[..., None], 3, axis=2))
    np.testing.assert_array_equal(load_image(gray[..., None])[..., 1], gray)
    rgba = np.concatenate([rgb, np.zeros_like(rgb[..., :1])], axis=2)
    assert (load_image(rgba) == 255).all()  # fully transparent -> white


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((4, 4, 3), dtype=np.float32), "uint8"),
        (np.zeros((4, 4, 5), dtype=np.uint8), "shape"),
        (np.zeros((2, 4, 4, 3), dtype=np.uint8), "shape"),
        (np.zeros((0, 4, 3), dtype=np.uint8), "empty"),
    ],
)
def test_bad_arrays_raise(array: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_image(array)


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.png"
    with pytest.raises(InputError, match="not found") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_folder_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="folder"):
        load_image(tmp_path)


def test_corrupt_and_truncated_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(InputError, match="cannot read reference image") as info:
        load_image(garbage)
    assert "garbage.png" in str(info.value) and "\n" not in str(info.value)

    whole = tmp_path / "whole.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(whole)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(whole.read_bytes()[:2000])
    with pytest.raises(InputError, match="truncated.png"):
        load_image(truncated)


def test_wrong_source_type() -> None:
    with pytest.raises(InputError, match="path, PIL.Image or numpy array"):
        load_image(42)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Resizing (as the release: PIL bicubic) and the released reference image
# --------------------------------------------------------------------------


def test_resize_is_pil_bicubic_with_width_height_order() -> None:
    image = _pattern(24, 32)
    resized = resize_image(image, (20, 10))
    assert resized.shape == (10, 20, 3)
    expected = np.asarray(Image.fromarray(image).resize((20, 10), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(resized, expected)
    assert resize_image(image, (32, 24)) is image


def test_release_reference_matches_golden_fixture() -> None:
    """monalisa.png loaded and resized to 64x64 is exactly the release's source image."""
    golden = np.load(require(TINY / "case_a" / "source_image.npy"))
    image = load_image(require(INPUTS / "source_image" / "monalisa.png"))
    np.testing.assert_array_equal(resize_image(image, (64, 64)), golden)


@pytest.mark.parametrize(
    "name", ["monalisa.png", "demo4.png", "dalle2.jpeg", "dalle8.jpeg", "multi1_source.png"]
)
def test_release_reference_images_load(name: str) -> None:
    image = load_image(require(INPUTS / "source_image" / name))
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
