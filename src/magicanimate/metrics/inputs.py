"""Finding the videos to evaluate: video files or frame folders, paired by name, read as uint8 RGB."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from magicanimate.errors import InputError

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".gif")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass(frozen=True)
class VideoSource:
    """One video to evaluate: a video file or a folder of frames."""

    name: str
    path: Path
    is_frame_folder: bool


def natural_key(text: str) -> list:
    """Sort key that orders 'frame2' before 'frame10'."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _images_in(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: natural_key(p.name))


def list_sources(folder: str | Path) -> dict[str, VideoSource]:
    """Videos in `folder` by name: video files (by stem) and sub-folders of frames (by folder name).

    A folder holding only image files is itself one frame sequence.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    sources: dict[str, VideoSource] = {}
    for entry in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES:
            source = VideoSource(entry.stem, entry, is_frame_folder=False)
        elif entry.is_dir() and _images_in(entry):
            source = VideoSource(entry.name, entry, is_frame_folder=True)
        else:
            continue
        if source.name in sources:
            first = sources[source.name].path.name
            raise InputError(f"two inputs named '{source.name}' in {folder}: {first}, {entry.name}")
        sources[source.name] = source
    if not sources and _images_in(folder):
        sources[folder.name] = VideoSource(folder.name, folder, is_frame_folder=True)
    if not sources:
        raise InputError(
            f"no videos ({', '.join(VIDEO_SUFFIXES)}) or frame folders ({', '.join(IMAGE_SUFFIXES)}) found in {folder}"
        )
    return sources


def _is_one_sequence(sources: dict[str, VideoSource], folder: str | Path) -> bool:
    return len(sources) == 1 and next(iter(sources.values())).path == Path(folder)


def pair_sources(generated: str | Path, ground_truth: str | Path) -> list[tuple[VideoSource, VideoSource]]:
    """Pairs (generated, ground truth) matched by name; InputError listing any name without a partner."""
    gen, gt = list_sources(generated), list_sources(ground_truth)
    if _is_one_sequence(gen, generated) and _is_one_sequence(gt, ground_truth):
        return [(next(iter(gen.values())), next(iter(gt.values())))]  # two folders of frames: one pair
    only_gen, only_gt = sorted(set(gen) - set(gt)), sorted(set(gt) - set(gen))
    if only_gen or only_gt:
        raise InputError(
            "unpaired inputs (videos are paired by name): "
            f"only in --generated: {only_gen or 'none'}; only in --ground-truth: {only_gt or 'none'}"
        )
    return [(gen[name], gt[name]) for name in sorted(gen, key=natural_key)]


def _read_frames(folder: Path) -> np.ndarray:
    frames = []
    for path in _images_in(folder):
        with Image.open(path) as image:
            frames.append(np.asarray(image.convert("RGB")))
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise InputError(f"frames in {folder} differ in size: {sorted(shapes)}")
    return np.stack(frames)


def _read_gif(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.stack([np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(image)])


def _read_video_file(path: Path) -> np.ndarray:
    import av

    try:
        with av.open(str(path)) as container:
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except (av.error.FFmpegError, IndexError) as exc:
        raise InputError(f"cannot decode video {path}: {exc}") from exc
    if not frames:
        raise InputError(f"video {path} has no frames")
    return np.stack(frames)


def read_source(source: VideoSource) -> np.ndarray:
    """(F, H, W, 3) uint8 RGB frames of a video file or frame folder."""
    if source.is_frame_folder:
        return _read_frames(source.path)
    if source.path.suffix.lower() == ".gif":
        return _read_gif(source.path)
    return _read_video_file(source.path)


def count_frames(source: VideoSource) -> int | None:
    """Frame count without decoding where the container tells it (None when it does not)."""
    if source.is_frame_folder:
        return len(_images_in(source.path))
    if source.path.suffix.lower() == ".gif":
        with Image.open(source.path) as image:
            return int(getattr(image, "n_frames", 1))
    import av

    try:
        with av.open(str(source.path)) as container:
            frames = container.streams.video[0].frames
    except (av.error.FFmpegError, IndexError) as exc:
        raise InputError(f"cannot open video {source.path}: {exc}") from exc
    return int(frames) or None
