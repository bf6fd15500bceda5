"""The frame-to-frame change error, against hand-worked values."""

import numpy as np
import pytest

from magicanimate.errors import InputError
from magicanimate.metrics.temporal import frame_change_error, frame_change_error_per_pair, seam_pairs


def _video(levels: list[int], size: int = 4) -> np.ndarray:
    return np.stack([np.full((size, size, 3), v, np.uint8) for v in levels])


def test_change_error_is_the_difference_of_the_changes():
    truth = _video([0, 10, 20, 30])
    # generated changes: 0, +20, +5 against the true +10 each time -> |0-10|, |20-10|, |5-10|
    generated = _video([0, 0, 20, 25])
    assert frame_change_error_per_pair(generated, truth) == pytest.approx([10, 10, 5])
    assert frame_change_error(generated, truth) == pytest.approx(25 / 3)
    assert frame_change_error(generated, truth, pairs=[2]) == pytest.approx(5)


def test_a_shifted_but_steady_video_has_no_temporal_error():
    truth = _video([0, 10, 20, 30])
    assert frame_change_error(_video([40, 50, 60, 70]), truth) == 0
    assert frame_change_error(_video([40, 40, 40, 40]), truth) == pytest.approx(10)  # frozen: misses every change


def test_float_videos_in_0_1_are_scored_on_the_0_255_scale():
    truth = _video([0, 255])
    generated = np.zeros((2, 4, 4, 3), np.float32)
    assert frame_change_error(generated, truth) == pytest.approx(255)


def test_seam_pairs_are_where_16_frame_segments_meet():
    assert seam_pairs(32, 16) == [15]
    assert seam_pairs(48, 16) == [15, 31]
    assert seam_pairs(16, 16) == []


def test_bad_pairs_and_lengths_are_refused():
    truth = _video([0, 10, 20])
    with pytest.raises(InputError, match="pairs must be in 0..1"):
        frame_change_error(truth, truth, pairs=[2])
    with pytest.raises(InputError, match="at least 2 frames"):
        frame_change_error(truth[:1], truth[:1])
