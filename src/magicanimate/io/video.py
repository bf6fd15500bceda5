"""Reading motion inputs and writing result videos.

Inputs: a video file (PyAV), a folder of numbered image frames, a `.npy` file
or an array, all returned as a `Motion` of uint8 (F, H, W, 3) RGB frames.
Outputs: `.mp4` (H.264, yuv420p), `.webm` (VP9), `.gif`, or a folder of
numbered PNGs, always written to a temporary sibling and moved into place at
the end, so a failed or interrupted run never leaves a half-written output.

Design choices (documented here once):
- fps resampling is by timestamp: output frame i, at time i / fps, shows the
  latest source frame whose start time is <= i / fps (times are exact
  fractions, measured from the first frame; timestamps within one container
  tick, e.g. 1 ms in Matroska/WebM, count as equal). Source frames are dropped
  or repeated; the output covers the source's duration (last start + duration).
- `.mp4` needs even width and height for yuv420p: odd sizes are padded by one
  row/column of edge replication at the bottom/right (never cropped, never
  rescaled). `.webm` and `.gif` keep the exact size.
- `.gif` stores delays in whole centiseconds: frame i starts at
  round(i * 100 / fps) cs, so delays alternate (3, 3, 4 cs at 30 fps) and the
  average rate is exact. Browsers clamp delays below 2 cs, so GIF playback is
  only faithful up to 50 fps. One palette (median cut over up to 16 frames)
  is shared by all frames, without dithering, so flat colours stay stable.
- float frames are mapped to uint8 by clip(x, 0, 1) * 255, rounded.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from os import PathLike
from pathlib import Path
from typing import TypeVar

import av
import numpy as np
from PIL import Image

from magicanimate.errors import InputError, MagicAnimateError, OutputError
from magicanimate.io.image import IMAGE_SUFFIXES, load_image, resize_image

PathArg = str | PathLike
MotionSource = str | PathLike | np.ndarray

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".gif")
OUTPUT_SUFFIXES = (".mp4", ".webm", ".gif")
FRAME_NAME = "frame_{:05d}.png"
_FRAME_PATTERN = re.compile(r"frame_\d+\.png")

_H264_OPTIONS = {"crf": "18", "preset": "medium"}
_VP9_OPTIONS = {"crf": "30", "b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"}
_GIF_PALETTE_SAMPLES = 16
_MAX_RATE_DENOMINATOR = 1_000_000

T = TypeVar("T")


@dataclass
class Motion:
    """A motion sequence: uint8 (F, H, W, 3) RGB frames and their rate (None when unknown)."""

    frames: np.ndarray
    fps: float | None

    @property
    def num_frames(self) -> int:
        """Number of frames F."""
        return int(self.frames.shape[0])


# ==========================================================================
# Reading
# ==========================================================================


def read_motion(
    source: MotionSource,
    *,
    start: int = 0,
    max_frames: int | None = None,
    fps: float | None = None,
) -> Motion:
    """Read a motion sequence (video, frame folder, .npy or array), optionally resampled to fps.

    `start` and `max_frames` select a part of the sequence after resampling.
    """
    _check_selection(start, max_frames)
    if fps is not None:
        _check_fps(fps, error=InputError, what="requested motion fps")
    if isinstance(source, np.ndarray):
        return _motion_from_array(source, "motion array", start=start, max_frames=max_frames, fps=fps)
    if not isinstance(source, (str, PathLike)):
        raise InputError(
            f"motion input must be a path or a numpy array, got {type(source).__name__}"
        )
    path = Path(source)
    if not path.exists():
        raise InputError(f"motion input not found: {path}")
    if path.is_dir():
        return _read_folder(path, start=start, max_frames=max_frames, fps=fps)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _read_npy(path, start=start, max_frames=max_frames, fps=fps)
    if suffix in VIDEO_SUFFIXES:
        return _read_video(path, start=start, max_frames=max_frames, fps=fps)
    if suffix in IMAGE_SUFFIXES:
        raise InputError(
            f"motion input {path} is a single image; give a video, a folder of frames or a .npy"
        )
    raise InputError(
        f"unsupported motion input {path}: suffix '{suffix}' is not a video "
        f"({', '.join(VIDEO_SUFFIXES)}), .npy or a folder of frames"
    )


def _check_selection(start: int, max_frames: int | None) -> None:
    """Validate start >= 0 and max_frames >= 1 (or None)."""
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise InputError(f"start must be an integer >= 0, got {start!r}")
    if max_frames is not None and (
        isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1
    ):
        raise InputError(f"max_frames must be an integer >= 1 or None, got {max_frames!r}")


def _check_fps(fps: float, *, error: type[MagicAnimateError], what: str) -> None:
    """Validate a frame rate: a finite number > 0."""
    if isinstance(fps, bool) or not isinstance(fps, (int, float, Fraction)):
        raise error(f"{what} must be a number, got {fps!r}")
    if not math.isfinite(fps) or fps <= 0:
        raise error(f"{what} must be a finite number > 0, got {fps!r}")


def _as_fraction(fps: float) -> Fraction:
    """Exact rate for a float fps: 29.97 -> 2997/100, 30000/1001 stays 30000/1001."""
    return Fraction(fps).limit_denominator(_MAX_RATE_DENOMINATOR)


def _reject_fps(fps: float | None, name: str) -> None:
    """Raise when resampling is requested for an input without a frame rate."""
    if fps is not None:
        raise InputError(
            f"cannot resample {name} to fps={fps}: it has no frame rate "
            "(only video files do); leave fps unset"
        )


def _take(items: Iterable[T], start: int, max_frames: int | None) -> tuple[list[T], int]:
    """Skip `start` items, keep up to `max_frames`; also return how many items were seen."""
    kept: list[T] = []
    seen = 0
    for item in items:
        seen += 1
        if seen <= start:
            continue
        kept.append(item)
        if max_frames is not None and len(kept) >= max_frames:
            break
    return kept, seen


def _past_end(name: str, start: int, total: int) -> InputError:
    """The error for a selection that keeps no frame."""
    if total == 0:
        return InputError(f"{name} has zero frames")
    return InputError(f"{name}: start={start} is past the end (the input has {total} frames)")


# --------------------------------------------------------------------------
# Arrays and .npy
# --------------------------------------------------------------------------


def _check_frames_array(array: np.ndarray, name: str) -> None:
    """Require uint8 (F, H, W, 3) with F, H, W > 0."""
    if array.dtype != np.uint8:
        raise InputError(f"{name} must be uint8 (F, H, W, 3), got dtype {array.dtype}")
    if array.ndim != 4 or array.shape[3] != 3:
        raise InputError(f"{name} must have shape (F, H, W, 3), got {array.shape}")
    if array.shape[0] == 0:
        raise InputError(f"{name} has zero frames")
    if array.shape[1] == 0 or array.shape[2] == 0:
        raise InputError(f"{name} has empty frames, shape {array.shape}")


def _motion_from_array(
    array: np.ndarray, name: str, *, start: int, max_frames: int | None, fps: float | None
) -> Motion:
    """Validate and slice an in-memory (or memory-mapped) frame array."""
    _check_frames_array(array, name)
    _reject_fps(fps, name)
    stop = None if max_frames is None else start + max_frames
    part = array[start:stop]
    if part.shape[0] == 0:
        raise _past_end(name, start, array.shape[0])
    return Motion(frames=np.array(part, dtype=np.uint8, copy=True), fps=None)


def _read_npy(path: Path, *, start: int, max_frames: int | None, fps: float | None) -> Motion:
    """Read (F, H, W, 3) uint8 frames from a .npy file, memory-mapped so a part stays cheap."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise InputError(
            f"cannot read {path}: not a .npy file holding a plain array (corrupt or pickled)"
        ) from None
    if not isinstance(array, np.ndarray):
        raise InputError(f"cannot read {path}: expected a single .npy array, not an archive")
    return _motion_from_array(array, str(path), start=start, max_frames=max_frames, fps=fps)


