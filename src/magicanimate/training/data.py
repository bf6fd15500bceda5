"""Training data: the dataset index, per-sample drawing (video clip or still image), loading.

Every random choice of a sample (its kind, item, frames, crop and flip) comes from a
generator seeded by (seed, stream, draw index), and the sampler hands out draw indices as
a pure function of the micro-batch counter, process rank and world size. So the data of
step n is the same whether or not the run was interrupted before it, in any worker
process, and no sampler state needs saving.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from magicanimate.errors import InputError
from magicanimate.io.image import IMAGE_SUFFIXES, load_image
from magicanimate.io.video import VIDEO_SUFFIXES, frame_files, probe_video, read_motion
from magicanimate.training.augment import crop_box, mirror_densepose, mirror_image, resize_crop
from magicanimate.training.config import DataConfig



# ---------------------------------------------------------------------------------------
# The index
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One dataset entry: a clip (video file or frame folder) or a still image, and its DensePose."""

    kind: str  # "video" or "image"
    source: Path
    densepose: Path
    split: str = "train"

    def name(self) -> str:
        """Short name for reports."""
        return str(self.source)


def _kind_of(path: Path) -> str:
    return "image" if path.suffix.lower() in IMAGE_SUFFIXES else "video"


def _entries(folder: Path, *, images: bool) -> dict[str, Path]:
    """Stem -> path of the clips (video files, frame folders) or images directly in ``folder``."""
    if not folder.is_dir():
        return {}
    out = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if images and entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES:
            out[entry.stem] = entry
        elif not images and (entry.is_dir() or entry.suffix.lower() in VIDEO_SUFFIXES + (".npy",)):
            out[entry.stem if entry.is_file() else entry.name] = entry
    return out


def discover_items(root: Path) -> tuple[list[Item], list[str]]:
    """Pair videos/<name> with densepose/<name> and images/<name> with images_densepose/<name>."""
    items, problems = [], []
    for kind, (a, b) in {"video": ("videos", "densepose"), "image": ("images", "images_densepose")}.items():
        sources, poses = _entries(root / a, images=kind == "image"), _entries(root / b, images=kind == "image")
        for name in sorted(set(sources) | set(poses)):
            if name not in poses:
                problems.append(f"{sources[name]}: no DensePose {b}/{name}.* beside it; skipped")
            elif name not in sources:
                problems.append(f"{poses[name]}: DensePose without a {kind} {a}/{name}.*; skipped")
            else:
                items.append(Item(kind, sources[name], poses[name]))
    return items, problems


def read_index(root: Path, index: Path) -> tuple[list[Item], list[str]]:
    """Items of a CSV (header: video,densepose[,kind][,split]) or JSON (list of such objects) index."""
    if not index.is_file():
        raise InputError(f"dataset index not found: {index}")
    try:
        if index.suffix.lower() == ".json":
            rows = json.loads(index.read_text())
            rows = rows.get("items", rows) if isinstance(rows, dict) else rows
        elif index.suffix.lower() == ".csv":
            with index.open(newline="") as f:
                rows = list(csv.DictReader(f))
        else:
            raise InputError(f"dataset index {index} must be .csv or .json")
    except (json.JSONDecodeError, csv.Error, UnicodeDecodeError) as err:
        raise InputError(f"cannot read dataset index {index}: {err}") from err
    if not isinstance(rows, list):
        raise InputError(f"dataset index {index}: expected a list of entries")
    items, problems = [], []
    for n, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not row.get("video") or not row.get("densepose"):
            raise InputError(f"dataset index {index}, entry {n}: needs 'video' and 'densepose' ({row!r})")
        source, pose = root / str(row["video"]), root / str(row["densepose"])
        kind = str(row.get("kind") or _kind_of(source))
        if kind not in ("video", "image"):
            raise InputError(f"dataset index {index}, entry {n}: kind must be video or image, got {kind!r}")
        missing = [str(p) for p in (source, pose) if not p.exists()]
        if missing:
            problems.append(f"index entry {n}: {', '.join(missing)} not found; skipped")
            continue
        items.append(Item(kind, source, pose, str(row.get("split") or "train")))
    return items, problems


def load_items(cfg: DataConfig, split: str) -> tuple[list[Item], list[str]]:
    """The items of ``split`` and one line per entry that was skipped."""
    if cfg.root == "synthetic" or cfg.root.startswith("synthetic:"):  # generated once, cached (docs/synthetic_data.md)
        from magicanimate.synthetic import materialise

        root = materialise(cfg.root)
        items, problems = read_index(root, root / "index.csv")
        return [i for i in items if i.split == split], problems
    root = Path(cfg.root)
    if not root.is_dir():
        raise InputError(f"dataset folder not found: {root!s} (set data.root)")
    items, problems = read_index(root, root / cfg.index) if cfg.index else discover_items(root)
    return [i for i in items if i.split == split], problems


# ---------------------------------------------------------------------------------------
# Reading frames
# ---------------------------------------------------------------------------------------


