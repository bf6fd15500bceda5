"""Samples and splits of the synthetic data set, and writing it in the training layout.

A sample is fixed by a :class:`SampleSpec` (identity number, motion family and seed,
background seed, length, size); the same spec always gives the same arrays. Splits are
deterministic and disjoint: training identities are numbered from 0, held-out identities
from ``HELDOUT_IDENTITY_START``; held-out motions come from ``HELDOUT_MOTIONS``, two of
whose families (``boxing``, ``side_stretch``) never occur in training.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from magicanimate.errors import InputError
from magicanimate.io.densepose_colors import HEAD, colorize_parts
from magicanimate.synthetic.appearance import Identity, make_background, random_identity
from magicanimate.synthetic.body import Pose, project, skeleton, zoom_camera
from magicanimate.synthetic.motion import HELDOUT_MOTIONS, TRAIN_MOTIONS, make_motion
from magicanimate.synthetic.render import MIN_CONTRAST, Canvas, composite, draw_person

Split = Literal["train", "heldout"]
HELDOUT_IDENTITY_START = 1_000_000  # identity numbers >= this are never used for training
_IDENTITY, _MOTION, _BACKGROUND = 11, 12, 13  # generator streams
BACKGROUND_ATTEMPTS = 8


@dataclass(frozen=True)
class SampleSpec:
    """Everything that fixes one sample."""

    identity: int
    motion: str
    motion_seed: int
    background_seed: int
    num_frames: int = 32
    size: tuple[int, int] = (128, 128)  # (W, H)
    zoom: float = 1.0  # camera zoom: people (motion and reference) drawn this many times larger

    @property
    def name(self) -> str:
        """A file-name-safe name, unique per spec within a split."""
        return f"id{self.identity:07d}_{self.motion}_m{self.motion_seed}_b{self.background_seed}"

    @property
    def split(self) -> Split:
        """Which split the identity belongs to."""
        return "heldout" if self.identity >= HELDOUT_IDENTITY_START else "train"


@dataclass
class Sample:
    """One synthetic video with its exact ground truth."""

    spec: SampleSpec
    identity: Identity
    appearance: np.ndarray  # (F, H, W, 3) uint8
    labels: np.ndarray  # (F, H, W) uint8, DensePose fine part 0..24
    densepose: np.ndarray  # (F, H, W, 3) uint8, the dp_segm render of labels
    mask: np.ndarray  # (F, H, W) bool, labels > 0
    background: np.ndarray  # (H, W, 3) uint8, the scene without the person


def identity_for(number: int) -> Identity:
    """The identity with this number (same number, same person)."""
    return random_identity(np.random.default_rng([_IDENTITY, number]))


def background_for(seed: int, *, size: tuple[int, int], attempt: int = 0) -> np.ndarray:
    """The background (H, W, 3) uint8 with this seed (and attempt number); size = (W, H)."""
    return make_background(np.random.default_rng([_BACKGROUND, seed, attempt]), size=size)


def draw(identity: Identity, pose: Pose, *, size: tuple[int, int]) -> Canvas:
    """The posed identity's labels and colours on an empty canvas; size = (W, H)."""
    canvas = Canvas(pose.num_frames, size)
    draw_person(canvas, identity, proj=project(skeleton(identity.body, pose), pose, size=size))
    return canvas