# --------------------------------------------------------------------------
# Folders of frames
# --------------------------------------------------------------------------


def natural_key(name: str) -> list[int | str]:
    """Sort key that orders digit runs numerically: frame2 < frame10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def frame_files(folder: Path) -> list[Path]:
    """Image files of a frame folder in natural order (hidden files ignored)."""
    files = [
        entry
        for entry in folder.iterdir()
        if entry.is_file()
        and not entry.name.startswith(".")
        and entry.suffix.lower() in IMAGE_SUFFIXES
    ]
    return sorted(files, key=lambda entry: natural_key(entry.name))


def _read_folder(folder: Path, *, start: int, max_frames: int | None, fps: float | None) -> Motion:
    """Read the numbered image frames of a folder (no frame rate)."""
    files = frame_files(folder)
    if not files:
        raise InputError(f"no image frames ({', '.join(IMAGE_SUFFIXES)}) in folder {folder}")
    _reject_fps(fps, f"frame folder {folder}")
    stop = None if max_frames is None else start + max_frames
    chosen = files[start:stop]
    if not chosen:
        raise _past_end(f"frame folder {folder}", start, len(files))
    frames = [load_image(file, what="motion frame") for file in chosen]
    first = frames[0].shape
    for file, frame in zip(chosen, frames):
        if frame.shape != first:
            raise InputError(
                f"frame {file} is {frame.shape[1]}x{frame.shape[0]} but {chosen[0].name} "
                f"is {first[1]}x{first[0]}: all frames of a folder must have one size"
            )
    return Motion(frames=np.stack(frames), fps=None)  # F x (H, W, 3) -> (F, H, W, 3)


# --------------------------------------------------------------------------
# Video files
# --------------------------------------------------------------------------


def _read_video(path: Path, *, start: int, max_frames: int | None, fps: float | None) -> Motion:
    """Decode a video file to RGB24, stopping as soon as the selection is complete."""
    try:
        with av.open(str(path)) as container:
            stream = _video_stream(container, path)
            rate = _frame_rate(container, stream)
            timed = _timed_frames(container, stream, rate)
            if fps is None:
                picked: Iterator[av.VideoFrame] = (frame for _, _, frame in timed)
                out_fps = None if rate is None else float(rate)
            else:
                if rate is None:
                    _reject_fps(fps, f"video {path}")
                target = _as_fraction(fps)
                tolerance = _timestamp_tolerance(stream, target)
                picked = resample_by_time(timed, target, tolerance=tolerance)
                out_fps = float(target)
            kept, seen = _take(picked, start, max_frames)
            frames = [_frame_to_rgb(frame) for frame in kept]
    except av.FFmpegError as error:
        raise _decode_error(path, error) from None
    if not frames:
        raise _past_end(f"video {path}", start, seen)
    return Motion(frames=np.stack(frames), fps=out_fps)  # F x (H, W, 3) -> (F, H, W, 3)


def _decode_error(path: Path, error: av.FFmpegError) -> InputError:
    """One-line InputError for a video PyAV cannot open or decode."""
    if isinstance(error, av.EOFError):
        return InputError(f"video {path} has zero frames (empty or truncated file)")
    return InputError(f"cannot decode video {path}: corrupt or unsupported ({error})")


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.VideoStream:
    """The first video stream, or an InputError."""
    if not container.streams.video:
        raise InputError(f"{path} has no video stream")
    return container.streams.video[0]


def _frame_rate(
    container: av.container.InputContainer, stream: av.video.VideoStream
) -> Fraction | None:
    """Nominal frame rate: average rate, else guessed rate, else frames / duration.

    GIFs use frames / total duration, since their per-frame delays make ffmpeg's
    average rate unreliable.
    """
    counted = _rate_from_duration(container, stream)
    if container.format.name == "gif" and counted is not None:
        return counted
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate:
            return Fraction(rate)
    return counted


def _rate_from_duration(
    container: av.container.InputContainer, stream: av.video.VideoStream
) -> Fraction | None:
    """Frames per second from the header's frame count and stream (or container) duration."""
    if not stream.frames:
        return None
    if stream.duration and stream.time_base:
        seconds = stream.duration * stream.time_base
    elif container.duration:
        seconds = Fraction(container.duration, av.time_base)
    else:
        return None
    return Fraction(stream.frames) / seconds if seconds > 0 else None


