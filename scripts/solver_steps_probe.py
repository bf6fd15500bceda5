"""Which samplers, step counts and guidance scales a model tolerates: one held-out clip, scored
against its true video (PSNR, silhouette IoU), for DDIM and the multistep solvers.

    PYTHONPATH=src python scripts/solver_steps_probe.py --weights mini --zoom 1.5 --clip 2
"""

from __future__ import annotations

import argparse

import torch

from magicanimate.metrics import psnr
from magicanimate.metrics.person import silhouette_iou
from magicanimate.options import SampleOptions
from magicanimate.sampling.pipeline import MagicAnimate
from magicanimate.synthetic.dataset import make_reference, make_sample, parse_zoom, split_specs
from magicanimate.weights.layout import resolve_weights

SETTINGS = [("ddim", 25, 7.5), ("ddim", 12, 7.5), ("dpmsolver++", 25, 7.5), ("dpmsolver++", 12, 7.5),
            ("dpmsolver++", 12, 3.0), ("unipc", 12, 7.5), ("unipc", 12, 3.0)]


def main() -> None:
    """Print one line per (scheduler, steps, guidance scale)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="mini", help="release-layout weights folder, or mini (default)")
    parser.add_argument("--clip", type=int, default=0, help="which held-out clip (default 0)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--zoom", type=float, default=1.0, help="people drawn this many times larger (default 1)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    try:
        parse_zoom(args.zoom)
    except ValueError as error:
        parser.error(f"--zoom: {error}")
    torch.set_num_threads(args.threads)
    model = MagicAnimate.from_pretrained(resolve_weights(args.weights), device="cpu", dtype=torch.float32)
    size = model.native_size
    spec = split_specs("heldout", count=1, num_frames=args.frames, size=(size, size), zoom=args.zoom,
                       start=args.clip)[0]
    sample = make_sample(spec)
    reference, _ = make_reference(spec)
    print(f"{spec.name}, {args.frames} frames at {size} x {size}")
    print("| scheduler | steps | guidance | PSNR (dB) | silhouette IoU |\n|---|---|---|---|---|")
    for scheduler, steps, guidance in SETTINGS:
        frames = model.animate(reference, sample.densepose, options=SampleOptions(
            seed=1, steps=steps, scheduler=scheduler, guidance_scale=guidance)).frames
        iou = silhouette_iou(frames, sample.labels, background=sample.background)
        print(f"| {scheduler} | {steps} | {guidance:g} | {psnr(frames, sample.appearance):.2f} | {iou:.3f} |",
              flush=True)


if __name__ == "__main__":
    main()
