"""``magicanimate download``, ``magicanimate check-weights`` and ``magicanimate pack-weights``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from magicanimate.errors import WeightsError
from magicanimate.weights.layout import HUB_FILES, LAYOUT_DIRS, WeightPaths


def add_weights_parsers(subparsers) -> None:
    """Register ``download`` and ``check-weights``."""
    d = subparsers.add_parser(
        "download", help="download the released checkpoints into the release layout",
        description="Fetch SD 1.5 (tokenizer, text encoder, UNet), sd-vae-ft-mse and MagicAnimate from the "
                    "Hugging Face Hub into DIR/{stable-diffusion-v1-5,sd-vae-ft-mse,MagicAnimate}. "
                    "Interrupted downloads resume; sizes are verified against the Hub.",
    )
    d.add_argument("--to", type=Path, default=Path("pretrained_models"), help="target folder (default pretrained_models)")
    d.set_defaults(func=run_download)
    c = subparsers.add_parser(
        "check-weights", help="report which components are present, missing or mismatched",
        description="Check every component of a weights folder in the release layout: files present, "
                    "every tensor name and shape as the models expect. Reads no tensor data.",
    )
    c.add_argument("weights", type=Path, help="folder in the release layout")
    c.set_defaults(func=run_check_weights)
    k = subparsers.add_parser(
        "pack-weights", help="write a weights folder as one compact, self-contained folder for shipping",
        description="Copy a release-layout folder (e.g. a training run's weights/, whose components may be "
                    "links) into TARGET with real files only: the UNet's spatial weights in unet/, only the "
                    "motion modules in temporal_attention.ckpt, every tensor in --dtype. Checked as "
                    "check-weights does.",
    )
    k.add_argument("source", type=Path, help="folder in the release layout")
    k.add_argument("target", type=Path, help="folder to write (replaced)")
    k.add_argument("--dtype", choices=("float16", "float32"), default="float16",
                   help="dtype of the stored tensors (default float16)")
    k.set_defaults(func=run_pack_weights)


def run_download(args: argparse.Namespace) -> int:
    """Download every released file with huggingface_hub, then verify sizes."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    total = sum(len(files) for files in HUB_FILES.values())
    done = 0
    for repo, files in HUB_FILES.items():
        folder = args.to / LAYOUT_DIRS[repo]
        for filename in files:
            done += 1
            print(f"[{done}/{total}] {repo}/{filename}", file=sys.stderr)
            try:
                path = Path(hf_hub_download(repo, filename, local_dir=folder))
                expected = get_hf_file_metadata(hf_hub_url(repo, filename)).size
            except Exception as err:  # network, auth, disk
                raise WeightsError(f"downloading {repo}/{filename} failed: {type(err).__name__}: {err}") from err
            if expected is not None and path.stat().st_size != expected:
                raise WeightsError(f"{path} has {path.stat().st_size} bytes, the Hub says {expected}; "
                                   "delete it and run the download again")
    print(f"all {total} files are in {args.to}; check them with: magicanimate check-weights {args.to}")
    return 0


def run_pack_weights(args: argparse.Namespace) -> int:
    """Pack ``source`` into ``target`` and print its size."""
    import torch

    from magicanimate.weights.pack import folder_bytes, pack_weights

    if not args.source.is_dir():
        raise WeightsError(f"weights folder not found: {args.source}")
    pack_weights(args.source, args.target, dtype=getattr(torch, args.dtype))
    print(f"packed {args.source} -> {args.target}: {folder_bytes(args.target) / 1e6:.1f} MB ({args.dtype})")
    return 0


def run_check_weights(args: argparse.Namespace) -> int:
    """Print a table of components and exit 1 if any is missing or mismatched."""
    from magicanimate.weights.build import verify_components

    if not args.weights.is_dir():
        raise WeightsError(f"weights folder not found: {args.weights}")
    results = verify_components(WeightPaths.release_layout(args.weights))
    width = max(len(name) for name, _, _ in results)
    for name, status, detail in results:
        print(f"{name.ljust(width)}  {status.upper():8}  {detail}")
    bad = [r for r in results if r[1] != "ok"]
    print(f"{len(results) - len(bad)} of {len(results)} components ok")
    return 1 if bad else 0