class FrameReader:
    """Random access to the frames of clips; lengths and frame lists are cached per process."""

    def __init__(self) -> None:
        self._info: dict[Path, tuple[int, float | None]] = {}
        self._files: dict[Path, list[Path]] = {}

    def info(self, path: Path) -> tuple[int, float | None]:
        """(number of frames, fps or None) of a clip."""
        if path not in self._info:
            if path.is_dir():
                self._files[path] = frame_files(path)
                self._info[path] = (len(self._files[path]), None)
            elif path.suffix.lower() == ".npy":
                motion = read_motion(path)
                self._info[path] = (motion.num_frames, None)
            else:
                probe = probe_video(path)
                self._info[path] = (probe["frames"], probe["fps"])
        return self._info[path]

    def frames(self, path: Path, indices: list[int]) -> np.ndarray:
        """The frames at ``indices`` (uint8 (len, H, W, 3)); video files are decoded up to the last one."""
        if path.is_dir():
            self.info(path)
            frames = [load_image(self._files[path][i]) for i in indices]
            if any(f.shape != frames[0].shape for f in frames):
                raise InputError(f"{path}: frames of different sizes")
            return np.stack(frames)
        lo, hi = min(indices), max(indices)
        motion = read_motion(path, start=lo, max_frames=hi - lo + 1)
        if motion.num_frames < hi - lo + 1:
            raise InputError(f"{path}: decoded {lo + motion.num_frames} frames, expected at least {hi + 1}")
        return motion.frames[[i - lo for i in indices]]


# ---------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------


@dataclass
class Draw:
    """The random choices of one sample before any file is read."""

    kind: str
    rng: np.random.Generator


class TrainingDataset(Dataset):
    """Map-style dataset indexed by draw number: each draw gives one training sample.

    A sample is a dict of uint8 arrays ``reference`` (H, W, 3), ``target`` (F, H, W, 3),
    ``control`` (F, H, W, 3) (the DensePose), plus ``temporal`` (False for still-image
    samples, whose temporal layers are bypassed), ``kind`` and ``errors`` (items that
    failed to load and were replaced by another draw: reported by the trainer).
    """

    def __init__(self, items: list[Item], cfg: DataConfig, *, seed: int, first_row: dict[Path, int] | None = None):
        self.cfg, self.seed = cfg, seed
        self.first_row = first_row  # with a latent table: each sample also says which rows hold its frames
        self.videos = [i for i in items if i.kind == "video"]
        self.images = [i for i in items if i.kind == "image"]
        if cfg.image_threshold > 0 and not self.images:
            raise InputError("data.image_threshold > 0 but the dataset has no still images "
                             "(images/ + images_densepose/, or index rows of kind image)")
        if cfg.image_threshold < 1 and not self.videos:
            raise InputError(f"no video clips in {cfg.root} (split {cfg.split!r}); see docs/training.md")
        self.reader = FrameReader()
        self._bad: dict[Path, str] = {}

    def __len__(self) -> int:  # the stream is endless; this is only a nominal epoch
        return len(self.videos) + len(self.images)

    def draw(self, index: int, stream: int = 0) -> Draw:
        """Kind and generator of draw ``index`` (stream 0: training, 1: the fixed batch)."""
        rng = np.random.default_rng([self.seed, stream, index])
        r = rng.random()
        kind = "image" if r < self.cfg.image_threshold else "frame" if r < self.cfg.frame_threshold else "video"
        return Draw(kind, rng)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.sample(index)

    def sample(self, index: int, stream: int = 0) -> dict[str, Any]:
        """Sample of draw ``index``; unreadable items are skipped (reported) and redrawn."""
        draw = self.draw(index, stream)
        errors: list[str] = []
        for _ in range(self.cfg.max_retries + 1):
            pool = self.images if draw.kind == "image" else self.videos
            item = pool[int(draw.rng.integers(len(pool)))]
            if item.source in self._bad:
                errors.append(f"{item.name()}: {self._bad[item.source]}")
                continue
            try:
                sample = self._load(item, draw)
            except Exception as err:  # noqa: BLE001 - reported and redrawn; max_retries in a row stop the run
                reason = f"{type(err).__name__}: {err}" if not isinstance(err, InputError) else str(err)
                self._bad[item.source] = reason
                errors.append(f"{item.name()}: {reason}")
                continue
            sample["errors"] = errors
            return sample
        raise InputError(f"{self.cfg.max_retries + 1} items in a row could not be loaded:\n  " + "\n  ".join(errors))

    # ------------------------------------------------------------------ loading one item
    def _load(self, item: Item, draw: Draw) -> dict[str, Any]:
        f, rng = self.cfg.num_frames, draw.rng
        if item.kind == "image":
            image, pose = load_image(item.source)[None], load_image(item.densepose)[None]
            _check_sizes(item, image, pose)
            reference, target, control = image[0], np.repeat(image, f, 0), np.repeat(pose, f, 0)
            frame_numbers = [0] * (f + 1)
        else:
            length = clip_length(self.reader, item)
            ref = int(rng.integers(length))
            if draw.kind == "frame":  # one frame as a still image
                indices = [int(rng.integers(length))] * f
            else:
                span = (f - 1) * self.cfg.frame_stride + 1
                if span > length:
                    raise InputError(f"clip has {length} frames; a sample spans {span} "
                                     f"(num_frames {f}, frame_stride {self.cfg.frame_stride})")
                start = int(rng.integers(length - span + 1))
                indices = [start + i * self.cfg.frame_stride for i in range(f)]
            frames = self.reader.frames(item.source, [ref] + indices)
            control = self.reader.frames(item.densepose, indices)
            _check_sizes(item, frames, control)
            reference, target = frames[0], frames[1:]
            frame_numbers = [ref] + indices

        # Same crop and flip for reference, target and DensePose.
        size = (self.cfg.width, self.cfg.height)
        box = crop_box(reference.shape[1::-1], size, rng if self.cfg.random_crop else None)
        reference = resize_crop(reference[None], box, size)[0]
        target, control = resize_crop(target, box, size), resize_crop(control, box, size)
        mirrored = rng.random() < self.cfg.hflip_prob
        if mirrored:
            reference, target, control = mirror_image(reference), mirror_image(target), mirror_densepose(control)
        sample = {"reference": reference, "target": target, "control": control,
                  "temporal": draw.kind == "video" and f > 1, "kind": draw.kind}
        if self.first_row is not None:  # rows of the reference, then the targets, in the latent table
            sample["rows"] = self.first_row[item.source] + np.asarray(frame_numbers, dtype=np.int64)  # (f + 1,)
            sample["mirrored"] = mirrored
        return sample


