"""Synthetic DensePose motion: viridis part colours, background, a person that moves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import INPUTS, require

from magicanimate.io.densepose_colors import (
    NUM_PARTS,
    background_color,
    colorize_parts,
    nearest_colour,
    part_colors,
    parts_from_colours,
    person_mask,
    viridis_table,
)
from magicanimate.synthetic.simple_person import render_motion, render_parts
from magicanimate.errors import InputError
from magicanimate.io.video import read_motion, write_video


def test_viridis_table_endpoints_and_middle() -> None:
    table = viridis_table()
    assert table.shape == (256, 3) and table.dtype == np.uint8
    np.testing.assert_array_equal(table[0], (68, 1, 84))
    np.testing.assert_allclose(table[255], (253, 231, 37), atol=1)
    np.testing.assert_allclose(table[128], (33, 145, 140), atol=2)  # viridis' teal middle
    assert (np.diff(table[:, 1].astype(int)) >= 0).all()  # green rises monotonically


def test_part_colours_follow_detectron2_levels() -> None:
    colours = part_colors()
    assert colours.shape == (NUM_PARTS + 1, 3)
    assert len({tuple(c) for c in colours}) == NUM_PARTS + 1  # all distinct
    assert background_color() == (68, 1, 84)
    levels = [k * 255 // 24 for k in range(25)]  # floor(k * 255 / 24), as uint8 casting does
    np.testing.assert_array_equal(colours, viridis_table()[levels])


def test_part_colours_match_the_release_demo_motion() -> None:
    """Nearly every pixel of a real dp_segm video is close to one of our 25 colours."""
    frames = read_motion(require(INPUTS / "densepose" / "dancing2.mp4"), max_frames=10).frames
    pixels = frames[:, ::4, ::4].reshape(-1, 1, 3).astype(int)  # (F, h, w, 3) -> (N, 1, 3)
    distance = np.abs(pixels - part_colors()[None].astype(int)).max(axis=-1).min(axis=-1)
    assert np.mean(distance <= 12) > 0.97


def test_render_motion_shape_and_colours() -> None:
    frames = render_motion(6, (96, 64), seed=1)
    assert frames.shape == (6, 64, 96, 3) and frames.dtype == np.uint8
    palette = {tuple(c) for c in part_colors()}
    assert {tuple(c) for c in frames.reshape(-1, 3)} <= palette  # (F, H, W, 3) -> (N, 3)
    for corner in (frames[:, 0, 0], frames[:, -1, -1], frames[:, 0, -1]):
        assert (corner == background_color()).all()


def test_render_parts_uses_every_part_over_a_cycle() -> None:
    labels = render_parts(30, (128, 128), seed=0)
    assert labels.dtype == np.uint8
    assert set(np.unique(labels)) == set(range(NUM_PARTS + 1))


def test_colorize_parts_hand_worked() -> None:
    """Background 0 → viridis(0) = #440154; part 24 → viridis(1) = #fde725 (matplotlib's published ends)."""
    labels = np.array([[[0, 24], [24, 0]]], np.uint8)  # (F=1, H=2, W=2)
    colours = colorize_parts(labels)
    assert colours.shape == (1, 2, 2, 3) and colours.dtype == np.uint8
    np.testing.assert_array_equal(colours[0, 0, 0], (68, 1, 84))
    np.testing.assert_allclose(colours[0, 0, 1], (253, 231, 37), atol=1)
    np.testing.assert_array_equal(colours[0, 1, 0], colours[0, 0, 1])  # placed per pixel, not per row
    # part 12 is level 12·255//24 = 127, half-way: viridis(0.5) = #21918c = (33, 145, 140)
    np.testing.assert_allclose(colorize_parts(np.array([[12]]))[0, 0], (33, 145, 140), atol=2)


