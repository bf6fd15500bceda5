"""The synthetic data generator: determinism, labels and appearance agreeing, DensePose views, splits."""

from __future__ import annotations

import numpy as np
import pytest

from magicanimate.io.densepose_colors import part_colors
from magicanimate.synthetic import (
    HELDOUT_IDENTITY_START,
    HELDOUT_MOTIONS,
    MOTION_FAMILIES,
    TRAIN_MOTIONS,
    SampleSpec,
    make_reference,
    make_sample,
    split_specs,
)
from magicanimate.synthetic.body import Pose, zoom_camera
from magicanimate.errors import InputError
from magicanimate.synthetic.dataset import (
    background_for,
    draw,
    head_box,
    identity_for,
    reference_framed_like,
    reference_pose,
    render,
    scene_for,
)
from magicanimate.synthetic.render import MIN_CONTRAST

FRONT_PARTS = {2, 9, 10, 13, 14, 17, 18, 21, 22}
BACK_PARTS = {1, 7, 8, 11, 12, 15, 16, 19, 20}
LEFT_PARTS = {4, 5, 8, 10, 12, 14, 15, 17, 19, 21}  # the person's left (DensePose)
RIGHT_PARTS = {3, 6, 7, 9, 11, 13, 16, 18, 20, 22}


def spec(motion: str, k: int = 3, *, frames: int = 12, size: tuple[int, int] = (96, 96)) -> SampleSpec:
    return SampleSpec(identity=k, motion=motion, motion_seed=k, background_seed=k, num_frames=frames, size=size)


@pytest.fixture(scope="module", params=sorted(MOTION_FAMILIES))
def sample(request):
    return make_sample(spec(request.param, k=7))