def _timed_frames(
    container: av.container.InputContainer,
    stream: av.video.VideoStream,
    rate: Fraction | None,
) -> Iterator[tuple[Fraction, Fraction, av.VideoFrame]]:
    """Decode frames in presentation order as (start time from the first frame, duration, frame)."""
    nominal = Fraction(0) if rate is None else 1 / rate
    first: Fraction | None = None
    for index, frame in enumerate(container.decode(stream)):
        if frame.pts is not None and frame.time_base is not None:
            time = frame.pts * Fraction(frame.time_base)
        else:
            time = index * nominal
        if first is None:
            first = time
        if frame.duration and frame.time_base is not None:
            duration = frame.duration * Fraction(frame.time_base)
        else:
            duration = nominal
        yield time - first, duration, frame


def resample_by_time(
    timed: Iterable[tuple[Fraction, Fraction, T]],
    fps: Fraction,
    *,
    tolerance: Fraction = Fraction(0),
) -> Iterator[T]:
    """Resample timed frames to fps: output i shows the latest frame whose time is <= i / fps.

    `timed` yields (start time, duration, frame) in presentation order; the output
    covers the source up to the end of its last frame. Times within `tolerance`
    count as equal, so container timestamp rounding (1 ms in Matroska) cannot
    shift a frame.
    """
    index = 0
    previous: tuple[Fraction, Fraction, T] | None = None
    for time, duration, frame in timed:
        while previous is not None and Fraction(index) / fps + tolerance < time:
            yield previous[2]
            index += 1
        previous = (time, duration, frame)
    if previous is None:
        return
    last_time, last_duration, last_frame = previous
    end = last_time + (last_duration if last_duration > 0 else 1 / fps)
    while Fraction(index) / fps + tolerance < end:
        yield last_frame
        index += 1


