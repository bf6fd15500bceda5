"""`magicanimate evaluate` and `magicanimate download-metrics`: the paper's evaluation from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from magicanimate.errors import InputError, OutputError
from magicanimate.metrics.downloads import ENV_VAR, INCEPTION_BACKENDS, WEIGHT_FILES
from magicanimate.metrics.protocol import PROTOCOLS, TABLE_METRICS

if TYPE_CHECKING:
    from magicanimate.metrics.networks import FeatureNetworks

RANDOM_NETWORKS_LABEL = "random weights (TEST ONLY: numbers are meaningless)"


def _metric_name(text: str) -> str:
    name = text.upper()
    if name not in TABLE_METRICS:
        raise argparse.ArgumentTypeError(f"unknown metric '{text}'; choose from {', '.join(TABLE_METRICS)}")
    return name


def add_evaluate_parser(subparsers: "argparse._SubParsersAction") -> None:
    """Register `evaluate`: the seven metrics of the paper's table over paired generated / ground-truth videos."""
    p = subparsers.add_parser(
        "evaluate",
        help="compute L1, PSNR, SSIM, LPIPS, FID, FID-VID and FVD against ground truth",
        description="Pair videos (or frame folders) by name, cut 16-frame units and compute the paper's "
        "seven metrics with DisCo's protocol; prints the table and writes metrics.json / metrics.csv.",
    )
    p.add_argument("--generated", required=True, type=Path, help="folder of generated videos or frame folders")
    p.add_argument("--ground-truth", required=True, type=Path, help="folder of ground-truth videos or frame folders")
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="disco",
                   help="disco: as the paper's table (default); standard: true PSNR, LPIPS on [-1, 1], "
                   "non-overlapping 16-frame units")
    p.add_argument("--metrics", nargs="+", type=_metric_name, default=list(TABLE_METRICS),
                   help="subset of the table's metrics to compute (default: all seven)")
    p.add_argument("--unit-stride", type=int, default=None,
                   help="frames between the starts of consecutive 16-frame units (disco: 1, standard: 16)")
    p.add_argument("--truncate", action="store_true",
                   help="when a pair differs in length, compare only the common first frames")
    p.add_argument("--output", type=Path, default=Path("evaluation"), help="folder for the reports")
    p.add_argument("--overwrite", action="store_true", help="replace existing reports in --output")
    p.add_argument("--name", default=None, help="method name in the table (default: the generated folder's name)")
    p.add_argument("--metrics-dir", type=Path, default=None,
                   help=f"weight cache folder (default: ${ENV_VAR} or ~/.cache/magicanimate/metrics)")
    p.add_argument("--inception", choices=INCEPTION_BACKENDS, default="pytorch-fid",
                   help="FID network file: pytorch-fid's port (default) or NVIDIA's TorchScript (clean-fid/DisCo)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--random-weights-for-testing", action="store_true",
                   help="TEST ONLY: random-weight networks, runs offline; the numbers are meaningless")
    p.set_defaults(func=run_evaluate)


def add_download_metrics_parser(subparsers: "argparse._SubParsersAction") -> None:
    """Register `download-metrics`: fetch the public weight files of the metric networks."""
    p = subparsers.add_parser(
        "download-metrics",
        help="download the weight files of the metric networks (Inception, VGG/LPIPS, I3D)",
        description="Fetch the public weight files behind LPIPS, FID and FVD into the cache folder; "
        "prints where to get the files that have no stable download URL (the 3D ResNet-50 for FID-VID).",
    )
    p.add_argument("--metrics-dir", type=Path, default=None,
                   help=f"weight cache folder (default: ${ENV_VAR} or ~/.cache/magicanimate/metrics)")
    p.add_argument("--only", nargs="+", choices=list(WEIGHT_FILES), default=None, help="fetch only these files")
    p.add_argument("--include-optional", action="store_true",
                   help="also fetch NVIDIA's TorchScript Inception (for --inception torchscript)")
    p.set_defaults(func=run_download_metrics)


def run_evaluate(args: argparse.Namespace, *, networks: FeatureNetworks | None = None) -> int:
    """Run `evaluate`; `networks` injects ready networks (tests), else they are loaded or randomised."""
    from magicanimate.metrics.downloads import metrics_dir
    from magicanimate.metrics.evaluate import METRIC_NETWORK, evaluate_videos, load_pairs
    from magicanimate.metrics.networks import load_feature_networks, random_feature_networks
    from magicanimate.metrics.protocol import get_protocol
    from magicanimate.metrics.report import CSV_NAME, JSON_NAME, PER_VIDEO_CSV_NAME, format_table, write_reports
    from magicanimate.runtime.device import resolve_device

    protocol = get_protocol(args.protocol, unit_stride=args.unit_stride)
    metrics = tuple(m for m in TABLE_METRICS if m in set(args.metrics))
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be positive, got {args.batch_size}")
    # 1. inputs: pairing and frame counts are checked before anything slow
    total, pairs, notes = load_pairs(args.generated, args.ground_truth, truncate=args.truncate)
    # 2. outputs: refuse to clobber before spending the compute
    for name in (JSON_NAME, CSV_NAME, PER_VIDEO_CSV_NAME):
        if (args.output / name).exists() and not args.overwrite:
            raise OutputError(f"{args.output / name} already exists; pass --overwrite or choose another --output")
    # 3. networks
    needed = tuple(dict.fromkeys(METRIC_NETWORK[m] for m in metrics if m in METRIC_NETWORK))
    device = resolve_device(args.device)
    if networks is not None:
        label = "injected"
    elif args.random_weights_for_testing:
        networks, label = random_feature_networks(needed, device=device), RANDOM_NETWORKS_LABEL
    else:
        networks = load_feature_networks(needed, cache_dir=args.metrics_dir, device=device,
                                         inception_backend=args.inception)
        label = f"pretrained (weights from {metrics_dir(args.metrics_dir)}; inception: {args.inception})"
    # 4. evaluate, report
    result = evaluate_videos(pairs, networks=networks, protocol=protocol, metrics=metrics,
                             method=args.name or args.generated.resolve().name, batch_size=args.batch_size,
                             progress=not args.no_progress, total=total)
    result.notes.extend(notes)
    print(format_table(result))
    if label == RANDOM_NETWORKS_LABEL:
        print(f"WARNING: {label}")
    for note in result.notes:
        print(f"note: {note}")
    paths = write_reports(result, args.output, networks=label, overwrite=args.overwrite)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def run_download_metrics(args: argparse.Namespace) -> int:
    """Run `download-metrics`; exit code 1 when a needed file still has to be fetched by hand."""
    from magicanimate.metrics.downloads import download_weights, metrics_dir

    status = download_weights(args.only, cache_dir=args.metrics_dir, include_optional=args.include_optional)
    folder = metrics_dir(args.metrics_dir)
    for key, state in status.items():
        print(f"{WEIGHT_FILES[key].filename}: {state}")
    manual = [k for k, s in status.items() if s.startswith("manual")]
    if manual:
        print(f"{len(manual)} file(s) must be placed in {folder} by hand (see above).", file=sys.stderr)
        return 1
    print(f"all requested metric weights are in {folder}")
    return 0
