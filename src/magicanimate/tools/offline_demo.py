"""``make demo`` / ``python -m magicanimate.demo``: the whole chain end to end, offline.

With the released weights (``./pretrained_models``, ``$MAGICANIMATE_WEIGHTS``, or the
Hugging Face cache; downloaded when a GPU and the Hub are both available) it animates
with them. Otherwise it builds tiny random weights in the release layout with this
package's own code, renders a DensePose-style motion, runs ``magicanimate animate`` and
says plainly that the result is noise because those weights are untrained.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

from PIL import Image

from magicanimate.synthetic.simple_person import render_motion, synthetic_reference
from magicanimate.io.video import write_video
from magicanimate.weights.layout import WeightPaths

def _real_weights() -> Path | None:
    """A complete release-layout folder of real weights, if one is at hand."""
    for candidate in (os.environ.get("MAGICANIMATE_WEIGHTS"), "pretrained_models"):
        if candidate and not WeightPaths.release_layout(candidate).problems():
            return Path(candidate)
    return None


def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _run(cmd: list[str]) -> None:
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m magicanimate.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("demo_output"))
    parser.add_argument("--tiny", action="store_true", help="use tiny random weights even if real ones exist")
    parser.add_argument("--frames", type=int, default=24, help="motion frames to render (default 24)")
    args = parser.parse_args(argv)
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "magicanimate"]

    import torch

    weights = None if args.tiny else _real_weights()
    if weights is None and not args.tiny and torch.cuda.is_available() and _hub_reachable():
        print("no local weights; a GPU and the Hub are available: downloading the released checkpoints (~10 GB)")
        _run(cli + ["download", "--to", "pretrained_models"])
        weights = Path("pretrained_models")
    tiny = weights is None
    if tiny:
        weights = out / "tiny-weights"
        print(f"no released weights found (./pretrained_models or $MAGICANIMATE_WEIGHTS): "
              f"building tiny random weights in {weights}")
        from magicanimate.weights.random import write_tiny_weights

        write_tiny_weights(weights)
        size, steps = 128, 5
    elif torch.cuda.is_available():
        size, steps = 512, 25
    else:
        size, steps = 256, 10
        print("real weights on a CPU: using 256x256 and 10 steps to keep this under an hour")

    reference, motion = out / "reference.png", out / "motion.mp4"
    Image.fromarray(synthetic_reference((size, size))).save(reference)
    write_video(motion, render_motion(args.frames, (size, size), seed=1), fps=25, overwrite=True)
    print(f"wrote the inputs {reference} and {motion} ({args.frames} DensePose frames at 25 fps)")

    result = out / "animation.mp4"
    _run(cli + ["animate", "--reference", str(reference), "--motion", str(motion), "--output", str(result),
                "--weights", str(weights), "--size", str(size), "--steps", str(steps), "--grid", "--overwrite"])
    print(f"\nresult: {result} (and the side-by-side {result.with_name('animation.grid.mp4')})")
    if tiny:
        print("NOTE: these weights are untrained random numbers, so the video is NOISE. The run shows the "
              "whole chain works; for real animations get the released weights: "
              "magicanimate download --to pretrained_models (see README).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