def test_same_spec_same_arrays_other_seed_other_arrays() -> None:
    a, b = make_sample(spec("jumping_jacks")), make_sample(spec("jumping_jacks"))
    for name in ("appearance", "labels", "densepose", "mask", "background"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    other = make_sample(spec("jumping_jacks", k=4))
    assert not np.array_equal(a.appearance, other.appearance)
    assert not np.array_equal(a.labels, other.labels)


def test_shapes_and_dtypes(sample) -> None:
    f, (w, h) = sample.spec.num_frames, sample.spec.size
    assert sample.appearance.shape == (f, h, w, 3) and sample.appearance.dtype == np.uint8
    assert sample.labels.shape == (f, h, w) and sample.labels.dtype == np.uint8
    assert sample.densepose.shape == (f, h, w, 3) and sample.background.shape == (h, w, 3)
    assert sample.labels.max() <= 24
    assert sample.mask.mean() > 0.03, "the person should be clearly visible"


def test_labels_appearance_and_mask_agree_pixel_for_pixel(sample) -> None:
    person = sample.labels > 0
    np.testing.assert_array_equal(sample.mask, person)
    diff = np.abs(sample.appearance.astype(int) - sample.background.astype(int)[None]).max(axis=-1)
    assert (diff[~person] == 0).all(), "background pixels must be the background frame exactly"
    assert (diff[person] >= MIN_CONTRAST).all(), "person pixels must differ visibly from the background"
    # The DensePose render is the viridis colour of each label (decoded independently, nearest colour).
    palette = part_colors().astype(int)
    decoded = np.abs(sample.densepose[..., None, :].astype(int) - palette).sum(-1).argmin(-1)
    np.testing.assert_array_equal(decoded, sample.labels)


def _pose(yaw: float) -> Pose:
    pose = Pose.neutral(1)
    pose["yaw"][:] = yaw
    return pose


def _labels(yaw: float, identity: int = 5) -> np.ndarray:
    bg = background_for(0, size=(128, 128))
    return render(identity_for(identity), _pose(yaw), background=bg)[1][0]


@pytest.mark.parametrize("identity", [1, 5, 9])
def test_front_view_uses_front_labels_and_back_view_back_labels(identity: int) -> None:
    front, back = _labels(0.0, identity), _labels(np.pi, identity)
    for labels, main, other in ((front, FRONT_PARTS, BACK_PARTS), (back, BACK_PARTS, FRONT_PARTS)):
        torso_main = (labels == (2 if main is FRONT_PARTS else 1)).sum()
        torso_other = (labels == (1 if main is FRONT_PARTS else 2)).sum()
        assert torso_main > 8 * torso_other
        legs_main = np.isin(labels, [p for p in main if 7 <= p <= 14]).sum()
        legs_other = np.isin(labels, [p for p in other if 7 <= p <= 14]).sum()
        assert legs_main > 4 * legs_other
        arms_main = np.isin(labels, [p for p in main if 15 <= p <= 22]).sum()
        arms_other = np.isin(labels, [p for p in other if 15 <= p <= 22]).sum()
        assert arms_main > arms_other
    assert (back == 2).sum() == 0, "no front torso is visible from behind"


def test_left_and_right_swap_sides_when_the_back_is_seen() -> None:
    centre = 0.5 * 128  # the neutral pose stands on the image's middle column
    for yaw, left_side in ((0.0, 1), (np.pi, -1)):  # facing: the person's left is on the image right
        labels = _labels(yaw)
        xs = np.nonzero(labels)[1] + 0.5
        left, right = np.isin(labels, list(LEFT_PARTS))[np.nonzero(labels)], \
            np.isin(labels, list(RIGHT_PARTS))[np.nonzero(labels)]
        assert np.sign(xs[left].mean() - centre) == left_side
        assert np.sign(xs[right].mean() - centre) == -left_side
        head_right, head_left = np.nonzero(labels == 23)[1].mean(), np.nonzero(labels == 24)[1].mean()
        assert np.sign(head_left - head_right) == left_side


def test_turning_shows_the_back() -> None:
    sample = make_sample(SampleSpec(identity=2, motion="turn", motion_seed=2, background_seed=2, num_frames=24,
                                    size=(64, 64)))
    torso_back = (sample.labels == 1).sum(axis=(1, 2)) > (sample.labels == 2).sum(axis=(1, 2))
    assert torso_back.any() and (~torso_back).any(), "a turn shows both the front and the back"


def test_appearance_moves_with_the_person() -> None:
    """Moving the person by 8 pixels moves labels and colours (patterns included) by 8 pixels."""
    identity, bg = identity_for(11), np.zeros((64, 96, 3), np.uint8)
    pose = Pose.neutral(2)
    pose["x"][:] = 40 / 96
    moved = Pose({k: v.copy() for k, v in pose.values.items()})
    moved["x"][:] = 48 / 96
    a, la = render(identity, pose, background=bg)
    b, lb = render(identity, moved, background=bg)
    assert (la[..., :-8] != lb[..., 8:]).mean() < 0.002
    same = (la[..., :-8] == lb[..., 8:]) & (la[..., :-8] > 0)
    assert (a[..., :-8, :][same] == b[..., 8:, :][same]).all(axis=-1).mean() > 0.99


def test_splits_are_deterministic_and_disjoint() -> None:
    train = split_specs("train", count=40, num_frames=8)
    heldout = split_specs("heldout", count=12, num_frames=8)
    assert split_specs("train", count=40, num_frames=8) == train
    assert {s.identity for s in train}.isdisjoint({s.identity for s in heldout})
    assert all(s.identity < HELDOUT_IDENTITY_START <= h.identity for s in train for h in heldout)
    assert {s.background_seed for s in train}.isdisjoint({s.background_seed for s in heldout})
    assert {s.motion for s in train} == set(TRAIN_MOTIONS)
    only_heldout = set(HELDOUT_MOTIONS) - set(TRAIN_MOTIONS)
    assert only_heldout and only_heldout <= {s.motion for s in heldout}
    assert all(s.split == "train" for s in train) and all(s.split == "heldout" for s in heldout)


def test_identities_vary() -> None:
    people = [identity_for(k) for k in range(40)]
    assert len({p.body.shoulder_width for p in people}) == 40
    assert len({p.skin for p in people}) == 40
    assert {p.top.pattern for p in people} >= {"solid", "hstripes", "checks", "dots", "two_tone", "vstripes"}
    assert {p.bottom_kind for p in people} == {"trousers", "shorts", "skirt"}
    heights = [p.body.upper_leg + p.body.lower_leg + p.body.torso_length for p in people]
    assert max(heights) / min(heights) > 1.12


def test_reference_is_the_identity_in_the_sample_scene() -> None:
    s = spec("arm_wave", k=6)
    image, labels = make_reference(s)
    sample = make_sample(s)
    np.testing.assert_array_equal(image[labels == 0], sample.background[labels == 0])
    assert (labels == 2).sum() > 50  # faces the camera



def test_head_box_hand_worked() -> None:
    labels = np.zeros((3, 10, 10), np.uint8)
    labels[0, 2:6, 3:5] = 23  # rows 2..5, columns 3..4: height ~4, centre (4.0, 4.0) with pixel centres at +0.5
    labels[1, 2:6, 5:7] = 24  # the same head two columns to the right
    labels[2, 8:, :] = 2  # no head in this frame: left out of the medians
    height, column, row = head_box(labels)
    assert height == pytest.approx(4.0)  # four rows (the 0.5 %..99.5 % quantiles of two frames x 2 columns)
    assert (column, row) == (pytest.approx(5.0), pytest.approx(4.0))  # median of 4.0 and 6.0
    assert head_box(np.zeros((2, 4, 4), np.uint8)) is None


def test_reference_framed_like_a_closer_motion_matches_its_person() -> None:
    s = spec("arm_wave", k=5, size=(64, 64))
    pose = reference_pose()  # the same person filmed closer and off-centre: legs below the frame
    pose["scale"][:], pose["x"][:], pose["ground"][:] = 1.4, 0.4, 1.5
    motion = draw(identity_for(s.identity), pose, size=(256, 256)).labels  # at 4x the sample's size
    truth = draw(identity_for(s.identity), pose, size=s.size).labels[0] > 0
    image, labels = reference_framed_like(s, motion)
    person = labels > 0
    assert (person & truth).sum() / (person | truth).sum() > 0.9
    standing = make_reference(s)[1] > 0
    assert (standing & truth).sum() / (standing | truth).sum() < 0.5  # the full-body shot does not
    np.testing.assert_array_equal(image[~person], scene_for(s)[~person])  # same scene around the person
    with pytest.raises(InputError, match="no head"):
        reference_framed_like(s, np.zeros((2, 16, 16), np.uint8))

def test_frontal_arms_are_split_along_their_length_inner_side_front() -> None:
    """As in detectron2's renders of the release's motions: front chart medial, back chart lateral."""
    labels = _labels(0.0)
    centre = 0.5 * 128
    for back, front in ((15, 17), (16, 18)):  # upper arm left, right
        xs_back, xs_front = np.nonzero(labels == back)[1], np.nonzero(labels == front)[1]
        assert len(xs_back) > 10 and len(xs_front) > 10
        assert abs(xs_front.mean() + 0.5 - centre) < abs(xs_back.mean() + 0.5 - centre)


def test_composite_pushes_person_colours_away_from_a_similar_background() -> None:
    from magicanimate.synthetic.render import Canvas, composite

    canvas = Canvas(1, (4, 2))
    canvas.labels[0, 0, :2] = 2
    canvas.colour[0, 0, 0] = (210, 90, 60)  # close to a dark background: brightened
    canvas.colour[0, 0, 1] = (100, 100, 100)  # far from it: kept
    background = np.full((2, 4, 3), (200, 100, 50), np.uint8)
    out = composite(canvas, background)
    # mean(200, 100, 50) < 128, darkest channel 50 -> shifted by 50 + 48 - 60 = 38 in every channel
    np.testing.assert_array_equal(out[0, 0, 0], (248, 128, 98))
    np.testing.assert_array_equal(out[0, 0, 1], (100, 100, 100))
    np.testing.assert_array_equal(out[0, 1], background[1])
    light = np.full((2, 4, 3), (220, 180, 150), np.uint8)
    canvas.colour[0, 0, 0] = (230, 170, 160)  # light: brightest channel 220 must become 172, a shift of -58
    np.testing.assert_array_equal(composite(canvas, light)[0, 0, 0], (172, 112, 102))


def test_preview_strip_layout(tmp_path) -> None:
    from PIL import Image

    from magicanimate.synthetic.preview import preview_strip

    path = preview_strip(tmp_path / "p.png", samples=2, frames=3, size=32, num_frames=4)
    image = np.asarray(Image.open(path))
    assert image.shape == (2 * 2 * 32, 3 * 32, 3)  # per sample: appearance above dp_segm; 3 frames across
    first = make_sample(split_specs("train", count=1, num_frames=4, size=(32, 32))[0])
    np.testing.assert_array_equal(image[:32, :32], first.appearance[0])
    np.testing.assert_array_equal(image[32:64, 32:64], first.densepose[2])  # linspace(0, 3, 3) -> 0, 2, 3


def _root(pose: Pose) -> tuple[float, float, float]:
    return float(pose["scale"][0]), float(pose["x"][0]), float(pose["ground"][0])


def test_zoom_camera_by_hand() -> None:
    """Scale x1.5 about the frame centre; a head the zoom would push out of the frame stays in it."""
    standing = Pose.neutral(1)
    standing["scale"][:], standing["x"][:], standing["ground"][:] = 0.7, 0.3, 0.93
    # crown = 0.93 - 1.02 * 0.7 = 0.216 -> 0.5 + 1.5 * (0.216 - 0.5) = 0.074 (in the frame): ground = 0.074 + 1.071
    np.testing.assert_allclose(_root(zoom_camera(standing, 1.5)), (1.05, 0.2, 1.145), atol=1e-12)
    close = Pose.neutral(1)
    close["scale"][:], close["ground"][:] = 1.4, 0.1 + 1.02 * 1.4  # crown at 0.1 -> would be -0.1: kept at 0.04
    np.testing.assert_allclose(_root(zoom_camera(close, 1.5)), (2.1, 0.5, 0.04 + 1.02 * 2.1), atol=1e-12)
    closer = Pose.neutral(1)
    closer["scale"][:], closer["ground"][:] = 1.4, 0.02 + 1.02 * 1.4  # crown at 0.02: stays there
    np.testing.assert_allclose(_root(zoom_camera(closer, 1.5)), (2.1, 0.5, 0.02 + 1.02 * 2.1), atol=1e-12)
    np.testing.assert_array_equal(standing["scale"], [0.7])  # the input is not changed
    with pytest.raises(ValueError):
        zoom_camera(standing, 0.0)


def test_a_zoomed_person_covers_zoom_squared_the_pixels_about_the_same_centre() -> None:
    pose = Pose.neutral(1)
    pose["scale"][:], pose["ground"][:] = 0.5, 0.5 + 0.51 * 0.5  # centred: the zoom cuts nothing off
    identity, bg = identity_for(4), np.zeros((128, 128, 3), np.uint8)
    small = render(identity, pose, background=bg)[1][0] > 0
    large = render(identity, zoom_camera(pose, 1.4), background=bg)[1][0] > 0
    assert large.sum() / small.sum() == pytest.approx(1.4 ** 2, rel=0.06)
    rows_small, rows_large = np.nonzero(small.any(1))[0], np.nonzero(large.any(1))[0]
    height_ratio = (rows_large[-1] - rows_large[0] + 1) / (rows_small[-1] - rows_small[0] + 1)
    assert height_ratio == pytest.approx(1.4, rel=0.05)
    centre_small, centre_large = np.argwhere(small).mean(0), np.argwhere(large).mean(0)
    np.testing.assert_allclose(64 + 1.4 * (centre_small - 64), centre_large, atol=1.5)


def test_zoomed_samples_and_references_are_larger_and_still_agree_with_their_labels() -> None:
    plain, zoomed = (SampleSpec(identity=6, motion="squat", motion_seed=6, background_seed=6, num_frames=6,
                                size=(64, 64), zoom=zoom) for zoom in (1.0, 1.5))
    a, b = make_sample(plain), make_sample(zoomed)
    assert b.mask.sum() > 1.6 * a.mask.sum()
    diff = np.abs(b.appearance.astype(int) - b.background.astype(int)[None]).max(axis=-1)
    assert (diff[~b.mask] == 0).all() and (diff[b.mask] >= MIN_CONTRAST).all()
    assert (make_reference(zoomed)[1] > 0).sum() > 1.6 * (make_reference(plain)[1] > 0).sum()
    assert _root(reference_pose(1.5))[0] == pytest.approx(1.5 * _root(reference_pose())[0])