def clip_length(reader: FrameReader, item: Item) -> int:
    """Frame count of a clip whose DensePose has the same length and fps (else ``InputError``)."""
    (n, fps), (m, pose_fps) = reader.info(item.source), reader.info(item.densepose)
    if n != m:
        raise InputError(f"length mismatch: {n} video frames, {m} DensePose frames ({item.densepose})")
    if fps is not None and pose_fps is not None and abs(fps - pose_fps) > 1e-3 * fps:
        raise InputError(f"fps mismatch: video {fps:g}, DensePose {pose_fps:g} ({item.densepose})")
    if n < 1:
        raise InputError("clip has no frames")
    return n


def _check_sizes(item: Item, frames: np.ndarray, control: np.ndarray) -> None:
    if frames.shape[1:3] != control.shape[1:3]:
        raise InputError(f"size mismatch: {frames.shape[2]}x{frames.shape[1]} frames, "
                         f"{control.shape[2]}x{control.shape[1]} DensePose ({item.densepose})")


def check_items(items: list[Item], cfg: DataConfig) -> list[str]:
    """Problems of every item (lengths, fps, sizes, decoding), read once each: for ``--check-data``."""
    reader = FrameReader()
    problems = []
    for item in items:
        try:
            if item.kind == "image":
                _check_sizes(item, load_image(item.source)[None], load_image(item.densepose)[None])
            else:
                n = clip_length(reader, item)
                _check_sizes(item, reader.frames(item.source, [0]), reader.frames(item.densepose, [0]))
                if cfg.num_frames > 1 and (cfg.num_frames - 1) * cfg.frame_stride + 1 > n:
                    problems.append(f"{item.name()}: {n} frames, shorter than one sample")
        except Exception as err:  # noqa: BLE001 - collected into the report
            problems.append(f"{item.name()}: {err}")
    return problems


# ---------------------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------------------


class DrawSampler(Sampler[int]):
    """Endless draw indices of one process: micro-batch m, row j -> (m * world + rank) * batch + j."""

    def __init__(self, *, start_micro_batch: int, rank: int, world_size: int, batch_size: int):
        self.start, self.rank, self.world, self.batch = start_micro_batch, rank, world_size, batch_size

    def __iter__(self) -> Iterator[int]:
        m = self.start
        while True:
            base = (m * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)
            m += 1


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples: uint8 tensors (b, ...) for the images, bool (b,) ``temporal``, lists for the rest."""
    batch = {
        "reference": torch.from_numpy(np.stack([s["reference"] for s in samples])),  # (b, H, W, 3)
        "target": torch.from_numpy(np.stack([s["target"] for s in samples])),  # (b, F, H, W, 3)
        "control": torch.from_numpy(np.stack([s["control"] for s in samples])),  # (b, F, H, W, 3)
        "temporal": torch.tensor([s["temporal"] for s in samples]),
        "kind": [s["kind"] for s in samples],
        "errors": [e for s in samples for e in s["errors"]],
    }
    if "rows" in samples[0]:  # latent-table rows: (b, F + 1), reference first; mirrored: (b,)
        batch["rows"] = torch.from_numpy(np.stack([s["rows"] for s in samples]))
        batch["mirrored"] = torch.tensor([s["mirrored"] for s in samples])
    return batch
