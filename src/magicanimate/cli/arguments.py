"""Argument types and flags shared by the subcommands, including the ``SampleOptions`` flags."""

from __future__ import annotations

import argparse
from typing import Callable

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


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per ``SampleOptions`` field (``--steps``, ``--deep-cache`` ...), grouped, with its default.

    Values stay text here and are checked by ``options_from_args`` (an ``InputError`` naming
    the flag: one ``error:`` line and exit code 1, like every other mistake).
    """
    defaults = option_defaults()
    groups: dict[str, argparse._ArgumentGroup] = {}
    for name, spec in iter_options():
        group = groups.get(spec.group) or groups.setdefault(spec.group,
                                                             parser.add_argument_group(GROUP_TITLES[spec.group]))
        if isinstance(defaults[name], bool):
            group.add_argument(flag_name(name), action="store_true", default=defaults[name], help=spec.help)
        else:
            metavar = spec.metavar or ("{" + ",".join(spec.choices) + "}" if spec.choices else name.upper())
            group.add_argument(flag_name(name), default=defaults[name], metavar=metavar, help=spec.help)


def flag_name(option: str) -> str:
    """The command-line flag of an option: ``deep_cache`` -> ``--deep-cache``."""
    return "--" + option.replace("_", "-")


def options_from_args(args: argparse.Namespace) -> SampleOptions:
    """The ``SampleOptions`` given by the flags of ``add_option_flags``; InputError names a bad flag."""
    values = {}
    for name, spec in iter_options():
        value = getattr(args, name)
        values[name] = value if value is None else spec.parse(value, flag_name(name))
    return SampleOptions.from_mapping(values)
