"""``make demo`` / ``python -m magicanimate.demo``: the whole chain end to end, offline.

With the released weights (``./pretrained_models``, ``$MAGICANIMATE_WEIGHTS``, or the
Hugging Face cache; downloaded when a GPU and the Hub are both available) it animates
with them. Otherwise it uses the mini model shipped in the package (64 x 64, trained
on synthetic people, docs/mini_model.md): a held-out synthetic person (never trained on)
follows a held-out motion, and the result is scored against the exact ground truth.
``--tiny`` uses untrained random weights instead (noise: it only shows the chain runs).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from magicanimate.io.video import write_video
from magicanimate.synthetic.motion import HELDOUT_MOTIONS
from magicanimate.synthetic.simple_person import render_motion, synthetic_reference
from magicanimate.weights.layout import MINI_SIZE, MINI_WEIGHTS, MINI_ZOOM, WeightPaths, released_weights_at_hand


def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _run(cmd: list[str]) -> None:
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def _synthetic_inputs(out: Path, frames: int, size: int, *, clip: int = 0) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """The ``clip``-th held-out synthetic clip (a person never trained on), framed as the mini model's data.

    Clip 0 is also a motion never trained on. Writes reference.png and motion.mp4 and returns
    their paths and the truth.
    """
    from magicanimate.synthetic.dataset import make_reference, make_sample, split_specs

    spec = split_specs("heldout", count=1, num_frames=frames, size=(size, size), zoom=MINI_ZOOM, start=clip)[0]
    sample = make_sample(spec)
    image, _ = make_reference(spec)
    reference, motion = out / "reference.png", out / "motion.mp4"
    Image.fromarray(image).save(reference)
    write_video(motion, sample.densepose, fps=25, overwrite=True)
    write_video(out / "ground_truth.mp4", sample.appearance, fps=25, overwrite=True)
    return reference, motion, {"appearance": sample.appearance, "labels": sample.labels,
                               "background": sample.background, "reference": image}


def _score(frames: Path, truth: dict[str, np.ndarray]) -> str:
    """PSNR and silhouette IoU of the result (.npy) against the ground truth, and of copying the reference."""
    from magicanimate.metrics import psnr
    from magicanimate.metrics.person import silhouette_iou

    generated = np.load(frames, allow_pickle=False)
    copy = np.repeat(truth["reference"][None], len(truth["appearance"]), axis=0)
    return (f"against the ground truth: PSNR {psnr(generated, truth['appearance']):.1f} dB "
            f"(copying the reference: {psnr(copy, truth['appearance']):.1f} dB), silhouette IoU "
            f"{silhouette_iou(generated, truth['labels'], background=truth['background']):.2f}")


def write_strip(path: Path, frames: Path, truth: dict[str, np.ndarray], *, every: int = 4, zoom: int = 2) -> None:
    """Every ``every``-th frame of the truth (top row) over the result (bottom row), ``zoom`` x nearest."""
    generated = (np.load(frames, allow_pickle=False)[::every] * 255).round().astype(np.uint8)
    true = truth["appearance"][::every]
    strip = np.concatenate([np.concatenate(list(true), axis=1), np.concatenate(list(generated), axis=1)], axis=0)
    strip = strip.repeat(zoom, axis=0).repeat(zoom, axis=1)  # (2 H zoom, n W zoom, 3)
    Image.fromarray(strip).save(path)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m magicanimate.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("demo_output"))
    parser.add_argument("--mini", action="store_true", help="use the shipped mini model even if real weights exist")
    parser.add_argument("--tiny", action="store_true", help="use tiny untrained random weights (the output is noise)")
    parser.add_argument("--frames", type=int, default=32, help="motion frames (default 32)")
    parser.add_argument("--clip", type=int, default=0, metavar="N",
                        help="with the mini model: the N-th held-out synthetic clip, an unseen person whose motion "
                             f"cycles through {', '.join(HELDOUT_MOTIONS)} (default 0)")
    args = parser.parse_args(argv)
    if args.frames < 1:
        parser.error(f"--frames must be at least 1, got {args.frames}")
    if args.clip < 0:
        parser.error(f"--clip must be 0 or more, got {args.clip}")
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "magicanimate"]

    import torch

    found = None if (args.tiny or args.mini) else released_weights_at_hand()
    weights = found if isinstance(found, Path) else None  # a folder; the Hub cache is left to `download`
    if weights is None and not (args.tiny or args.mini) and torch.cuda.is_available() and _hub_reachable():
        print("no local weights; a GPU and the Hub are available: downloading the released checkpoints (~10 GB)")
        _run(cli + ["download", "--to", "pretrained_models"])
        weights = Path("pretrained_models")
    kind = "released"
    if weights is None and not args.tiny and not WeightPaths.release_layout(MINI_WEIGHTS).problems():
        kind, weights, size, steps = "mini", MINI_WEIGHTS, MINI_SIZE, 25
        print("no released weights found (./pretrained_models or $MAGICANIMATE_WEIGHTS): using the mini model "
              f"shipped with magicanimate ({weights}; {size} x {size}, trained on synthetic people)")
    elif weights is None:
        kind, weights, size, steps = "tiny", out / "tiny-weights", 128, 5
        print(f"{'--tiny' if args.tiny else 'no weights found'}: building tiny untrained random weights in {weights}")
        from magicanimate.weights.random import write_tiny_weights

        write_tiny_weights(weights)
    elif torch.cuda.is_available():
        size, steps = 512, 25
    else:
        size, steps = 256, 10
        print("real weights on a CPU: using 256x256 and 10 steps to keep this under an hour")

    truth = None
    if kind == "mini":
        reference, motion, truth = _synthetic_inputs(out, args.frames, size, clip=args.clip)
        print(f"wrote the inputs {reference} and {motion}: held-out synthetic clip {args.clip} "
              f"({args.frames} DensePose frames at 25 fps; the true video is {out / 'ground_truth.mp4'})")
    else:
        reference, motion = out / "reference.png", out / "motion.mp4"
        Image.fromarray(synthetic_reference((size, size))).save(reference)
        write_video(motion, render_motion(args.frames, (size, size), seed=1), fps=25, overwrite=True)
        print(f"wrote the inputs {reference} and {motion} ({args.frames} DensePose frames at 25 fps)")

    result, frames = out / "animation.mp4", out / "animation.npy"
    extra = ["--save-array", str(frames)] if truth is not None else []
    _run(cli + ["animate", "--reference", str(reference), "--motion", str(motion), "--output", str(result),
                "--weights", str(weights), "--size", str(size), "--steps", str(steps), "--grid", "--overwrite",
                *extra])
    print(f"\nresult: {result} (and the side-by-side {result.with_name('animation.grid.mp4')})")
    if truth is not None:
        print(_score(frames, truth))
        write_strip(out / "comparison.png", frames, truth)
        print(f"every 4th frame, truth over result: {out / 'comparison.png'}")
    if kind == "tiny":
        print("NOTE: these weights are untrained random numbers, so the video is NOISE. The run shows the "
              "whole chain works; for real animations get the released weights: "
              "magicanimate download --to pretrained_models (see README).")
    elif kind == "mini":
        print("NOTE: the mini model is a 13.5 M-parameter MagicAnimate trained here on synthetic people; for "
              "photographs get the released weights: magicanimate download --to pretrained_models (see README).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
