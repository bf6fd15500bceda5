"""A tiny synthetic training set: moving coloured figures with their DensePose renders.

Each clip shows the jumping-jacks figure of ``densepose_render`` painted with clip-specific
part colours over a coloured background with a moving square; its DensePose video is the
dp_segm render of the same figure. Used by the tests and as a smoke test of a setup.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from magicanimate.io.densepose_colors import colorize_parts
from magicanimate.synthetic.simple_person import render_parts
from magicanimate.io.video import write_video


def _paint(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """RGB frames (F, H, W, 3): per-part colours of this performer, background + a moving square."""
    num_frames, height, width = labels.shape
    colours = rng.integers(0, 256, size=(25, 3), dtype=np.uint8)
    colours[0] = rng.integers(0, 256, size=3)  # background
    frames = colours[labels]  # (F, H, W) -> (F, H, W, 3)
    square = rng.integers(0, 256, size=3, dtype=np.uint8)
    side = max(2, width // 6)
    for f in range(num_frames):  # a square sliding along the top edge, behind the person
        x = int((f * 2 + rng.integers(0, 1)) % max(1, width - side))
        patch = frames[f, 1:1 + side, x:x + side]
        mask = labels[f, 1:1 + side, x:x + side] == 0
        patch[mask] = square
    return frames


def make_synthetic_dataset(root: str | Path, *, clips: int = 2, frames: int = 24, size: tuple[int, int] = (64, 64),
                           images: int = 2, seed: int = 0, folders: bool = True, index: bool = False,
                           val_clips: int = 0) -> Path:
    """Write clips (videos/ + densepose/) and stills (images/ + images_densepose/) under ``root``.

    Odd-numbered clips are frame folders when ``folders`` (the others .mp4 files). With
    ``index`` an index.csv lists everything, the last ``val_clips`` clips in split "val".
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(clips):
        labels = render_parts(frames, size, seed=seed * 1000 + k)
        video, pose = _paint(labels, rng), colorize_parts(labels)
        name = f"clip{k:03d}"
        suffix = "" if folders and k % 2 else ".mp4"
        write_video(root / "videos" / f"{name}{suffix}", video, 25.0, overwrite=True)
        write_video(root / "densepose" / f"{name}{suffix}", pose, 25.0, overwrite=True)
        split = "val" if k >= clips - val_clips else "train"
        rows.append({"video": f"videos/{name}{suffix}", "densepose": f"densepose/{name}{suffix}",
                     "kind": "video", "split": split})
    for k in range(images):
        labels = render_parts(1, size, seed=seed * 1000 + 500 + k)
        name = f"image{k:03d}.png"
        for folder, pixels in (("images", _paint(labels, rng)[0]), ("images_densepose", colorize_parts(labels)[0])):
            (root / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(root / folder / name)
        rows.append({"video": f"images/{name}", "densepose": f"images_densepose/{name}", "kind": "image",
                     "split": "train"})
    if index:
        with (root / "index.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, ["video", "densepose", "kind", "split"])
            writer.writeheader()
            writer.writerows(rows)
    return root
