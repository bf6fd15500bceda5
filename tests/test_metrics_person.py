"""Silhouette IoU and part-colour error against hand-worked values."""

from __future__ import annotations

import numpy as np
import pytest

from magicanimate.io.densepose_colors import colorize_parts
from magicanimate.errors import InputError
from magicanimate.metrics.person import (
    mask_iou_per_frame,
    motion_mask,
    motion_silhouette_iou,
    part_colour_error,
    part_colour_error_per_frame,
    silhouette,
    silhouette_errors,
    silhouette_iou,
)

GREY = (100, 100, 100)


def scene(frames: int = 1, h: int = 6, w: int = 8) -> tuple[np.ndarray, np.ndarray]:
    background = np.full((h, w, 3), GREY, np.uint8)
    return background, np.repeat(background[None], frames, 0).copy()


def test_silhouette_is_strictly_more_than_the_tolerance_in_some_channel() -> None:
    background, video = scene()
    video[0, 0, 0] = (125, 100, 100)  # 25 > 24 in one channel: person
    video[0, 0, 1] = (124, 76, 124)  # 24 in every channel: not person
    video[0, 0, 2] = (100, 100, 0)  # 100 in blue: person
    mask = silhouette(video, background)
    assert mask.sum() == 2 and mask[0, 0, 0] and mask[0, 0, 2] and not mask[0, 0, 1]
    assert silhouette(video, background, tolerance=23)[0, 0, 1]


def test_silhouette_iou_hand_worked() -> None:
    background, video = scene(frames=2)
    video[0, 1:3, 1:3] = (200, 30, 30)  # generated person: 4 pixels
    truth = np.zeros((2, 6, 8), bool)
    truth[0, 1:3, 2:5] = True  # true person: 6 pixels, 2 of them shared -> IoU 2 / 8
    # frame 1: no person anywhere -> 1
    assert silhouette_iou(video, truth, background=background) == pytest.approx((2 / 8 + 1.0) / 2)
    np.testing.assert_allclose(mask_iou_per_frame(silhouette(video, background), truth), [0.25, 1.0])
    truth[1, 0, 0] = True  # a person the generation missed -> 0
    assert silhouette_iou(video, truth, background=background) == pytest.approx(0.125)



def test_silhouette_errors_hand_worked() -> None:
    background, video = scene(frames=3)  # 6 x 8 = 48 pixels per frame
    truth = np.zeros((3, 6, 8), bool)
    truth[0, 1:3, 2:5] = True  # 6 true person pixels, 42 background pixels
    video[0, 1:3, 1:3] = (200, 30, 30)  # 4 generated: 2 on the person, 2 on the background
    truth[1] = True  # frame 1 all person, generated nothing: recall 0, no background to alarm on
    video[2, 0, :] = (0, 0, 0)  # frame 2 no person, 8 of 48 background pixels taken for person
    errors = silhouette_errors(video, truth, background=background)
    assert errors["person_recall"] == pytest.approx((2 / 6 + 0 + 1) / 3)
    assert errors["background_false_alarm"] == pytest.approx((2 / 42 + 0 + 8 / 48) / 3)
    perfect = silhouette_errors(np.where(truth[..., None], 0, background).astype(np.uint8), truth,
                                background=background)
    assert perfect == {"person_recall": 1.0, "background_false_alarm": 0.0}

def test_silhouette_iou_accepts_labels_floats_and_other_sizes() -> None:
    background, video = scene(h=4, w=4)
    video[0, :2, :2] = (0, 0, 0)
    labels = np.zeros((1, 4, 4), np.uint8)
    labels[0, :2, :2] = 7
    assert silhouette_iou(video.astype(np.float64) / 255, labels, background=background) == 1.0
    big = video.repeat(2, axis=1).repeat(2, axis=2)  # same picture at 8x8: resized to the truth's 4x4
    assert silhouette_iou(big, labels, background=background) == 1.0
    with pytest.raises(InputError):
        silhouette_iou(video[:0], labels, background=background)


