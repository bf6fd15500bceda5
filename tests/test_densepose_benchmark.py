"""The DensePose benchmark returns seconds per frame per detect size and agreement with the default size."""

from __future__ import annotations

import pytest
from densepose_goldens import case, densepose_weights, extractor  # noqa: F401

from magicanimate.densepose.benchmark import benchmark_densepose, label_agreement


@pytest.mark.usefixtures("one_torch_thread")
def test_benchmark_reports_speed_and_agreement(densepose_weights) -> None:  # noqa: F811
    frames = case("dalle2")["image_rgb"][None, ::4, ::4]  # (1, 128, 128, 3)
    result = benchmark_densepose(extractor(densepose_weights), frames, detect_sizes=(160, 128))
    assert result["frames"] == 1 and result["device"] == "cpu" and result["frame_size"] == [128, 128]
    default, small = result["sizes"]["160"], result["sizes"]["128"]
    assert default["network_input"] == [160, 160] and small["network_input"] == [128, 128]
    assert default["seconds_per_frame"] > 0 and "pixels_equal" not in default
    assert 0.0 <= small["pixels_equal"] <= 1.0 and 0.0 <= small["foreground_iou"] <= 1.0


def test_label_agreement() -> None:
    import numpy as np

    a = np.zeros((1, 4, 4), np.uint8)
    b = a.copy()
    a[0, :2, :2] = 3
    b[0, :2, :1] = 3
    assert label_agreement(a, b) == {"pixels_equal": 14 / 16, "foreground_iou": 0.5}
    assert label_agreement(a * 0, b * 0)["foreground_iou"] == 1.0
