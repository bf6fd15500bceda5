"""Motion reading (videos, GIFs, folders, .npy, arrays), fps resampling and result writing."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import INPUTS, TINY, require
from PIL import Image

from magicanimate.io import video as videoio
from magicanimate.errors import InputError, OutputError
from magicanimate.io.image import resize_image
from magicanimate.io.video import (
    Motion,
    frames_to_uint8,
    make_grid,
    probe_video,
    read_motion,
    resample_by_time,
    write_video,
)

DENSEPOSE = INPUTS / "densepose"
# Frames, fps and size of the released demo motions (inputs/README.md).
DEMO_MOTIONS = {
    "running.mp4": 42,
    "dancing2.mp4": 100,
    "demo4.mp4": 107,
    "running2.mp4": 125,
    "multi_dancing.mp4": 85,
}


# --------------------------------------------------------------------------
# Helpers: inputs are made with PyAV / PIL directly, independent of write_video
# --------------------------------------------------------------------------


def _levels(count: int, height: int = 32, width: int = 48) -> np.ndarray:
    """Flat frames whose grey level 20 + 8 i identifies frame i even after lossy coding."""
    levels = 20 + 8 * np.arange(count, dtype=np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (count, height, width, 3)).copy()


def _indices(frames: np.ndarray) -> list[int]:
    """Recover the frame indices of `_levels` frames from their mean grey level."""
    return [int(round((frame.mean() - 20) / 8)) for frame in frames]


def _encode(path: Path, frames: np.ndarray, fps: Fraction, codec: str, pix_fmt: str) -> Path:
    """Encode uint8 frames with PyAV at a constant rate."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for index, frame in enumerate(frames):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts, video_frame.time_base = index, 1 / fps
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
    return path


def _gif(path: Path, frames: np.ndarray, durations_ms: list[int] | int) -> Path:
    """Write an animated GIF with PIL."""
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations_ms, loop=0)
    return path


def _no_leftovers(folder: Path, expected: set[str]) -> None:
    """The folder holds exactly `expected` (no temporary files)."""
    assert {entry.name for entry in folder.iterdir()} == expected


# --------------------------------------------------------------------------
# Reading each input kind
# --------------------------------------------------------------------------

CONTAINERS = [
    ("clip.mp4", "libx264", "yuv420p"),
    ("clip.mov", "mjpeg", "yuvj420p"),
    ("clip.webm", "libvpx", "yuv420p"),
    ("clip.mkv", "ffv1", "yuv444p"),
    ("clip.avi", "mpeg4", "yuv420p"),
]


@pytest.mark.parametrize(("name", "codec", "pix_fmt"), CONTAINERS)
def test_reads_video_containers(tmp_path: Path, name: str, codec: str, pix_fmt: str) -> None:
    frames = _levels(12)
    path = _encode(tmp_path / name, frames, Fraction(24), codec, pix_fmt)
    motion = read_motion(path)
    assert isinstance(motion, Motion)
    assert motion.frames.dtype == np.uint8 and motion.frames.shape == (12, 32, 48, 3)
    assert motion.fps == pytest.approx(24.0)
    assert _indices(motion.frames) == list(range(12))
    assert np.abs(motion.frames.astype(int) - frames).mean() < 3


def test_reads_gif_with_its_frame_durations(tmp_path: Path) -> None:
    frames = _levels(6)
    motion = read_motion(_gif(tmp_path / "clip.gif", frames, 100))
    assert motion.frames.shape == (6, 32, 48, 3)
    assert motion.fps == pytest.approx(10.0)
    np.testing.assert_array_equal(motion.frames, frames)


def test_gif_variable_durations_resample_by_timestamp(tmp_path: Path) -> None:
    path = _gif(tmp_path / "uneven.gif", _levels(3), [100, 200, 100])  # starts 0, .1, .3; ends .4
    motion = read_motion(path, fps=10)
    assert _indices(motion.frames) == [0, 1, 1, 2]
    assert motion.fps == 10.0