def test_part_colour_error_hand_worked() -> None:
    labels = np.zeros((2, 4, 4), np.uint8)
    labels[0, :2, :] = 2  # 8 pixels of torso front
    labels[0, 3, :] = 23  # 4 pixels of head
    labels[1, :, :2] = 23
    labels[1, 0, 3] = 5  # 1 pixel: below min_pixels, ignored
    rng = np.random.default_rng(0)
    truth = rng.integers(40, 200, size=(2, 4, 4, 3)).astype(np.uint8)
    generated = truth.astype(int)
    generated[0][labels[0] == 2] += (10, -20, 30)  # torso off by mean |.| = 20
    generated[1][labels[1] == 23] += 5  # head off by 5 in frame 1
    generated[1][labels[1] == 5] += 50  # ignored (1 pixel)
    generated[0][labels[0] == 0] = 0  # background differences do not count
    generated = generated.astype(np.uint8)
    np.testing.assert_allclose(part_colour_error_per_frame(generated, truth, labels=labels), [(20 + 0) / 2, 5.0])
    assert part_colour_error(generated, truth, labels=labels) == pytest.approx(7.5)
    assert part_colour_error(generated, truth, labels=labels, min_pixels=1) == pytest.approx((10 + (5 + 50) / 2) / 2)


def test_part_colour_error_forgives_texture_moved_within_a_part() -> None:
    labels = np.zeros((1, 4, 4), np.uint8)
    labels[0, 1:3, 1:3] = 9
    truth = np.zeros((1, 4, 4, 3), np.uint8)
    truth[0, 1:3, 1:3] = [[(255, 0, 0), (0, 255, 0)], [(0, 0, 255), (10, 20, 30)]]
    generated = truth.copy()
    generated[0, 1:3, 1:3] = truth[0, 1:3, 1:3][::-1, ::-1]  # same colours, other places
    assert part_colour_error(generated, truth, labels=labels) == 0.0
    with pytest.raises(InputError):
        part_colour_error(generated, truth, labels=np.zeros((1, 4, 4), np.uint8))


def test_motion_mask_from_labels_or_dp_segm_and_resized_by_area() -> None:
    labels = np.zeros((1, 4, 4), np.uint8)
    labels[0, :2, :2] = 3
    labels[0, 2, 2] = 14  # a quarter of a 2x2 cell: not person after halving
    np.testing.assert_array_equal(motion_mask(labels), labels > 0)
    np.testing.assert_array_equal(motion_mask(colorize_parts(labels)), labels > 0)
    np.testing.assert_array_equal(motion_mask(labels, size=(2, 2))[0], [[True, False], [False, False]])


def test_motion_silhouette_iou_at_the_generated_size() -> None:
    labels = np.zeros((1, 8, 8), np.uint8)
    labels[0, :4, :4] = 2  # a 512-like motion, halved to the generated 4x4: top-left 2x2
    background, video = scene(h=4, w=4)
    video[0, :2, :1] = (0, 0, 0)  # generated person covers half of it -> IoU 2 / 4
    assert motion_silhouette_iou(video, colorize_parts(labels), background=background) == pytest.approx(0.5)
    assert motion_silhouette_iou(video, labels, background=background) == pytest.approx(0.5)


def test_true_synthetic_video_scores_perfectly_and_the_empty_scene_does_not() -> None:
    from magicanimate.synthetic import SampleSpec, make_sample

    sample = make_sample(SampleSpec(identity=3, motion="squat", motion_seed=3, background_seed=3, num_frames=6,
                                    size=(64, 64)))
    assert silhouette_iou(sample.appearance, sample.mask, background=sample.background) == 1.0
    assert part_colour_error(sample.appearance, sample.appearance, labels=sample.labels) == 0.0
    empty = np.repeat(sample.background[None], 6, 0)
    assert silhouette_iou(empty, sample.mask, background=sample.background) == 0.0
    assert part_colour_error(empty, sample.appearance, labels=sample.labels) > 20
