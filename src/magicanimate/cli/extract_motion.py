"""``magicanimate extract-motion``: an ordinary video of a person -> a DensePose motion video."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from magicanimate.cli.arguments import non_negative_int, positive_int
from magicanimate.cli.loading import say
from magicanimate.errors import InputError

PEOPLE = ("all", "largest", "track")


def add_extract_motion_parser(subparsers) -> None:
    """Register ``extract-motion``."""
    p = subparsers.add_parser(
        "extract-motion", help="turn an ordinary video of a person into a DensePose motion video",
        description="Run DensePose (detectron2's densepose_rcnn_R_50_FPN_s1x, re-implemented in PyTorch, with its "
                    "official weights) on every frame and write the dp_segm motion video MagicAnimate takes. "
                    "Get the weights once with: magicanimate download --densepose (licence CC BY-SA 3.0).",
    )
    p.add_argument("video", help="input: a video file or a folder of frames")
    p.add_argument("--output", required=True, help="the motion: .mp4, .webm, .gif, or a folder for numbered PNGs")
    add_extraction_flags(p)
    p.add_argument("--size", default=None, help="output size N or WxH (default: the video's own size)")
    p.add_argument("--fit", choices=("pad", "crop", "stretch"), default="pad",
                   help="how the motion maps onto --size: pad with background (default), crop, or stretch")
    p.add_argument("--fps", type=float, default=None, help="resample the video to this fps (default: keep its own)")
    p.add_argument("--start", type=non_negative_int, default=0, help="first frame to use (default 0)")
    p.add_argument("--max-frames", type=positive_int, default=None, help="use at most this many frames")
    p.add_argument("--align-to", metavar="REFERENCE_IMAGE", default=None,
                   help="fit the person onto the reference photo's person (scale + position) and write the motion "
                        "at the reference's size")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default auto)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run_extract_motion)


def add_extraction_flags(parser: argparse.ArgumentParser) -> None:
    """The DensePose flags shared by ``extract-motion`` and ``animate --driving-video``."""
    g = parser.add_argument_group("DensePose extraction")
    g.add_argument("--densepose-weights", metavar="PKL", default=None,
                   help="model_final_162be9.pkl (default: the cached download)")
    g.add_argument("--min-score", type=float, default=0.8, help="detection score threshold (default 0.8)")
    g.add_argument("--people", choices=PEOPLE, default="all",
                   help="all detections (as vid2densepose), the largest, or one person tracked across frames")
    g.add_argument("--smooth", type=non_negative_int, default=0, metavar="N",
                   help="majority label over N frames (and steadied boxes) against flicker (default 0: off)")
    g.add_argument("--batch-size", type=positive_int, default=4, help="frames per DensePose batch (default 4)")
    g.add_argument("--detect-size", type=positive_int, default=None, metavar="N",
                   help="shortest side the detector sees (default 800 as detectron2; smaller is faster and lossy, "
                        "see docs/densepose.md)")


def check_extraction_flags(args: argparse.Namespace) -> None:
    """Refuse bad extraction values before loading anything."""
    if not 0.0 <= args.min_score < 1.0:
        raise InputError(f"--min-score must be in [0, 1), got {args.min_score}")


def check_densepose_weights_file(args: argparse.Namespace) -> Path:
    """The DensePose checkpoint the flags name (or the cached download); ``WeightsError`` now if it is absent."""
    from magicanimate.densepose.download import densepose_weights_path
    from magicanimate.errors import WeightsError

    if args.densepose_weights is None:
        return densepose_weights_path()
    path = Path(args.densepose_weights)
    if not path.is_file():
        raise WeightsError(f"DensePose weight file not found: {path} (--densepose-weights; the official file "
                           "comes with `magicanimate download --densepose`)")
    return path


class FrameBar:
    """A tqdm bar over frames for ``extract_motion``'s progress(done, total) callback."""

    def __init__(self, quiet: bool, label: str):
        self.quiet, self.label, self.bar = quiet, label, None

    def __call__(self, done: int, total: int | None) -> None:
        """Move the bar to ``done`` frames."""
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.label, unit="frame", file=sys.stderr, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def load_extractor(args: argparse.Namespace):
    """The DensePose extractor on ``args.device`` (the cached weights unless ``--densepose-weights``)."""
    from magicanimate.densepose import DensePoseExtractor
    from magicanimate.runtime.device import resolve_device

    device = resolve_device(args.device)
    say(args.quiet, f"loading DensePose on {device}")
    return DensePoseExtractor.from_pretrained(args.densepose_weights, device=device)


def extract_labels(extractor, frames, args: argparse.Namespace, *, reference=None, label: str = "DensePose"):
    """Part labels (F, H, W) of ``frames`` with the flags' settings, aligned to ``reference`` when given."""
    from magicanimate.densepose import extract_motion

    bar = FrameBar(args.quiet, label)
    try:
        return extract_motion(frames, extractor=extractor, people=args.people, smooth=args.smooth,
                              min_score=args.min_score, batch_size=args.batch_size, detect_size=args.detect_size,
                              align_to=reference, progress=bar)
    finally:
        bar.close()


def run_extract_motion(args: argparse.Namespace) -> int:
    """Entry point of ``magicanimate extract-motion``."""
    from magicanimate.cli.outputs import check_not_an_input
    from magicanimate.densepose.extraction import fit_labels
    from magicanimate.io.densepose_colors import colorize_parts
    from magicanimate.io.image import load_image
    from magicanimate.io.video import check_output, read_motion, write_video
    from magicanimate.options import DEFAULT_FPS, parse_size

    # Every check before any work.
    check_extraction_flags(args)
    size = parse_size(args.size) if args.size is not None else None
    if args.fps is not None and not args.fps > 0:
        raise InputError(f"--fps must be above 0, got {args.fps}")
    if not Path(args.video).exists():
        raise InputError(f"input not found: {args.video}")
    check_not_an_input("--output", args.output, {"VIDEO": args.video, "--align-to": args.align_to,
                                                 "--densepose-weights": args.densepose_weights})
    check_output(args.output, overwrite=args.overwrite)
    check_densepose_weights_file(args)
    reference = load_image(args.align_to) if args.align_to is not None else None

    clip = read_motion(args.video, start=args.start, max_frames=args.max_frames, fps=args.fps)
    say(args.quiet, f"read {clip.num_frames} frames{f' at {clip.fps:g} fps' if clip.fps else ''} from {args.video}")
    extractor = load_extractor(args)
    labels = extract_labels(extractor, clip.frames, args, reference=reference)
    if size is not None:
        labels = fit_labels(labels, size, fit=args.fit)
    fps = clip.fps or args.fps or DEFAULT_FPS
    out = write_video(args.output, colorize_parts(labels), fps, overwrite=args.overwrite)
    say(args.quiet, f"wrote {out} ({labels.shape[0]} frames, {labels.shape[2]}x{labels.shape[1]}, {fps:g} fps)")
    return 0