def test_reads_frame_folder_in_natural_order(tmp_path: Path) -> None:
    frames = _levels(11)
    for index, frame in enumerate(frames):  # frame2 must sort before frame10
        Image.fromarray(frame).save(tmp_path / f"frame{index}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / ".hidden.png").write_bytes(b"ignored")
    motion = read_motion(tmp_path)
    assert motion.fps is None
    np.testing.assert_array_equal(motion.frames, frames)
    part = read_motion(tmp_path, start=2, max_frames=3)
    assert _indices(part.frames) == [2, 3, 4]


def test_reads_npy_and_arrays(tmp_path: Path) -> None:
    frames = _levels(5)
    np.save(tmp_path / "motion.npy", frames)
    from_file = read_motion(tmp_path / "motion.npy", start=1, max_frames=2)
    assert from_file.fps is None
    np.testing.assert_array_equal(from_file.frames, frames[1:3])
    from_array = read_motion(frames)
    np.testing.assert_array_equal(from_array.frames, frames)
    assert from_array.frames is not frames  # the Motion owns its frames


def test_reads_release_demo_motion() -> None:
    """running.mp4: 42 frames at 25 fps, 512x512, DensePose background viridis(0)."""
    motion = read_motion(require(DENSEPOSE / "running.mp4"))
    assert motion.frames.shape == (42, 512, 512, 3)
    assert motion.fps == 25.0
    corner = motion.frames[:, :16, :16].reshape(-1, 3).mean(axis=0)  # (F, 16, 16, 3) -> (N, 3)
    np.testing.assert_allclose(corner, (68, 1, 84), atol=8)


def test_release_demo_decodes_exactly_like_the_release() -> None:
    """Decoding + PIL bicubic resize reproduces the release's control frames bit for bit."""
    golden = np.load(require(TINY / "case_a" / "control.npy"))  # 24 frames padded to 32
    motion = read_motion(require(DENSEPOSE / "running.mp4"), max_frames=24)
    control = np.stack([resize_image(frame, (64, 64)) for frame in motion.frames])
    np.testing.assert_array_equal(control, golden[:24])


@pytest.mark.parametrize("name", sorted(DEMO_MOTIONS))
def test_probe_release_demo_motions(name: str) -> None:
    info = probe_video(require(DENSEPOSE / name))
    assert info == {"frames": DEMO_MOTIONS[name], "fps": 25.0, "width": 512, "height": 512}


# --------------------------------------------------------------------------
# fps resampling and parts
# --------------------------------------------------------------------------


def test_resample_30_to_15_keeps_every_other_frame(tmp_path: Path) -> None:
    path = _encode(tmp_path / "a.mkv", _levels(30), Fraction(30), "ffv1", "yuv444p")
    motion = read_motion(path, fps=15)
    assert motion.fps == 15.0
    assert _indices(motion.frames) == list(range(0, 30, 2))


def test_resample_10_to_25_repeats_by_timestamp(tmp_path: Path) -> None:
    path = _encode(tmp_path / "b.mkv", _levels(10), Fraction(10), "ffv1", "yuv444p")
    motion = read_motion(path, fps=25)
    assert motion.num_frames == 25  # one second either way
    assert _indices(motion.frames) == [k * 10 // 25 for k in range(25)]


def test_start_and_max_frames_apply_after_resampling(tmp_path: Path) -> None:
    path = _encode(tmp_path / "c.mkv", _levels(30), Fraction(30), "ffv1", "yuv444p")
    assert _indices(read_motion(path, start=3, max_frames=4).frames) == [3, 4, 5, 6]
    assert _indices(read_motion(path, fps=15, start=2, max_frames=3).frames) == [4, 6, 8]
    assert _indices(read_motion(path, start=28).frames) == [28, 29]


def test_resample_rule_on_timestamps() -> None:
    """Output i at i/fps takes the latest frame starting at or before it; exact fractions."""
    timed = [(Fraction(n, 30), Fraction(1, 30), n) for n in range(6)]  # 0.2 s at 30 fps
    assert list(resample_by_time(timed, Fraction(15))) == [0, 2, 4]
    assert list(resample_by_time(timed, Fraction(20))) == [0, 1, 3, 4]
    ntsc = [(Fraction(n * 1001, 30000), Fraction(1001, 30000), n) for n in range(4)]
    assert list(resample_by_time(ntsc, Fraction(30000, 1001))) == [0, 1, 2, 3]
    assert list(resample_by_time([], Fraction(10))) == []


def test_max_frames_does_not_decode_the_whole_video(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded = []
    original = videoio._timed_frames

    def counting(*args):
        for item in original(*args):
            decoded.append(item)
            yield item

    monkeypatch.setattr(videoio, "_timed_frames", counting)
    motion = read_motion(require(DENSEPOSE / "dancing2.mp4"), start=2, max_frames=3)
    assert motion.num_frames == 3
    assert len(decoded) == 5  # of 100


# --------------------------------------------------------------------------
# Reading errors: one InputError line naming the input
# --------------------------------------------------------------------------


def test_missing_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found: .*missing.mp4"):
        read_motion(tmp_path / "missing.mp4")


def test_corrupt_video(tmp_path: Path) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(InputError, match="cannot decode video .*broken.mp4") as info:
        read_motion(path)
    assert "\n" not in str(info.value)


def test_zero_frame_video(tmp_path: Path) -> None:
    path = tmp_path / "empty.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv444p"
        container.start_encoding()  # a valid header, then no frame at all
    assert path.stat().st_size > 0
    with pytest.raises(InputError, match="empty.mkv has zero frames"):
        read_motion(path)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((0, 8, 8, 3), np.uint8), "zero frames"),
        (np.zeros((2, 8, 8, 3), np.float32), "uint8"),
        (np.zeros((2, 8, 8), np.uint8), r"shape \(F, H, W, 3\)"),
        (np.zeros((2, 8, 8, 4), np.uint8), r"shape \(F, H, W, 3\)"),
    ],
)
def test_bad_npy_and_arrays(tmp_path: Path, array: np.ndarray, message: str) -> None:
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(InputError, match=message) as info:
        read_motion(tmp_path / "bad.npy")
    assert "bad.npy" in str(info.value)
    with pytest.raises(InputError, match=message):
        read_motion(array)


