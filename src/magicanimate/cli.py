"""The ``magicanimate`` command: subcommands, one-line errors, exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from typing import Sequence

from . import __version__
from .errors import InputError, MagicAnimateError

OOM_HINT = ("out of memory: use --offload (models on the GPU one at a time) and --vae-tiling, "
            "--dtype float16 on a GPU, or lower --size")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    from .cli_animate import add_animate_parser
    from .cli_evaluate import add_download_metrics_parser, add_evaluate_parser
    from .cli_weights import add_weights_parsers

    parser = argparse.ArgumentParser(
        prog="magicanimate",
        description="MagicAnimate: animate a reference image with a DensePose motion video.",
    )
    parser.add_argument("--version", action="version", version=f"magicanimate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_animate_parser(sub)
    add_weights_parsers(sub)
    add_evaluate_parser(sub)
    add_download_metrics_parser(sub)
    from .cli_app import add_app_parser  # gradio itself is imported only when the app starts
    from .cli_train import add_train_parser

    add_app_parser(sub)
    add_train_parser(sub)
    for action in sub.choices.values():
        if not any("--verbose" in a.option_strings for a in action._actions):
            action.add_argument("--verbose", action="store_true", help="show tracebacks and debug logs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 failure, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MagicAnimateError as err:
        if verbose:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return 1
    except MemoryError:
        if verbose:
            traceback.print_exc()
        print(f"error: {OOM_HINT}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - turned into one line unless --verbose
        if _is_out_of_memory(err):
            if verbose:
                traceback.print_exc()
            print(f"error: {OOM_HINT}", file=sys.stderr)
            return 1
        if verbose:
            raise
        print(f"error: {type(err).__name__}: {err} (run with --verbose for the traceback)", file=sys.stderr)
        return 1


def _is_out_of_memory(err: Exception) -> bool:
    import torch

    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


def int_at_least(minimum: int):
    """An argparse type accepting integers >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"  # shown by argparse in error messages
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def resolve_device_dtype(device: str, dtype: str):
    """--device/--dtype strings -> torch objects (auto: CUDA if present, float16 there)."""
    import torch

    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       "cpu" if device == "auto" else device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was given but no CUDA device is available")
    names = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    dt = (torch.float16 if dev.type == "cuda" else torch.float32) if dtype == "auto" else names[dtype]
    return dev, dt


if __name__ == "__main__":
    sys.exit(main())
