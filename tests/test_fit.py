"""Aspect-ratio fitting: stretch / pad / crop, applied alike to reference and motion, and undone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from magicanimate.errors import InputError
from magicanimate.io.fit import FitPlan, apply_fit, parse_size, plan_fit, undo_fit

BACKGROUND = (68, 1, 84)  # DensePose viridis(0)
PERSON = (253, 231, 37)  # a bright part colour


def _person(height: int, width: int, centre: tuple[float, float]) -> np.ndarray:
    """A person-shaped bool mask (head + body ellipses) centred at relative (x, y)."""
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    cx, cy = centre[0] * width, centre[1] * height
    size = 0.25 * min(width, height)
    body = ((xs - cx) / (0.35 * size)) ** 2 + ((ys - cy) / (0.6 * size)) ** 2 <= 1
    head = (xs - cx) ** 2 + (ys - (cy - 0.85 * size)) ** 2 <= (0.25 * size) ** 2
    return body | head


def _motion(mask: np.ndarray, count: int = 2) -> np.ndarray:
    """DensePose-like frames (F, H, W, 3): the person in PERSON colour on the background."""
    frame = np.where(mask[..., None], np.array(PERSON, np.uint8), np.array(BACKGROUND, np.uint8))
    return np.repeat(frame[None], count, axis=0)  # (H, W, 3) -> (F, H, W, 3)


def _reference(mask: np.ndarray) -> np.ndarray:
    """A textured photo (values <= 150) with the person in white."""
    texture = np.random.default_rng(0).integers(0, 150, (*mask.shape, 3), dtype=np.uint8)
    return np.where(mask[..., None], np.uint8(255), texture)


def _centroid(mask: np.ndarray) -> np.ndarray:
    """Relative (x, y) centre of a mask."""
    ys, xs = np.nonzero(mask)
    return np.array([(xs.mean() + 0.5) / mask.shape[1], (ys.mean() + 0.5) / mask.shape[0]])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _is_person(frames: np.ndarray) -> np.ndarray:
    """Pixels close to the PERSON colour."""
    return np.abs(frames.astype(int) - PERSON).max(axis=-1) < 60


# --------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------


def test_pad_plan_geometry() -> None:
    plan = plan_fit((96, 64), (64, 64), "pad")
    assert plan.canvas_size == (96, 96)
    assert plan.paste_box == (0, 16, 96, 80)
    assert plan.result_box == (0, 11, 64, 53)
    assert plan.output_size == (64, 42)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.mode = "crop"  # type: ignore[misc]


def test_crop_plan_is_centred() -> None:
    assert plan_fit((96, 64), (64, 64), "crop").source_box == (16, 0, 80, 64)
    assert plan_fit((40, 100), (64, 32), "crop").source_box == (0, 40, 40, 60)
    assert plan_fit((96, 64), (64, 64), "crop").result_box == (0, 0, 64, 64)


def test_same_aspect_needs_no_padding_or_cropping() -> None:
    for mode in ("pad", "crop"):
        plan = plan_fit((128, 64), (64, 32), mode)
        assert plan.source_box == (0, 0, 128, 64) and plan.canvas_size == (128, 64)
        assert plan.result_box == (0, 0, 64, 32)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (((96, 64), (64, 64), "squash"), "unknown fit mode 'squash'"),
        (((0, 64), (64, 64), "pad"), "input size"),
        (((96, 64), (64,), "pad"), "target size"),
    ],
)
def test_plan_errors(args: tuple, message: str) -> None:
    with pytest.raises(InputError, match=message):
        plan_fit(*args)


# --------------------------------------------------------------------------
# The person stays put: plan -> apply (reference and motion) -> undo
# --------------------------------------------------------------------------

PAD_CASES = [
    ((96, 64), (64, 64)),  # wide input, square target: pad top and bottom
    ((48, 80), (64, 64)),  # tall input: pad left and right
    ((60, 40), (48, 64)),  # wide input, portrait target
    ((40, 90), (64, 32)),  # tall input, landscape target
]


@pytest.mark.parametrize(("input_size", "target"), PAD_CASES)
def test_pad_keeps_person_in_place(input_size: tuple[int, int], target: tuple[int, int]) -> None:
    width, height = input_size
    mask = _person(height, width, centre=(0.3, 0.62))  # off-centre on purpose
    plan = plan_fit(input_size, target, "pad")

    motion = apply_fit(_motion(mask), plan, pad_value=BACKGROUND)
    reference = apply_fit(_reference(mask), plan, pad_value="edge")
    assert motion.shape == (2, target[1], target[0], 3)
    assert reference.shape == (target[1], target[0], 3)
    # Reference and motion get the same mapping: the person overlaps in both.
    assert _iou(_is_person(motion[0]), reference.min(axis=-1) > 200) > 0.85

    restored = undo_fit(motion, plan)
    assert restored.shape[1:3] == (plan.output_size[1], plan.output_size[0])
    out_h, out_w = restored.shape[1:3]
    assert out_w / out_h == pytest.approx(width / height, rel=0.06)
    np.testing.assert_allclose(_centroid(_is_person(restored[1])), _centroid(mask), atol=0.02)


@pytest.mark.parametrize(("input_size", "target"), PAD_CASES)
def test_pad_fills_with_the_given_value(
    input_size: tuple[int, int], target: tuple[int, int]
) -> None:
    width, height = input_size
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, :] = (0, 200, 0)
    image[:, 0], image[:, -1] = (255, 0, 0), (0, 0, 255)  # red left edge, blue right edge
    image[0, 1:-1], image[-1, 1:-1] = (9, 9, 9), (250, 250, 250)  # dark top, light bottom
    plan = plan_fit(input_size, target, "pad")
    left, top, right, bottom = plan.result_box
    constant = apply_fit(image, plan, pad_value=BACKGROUND)
    edge = apply_fit(image, plan, pad_value="edge")
    if left > 2:  # padded left and right
        assert (constant[:, : left - 2] == BACKGROUND).all()
        assert (edge[2:-2, : left - 2] == (255, 0, 0)).all()
        assert (edge[2:-2, right + 2 :] == (0, 0, 255)).all()
    else:  # padded top and bottom
        assert (constant[: top - 2] == BACKGROUND).all()
        assert (edge[: top - 2, 2:-2] == (9, 9, 9)).all()
        assert (edge[bottom + 2 :, 2:-2] == (250, 250, 250)).all()


def test_crop_keeps_person_in_place_relative_to_the_crop() -> None:
    width, height = 120, 60
    mask = _person(height, width, centre=(0.42, 0.6))
    plan = plan_fit((width, height), (64, 64), "crop")
    motion = apply_fit(_motion(mask), plan, pad_value=BACKGROUND)
    reference = apply_fit(_reference(mask), plan, pad_value="edge")
    assert motion.shape == (2, 64, 64, 3)
    assert _iou(_is_person(motion[0]), reference.min(axis=-1) > 200) > 0.85
    left, top, right, bottom = plan.source_box
    expected = _centroid(mask[top:bottom, left:right])
    np.testing.assert_allclose(_centroid(_is_person(motion[0])), expected, atol=0.02)
    np.testing.assert_array_equal(undo_fit(motion, plan), motion)


def test_stretch_is_the_release_resize() -> None:
    width, height = 90, 50
    mask = _person(height, width, centre=(0.7, 0.55))
    frames = _motion(mask)
    plan = plan_fit((width, height), (64, 64), "stretch")
    stretched = apply_fit(frames, plan, pad_value=BACKGROUND)
    # the release's own expression: np.array(Image.fromarray(frame).resize((W, H))), PIL's default filter
    release = np.stack([np.array(Image.fromarray(f).resize((64, 64))) for f in frames])
    np.testing.assert_array_equal(stretched, release)
    np.testing.assert_allclose(_centroid(_is_person(stretched[0])), _centroid(mask), atol=0.02)
    np.testing.assert_array_equal(undo_fit(stretched, plan), stretched)


def test_image_and_frames_get_the_same_result() -> None:
    image = _reference(_person(40, 70, centre=(0.4, 0.6)))
    plan = plan_fit((70, 40), (32, 32), "pad")
    single = apply_fit(image, plan, pad_value="edge")
    batch = apply_fit(image[None], plan, pad_value="edge")
    np.testing.assert_array_equal(single, batch[0])


def test_undo_keeps_float_results() -> None:
    plan = plan_fit((96, 64), (64, 64), "pad")
    result = np.random.default_rng(0).random((3, 64, 64, 3), dtype=np.float32)
    restored = undo_fit(result, plan)
    assert restored.dtype == np.float32 and restored.shape == (3, 42, 64, 3)
    np.testing.assert_array_equal(restored, result[:, 11:53])
    assert undo_fit(result[0], plan).shape == (42, 64, 3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: apply_fit(np.zeros((64, 90, 3), np.uint8), p, pad_value="edge"), "96x64"),
        (lambda p: apply_fit(np.zeros((64, 96, 3), np.float32), p, pad_value="edge"), "uint8"),
        (lambda p: apply_fit(np.zeros((64, 96), np.uint8), p, pad_value="edge"), "shape"),
        (lambda p: apply_fit(np.zeros((64, 96, 3), np.uint8), p, pad_value="reflect"), "'edge'"),
        (lambda p: apply_fit(np.zeros((64, 96, 3), np.uint8), p, pad_value=(1, 2)), "RGB"),
        (lambda p: undo_fit(np.zeros((1, 32, 32, 3)), p), "targets 64x64"),
        (lambda p: undo_fit(np.zeros((32, 32)), p), "expected"),
    ],
)
def test_apply_and_undo_errors(call, message: str) -> None:
    plan = plan_fit((96, 64), (64, 64), "pad")
    assert isinstance(plan, FitPlan)
    with pytest.raises(InputError, match=message):
        call(plan)


# --------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [("512", (512, 512)), ("768x512", (768, 512)), (" 64 X 128 ", (64, 128)), (256, (256, 256))],
)
def test_parse_size(text, size: tuple[int, int]) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("500", "multiples of 8"),
        ("512x300", "multiples of 8"),
        ("0", "multiples of 8"),
        ("abc", "N or WxH"),
        ("768x", "N or WxH"),
        (True, "N or WxH"),
    ],
)
def test_parse_size_errors(text, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_size(text)
