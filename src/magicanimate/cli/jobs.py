"""Batch jobs of ``animate``: one ``Job`` per entry of a YAML/JSON/CSV file, options from ``SampleOptions``."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from magicanimate.errors import InputError, MagicAnimateError
from magicanimate.options import SampleOptions, flag, option_specs

PATH_FIELDS = ("reference", "motion", "driving_video", "output", "grid", "save_array")
REQUIRED_FIELDS = ("reference", "output")
FLAG_FIELDS = ("overwrite", "align")


@dataclass
class Job:
    """One animation: its inputs, outputs and options (job-file field names equal the flag names)."""

    reference: str
    motion: str | None
    output: str
    options: SampleOptions = field(default_factory=SampleOptions)
    driving_video: str | None = None  # instead of motion: an ordinary video, DensePose extracted
    align: bool = True  # fit an extracted motion to the reference's person
    grid: str | None = None
    save_array: str | None = None
    overwrite: bool = False


@dataclass
class BadJob:
    """A jobs-file entry that cannot run (an unknown field, a bad value): it fails alone."""

    output: str
    problem: str


def known_fields() -> list[str]:
    """Every field a job entry may set."""
    return sorted([*PATH_FIELDS, *FLAG_FIELDS, *option_specs()])


def job_from_mapping(data: dict[str, Any], *, base: Path, defaults: Job) -> Job:
    """A job from one entry of a jobs file; relative paths are relative to the file, the rest from ``defaults``."""
    keys = {str(k).replace("-", "_"): v for k, v in data.items() if v not in (None, "")}
    unknown = set(keys) - set(known_fields())
    if unknown:
        raise InputError(f"unknown job fields {sorted(unknown)}; known: {known_fields()}")
    for required in REQUIRED_FIELDS:
        if required not in keys:
            raise InputError(f"job {data} has no '{required}'")
    if ("motion" in keys) == ("driving_video" in keys):
        raise InputError(f"job {data} needs exactly one of 'motion' and 'driving_video'")
    paths = {}
    for name in PATH_FIELDS:
        if name in keys:
            p = Path(str(keys.pop(name))).expanduser()
            paths[name] = str(p if p.is_absolute() else base / p)
    flags = {name: flag(keys.pop(name), name) for name in FLAG_FIELDS if name in keys}
    try:
        options = defaults.options.replace(**keys)
    except InputError as err:
        raise InputError(f"job {paths['output']}: {err}") from None
    return replace(defaults, **paths, **flags, options=options)


def read_jobs(path: Path, defaults: Job) -> list[Job | BadJob]:
    """Jobs from a YAML/JSON list of mappings (or a mapping with a ``jobs`` list) or a CSV with a header row.

    A file that cannot be read raises ``InputError``; an entry that cannot run becomes a
    ``BadJob`` (reported as failed while the others run).
    """
    if not path.is_file():
        raise InputError(f"jobs file not found: {path}")
    text = path.read_text()
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            entries = yaml.safe_load(text)
        elif suffix == ".json":
            entries = json.loads(text)
        elif suffix == ".csv":
            entries = list(csv.DictReader(text.splitlines()))
        else:
            raise InputError(f"jobs file {path} must be .yaml, .yml, .json or .csv")
    except MagicAnimateError:
        raise
    except Exception as err:
        raise InputError(f"cannot parse jobs file {path}: {err}") from None
    if isinstance(entries, dict) and "jobs" in entries:
        entries = entries["jobs"]
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise InputError(f"jobs file {path} must hold a non-empty list of jobs (mappings)")
    return [_job_or_bad(e, base=path.parent, defaults=defaults) for e in entries]


def _job_or_bad(data: dict[str, Any], *, base: Path, defaults: Job) -> Job | BadJob:
    """``job_from_mapping``, or the entry's problem as a ``BadJob``."""
    try:
        return job_from_mapping(data, base=base, defaults=defaults)
    except InputError as err:
        output = data.get("output")
        return BadJob(output=str(output) if output not in (None, "") else "?", problem=str(err))


def grid_path(job: Job) -> Path | None:
    """Where the grid goes: an explicit path, or OUTPUT with '.grid' before the suffix."""
    if job.grid is None:
        return None
    if job.grid != "auto":
        return Path(job.grid)
    out = Path(job.output)
    return out.with_name(out.stem + ".grid" + out.suffix) if out.suffix else out.with_name(out.name + "_grid")