def render(identity: Identity, pose: Pose, *, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Appearance (F, H, W, 3) uint8 and labels (F, H, W) uint8 of a posed identity over a given background."""
    canvas = draw(identity, pose, size=(background.shape[1], background.shape[0]))
    return composite(canvas, background), canvas.labels


def choose_background(canvas: Canvas, seed: int, *, size: tuple[int, int]) -> np.ndarray:
    """The first of a few backgrounds of this seed that few person pixels resemble (else the best one).

    Person pixels too close to the background get their brightness changed when composited
    (see ``composite``); drawing a contrasting scene keeps that rare.
    """
    best, best_close = None, 2.0
    person = canvas.labels[::4] > 0  # every 4th frame is enough to judge
    colour = np.round(canvas.colour[::4][person])  # (N, 3)
    where = np.nonzero(person)[1:]  # rows and columns of those pixels
    for attempt in range(BACKGROUND_ATTEMPTS):
        background = background_for(seed, size=size, attempt=attempt)
        behind = background[where].astype(np.float32)
        close = float((np.abs(colour - behind).max(axis=-1) < MIN_CONTRAST).mean()) if len(colour) else 0.0
        if close < best_close:
            best, best_close = background, close
        if close <= 0.002:
            break
    return best


def reference_pose(zoom: float = 1.0) -> Pose:
    """The reference pose: standing still, facing the camera, arms slightly out, a medium-full shot.

    ``zoom`` > 1 films it closer (``zoom_camera``): larger, the feet possibly below the frame.
    """
    pose = Pose.neutral(1)
    pose["scale"][:] = 0.7
    return zoom_camera(pose, zoom)


def scene_for(spec: SampleSpec) -> np.ndarray:
    """The sample's background (H, W, 3) uint8: chosen to contrast with its identity standing in it."""
    canvas = draw(identity_for(spec.identity), reference_pose(spec.zoom), size=spec.size)
    return choose_background(canvas, spec.background_seed, size=spec.size)


def make_sample(spec: SampleSpec) -> Sample:
    """Generate the sample of a spec."""
    identity = identity_for(spec.identity)
    pose = zoom_camera(make_motion(spec.motion, num_frames=spec.num_frames,
                                   rng=np.random.default_rng([_MOTION, spec.motion_seed])), spec.zoom)
    canvas = draw(identity, pose, size=spec.size)
    background = scene_for(spec)
    labels = canvas.labels
    return Sample(spec=spec, identity=identity, appearance=composite(canvas, background), labels=labels,
                  densepose=colorize_parts(labels), mask=labels > 0, background=background)


def make_reference(spec: SampleSpec) -> tuple[np.ndarray, np.ndarray]:
    """The identity standing, facing the camera, in the sample's scene: image (H, W, 3) and labels (H, W)."""
    canvas = draw(identity_for(spec.identity), reference_pose(spec.zoom), size=spec.size)
    return composite(canvas, scene_for(spec))[0], canvas.labels[0]


def head_box(labels: np.ndarray) -> tuple[float, float, float] | None:
    """Height, centre column and centre row (pixels, centres at +0.5) of the head in (F, H, W) part labels.

    Per frame: the 0.5 %..99.5 % range of the head's rows (plus one: from the top pixel's upper
    edge to the bottom pixel's lower edge) and the median of its pixels; the clip's values are
    medians over the frames where a head is seen (None when none is).
    """
    boxes = []
    for frame in labels:
        rows, cols = np.nonzero(np.isin(frame, HEAD))
        if rows.size:
            low, high = np.quantile(rows + 0.5, (0.005, 0.995))
            boxes.append((high - low + 1, np.median(cols + 0.5), np.median(rows + 0.5)))  # + 1: edges, not centres
    return tuple(float(v) for v in np.median(boxes, axis=0)) if boxes else None


def reference_framed_like(spec: SampleSpec, motion_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``make_reference`` scaled and moved so that its head has the size and place of the motion's head.

    ``motion_labels`` (F, H', W') are the driving motion's part labels at any size (they are
    stretched onto the sample's frame, as the pipeline resizes a motion). For real motions
    filmed closer than the synthetic reference's full-body shot: the same person in the same
    scene, framed as the motion is, so that a model is asked to animate a consistent pair.
    """
    width, height = spec.size
    motion_labels = np.asarray(motion_labels)
    if motion_labels.ndim != 3:
        raise InputError(f"motion labels must be (F, H, W) part labels, got shape {motion_labels.shape}")
    motion_head = head_box(motion_labels)
    if motion_head is None:
        raise InputError("cannot frame the reference like the motion: no head is seen in any of its frames")
    stretch = np.array([height / motion_labels.shape[1], width / motion_labels.shape[2],
                        height / motion_labels.shape[1]])  # (height, column, row) in the sample's pixels
    target = np.array(motion_head) * stretch
    fine = 4  # the reference's head measured on a 4x finer drawing: a few pixels at 64 px are too coarse
    identity, pose = identity_for(spec.identity), reference_pose()
    own = np.array(head_box(draw(identity, pose, size=(width * fine, height * fine)).labels)) / fine
    scale = target[0] / own[0]  # the renderer is a similarity in (scale, x, ground): pixel = scale * pixel + shift
    pose["scale"][:] *= scale
    pose["x"][:] = scale * pose["x"] + (target[1] - scale * own[1]) / width
    pose["ground"][:] = scale * pose["ground"] + (target[2] - scale * own[2]) / height
    canvas = draw(identity, pose, size=spec.size)
    return composite(canvas, scene_for(spec))[0], canvas.labels[0]


def split_specs(split: Split, *, count: int, num_frames: int = 32, size: tuple[int, int] = (128, 128),
                start: int = 0, zoom: float = 1.0) -> list[SampleSpec]:
    """Specs of samples ``start .. start + count - 1`` of a split; each has its own identity and scene.

    ``zoom`` draws every person that many times larger (``SampleSpec.zoom``). Motion families
    cycle through the split's list (``TRAIN_MOTIONS`` or ``HELDOUT_MOTIONS``).
    """
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    families = TRAIN_MOTIONS if split == "train" else HELDOUT_MOTIONS
    base = HELDOUT_IDENTITY_START if split == "heldout" else 0
    if split == "train" and start + count > HELDOUT_IDENTITY_START:
        raise ValueError(f"at most {HELDOUT_IDENTITY_START} training samples")
    return [SampleSpec(identity=base + k, motion=families[k % len(families)], motion_seed=base + k,
                       background_seed=base + k, num_frames=num_frames, size=size, zoom=zoom)
            for k in range(start, start + count)]


# ---------------------------------------------------------------------------------------
# Writing the training layout
# ---------------------------------------------------------------------------------------


def write_dataset(root: str | Path, *, train: int = 64, heldout: int = 16, images: int = 0, num_frames: int = 32,
                  size: tuple[int, int] = (128, 128), zoom: float = 1.0) -> Path:
    """Write the synthetic set in the training layout (docs/training.md) with an index.csv.

    videos/<name>.npy and densepose/<name>.npy hold (F, H, W, 3) uint8 clips (lossless);
    images/ + images_densepose/ hold ``images`` still frames (PNG) of further training
    identities; labels/<name>.npy and backgrounds/<name>.png keep the ground truth for the
    metrics. index.csv marks the rows "train" or "heldout"; meta.json lists the specs. ``zoom``
    draws every person that many times larger (``SampleSpec.zoom``).
    """
    root = Path(root)
    for folder in ("videos", "densepose", "labels", "backgrounds"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    rows, meta = [], []
    specs = split_specs("train", count=train, num_frames=num_frames, size=size, zoom=zoom) + \
        split_specs("heldout", count=heldout, num_frames=num_frames, size=size, zoom=zoom)
    for spec in specs:
        sample = make_sample(spec)
        np.save(root / "videos" / f"{spec.name}.npy", sample.appearance)
        np.save(root / "densepose" / f"{spec.name}.npy", sample.densepose)
        np.save(root / "labels" / f"{spec.name}.npy", sample.labels)
        Image.fromarray(sample.background).save(root / "backgrounds" / f"{spec.name}.png")
        rows.append({"video": f"videos/{spec.name}.npy", "densepose": f"densepose/{spec.name}.npy",
                     "kind": "video", "split": spec.split})
        meta.append(asdict(spec))
    if images:
        (root / "images").mkdir(exist_ok=True)
        (root / "images_densepose").mkdir(exist_ok=True)
        # Stills: one random frame of each of further training samples (identities after the clips').
        for spec in split_specs("train", count=images, num_frames=8, size=size, start=train, zoom=zoom):
            sample = make_sample(spec)
            f = int(np.random.default_rng([_MOTION, spec.motion_seed, 1]).integers(spec.num_frames))
            Image.fromarray(sample.appearance[f]).save(root / "images" / f"{spec.name}.png")
            Image.fromarray(sample.densepose[f]).save(root / "images_densepose" / f"{spec.name}.png")
            rows.append({"video": f"images/{spec.name}.png", "densepose": f"images_densepose/{spec.name}.png",
                         "kind": "image", "split": "train"})
    with (root / "index.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["video", "densepose", "kind", "split"])
        writer.writeheader()
        writer.writerows(rows)
    (root / "meta.json").write_text(json.dumps({"samples": meta}, indent=1))
    return root


MAX_ZOOM = 4.0


def parse_zoom(text: str | float) -> float:
    """A camera zoom (``SampleSpec.zoom``) from text or a number: in (0, ``MAX_ZOOM``], else ValueError."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 < value <= MAX_ZOOM:  # also refuses nan
        raise ValueError(f"zoom must be a number in (0, {MAX_ZOOM:g}], got {text!r}")
    return value


def parse_source(source: str) -> dict[str, float]:
    """Options of a ``synthetic:train=64,heldout=16,images=0,frames=32,size=128,zoom=1.4`` data root.

    Every option is a whole number but ``zoom`` (a positive decimal, default 1: people drawn
    that many times larger, ``SampleSpec.zoom``).
    """
    options: dict[str, float] = {"train": 64, "heldout": 16, "images": 0, "frames": 32, "size": 128, "zoom": 1.0}
    body = source.split(":", 1)[1] if ":" in source else ""
    for item in filter(None, body.split(",")):
        key, _, value = item.partition("=")
        value = value.strip()
        if key == "zoom":
            try:
                options[key] = parse_zoom(value)
            except ValueError as error:
                raise ValueError(f"bad synthetic data option {item!r} in {source!r}: {error}") from None
            continue
        if key not in options or not value.isdigit():
            raise ValueError(f"bad synthetic data option {item!r} in {source!r}; known: {', '.join(options)}")
        options[key] = int(value)
    return options


def materialise(source: str, *, cache: str | Path | None = None) -> Path:
    """Folder holding the data set of a ``synthetic:...`` root, written once into the cache.

    The cache is ``cache``, else $MAGICANIMATE_SYNTHETIC_CACHE, else
    ~/.cache/magicanimate/synthetic; one sub-folder per option set. The set is written to a
    private folder and renamed into place, so processes started together do not collide.
    """
    options = parse_source(source)
    zoom = options.pop("zoom")
    key = "_".join(f"{k}{int(v)}" for k, v in sorted(options.items()))
    key += f"_zoom{zoom:g}" if zoom != 1.0 else ""  # folders written before zoom existed keep their names
    cache = Path(cache or os.environ.get("MAGICANIMATE_SYNTHETIC_CACHE")
                 or Path.home() / ".cache" / "magicanimate" / "synthetic")
    root = cache / key
    if (root / ".complete").exists():
        return root
    private = cache / f".{key}.{os.getpid()}"
    shutil.rmtree(private, ignore_errors=True)
    write_dataset(private, train=int(options["train"]), heldout=int(options["heldout"]), images=int(options["images"]),
                  num_frames=int(options["frames"]), size=(int(options["size"]), int(options["size"])),
                  zoom=zoom)
    (private / ".complete").write_text("ok\n")
    try:
        private.rename(root)
    except OSError:  # another process finished first
        shutil.rmtree(private, ignore_errors=True)
    return root
