"""Argument types and flags shared by the subcommands, including the ``SampleOptions`` flags."""

from __future__ import annotations

import argparse
from typing import Any, Callable

from magicanimate.errors import InputError
from magicanimate.options import GROUP_TITLES, SampleOptions, iter_options, option_defaults


def int_at_least(minimum: int) -> Callable[[str], int]:
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


def option_type(name: str, parse: Callable[[Any, str], Any]) -> Callable[[str], Any]:
    """An argparse type from an option's parser (its InputError becomes argparse's error)."""

    def convert(text: str) -> Any:
        try:
            return parse(text, name)
        except InputError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = name
    return convert


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per ``SampleOptions`` field (``--steps``, ``--deep-cache`` ...), grouped, with its default."""
    defaults = option_defaults()
    groups: dict[str, argparse._ArgumentGroup] = {}
    for name, spec in iter_options():
        group = groups.get(spec.group) or groups.setdefault(spec.group,
                                                             parser.add_argument_group(GROUP_TITLES[spec.group]))
        flag = "--" + name.replace("_", "-")
        if isinstance(defaults[name], bool):
            group.add_argument(flag, action="store_true", default=defaults[name], help=spec.help)
        else:
            group.add_argument(flag, type=option_type(name, spec.parse), default=defaults[name],
                               choices=spec.choices, metavar=spec.metavar, help=spec.help)


def options_from_args(args: argparse.Namespace) -> SampleOptions:
    """The ``SampleOptions`` given by the flags of ``add_option_flags``."""
    return SampleOptions.from_mapping({name: getattr(args, name) for name, _ in iter_options()})
