"""``magicanimate download``, ``magicanimate check-weights`` and ``magicanimate pack-weights``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from magicanimate.errors import WeightsError
from magicanimate.weights.layout import HUB_FILES, LAYOUT_DIRS, WeightPaths, resolve_weights


def add_weights_parsers(subparsers) -> None:
    """Register ``download`` and ``check-weights``."""
    d = subparsers.add_parser(
        "download", help="download the released checkpoints into the release layout",
        description="Fetch SD 1.5 (tokenizer, text encoder, UNet), sd-vae-ft-mse and MagicAnimate from the "
                    "Hugging Face Hub into DIR/{stable-diffusion-v1-5,sd-vae-ft-mse,MagicAnimate}. "
                    "Interrupted downloads resume; sizes are verified against the Hub.",
    )
    d.add_argument("--to", type=Path, default=Path("pretrained_models"), help="target folder (default pretrained_models)")
    d.add_argument("--densepose", action="store_true",
                   help="instead: fetch only DensePose's model_final_162be9.pkl (for extract-motion and "
                        "--driving-video; 256 MB, licence CC BY-SA 3.0) into its cache "
                        "($MAGICANIMATE_DENSEPOSE_DIR or ~/.cache/magicanimate/densepose)")
    d.set_defaults(func=run_download)
    c = subparsers.add_parser(
        "check-weights", help="report which components are present, missing or mismatched",
        description="Check every component of a weights folder in the release layout: files present, "
                    "every tensor name and shape as the models expect. Reads no tensor data.",
    )
    c.add_argument("weights", nargs="?", help="folder in the release layout, or 'mini' (the mini model shipped in the package)")
    c.add_argument("--densepose", nargs="?", const="cached", metavar="PKL",
                   help="also check the DensePose checkpoint (default: the cached download)")
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
    """Download every released file with huggingface_hub, then verify sizes (or only the DensePose weights)."""
    if args.densepose:
        return download_densepose()
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    _check_hub_reachable(args.to)
    logging.getLogger("huggingface_hub").propagate = False  # it prints its own warnings: once, not twice
    total = sum(len(files) for files in HUB_FILES.values())
    done = 0
    created = [args.to / LAYOUT_DIRS[repo] for repo in HUB_FILES if not (args.to / LAYOUT_DIRS[repo]).exists()]
    if not args.to.exists():
        created.append(args.to)
    for repo, files in HUB_FILES.items():
        folder = args.to / LAYOUT_DIRS[repo]
        for filename in files:
            done += 1
            print(f"[{done}/{total}] {repo}/{filename}", file=sys.stderr)
            try:
                path = Path(hf_hub_download(repo, filename, local_dir=folder))
                expected = get_hf_file_metadata(hf_hub_url(repo, filename)).size
            except Exception as err:  # network, auth, disk
                _remove_if_nothing_downloaded(created)
                reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
                raise WeightsError(
                    f"downloading {repo}/{filename} failed ({type(err).__name__}: {reason}); check the "
                    "connection to huggingface.co and run the command again (finished files are kept, a "
                    f"partial one resumes), or fetch the repository with `hf download {repo} --local-dir "
                    f"{folder}`") from err
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


def _check_hub_reachable(target: Path) -> None:
    """Fail at once, in one line, when the Hub cannot be reached (instead of minutes of retries)."""
    import os
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    hint = (f"run the command again once connected, or fetch the repositories elsewhere with `hf download REPO "
            f"--local-dir {target}/FOLDER` ({', '.join(f'{r} -> {LAYOUT_DIRS[r]}' for r in HUB_FILES)}) and "
            "copy the folder here")
    if constants.HF_HUB_OFFLINE:
        raise WeightsError(f"HF_HUB_OFFLINE is set, so nothing can be downloaded; {hint}")
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return  # through a proxy a direct connection says nothing
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=10).close()
    except OSError as err:
        raise WeightsError(f"cannot reach the Hugging Face Hub at {constants.ENDPOINT} ({err}); {hint}") from None


def _remove_if_nothing_downloaded(folders: list[Path]) -> None:
    """Delete the folders this download created when they hold no downloaded data (only Hub metadata)."""
    import shutil

    for folder in folders:
        if folder.is_dir() and not any(_is_downloaded_data(f, folder) for f in folder.rglob("*") if f.is_file()):
            shutil.rmtree(folder, ignore_errors=True)


def _is_downloaded_data(file: Path, folder: Path) -> bool:
    """A finished file, or a non-empty partial one (``.incomplete``) that a re-run resumes."""
    if ".cache" not in file.relative_to(folder).parts:
        return True
    return file.suffix == ".incomplete" and file.stat().st_size > 0


def download_densepose() -> int:
    """Fetch DensePose's checkpoint into its cache with a progress bar (resumes a partial download)."""
    from tqdm import tqdm

    from magicanimate.densepose import LICENSE, URL, download_densepose_weights

    print(f"DensePose weights from {URL} (licence {LICENSE})", file=sys.stderr)
    with tqdm(unit="B", unit_scale=True, file=sys.stderr, dynamic_ncols=True) as bar:
        def progress(done: int, total: int | None) -> None:
            bar.total = total
            bar.update(done - bar.n)

        path = download_densepose_weights(progress=progress)
    print(f"DensePose weights are in {path}; check them with: magicanimate check-weights --densepose")
    return 0


def check_densepose(spec: str) -> tuple[str, str, str]:
    """One check-weights row for the DensePose checkpoint (``spec``: a path or "cached")."""
    from magicanimate.densepose import check_densepose_weights, densepose_weights_path

    try:
        path = densepose_weights_path() if spec == "cached" else Path(spec)
        if not path.is_file():
            raise WeightsError(f"not found: {path}")
        check_densepose_weights(path)
    except WeightsError as err:
        return "densepose", "missing" if "not found" in str(err) else "mismatch", str(err)
    return "densepose", "ok", str(path)


def run_check_weights(args: argparse.Namespace) -> int:
    """Print a table of components and exit 1 if any is missing or mismatched."""
    from magicanimate.weights.build import verify_components

    if args.weights is None and args.densepose is None:
        raise WeightsError("give a weights folder, --densepose, or both")
    results = []
    if args.weights is not None:
        args.weights = resolve_weights(args.weights)
        if args.weights.is_file():
            raise WeightsError(f"{args.weights} is a file: check-weights takes the weights folder (the release "
                               "layout, as written by `magicanimate download`); for DensePose's .pkl use "
                               "--densepose FILE")
        if not args.weights.is_dir():
            raise WeightsError(f"weights folder not found: {args.weights}")
        results += verify_components(WeightPaths.release_layout(args.weights))
    if args.densepose is not None:
        results.append(check_densepose(args.densepose))
    width = max(len(name) for name, _, _ in results)
    for name, status, detail in results:
        print(f"{name.ljust(width)}  {status.upper():8}  {detail}")
    bad = [r for r in results if r[1] != "ok"]
    print(f"{len(results) - len(bad)} of {len(results)} checks ok")
    return 1 if bad else 0
