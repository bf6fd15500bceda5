"""The window schedule against the release's (case_a/case.json)."""

from __future__ import annotations

import json

import pytest

from conftest import TINY, require
from magicanimate.sampling.windows import padded_length, sliding_windows, window_counts


def test_case_a_windows():
    w = json.loads(require(TINY / "case_a" / "case.json").read_text())["windows"]
    assert sliding_windows(32, 16, 4) == w["unet_windows (context_overlap=4, same every step, processed in this order)"]
    assert sliding_windows(32, 16, 0) == w["controlnet_windows (context_overlap=0, same every step)"]
    assert window_counts(sliding_windows(32, 16, 4), 32) == w["per_frame_window_count (counter)"]


@pytest.mark.parametrize("frames,expected", [(1, 16), (16, 16), (17, 32), (24, 32), (64, 64)])
def test_padding(frames, expected):
    assert padded_length(frames, 16) == expected


def test_single_window_and_wrap_around():
    assert sliding_windows(16) == [list(range(16))]
    windows = sliding_windows(48)
    assert [w[0] for w in windows] == [0, 12, 24, 36]
    assert windows[-1] == list(range(36, 48)) + [0, 1, 2, 3]
    assert min(window_counts(windows, 48)) >= 1
    with pytest.raises(ValueError):
        sliding_windows(32, 16, 16)
