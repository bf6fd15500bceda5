"""Checking every output path of ``animate`` before any work: kind, folder, overwrite, and never an input.

An output that resolves to an input (or a folder output that holds one) would destroy
that input when written, so it is refused even with ``--overwrite``. Within a batch, two
jobs may not write the same path, and no job may write another job's input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from magicanimate.cli.jobs import Job, grid_path
from magicanimate.errors import OutputError


@dataclass(frozen=True)
class JobPaths:
    """The resolved inputs and outputs of one job, each output under the name of its flag."""

    inputs: dict[str, Path]
    outputs: dict[str, Path]


def extracted_motion_path(job: Job) -> Path:
    """Where a ``--driving-video`` job saves its extracted motion: OUTPUT.motion.mp4 beside the output."""
    out = Path(job.output)
    return out.with_name((out.stem if out.suffix else out.name) + ".motion.mp4")


def job_paths(job: Job, *, jobs_file: Path | None = None, weights: str | None = None) -> JobPaths:
    """Every path ``job`` reads (with the jobs file and weights folder) and writes, resolved."""
    inputs = {"--reference": job.reference, "--motion": job.motion, "--driving-video": job.driving_video,
              "--jobs": jobs_file, "--weights": weights}
    outputs = {"--output": job.output, "--grid": grid_path(job), "--save-array": job.save_array,
               "extracted motion": extracted_motion_path(job) if job.driving_video else None}
    return JobPaths(inputs={k: _resolved(v) for k, v in inputs.items() if v},
                    outputs={k: _resolved(v) for k, v in outputs.items() if v})


def check_job_outputs(job: Job, paths: JobPaths) -> None:
    """Raise ``OutputError`` now for any output that ``run_job`` would refuse or that would hit an input."""
    from magicanimate.io.video import check_output

    seen: dict[Path, str] = {}
    for flag, out in paths.outputs.items():
        if out in seen:
            raise OutputError(f"{flag} and {seen[out]} are the same file {out}: give them different paths")
        seen[out] = flag
        check_not_an_input(flag, out, paths.inputs)
        _check_folder_writable(out, flag)
        if flag == "--save-array":
            check_array_output(out, overwrite=job.overwrite)
        else:
            check_output(out, overwrite=job.overwrite)


def check_not_an_input(flag: str, output: str | Path, inputs: dict[str, str | Path | None]) -> None:
    """Raise ``OutputError`` when ``output`` is one of ``inputs`` (by flag) or a folder that holds one."""
    out = _resolved(output)
    for in_flag, source in inputs.items():
        if not source:
            continue
        source = _resolved(source)
        if out == source or out in source.parents:
            what = "is" if out == source else "holds"
            raise OutputError(f"{flag} {out} {what} the {in_flag} input; writing it would destroy "
                              "that input (refused even with --overwrite): choose another output path")


def check_array_output(path: Path, *, overwrite: bool) -> None:
    """Raise ``OutputError`` unless ``path`` is a ``.npy`` that may be written."""
    if path.suffix.lower() != ".npy":
        raise OutputError(f"--save-array {path} must end in .npy")
    if path.is_dir():
        raise OutputError(f"--save-array {path} is a folder; give a .npy file")
    if path.exists() and not overwrite:
        raise OutputError(f"output {path} already exists; add --overwrite to replace it")


def clashes_between_jobs(all_paths: list[JobPaths]) -> dict[int, str]:
    """Jobs (by position) that write what an earlier job writes, or another job's input: why each is refused."""
    written: dict[Path, int] = {}
    read: dict[Path, tuple[int, str]] = {}
    for i, paths in enumerate(all_paths):
        for flag, source in paths.inputs.items():
            read.setdefault(source, (i, flag))
    problems: dict[int, str] = {}
    for i, paths in enumerate(all_paths):
        for flag, out in paths.outputs.items():
            if out in written:
                problems[i] = f"{flag} {out} is also written by job {written[out] + 1}: give each job its own outputs"
                break
            if out in read and read[out][0] != i:
                reader, in_flag = read[out]
                problems[i] = (f"{flag} {out} is the {in_flag} input of job {reader + 1}; writing it would "
                               "destroy that input")
                break
        else:
            for out in paths.outputs.values():
                written[out] = i
    return problems


def _check_folder_writable(out: Path, flag: str) -> None:
    """The output's nearest existing folder must be a folder we may write into."""
    folder = out.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"cannot write {flag} {out}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {flag} {out}: no permission to write into the folder {folder}")


def _resolved(path: str | Path) -> Path:
    """``path`` made absolute with symlinks resolved (a missing path is resolved as far as it exists)."""
    return Path(path).expanduser().resolve()