def test_person_moves_and_fills_a_plausible_area() -> None:
    frames = render_motion(24, (64, 64), seed=0)
    masks = person_mask(frames)
    assert masks.shape == (24, 64, 64) and masks.dtype == bool
    assert 0.05 < masks.mean() < 0.4
    ious = [(masks[0] & m).sum() / (masks[0] | m).sum() for m in masks[1:]]
    assert min(ious) < 0.8  # the pose changes within a cycle
    assert not np.array_equal(frames[0], frames[1])  # and between consecutive frames


def test_seed_is_deterministic_and_matters() -> None:
    first, again = render_motion(3, (48, 48), seed=5), render_motion(3, (48, 48), seed=5)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, render_motion(3, (48, 48), seed=6))


def test_person_mask_on_a_real_and_a_coded_motion(tmp_path: Path) -> None:
    real = read_motion(require(INPUTS / "densepose" / "running.mp4"), max_frames=2).frames
    assert 0.05 < person_mask(real).mean() < 0.6
    frames = render_motion(4, (128, 128), seed=2)
    decoded = read_motion(write_video(tmp_path / "synthetic.mp4", frames, 25)).frames
    expected, got = person_mask(frames), person_mask(decoded)
    assert (expected & got).sum() / expected.sum() > 0.98  # the person survives coding
    near = _dilate(expected, 3)  # yuv420p chroma bleeds a pixel or two past the edges
    assert (got & near).sum() / got.sum() > 0.98



def test_parts_from_colours_inverts_colorize_parts_through_noise() -> None:
    labels = np.arange(NUM_PARTS + 1, dtype=np.uint8).repeat(4).reshape(1, 5, 20)  # every part, 4 pixels each
    frames = colorize_parts(labels)
    np.testing.assert_array_equal(parts_from_colours(frames), labels)
    noise = np.random.default_rng(0).integers(-3, 4, frames.shape)  # coding noise of a few levels
    noisy = np.clip(frames.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(parts_from_colours(noisy), labels)
    assert parts_from_colours(frames[0]).shape == (5, 20)  # one frame (H, W, 3) too


def test_nearest_colour_matches_a_brute_force_argmin() -> None:
    palette = np.concatenate([part_colors(), part_colors()[3:5], [[0, 0, 0], [255, 255, 255]]])  # duplicates too
    rng = np.random.default_rng(1)
    exact = palette[rng.integers(len(palette), size=(2, 6, 7))].astype(np.uint8)  # lossless pixels
    noisy = rng.integers(0, 256, size=(2, 6, 7, 3), dtype=np.uint8)  # anything
    for frames in (exact, noisy, np.concatenate([exact, noisy], axis=1)):
        distances = ((frames[..., None, :].astype(np.int64) - palette.astype(np.int64)) ** 2).sum(-1)
        np.testing.assert_array_equal(nearest_colour(frames, palette), distances.argmin(-1))  # first of ties


def test_parts_from_colours_on_a_real_motion() -> None:
    real = read_motion(require(INPUTS / "densepose" / "running.mp4"), max_frames=1).frames
    labels = parts_from_colours(real)
    np.testing.assert_array_equal(labels > 0, person_mask(real))
    head = np.isin(labels[0], (23, 24))
    rows = np.nonzero(head)[0]
    assert head.sum() > 500 and rows.mean() < 0.5 * real.shape[1]  # a head, in the upper half of the frame


def _dilate(masks: np.ndarray, radius: int) -> np.ndarray:
    """Grow (F, H, W) masks by `radius` pixels (square neighbourhood)."""
    grown = masks.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            grown |= np.roll(masks, (dy, dx), axis=(1, 2))
    return grown


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: render_motion(0), "num_frames"),
        (lambda: render_motion(2, (8, 8)), "at least 16x16"),
        (lambda: colorize_parts(np.array([[25]])), "0..24"),
        (lambda: person_mask(np.zeros((2, 4, 4, 3), np.float32)), "uint8"),
    ],
)
def test_errors(call, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call()
