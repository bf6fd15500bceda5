"""The ``magicanimate`` command: subcommands, one-line errors, exit codes."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import traceback
from typing import Sequence

from magicanimate import __version__
from magicanimate.errors import MagicAnimateError

OOM_HINT = ("out of memory: use --offload (models on the GPU one at a time) and --vae-tiling, "
            "--dtype float16 on a GPU, or lower --size")


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``finally`` runs (temporary outputs are removed)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    from magicanimate.cli.animate import add_animate_parser
    from magicanimate.cli.extract_motion import add_extract_motion_parser
    from magicanimate.cli.evaluate import add_download_metrics_parser, add_evaluate_parser
    from magicanimate.cli.weights import add_weights_parsers

    parser = argparse.ArgumentParser(
        prog="magicanimate",
        description="MagicAnimate: animate a reference image with a DensePose motion video.",
    )
    parser.add_argument("--version", action="version", version=f"magicanimate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_animate_parser(sub)
    add_extract_motion_parser(sub)
    add_weights_parsers(sub)
    add_evaluate_parser(sub)
    add_download_metrics_parser(sub)
    from magicanimate.cli.app import add_app_parser  # gradio itself is imported only when the app starts
    from magicanimate.cli.train import add_train_parser

    add_app_parser(sub)
    add_train_parser(sub)
    for action in sub.choices.values():
        if not any("--verbose" in a.option_strings for a in action._actions):
            action.add_argument("--verbose", action="store_true", help="show tracebacks and debug logs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 failure, 2 usage error, 130 Ctrl-C, 143 SIGTERM)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_terminated)  # like Ctrl-C: clean up, then exit
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated", file=sys.stderr)
        return 128 + int(signal.SIGTERM)
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
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _is_out_of_memory(err: Exception) -> bool:
    import torch

    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


if __name__ == "__main__":
    sys.exit(main())
