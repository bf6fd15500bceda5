"""Look at and time the generator: a preview strip PNG and frames per second."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

from magicanimate.synthetic.dataset import Split, make_sample, split_specs


def preview_strip(path: str | Path, *, split: Split = "train", samples: int = 7, frames: int = 5,
                  size: int = 128, num_frames: int = 32, start: int = 0, zoom: float = 1.0) -> Path:
    """Write a PNG: per sample a row of ``frames`` frames, appearance above its dp_segm render."""
    rows = []
    for spec in split_specs(split, count=samples, num_frames=num_frames, size=(size, size), start=start,
                            zoom=zoom):
        sample = make_sample(spec)
        picks = np.linspace(0, num_frames - 1, frames).round().astype(int)
        pairs = [np.concatenate([sample.appearance[f], sample.densepose[f]], axis=0) for f in picks]  # (2H, W, 3)
        rows.append(np.concatenate(pairs, axis=1))  # (2H, frames * W, 3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)
    return path


def generation_speed(*, size: int = 128, num_frames: int = 32, samples: int = 14) -> float:
    """Frames per second of ``make_sample`` over training samples of every family (one process)."""
    specs = split_specs("train", count=samples, num_frames=num_frames, size=(size, size), start=10_000)
    make_sample(specs[0])  # warm up
    start = time.perf_counter()
    for spec in specs:
        make_sample(spec)
    return samples * num_frames / (time.perf_counter() - start)
