"""Finding the videos to evaluate: video files or frame folders, paired by name, read as uint8 RGB.

Reading goes through the project's one media stack (``magicanimate.io``): the same suffixes,
natural frame order, EXIF orientation and alpha handling as every other input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from magicanimate.errors import InputError
from magicanimate.io.image import IMAGE_SUFFIXES
from magicanimate.io.video import VIDEO_SUFFIXES, declared_frame_count, frame_files, natural_key, read_motion


@dataclass(frozen=True)
class VideoSource:
    """One video to evaluate: a video file or a folder of frames."""

    name: str
    path: Path
    is_frame_folder: bool


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
        elif entry.is_dir() and frame_files(entry):
            source = VideoSource(entry.name, entry, is_frame_folder=True)
        else:
            continue
        if source.name in sources:
            first = sources[source.name].path.name
            raise InputError(f"two inputs named '{source.name}' in {folder}: {first}, {entry.name}")
        sources[source.name] = source
    if not sources and frame_files(folder):
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


def read_source(source: VideoSource) -> np.ndarray:
    """(F, H, W, 3) uint8 RGB frames of a video file or frame folder, every frame at its own rate."""
    return read_motion(source.path).frames


def count_frames(source: VideoSource) -> int | None:
    """Frame count without decoding where the container tells it (None when it does not)."""
    if source.is_frame_folder:
        return len(frame_files(source.path))
    return declared_frame_count(source.path)
