"""``python -m magicanimate.tools.job_sharding_benchmark``: a batch of jobs on 1 rank and on N ranks.

Writes random tiny weights and N synthetic jobs (reference + rendered DensePose motion),
then runs ``animate --jobs`` once per rank count with ``torchrun`` (gloo on CPU, NCCL on
GPUs), each into a fresh output folder, and reports the wall time of each launch, the
speed-up over one rank, the sum of the per-job times of the batch summary (model loading
and process start-up excluded), and whether every output was written exactly once (counted
from the ``wrote`` lines of every rank's log). Prints a table and writes JSON with the
machine's load average before and after.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

WROTE = re.compile(r"\] wrote (.+)$")
DONE = re.compile(r"^\d+\s+\S+\s+done\s+([0-9.]+) s$")  # a row of the batch summary: "#  output  done  1.2 s"


def make_jobs(folder: Path, *, jobs: int, frames: int, size: int) -> Path:
    """Synthetic inputs and a jobs file of ``jobs`` entries (outputs relative to it)."""
    import numpy as np
    from PIL import Image

    from magicanimate.synthetic.simple_person import render_motion, synthetic_reference

    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for k in range(jobs):
        Image.fromarray(synthetic_reference((size, size), seed=k)).save(folder / f"ref{k}.png")
        np.save(folder / f"motion{k}.npy", render_motion(frames, (size, size), seed=k))
        entries.append({"reference": str(folder / f"ref{k}.png"), "motion": str(folder / f"motion{k}.npy"),
                        "output": f"out{k}.gif", "seed": k})
    path = folder / "jobs.json"
    path.write_text(json.dumps(entries, indent=1))
    return path


def launch_command(*, ranks: int, jobs_file: Path, weights: Path, steps: int, size: int, port: int,
                   logs: Path) -> list[str]:
    """The torchrun command line of one launch (each rank's stdout and stderr in its own file under ``logs``)."""
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(ranks),
            "--master_addr", "127.0.0.1", "--master_port", str(port), "--log-dir", str(logs), "--redirects", "3",
            "-m", "magicanimate", "animate",
            "--weights", str(weights), "--jobs", str(jobs_file), "--steps", str(steps), "--size", str(size)]


def run_launch(*, ranks: int, jobs_file: Path, weights: Path, steps: int, size: int, threads: int) -> dict:
    """Run one launch; its wall time and how often each output was written."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logs = jobs_file.parent / "logs"
    cmd = launch_command(ranks=ranks, jobs_file=jobs_file, weights=weights, steps=steps, size=size, port=port,
                         logs=logs)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    stderr = "".join(p.read_text(errors="replace") for p in sorted(logs.rglob("stderr.log")))
    stdout = "".join(p.read_text(errors="replace") for p in sorted(logs.rglob("stdout.log")))
    lines = re.split(r"[\r\n]", stderr)  # one file per rank: no lines interleaved
    writes = Counter(Path(m.group(1)).name for line in lines if (m := WROTE.search(line.strip())))
    expected = sorted(json.loads(jobs_file.read_text()), key=lambda e: e["output"])
    missing = [e["output"] for e in expected if not (jobs_file.parent / e["output"]).exists()]
    if proc.returncode != 0:
        sys.stderr.write((proc.stderr + stderr)[-4000:])
    job_seconds = sum(float(m.group(1)) for line in stdout.splitlines() if (m := DONE.match(line.strip())))
    return {"ranks": ranks, "wall_s": round(wall, 2), "job_s_sum": round(job_seconds, 2),
            "returncode": proc.returncode,
            "outputs": len(expected) - len(missing), "missing": missing,
            "written_once": len(writes) == len(expected) and set(writes.values()) == {1} and not missing,
            "writes": dict(sorted(writes.items()))}


def table(rows: list[dict]) -> str:
    """A markdown table of the launches."""
    base = rows[0]["wall_s"]
    lines = ["| ranks | wall time | speed-up | sum of job times | outputs | each written once |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['ranks']} | {r['wall_s']:.1f} s | {base / r['wall_s']:.2f}× | {r['job_s_sum']:.1f} s | "
                     f"{r['outputs']} | "
                     f"{'yes' if r['written_once'] else 'NO'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every launch wrote every output exactly once."""
    p = argparse.ArgumentParser(prog="python -m magicanimate.tools.job_sharding_benchmark", description=__doc__)
    p.add_argument("--jobs", type=int, default=8, help="number of jobs (default 8)")
    p.add_argument("--ranks", default="1,2", help="comma-separated rank counts (default 1,2)")
    p.add_argument("--frames", type=int, default=8, help="motion frames per job (default 8)")
    p.add_argument("--size", type=int, default=64, help="output size (default 64)")
    p.add_argument("--steps", type=int, default=2, help="denoising steps (default 2)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per rank (default 1)")
    p.add_argument("--json", help="write the results to this JSON file")
    p.add_argument("--keep", help="work in this folder and keep it (default: a temporary folder)")
    args = p.parse_args(argv)

    from magicanimate.weights.random import write_tiny_weights

    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        weights = work / "weights"
        if not (weights / "MagicAnimate").exists():
            write_tiny_weights(weights)
        rows = []
        for ranks in [int(r) for r in args.ranks.split(",")]:
            jobs_file = make_jobs(work / f"ranks{ranks}", jobs=args.jobs, frames=args.frames, size=args.size)
            rows.append(run_launch(ranks=ranks, jobs_file=jobs_file, weights=weights, steps=args.steps,
                                   size=args.size, threads=args.threads))
            print(f"{ranks} rank(s): {rows[-1]['wall_s']:.1f} s", file=sys.stderr)
    result = {
        "command": "python -m magicanimate.tools.job_sharding_benchmark " + shlex.join(argv or sys.argv[1:]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": platform.platform(), "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "jobs": args.jobs, "frames": args.frames, "size": args.size, "steps": args.steps,
        "threads_per_rank": args.threads, "launches": rows,
    }
    print(table(rows))
    print(f"load average (1, 5, 15 min) before: {load_before}, after: {result['load_average_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all(r["written_once"] and r["returncode"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
