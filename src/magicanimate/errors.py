"""Exception types: every user mistake maps to one of these and one clear message."""

from __future__ import annotations


class MagicAnimateError(Exception):
    """Base class for errors caused by inputs, weights or options (not bugs)."""


class InputError(MagicAnimateError):
    """A reference image or motion input is missing, unreadable or has the wrong shape."""


class WeightsError(MagicAnimateError):
    """A checkpoint is missing, incomplete, or does not match the model it is loaded into."""


class OutputError(MagicAnimateError):
    """An output path cannot be written (exists without --overwrite, unsupported suffix, ...)."""
