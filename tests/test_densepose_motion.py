"""People selection, temporal smoothing and alignment on synthetic label maps; motion extraction end to end."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
from densepose_goldens import case, densepose_weights, extractor  # noqa: F401

from magicanimate.densepose import (
    Alignment,
    DensePoseOutput,
    apply_alignment,
    compose_motion,
    extract_motion,
    fit_alignment,
    label_flicker,
    select_people,
    smooth_labels,
)
from magicanimate.densepose.postprocess import PartPatch
from magicanimate.densepose.download import download_densepose_weights
from magicanimate.synthetic.simple_person import render_parts
from magicanimate.errors import InputError

# --------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------


def _boxes(*rows) -> np.ndarray:
    return np.array(rows, dtype=np.float32).reshape(-1, 4)


def test_all_and_largest() -> None:
    boxes = [_boxes([0, 0, 10, 10], [0, 0, 30, 30]), _boxes(), _boxes([5, 5, 6, 6])]
    assert select_people(boxes, "all") == [[0, 1], [], [0]]
    assert select_people(boxes, "largest") == [[1], [], [0]]
    with pytest.raises(ValueError):
        select_people(boxes, "everyone")


def test_track_follows_the_first_person_and_ignores_a_larger_passer_by() -> None:
    person = [[100 + 2 * t, 50, 160 + 2 * t, 200] for t in range(6)]
    # far away at first, then closer (larger than the person) and walking across them
    passer = [[400 - 60 * t, 100 - 15 * t, 440 - 50 * t, 160 + 15 * t] for t in range(6)]
    frames = [_boxes(passer[t], person[t]) if t % 2 else _boxes(person[t], passer[t]) for t in range(6)]
    frames[3] = _boxes(passer[3])  # the person is missed in one frame
    chosen = select_people(frames, "track")
    assert chosen[3] == []
    for t in (0, 1, 2, 4, 5):
        np.testing.assert_array_equal(frames[t][chosen[t][0]], person[t])
    largest = select_people(frames, "largest")
    np.testing.assert_array_equal(frames[5][largest[5][0]], passer[5])  # where "largest" would switch


# --------------------------------------------------------------------------
# Smoothing
# --------------------------------------------------------------------------


def _jittered_sequence(frames: int = 16, seed: int = 0) -> np.ndarray:
    """A standing person whose labels jitter: random 0-2 px shifts plus 2 % random label flips per frame."""
    rng = np.random.default_rng(seed)
    base = render_parts(1, (96, 96), seed=4)[0]
    out = []
    for _ in range(frames):
        dy, dx = rng.integers(-2, 3, size=2)
        frame = np.roll(base, (dy, dx), axis=(0, 1))
        flip = (rng.random(frame.shape) < 0.02) & (frame > 0)
        frame[flip] = rng.integers(1, 25, size=int(flip.sum()))
        out.append(frame)
    return np.stack(out).astype(np.uint8)


def test_smoothing_reduces_label_flicker_on_a_jittered_sequence() -> None:
    labels = _jittered_sequence()
    before = label_flicker(labels)
    after = smooth_labels(labels, 5)
    assert after.shape == labels.shape and after.dtype == np.uint8
    assert label_flicker(after) < 0.5 * before, (before, label_flicker(after))
    assert label_flicker(smooth_labels(labels, 1)) == before  # window 1 = off


def test_smoothing_keeps_a_static_sequence_and_the_mode_wins() -> None:
    static = np.repeat(render_parts(1, (32, 32), seed=1), 5, axis=0)
    np.testing.assert_array_equal(smooth_labels(static, 3), static)
    blink = static.copy()
    blink[2] = 0  # one dropped frame disappears under a 3-frame mode
    np.testing.assert_array_equal(smooth_labels(blink, 3)[2], static[2])
    assert label_flicker(static) == 0.0


def test_compose_motion_smooths_the_followed_persons_box_before_drawing() -> None:
    patch = np.full((20, 10), 7, np.uint8)
    xs = [10, 14, 10, 14, 10, 14]  # a box jumping 4 px back and forth
    output = DensePoseOutput(
        labels=np.zeros((6, 40, 60), np.uint8),
        boxes=[_boxes([x, 5, x + 10, 25]) for x in xs], scores=[np.ones(1, np.float32)] * 6,
        patches=[[PartPatch(x=x, y=5, labels=patch)] for x in xs],
    )
    raw = compose_motion(output, people="track")
    steady = compose_motion(output, people="track", smooth=3)
    left = [int(np.nonzero(f.any(axis=0))[0][0]) for f in raw]
    assert left == xs
    left_steady = [int(np.nonzero(f.any(axis=0))[0][0]) for f in steady[1:-1]]
    assert max(left_steady) - min(left_steady) <= 2  # moving average of 3: 11.3 / 12.7 -> 11 / 12
    assert label_flicker(steady) < label_flicker(raw)


# --------------------------------------------------------------------------
# Alignment
# --------------------------------------------------------------------------


@pytest.mark.parametrize("scale, offset", [(1.3, (20.0, 10.0)), (0.7, (40.0, 25.0)), (1.6, (-30.0, 5.0))])
def test_alignment_recovers_a_known_scale_and_offset(scale: float, offset: tuple[float, float]) -> None:
    # driving: one body walking sideways (only translated), so every frame has the same statistics
    body = render_parts(1, (160, 160), seed=2)[0]
    driving = np.stack([np.roll(body, 3 * t - 12, axis=1) for t in range(9)])
    middle = driving[4]
    reference = apply_alignment(middle, Alignment(scale=scale, offset=offset), size=(270, 250))
    assert not reference[[0, -1]].any() and not reference[:, [0, -1]].any()  # the whole person is inside
    fitted = fit_alignment(driving, reference)
    assert abs(fitted.scale / scale - 1) < 0.02
    # the median frame of the clip is frame 4: its pixels must land where the reference's are
    size = max(reference.shape)
    assert abs(fitted.offset[0] - offset[0]) < 0.02 * size and abs(fitted.offset[1] - offset[1]) < 0.02 * size
    aligned = apply_alignment(middle, fitted, size=reference.shape)
    overlap = ((aligned > 0) & (reference > 0)).sum() / ((aligned > 0) | (reference > 0)).sum()
    assert overlap > 0.9


def test_apply_alignment_is_nearest_neighbour_and_keeps_label_values() -> None:
    labels = np.zeros((2, 8, 8), np.uint8)
    labels[:, 2:4, 2:4] = 5
    out = apply_alignment(labels, Alignment(scale=2.0, offset=(1.0, 0.0)), size=(16, 16))
    assert set(np.unique(out)) == {0, 5}
    assert out.shape == (2, 16, 16)
    ys, xs = np.nonzero(out[0])
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (4, 7, 5, 8)


# --------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = bytes(range(256)) * 64
    ranges: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        start = 0
        if "Range" in self.headers:
            self.ranges.append(self.headers["Range"])
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
        else:
            self.send_response(200)
        body = self.payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_download_resumes_a_partial_file_and_reports_progress(tmp_path: Path) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _RangeHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        part = tmp_path / "model_final_162be9.pkl.part"
        part.write_bytes(_RangeHandler.payload[:1000])
        seen = []
        path = download_densepose_weights(tmp_path, url=f"http://127.0.0.1:{server.server_port}/x.pkl",
                                          progress=lambda done, total: seen.append((done, total)), chunk_size=4096)
    finally:
        server.shutdown()
    assert path.read_bytes() == _RangeHandler.payload and not part.exists()
    assert _RangeHandler.ranges == ["bytes=1000-"]
    assert seen[-1] == (len(_RangeHandler.payload), len(_RangeHandler.payload))


# --------------------------------------------------------------------------
# Extraction with the tiny random weights
# --------------------------------------------------------------------------


@pytest.mark.slow
def test_extract_motion_on_shifted_photo_frames(densepose_weights) -> None:  # noqa: F811
    image = case("monalisa")["image_rgb"][::2, ::2]  # 256x256
    frames = np.stack([np.roll(image, 4 * t, axis=1) for t in range(3)])
    ex = extractor(densepose_weights)
    calls = []
    out = ex(frames, 0.8, batch_size=2, detect_size=192, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 3), (3, 3)]
    assert out.labels.shape == (3, 256, 256) and out.labels.dtype == np.uint8
    assert out.render().shape == (3, 256, 256, 3)
    assert len(out.boxes) == 3 and all(len(b) == len(s) for b, s in zip(out.boxes, out.scores))
    assert all((np.diff(s) <= 0).all() for s in out.scores)
    assert compose_motion(out, people="largest", smooth=3).shape == (3, 256, 256)
    np.testing.assert_array_equal(compose_motion(out), out.labels)  # "all", no smoothing: the extractor's maps
    streamed = []
    aligned = extract_motion((f for f in frames), extractor=ex, people="track", detect_size=256, batch_size=2,
                             align_to=image[:200, :180], progress=lambda done, total: streamed.append((done, total)))
    assert aligned.shape == (3, 200, 180) and streamed == [(2, None), (3, None)]


def test_frames_without_detections_give_empty_label_maps(densepose_weights) -> None:  # noqa: F811
    frames = case("dalle2")["image_rgb"][None, ::4, ::4]  # (1, 128, 128, 3)
    out = extractor(densepose_weights)(frames, 0.99999, detect_size=128)
    assert out.boxes[0].shape == (0, 4) and out.scores[0].shape == (0,)
    assert out.labels.shape == (1, 128, 128) and not out.labels.any()
    assert (out.render() == (68, 1, 84)).all()


def test_from_pretrained_finds_the_cached_download(densepose_weights, tmp_path, monkeypatch) -> None:  # noqa: F811
    from magicanimate.densepose import FILENAME, DensePoseExtractor

    (tmp_path / FILENAME).symlink_to(densepose_weights)
    monkeypatch.setenv("MAGICANIMATE_DENSEPOSE_DIR", str(tmp_path))
    ex = DensePoseExtractor.from_pretrained(device="cpu")
    assert ex.device.type == "cpu" and ex.dtype.is_floating_point
    with pytest.raises(InputError, match="uint8 RGB"):
        ex(np.zeros((4, 4), np.uint8))
