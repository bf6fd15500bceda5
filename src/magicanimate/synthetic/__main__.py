"""``python -m magicanimate.synthetic {preview,speed,write}``: look at, time or write the synthetic set."""

from __future__ import annotations

import argparse

from magicanimate.synthetic.dataset import parse_zoom, write_dataset
from magicanimate.synthetic.preview import generation_speed, preview_strip


def main(argv: list[str] | None = None) -> None:
    """Command line of the generator."""
    parser = argparse.ArgumentParser(prog="python -m magicanimate.synthetic", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("preview", help="write a PNG strip: appearance above dp_segm, a few frames per sample")
    p.add_argument("--out", default="/tmp/synthetic_preview.png")
    p.add_argument("--split", choices=("train", "heldout"), default="train")
    p.add_argument("--samples", type=int, default=7)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--start", type=int, default=0, help="first sample number of the split")
    p.add_argument("--zoom", type=float, default=1.0, help="draw the people this many times larger (default 1)")
    s = sub.add_parser("speed", help="frames per second of the generator")
    s.add_argument("--size", type=int, default=128)
    w = sub.add_parser("write", help="write the data set in the training layout (with index.csv)")
    w.add_argument("root")
    w.add_argument("--train", type=int, default=64)
    w.add_argument("--heldout", type=int, default=16)
    w.add_argument("--images", type=int, default=0)
    w.add_argument("--frames", type=int, default=32)
    w.add_argument("--size", type=int, default=128)
    w.add_argument("--zoom", type=float, default=1.0, help="draw the people this many times larger (default 1)")
    args = parser.parse_args(argv)
    try:
        parse_zoom(getattr(args, "zoom", 1.0))
    except ValueError as error:
        parser.error(f"--zoom: {error}")
    if args.command == "preview":
        print(preview_strip(args.out, split=args.split, samples=args.samples, size=args.size, start=args.start,
                            zoom=args.zoom))
    elif args.command == "speed":
        print(f"{generation_speed(size=args.size):.0f} frames/s at {args.size}x{args.size}")
    else:
        print(write_dataset(args.root, train=args.train, heldout=args.heldout, images=args.images,
                            num_frames=args.frames, size=(args.size, args.size), zoom=args.zoom))


if __name__ == "__main__":
    main()