def _timestamp_tolerance(stream: av.video.VideoStream, fps: Fraction) -> Fraction:
    """One tick of the stream's time base, at most a quarter of an output frame."""
    quarter = 1 / (4 * fps)
    return min(Fraction(stream.time_base), quarter) if stream.time_base else Fraction(0)


def _frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """Convert a decoded frame to uint8 (H, W, 3) RGB, as the release's `to_rgb()` does."""
    return frame.to_ndarray(format="rgb24")


# --------------------------------------------------------------------------
# Probing
# --------------------------------------------------------------------------


def probe_video(path: PathArg) -> dict:
    """Describe a video file, frame folder or .npy: {'frames', 'fps', 'width', 'height'}."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"motion input not found: {path}")
    if path.is_dir() or path.suffix.lower() == ".npy":
        motion = read_motion(path)
        height, width = motion.frames.shape[1:3]
        return {"frames": motion.num_frames, "fps": None, "width": width, "height": height}
    try:
        with av.open(str(path)) as container:
            stream = _video_stream(container, path)
            rate = _frame_rate(container, stream)
            frames = sum(1 for _ in container.decode(stream))
            width, height = stream.codec_context.width, stream.codec_context.height
    except av.FFmpegError as error:
        raise _decode_error(path, error) from None
    fps = None if rate is None else float(rate)
    return {"frames": frames, "fps": fps, "width": width, "height": height}


def declared_frame_count(path: PathArg) -> int | None:
    """The frame count a video container declares, without decoding; None when it declares none."""
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            return int(_video_stream(container, path).frames) or None
    except av.FFmpegError as error:
        raise _decode_error(path, error) from None


# ==========================================================================
# Writing
# ==========================================================================


def frames_to_uint8(frames: np.ndarray, *, name: str = "frames") -> np.ndarray:
    """Convert float [0, 1] or uint8 (F, H, W, 3) frames to uint8 (clip, x 255, round)."""
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[3] != 3:
        raise InputError(f"{name} must have shape (F, H, W, 3), got {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0 or array.shape[2] == 0:
        raise InputError(f"{name} are empty, shape {array.shape}")
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{name} must be float in [0, 1] or uint8, got dtype {array.dtype}")
    return np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_video(
    path: PathArg, frames: np.ndarray, fps: float, *, overwrite: bool = False
) -> Path:
    """Write (F, H, W, 3) frames to .mp4 (H.264), .webm (VP9), .gif or a PNG folder, atomically."""
    target = Path(path)
    kind = _output_kind(target)
    try:
        pixels = frames_to_uint8(frames)
    except InputError as error:
        raise OutputError(f"cannot write {target}: {error}") from None
    _check_fps(fps, error=OutputError, what=f"fps for {target}")
    _check_target(target, kind, overwrite=overwrite)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create the folder of {target}: {error}") from None
    rate = _as_fraction(fps)
    if kind == "folder":
        _write_folder_atomically(target, pixels)
    else:
        _write_file_atomically(target, lambda temp: _WRITERS[kind](temp, pixels, rate))
    return target


def check_output(path: PathArg, *, overwrite: bool = False) -> Path:
    """Raise ``OutputError`` now if ``write_video(path, ...)`` would refuse the path later."""
    target = Path(path)
    _check_target(target, _output_kind(target), overwrite=overwrite)
    return target


def save_array(path: PathArg, array: np.ndarray, *, overwrite: bool = False) -> Path:
    """Save an array to a ``.npy`` file atomically (temporary sibling, then rename)."""
    target = Path(path)
    if target.suffix.lower() != ".npy":
        raise OutputError(f"array output {target} must end in .npy")
    if target.exists() and not overwrite:
        raise OutputError(f"output {target} already exists; add --overwrite (overwrite=True in Python) to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)

    def write(temp: Path) -> None:
        with open(temp, "wb") as handle:
            np.save(handle, array)

    _write_file_atomically(target, write)
    return target


def _output_kind(target: Path) -> str:
    """'folder' for an existing folder or a path without suffix, else the (supported) suffix."""
    if target.is_dir() or target.suffix == "":
        return "folder"
    suffix = target.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise OutputError(
            f"unsupported output suffix '{target.suffix}' for {target}: "
            f"use {', '.join(OUTPUT_SUFFIXES)} or a folder (no suffix) for PNG frames"
        )
    return suffix


def _check_target(target: Path, kind: str, *, overwrite: bool) -> None:
    """Refuse to replace an existing output unless overwrite; never replace a foreign folder."""
    if not target.exists() and not target.is_symlink():
        return
    if target.is_dir():
        contents = list(target.iterdir())
        if not contents:
            return  # an empty folder is a place to write into, not an output to protect
        if not overwrite:
            raise OutputError(f"output {target} already exists; add --overwrite (overwrite=True in Python) to replace it")
        foreign = [entry.name for entry in contents if not _FRAME_PATTERN.fullmatch(entry.name)]
        if foreign:
            raise OutputError(
                f"refusing to overwrite folder {target}: it holds files that are not "
                f"frame_*.png outputs (e.g. {foreign[0]})"
            )
        return
    if not overwrite:
        raise OutputError(f"output {target} already exists; add --overwrite (overwrite=True in Python) to replace it")
    if kind == "folder":
        raise OutputError(f"output {target} is an existing file; a frame folder cannot replace it")


def _temp_sibling(target: Path) -> Path:
    """A fresh hidden name in the target's folder, so the final rename stays on one filesystem."""
    return target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"


