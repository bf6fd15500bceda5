"""``magicanimate train``: both training stages; flags map onto ``training.config.TrainConfig``.

Single process:  magicanimate train --stage 1 --config configs/stage1.yaml --set data.root=data/tiktok
Multi-GPU:       accelerate launch --num_processes 8 -m magicanimate train --stage 1 --config ...
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
from pathlib import Path
from typing import Sequence

import yaml

from magicanimate.cli.arguments import positive_int
from magicanimate.errors import InputError, MagicAnimateError

# Dedicated flags and the config fields they set (names equal; checked against the schema).
FLAG_FIELDS = ("max_steps", "time_budget", "output")


def _config_epilog() -> str:
    from magicanimate.training.config import describe_fields

    lines = ["config keys (YAML nesting = dots; set any of them with --set KEY=VALUE):"]
    for name, default, text in describe_fields():
        lines.append(f"  {name} = {default}")
        lines.extend(textwrap.wrap(text, width=88, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(lines)


def add_train_parser(subparsers) -> None:
    """Register ``train``."""
    p = subparsers.add_parser(
        "train", help="train stage 0 (VAE), 1 (appearance encoder + ControlNet) or 2 (motion modules)",
        description="Train MagicAnimate. A YAML config fills the training config; --set and the flags "
                    "below override single keys. Multi-GPU: accelerate launch -m magicanimate train "
                    "<these options>. See docs/training.md.",
        epilog=_config_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--stage", type=int, choices=(0, 1, 2), required=True,
                   help="0: the VAE from scratch; 1: appearance encoder + DensePose ControlNet (+ UNet); "
                        "2: motion modules")
    p.add_argument("--config", help="YAML config (configs/stage1.yaml, configs/stage2.yaml)")
    p.add_argument("--max-steps", type=positive_int, help="optimiser steps of the run (config: max_steps)")
    p.add_argument("--time-budget", help="stop cleanly before this wall time: seconds, '90m', '11h30m' "
                                         "(config: time_budget)")
    p.add_argument("--output", help="run folder (config: output)")
    p.add_argument("--resume", nargs="?", const="latest", metavar="CHECKPOINT",
                   help="continue from a checkpoint folder, or the latest in the run folder (no value / 'latest')")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set data.root=data/tiktok --set optim.learning_rate=1e-5")
    p.add_argument("--check-data", action="store_true",
                   help="read every dataset item once, list problems (lengths, fps, sizes, decoding) and exit")
    p.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    p.set_defaults(func=run_train)


def resolve_config(args: argparse.Namespace):
    """The ``TrainConfig`` of parsed arguments: defaults < YAML < --set < dedicated flags."""
    from magicanimate.training.config import load_config, parse_assignments

    overrides: dict[str, object] = parse_assignments(args.set)
    if args.config:
        path = Path(args.config)
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            raw = {}  # load_config reports the problem
        if isinstance(raw, dict) and "stage" in raw and raw["stage"] != args.stage:
            raise InputError(f"--stage {args.stage} but {path} is a stage {raw['stage']} config")
    overrides["stage"] = args.stage
    for name in FLAG_FIELDS:
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    return load_config(args.config, overrides)


def run_train(args: argparse.Namespace) -> int:
    """Run ``train``; returns the exit code."""
    cfg = resolve_config(args)
    if args.print_config:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    if args.check_data:
        from magicanimate.training.data import check_items, load_items

        items, problems = load_items(cfg.data, cfg.data.split)
        problems += check_items(items, cfg.data)
        print(f"{len(items)} items in split {cfg.data.split!r}; {len(problems)} problems")
        for line in problems:
            print(f"  {line}")
        return 1 if problems else 0
    from magicanimate.training import train

    summary = train(cfg.check(), resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"trained steps {summary.start_step}..{summary.start_step + summary.steps} "
              f"({summary.stopped}); {summary.steps_per_second:.3g} steps/s; weights: {summary.weights}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m magicanimate train`` (the ``train`` options, no subcommand)."""
    parser = argparse.ArgumentParser(prog="python -m magicanimate train")
    sub = parser.add_subparsers(dest="command")
    add_train_parser(sub)
    args = parser.parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.INFO if os.environ.get("MAGICANIMATE_VERBOSE") else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except MagicAnimateError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _check_flag_fields() -> None:
    from magicanimate.training.config import iter_fields

    names = {name for name, _ in iter_fields()}
    missing = [f for f in FLAG_FIELDS if f not in names]
    if missing:  # a renamed config field must rename its flag too
        raise AssertionError(f"train flags map to unknown config fields: {missing}")
