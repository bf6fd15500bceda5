"""Does a model carry its reference's appearance? Animates training (or held-out) clips twice:
with their own reference and with the next sample's (another person in another scene).

A model that uses the reference's person loses part-colour accuracy with the other reference;
one that only copies the scene loses PSNR (the background) but not part colour.

    PYTHONPATH=src python scripts/reference_swap_probe.py --weights src/magicanimate/mini_weights
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from magicanimate.metrics import psnr
from magicanimate.metrics.person import part_colour_error, silhouette_iou
from magicanimate.options import SampleOptions
from magicanimate.sampling.pipeline import MagicAnimate
from magicanimate.synthetic.dataset import make_reference, make_sample, split_specs


def main() -> None:
    """Print one line per clip (own reference, other reference, copying) and the means."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="release-layout weights folder")
    parser.add_argument("--split", choices=("train", "heldout"), default="train")
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--zoom", type=float, default=1.0, help="people drawn this many times larger (data zoom=)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = MagicAnimate.from_pretrained(args.weights, device="cpu", dtype=torch.float32)
    specs = split_specs(args.split, count=args.videos, num_frames=args.frames, size=(args.size, args.size),
                        zoom=args.zoom)
    totals = {"own": [], "other": []}
    for k, spec in enumerate(specs):
        sample = make_sample(spec)
        references = {"own": make_reference(spec)[0], "other": make_reference(specs[(k + 1) % len(specs)])[0]}
        cells = []
        for name, reference in references.items():
            frames = model.animate(reference, sample.densepose, options=SampleOptions(seed=1, steps=25)).frames
            scores = (psnr(frames, sample.appearance),
                      silhouette_iou(frames, sample.labels, background=sample.background),
                      part_colour_error(frames, sample.appearance, labels=sample.labels))
            totals[name].append(scores)
            cells.append(f"{name}: PSNR {scores[0]:.2f} IoU {scores[1]:.3f} part-colour {scores[2]:.1f}")
        copied = np.repeat(references["own"][None], args.frames, axis=0)
        print(f"{spec.name}  " + " | ".join(cells) + f" | copying: PSNR {psnr(copied, sample.appearance):.2f}",
              flush=True)
    for name, rows in totals.items():
        mean = np.mean(rows, axis=0)
        print(f"mean, {name} reference: PSNR {mean[0]:.2f} IoU {mean[1]:.3f} part-colour {mean[2]:.1f}")


if __name__ == "__main__":
    main()