def _write_file_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """Run write(temp) on a temporary sibling, then move it onto target; clean up on failure."""
    temp = _temp_sibling(target)
    try:
        write(temp)
        os.replace(temp, target)
    except BaseException as error:
        temp.unlink(missing_ok=True)
        if isinstance(error, (av.FFmpegError, OSError)):
            raise OutputError(f"cannot write {target}: {error}") from None
        raise


def _write_folder_atomically(target: Path, pixels: np.ndarray) -> None:
    """Write numbered PNGs into a temporary sibling folder, then swap it in for target."""
    temp = _temp_sibling(target)
    temp.mkdir()
    try:
        for index, frame in enumerate(pixels):
            _save_png(temp / FRAME_NAME.format(index), frame)
        _swap_in_folder(temp, target)
    except BaseException as error:
        shutil.rmtree(temp, ignore_errors=True)
        if isinstance(error, OSError):
            raise OutputError(f"cannot write {target}: {error}") from None
        raise


def _swap_in_folder(temp: Path, target: Path) -> None:
    """Move temp onto target; an existing target is moved aside first and deleted after."""
    if not target.exists():
        os.replace(temp, target)
        return
    aside = _temp_sibling(target)
    os.replace(target, aside)
    try:
        os.replace(temp, target)
    except BaseException:
        os.replace(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _save_png(path: Path, frame: np.ndarray) -> None:
    """Save one uint8 (H, W, 3) frame as PNG."""
    Image.fromarray(frame).save(path, format="PNG")


# --------------------------------------------------------------------------
# Encoders
# --------------------------------------------------------------------------


def _pad_to_even(pixels: np.ndarray) -> np.ndarray:
    """Pad (F, H, W, 3) by edge replication at the bottom/right so H and W are even (yuv420p)."""
    pad_h = pixels.shape[1] % 2
    pad_w = pixels.shape[2] % 2
    if not pad_h and not pad_w:
        return pixels
    return np.pad(pixels, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def _video_frame(frame: np.ndarray, index: int, rate: Fraction) -> av.VideoFrame:
    """Wrap a uint8 (H, W, 3) frame as an RGB24 av.VideoFrame at time index / rate."""
    video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
    video_frame.pts = index
    video_frame.time_base = 1 / rate
    return video_frame


def _encode(
    temp: Path,
    pixels: np.ndarray,
    rate: Fraction,
    *,
    container_format: str,
    codec: str,
    options: dict[str, str],
) -> None:
    """Encode uint8 frames as yuv420p video in the given container format."""
    muxer_options = _muxer_options(container_format)
    with av.open(str(temp), "w", format=container_format, options=muxer_options) as container:
        stream = container.add_stream(codec, rate=rate, options=options)
        stream.width = pixels.shape[2]
        stream.height = pixels.shape[1]
        stream.pix_fmt = "yuv420p"
        for index, frame in enumerate(pixels):
            container.mux(stream.encode(_video_frame(frame, index, rate)))
        container.mux(stream.encode(None))


def _muxer_options(container_format: str) -> dict[str, str]:
    """mp4: put the index first so browsers can start playing before the download ends."""
    return {"movflags": "+faststart"} if container_format == "mp4" else {}


def _write_mp4(temp: Path, pixels: np.ndarray, rate: Fraction) -> None:
    """H.264 (libx264, yuv420p, CRF 18) in MP4; odd sizes padded to even by edge replication."""
    _encode(
        temp, _pad_to_even(pixels), rate, container_format="mp4", codec="libx264",
        options=_H264_OPTIONS,
    )


def _write_webm(temp: Path, pixels: np.ndarray, rate: Fraction) -> None:
    """VP9 (libvpx-vp9, yuv420p, constant quality CRF 30) in WebM."""
    _encode(
        temp, pixels, rate, container_format="webm", codec="libvpx-vp9", options=_VP9_OPTIONS
    )


def _write_gif(temp: Path, pixels: np.ndarray, rate: Fraction) -> None:
    """Animated GIF looping forever, one shared palette, delays rounded to centiseconds."""
    palette = _shared_palette(pixels)
    argb = _palette_argb(palette)
    with av.open(str(temp), "w", format="gif", options={"loop": "0"}) as container:
        stream = container.add_stream("gif", rate=rate)
        stream.width = pixels.shape[2]
        stream.height = pixels.shape[1]
        stream.pix_fmt = "pal8"
        for index, frame in enumerate(pixels):
            container.mux(stream.encode(_palette_frame(frame, palette, argb, index, rate)))
        container.mux(stream.encode(None))


def _palette_frame(
    frame: np.ndarray, palette: Image.Image, argb: np.ndarray, index: int, rate: Fraction
) -> av.VideoFrame:
    """Map a uint8 (H, W, 3) frame to the shared palette (no dithering) as a pal8 frame."""
    indices = np.asarray(Image.fromarray(frame).quantize(palette=palette, dither=Image.Dither.NONE))
    video_frame = av.VideoFrame.from_ndarray((indices, argb), format="pal8")
    video_frame.pts = index
    video_frame.time_base = 1 / rate
    return video_frame


def _shared_palette(pixels: np.ndarray) -> Image.Image:
    """A 256-colour median-cut palette of up to 16 evenly spaced frames, as a 'P' image."""
    count = min(_GIF_PALETTE_SAMPLES, pixels.shape[0])
    picks = np.linspace(0, pixels.shape[0] - 1, count).round().astype(int)
    mosaic = pixels[picks].reshape(-1, pixels.shape[2], 3)  # (k, H, W, 3) -> (k*H, W, 3)
    return Image.fromarray(mosaic).quantize(colors=256, method=Image.Quantize.MEDIANCUT)


def _palette_argb(palette: Image.Image) -> np.ndarray:
    """PIL palette as the (256, 4) ARGB uint8 table PyAV expects for pal8 frames."""
    rgb = np.zeros((256, 3), dtype=np.uint8)
    entries = np.frombuffer(bytes(palette.getpalette("RGB")), dtype=np.uint8)
    entries = entries.reshape(-1, 3)[:256]  # (3n,) -> (n, 3)
    rgb[: entries.shape[0]] = entries
    alpha = np.full((256, 1), 255, dtype=np.uint8)
    return np.concatenate([alpha, rgb], axis=1)


_WRITERS: dict[str, Callable[[Path, np.ndarray, Fraction], None]] = {
    ".mp4": _write_mp4,
    ".webm": _write_webm,
    ".gif": _write_gif,
}


# ==========================================================================
# Grid
# ==========================================================================


def make_grid(
    reference: np.ndarray, motion: np.ndarray, result: np.ndarray, *, padding: int = 2
) -> np.ndarray:
    """Side-by-side uint8 frames reference | motion | result, as the release's output grid.

    reference: (h, w, 3) uint8; motion: (F', h', w', 3) uint8 with F' >= F;
    result: (F, H, W, 3) float [0, 1] or uint8. Reference and motion are resized
    (PIL bicubic) to H x W. Like torchvision's `make_grid` used by the release,
    panels are separated and framed by `padding` black pixels.
    Returns (F, H + 2 * padding, 3 * W + 4 * padding, 3) uint8.
    """
    frames = frames_to_uint8(result, name="result frames")
    count, height, width = frames.shape[:3]
    motion = frames_to_uint8(motion, name="motion frames")
    if motion.shape[0] < count:
        raise InputError(
            f"make_grid: motion has {motion.shape[0]} frames, fewer than the {count} result frames"
        )
    still = resize_image(load_image(reference), (width, height))
    panels = [
        np.broadcast_to(still, frames.shape),
        np.stack([resize_image(frame, (width, height)) for frame in motion[:count]]),
        frames,
    ]
    grid = np.zeros(
        (count, height + 2 * padding, 3 * width + 4 * padding, 3), dtype=np.uint8
    )
    for column, panel in enumerate(panels):
        left = padding + column * (width + padding)
        grid[:, padding : padding + height, left : left + width] = panel
    return grid