def test_corrupt_npy(tmp_path: Path) -> None:
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(InputError, match="junk.npy"):
        read_motion(tmp_path / "junk.npy")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="objects.npy"):
        read_motion(tmp_path / "objects.npy")


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no image frames"):
        read_motion(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "f1.png")
    Image.new("RGB", (9, 8)).save(tmp_path / "f2.png")
    with pytest.raises(InputError, match="f2.png is 9x8 but f1.png is 8x8"):
        read_motion(tmp_path)


def test_unsupported_and_image_suffixes(tmp_path: Path) -> None:
    (tmp_path / "motion.txt").write_text("x")
    with pytest.raises(InputError, match="suffix '.txt'"):
        read_motion(tmp_path / "motion.txt")
    Image.new("RGB", (8, 8)).save(tmp_path / "pose.png")
    with pytest.raises(InputError, match="single image"):
        read_motion(tmp_path / "pose.png")


def test_fps_needs_a_frame_rate(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no frame rate"):
        read_motion(_levels(3), fps=25)
    np.save(tmp_path / "m.npy", _levels(3))
    with pytest.raises(InputError, match="no frame rate"):
        read_motion(tmp_path / "m.npy", fps=25)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": -1}, "start"),
        ({"max_frames": 0}, "max_frames"),
        ({"fps": 0}, "fps"),
        ({"fps": float("nan")}, "fps"),
        ({"start": 5}, "past the end"),
    ],
)
def test_bad_selection(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_motion(_levels(3), **kwargs)


# --------------------------------------------------------------------------
# Writing each output kind, decoded back
# --------------------------------------------------------------------------


def _moving_square(count: int, height: int, width: int) -> np.ndarray:
    """Float frames in [0, 1]: grey background, a bright square moving right."""
    frames = np.full((count, height, width, 3), 0.4, dtype=np.float32)
    for index in range(count):
        frames[index, 8:20, 4 + 2 * index : 16 + 2 * index] = (0.9, 0.8, 0.1)
    return frames


def test_write_mp4_h264_odd_size_is_padded_to_even(tmp_path: Path) -> None:
    frames = _moving_square(10, 33, 47)
    path = write_video(tmp_path / "out.mp4", frames, 25)
    assert path == tmp_path / "out.mp4"
    assert probe_video(path) == {"frames": 10, "fps": 25.0, "width": 48, "height": 34}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.format.name == "yuv420p"
    data = path.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")  # faststart: plays while downloading
    decoded = read_motion(path).frames
    np.testing.assert_array_equal(decoded[:, 33], decoded[:, 32])  # edge-replicated padding
    original = frames_to_uint8(frames).astype(int)
    assert np.abs(decoded[:, :33, :47].astype(int) - original).mean() < 4
    _no_leftovers(tmp_path, {"out.mp4"})


def test_write_mp4_fractional_fps(tmp_path: Path) -> None:
    path = write_video(tmp_path / "ntsc.mp4", _levels(6), 29.97)
    info = probe_video(path)
    assert info["frames"] == 6
    assert info["fps"] == pytest.approx(29.97, abs=1e-3)


def test_write_webm_vp9(tmp_path: Path) -> None:
    frames = _moving_square(8, 33, 47)
    path = write_video(tmp_path / "out.webm", frames, 12.5)
    assert probe_video(path) == {"frames": 8, "fps": 12.5, "width": 47, "height": 33}
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name in ("vp9", "libvpx-vp9")
    decoded = read_motion(path).frames.astype(int)
    assert np.abs(decoded - frames_to_uint8(frames)).mean() < 4


def test_write_gif_timing_loop_and_pixels(tmp_path: Path) -> None:
    frames = _moving_square(10, 30, 40)
    path = write_video(tmp_path / "out.gif", frames, 25)
    assert probe_video(path) == {"frames": 10, "fps": 25.0, "width": 40, "height": 30}
    np.testing.assert_array_equal(read_motion(path).frames, frames_to_uint8(frames))
    with Image.open(path) as gif:
        assert gif.info["loop"] == 0  # loops forever
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
    assert durations == [40] * 10


def test_write_gif_non_centisecond_rate_keeps_the_average(tmp_path: Path) -> None:
    path = write_video(tmp_path / "thirty.gif", _levels(9), 30)
    with Image.open(path) as gif:
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
    assert set(durations) <= {30, 40} and sum(durations) == 300  # 9 frames = 0.3 s exactly
    assert probe_video(path)["fps"] == pytest.approx(30.0)


def test_write_png_folder(tmp_path: Path) -> None:
    frames = np.zeros((3, 5, 7, 3), dtype=np.float32)
    frames[1] = 0.5
    frames[2] = 1.5  # clipped to 1
    target = write_video(tmp_path / "frames", frames, 25)
    assert sorted(entry.name for entry in target.iterdir()) == [
        "frame_00000.png",
        "frame_00001.png",
        "frame_00002.png",
    ]
    motion = read_motion(target)
    assert motion.frames.shape == (3, 5, 7, 3)
    assert (motion.frames[0] == 0).all() and (motion.frames[1] == 128).all()
    assert (motion.frames[2] == 255).all()
    _no_leftovers(tmp_path, {"frames"})


def test_write_into_existing_empty_folder(tmp_path: Path) -> None:
    folder = tmp_path / "out.d"
    folder.mkdir()
    write_video(folder, _levels(2), 25)
    names = sorted(entry.name for entry in folder.iterdir())
    assert names == ["frame_00000.png", "frame_00001.png"]


# --------------------------------------------------------------------------
# Overwrite policy and atomic writes
# --------------------------------------------------------------------------


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    path = write_video(tmp_path / "out.gif", _levels(3), 10)
    with pytest.raises(OutputError, match="already exists.*overwrite"):
        write_video(path, _levels(5), 10)
    assert probe_video(path)["frames"] == 3  # untouched
    write_video(path, _levels(5), 10, overwrite=True)
    assert probe_video(path)["frames"] == 5
    _no_leftovers(tmp_path, {"out.gif"})


def test_existing_frame_folder_is_replaced_only_with_overwrite(tmp_path: Path) -> None:
    folder = write_video(tmp_path / "frames", _levels(5), 10)
    with pytest.raises(OutputError, match="already exists"):
        write_video(folder, _levels(2), 10)
    write_video(folder, _levels(2), 10, overwrite=True)
    assert len(list(folder.iterdir())) == 2  # no stale frames from the longer run
    _no_leftovers(tmp_path, {"frames"})


def test_never_overwrites_a_folder_of_other_files(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(OutputError, match="refusing to overwrite folder .*holiday.jpg"):
        write_video(folder, _levels(2), 10, overwrite=True)
    assert (folder / "holiday.jpg").read_bytes() == b"precious"


@pytest.mark.parametrize(
    ("name", "hook"),
    [("out.mp4", "_video_frame"), ("out.webm", "_video_frame"), ("out.gif", "_palette_frame"),
     ("frames", "_save_png")],
)
@pytest.mark.parametrize("failure", [RuntimeError, KeyboardInterrupt])
def test_failed_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, hook: str, failure: type
) -> None:
    original = getattr(videoio, hook)
    calls = []

    def fail_on_third(*args):
        calls.append(1)
        if len(calls) == 3:
            raise failure("simulated crash mid-write")
        return original(*args)

    monkeypatch.setattr(videoio, hook, fail_on_third)
    with pytest.raises(failure, match="simulated"):
        write_video(tmp_path / name, _levels(6), 10)
    _no_leftovers(tmp_path, set())


def test_failed_overwrite_keeps_the_old_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_video(tmp_path / "keep.mp4", _levels(4), 10)
    before = path.read_bytes()

    def crash(*args):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(videoio, "_video_frame", crash)
    with pytest.raises(RuntimeError):
        write_video(path, _levels(6), 10, overwrite=True)
    assert path.read_bytes() == before
    _no_leftovers(tmp_path, {"keep.mp4"})


@pytest.mark.parametrize(
    ("frames", "fps", "name", "message"),
    [
        (np.zeros((2, 8, 8), np.uint8), 10, "a.mp4", "shape"),
        (np.zeros((0, 8, 8, 3), np.uint8), 10, "a.mp4", "empty"),
        (np.zeros((2, 8, 8, 3), np.int64), 10, "a.mp4", "dtype"),
        (np.zeros((2, 8, 8, 3), np.uint8), 0, "a.mp4", "fps"),
        (np.zeros((2, 8, 8, 3), np.uint8), 10, "a.avi", "unsupported output suffix '.avi'"),
    ],
)
def test_write_errors(tmp_path: Path, frames, fps, name: str, message: str) -> None:
    with pytest.raises(OutputError, match=message):
        write_video(tmp_path / name, frames, fps)
    _no_leftovers(tmp_path, set())


# --------------------------------------------------------------------------
# Grid and conversion
# --------------------------------------------------------------------------


def test_frames_to_uint8_rounds_and_clips() -> None:
    frames = np.array([-0.2, 0.0, 0.5, 0.999, 1.3], dtype=np.float32).reshape(1, 1, 5, 1)
    frames = np.repeat(frames, 3, axis=3)  # (1, 1, 5, 1) -> (1, 1, 5, 3)
    np.testing.assert_array_equal(frames_to_uint8(frames)[0, 0, :, 0], [0, 0, 128, 255, 255])


def test_make_grid_layout() -> None:
    reference = np.full((20, 10, 3), 200, dtype=np.uint8)
    motion = _levels(4, 16, 16)  # one more frame than the result, as a padded motion has
    result = np.full((3, 8, 12, 3), 0.5, dtype=np.float32)
    grid = make_grid(reference, motion, result)
    assert grid.shape == (3, 8 + 4, 3 * 12 + 8, 3) and grid.dtype == np.uint8
    np.testing.assert_array_equal(grid[:, 2:10, 2:14], np.broadcast_to(200, (3, 8, 12, 3)))
    for index in range(3):
        expected = resize_image(motion[index], (12, 8))
        np.testing.assert_array_equal(grid[index, 2:10, 16:28], expected)
    assert (grid[:, 2:10, 30:42] == 128).all()
    assert (grid[:, :2] == 0).all() and (grid[:, :, 14:16] == 0).all()  # black separators


def test_make_grid_needs_enough_motion_frames() -> None:
    with pytest.raises(InputError, match="fewer than"):
        make_grid(np.zeros((4, 4, 3), np.uint8), _levels(1, 4, 4), np.zeros((2, 4, 4, 3)))
