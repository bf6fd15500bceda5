"""`animate --jobs` on several ranks (gloo) and launches: whole jobs per rank, each output written once.

Every process logs each file it writes (``write_video`` wrapped) to a shared log, one line
per write, so a job run twice shows up as two lines.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch.multiprocessing as mp
from PIL import Image

from conftest import TINY_WEIGHTS, require
from goldens import case_a
from magicanimate.runtime.job_claims import claim_path, pid_namespace, read_claim

FAST = ["--steps", "1", "--size", "64", "--quiet"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    Image.fromarray(case_a("source_image")).save(d / "ref.png")
    np.save(d / "short.npy", case_a("control")[:4])
    np.save(d / "long.npy", case_a("control")[:20])  # 20 frames: 2 windows
    return {"ref": d / "ref.png", "short": d / "short.npy", "long": d / "long.npy"}


def _jobs_file(folder: Path, inputs, motions: list[str]) -> Path:
    jobs = [{"reference": str(inputs["ref"]), "motion": str(inputs[m]), "output": f"out{k}.gif"}
            for k, m in enumerate(motions)]
    path = folder / "jobs.json"
    path.write_text(json.dumps(jobs))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(rank: int, world: int, port: int, jobs: str, log: str, name: str) -> None:
    """One rank of a launch: the real `animate --jobs`, with writes and window gathers logged."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), OMP_NUM_THREADS="1")
    import torch

    torch.set_num_threads(1)
    import magicanimate.io.video as video
    from magicanimate.cli.main import main
    from magicanimate.runtime.distributed import WindowSplit

    def note(line: str) -> None:
        with open(log, "a") as f:
            f.write(f"{name} {rank} {line}\n")

    write_video, gather = video.write_video, WindowSplit.gather

    def logged_write(path, *args, **kwargs):
        note(f"wrote {Path(path).name}")
        return write_video(path, *args, **kwargs)

    def logged_gather(self, predictions):
        note(f"gather {self.rank}/{self.world_size}")
        return gather(self, predictions)

    video.write_video, WindowSplit.gather = logged_write, logged_gather
    code = main(["animate", "--weights", str(TINY_WEIGHTS), *FAST, "--jobs", jobs])
    note(f"exit {code}")


def _start(world: int, jobs: Path, log: Path, name: str):
    return mp.start_processes(_launch, args=(world, _free_port(), str(jobs), str(log), name), nprocs=world,
                              start_method="spawn", join=False)


def _join(context) -> None:
    while not context.join():
        pass


def _lines(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines()]


def _writes(log: Path) -> Counter:
    return Counter(parts[3] for parts in _lines(log) if parts[2] == "wrote")


@pytest.mark.slow
def test_three_ranks_take_whole_jobs_and_split_only_when_jobs_are_few(tmp_path, inputs):
    require(TINY_WEIGHTS)
    many = tmp_path / "many"
    many.mkdir()
    log = tmp_path / "log"
    _join(_start(3, _jobs_file(many, inputs, ["short"] * 5), log, "A"))
    lines = _lines(log)
    assert sorted(p[3] for p in lines if p[2] == "exit") == ["0", "0", "0"]
    assert _writes(log) == Counter({f"out{k}.gif": 1 for k in range(5)})  # every job, each once
    by_rank = {(p[1], p[3]) for p in lines if p[2] == "wrote"}
    assert by_rank == {("0", "out0.gif"), ("1", "out1.gif"), ("2", "out2.gif"), ("0", "out3.gif"),
                       ("1", "out4.gif")}  # job k on rank k % 3, whole: no window gathers
    assert not [p for p in lines if p[2] == "gather"]
    assert not list(many.glob("*.claim*"))

    # two jobs, three ranks: the long one (2 windows) is split over ranks 0 and 2, the short one runs on rank 1
    few = tmp_path / "few"
    few.mkdir()
    log = tmp_path / "log2"
    _join(_start(3, _jobs_file(few, inputs, ["long", "short"]), log, "B"))
    lines = _lines(log)
    assert _writes(log) == Counter({"out0.gif": 1, "out1.gif": 1})
    assert {(p[1], p[3]) for p in lines if p[2] == "wrote"} == {("0", "out0.gif"), ("1", "out1.gif")}
    gathers = {(p[1], p[3]) for p in lines if p[2] == "gather"}
    assert gathers == {("0", "0/2"), ("2", "1/2")}
    assert len(read_motion_frames(few / "out0.gif")) == 20


def read_motion_frames(path: Path) -> np.ndarray:
    from magicanimate.io.video import read_motion

    return read_motion(path).frames


@pytest.mark.slow
def test_two_concurrent_launches_never_run_a_job_twice(tmp_path, inputs):
    require(TINY_WEIGHTS)
    jobs = _jobs_file(tmp_path, inputs, ["short"] * 6)
    log = tmp_path / "log"
    a = _start(2, jobs, log, "A")
    b = _start(1, jobs, log, "B")
    _join(a)
    _join(b)
    lines = _lines(log)
    assert sorted(p[3] for p in lines if p[2] == "exit") == ["0", "0", "0"]
    assert _writes(log) == Counter({f"out{k}.gif": 1 for k in range(6)})
    assert not list(tmp_path.glob("*.claim*"))


def test_a_stale_claim_is_taken_over_and_a_live_one_respected(tmp_path, inputs, capsys):
    from magicanimate.cli.main import main

    jobs = _jobs_file(tmp_path, inputs, ["short", "short"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    claim_path(tmp_path / "out0.gif").write_text(json.dumps(
        {"pid": dead.pid, "host": host, "pid_namespace": pid_namespace(), "started": time.time(), "token": "dead"}))
    live = {"pid": os.getpid(), "host": host, "pid_namespace": pid_namespace(), "started": time.time(),
            "token": "live"}
    claim_path(tmp_path / "out1.gif").write_text(json.dumps(live))
    code = main(["animate", "--weights", str(require(TINY_WEIGHTS)), *FAST, "--jobs", str(jobs)])
    out = capsys.readouterr().out
    assert code == 0 and "1 done, 1 skipped, 0 failed" in out and f"claimed by {host} pid {os.getpid()}" in out
    assert (tmp_path / "out0.gif").exists() and not claim_path(tmp_path / "out0.gif").exists()
    assert not (tmp_path / "out1.gif").exists() and read_claim(claim_path(tmp_path / "out1.gif")).token == "live"


def test_a_killed_launch_is_resumed_by_another(tmp_path, inputs, capsys):
    from magicanimate.cli.main import main

    jobs = _jobs_file(tmp_path, inputs, ["long", "short"])
    first = claim_path(tmp_path / "out0.gif")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "magicanimate", "animate", "--weights", str(TINY_WEIGHTS),
                             *FAST, "--jobs", str(jobs)], env=env)
    try:
        deadline = time.time() + 120
        while (read_claim(first) is None or read_claim(first).pid is None) and time.time() < deadline:
            assert proc.poll() is None, "the launch ended before it was killed"
            time.sleep(0.02)
        assert read_claim(first).pid == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert first.exists() and not (tmp_path / "out0.gif").exists()  # killed mid-job: the claim is left
    code = main(["animate", "--weights", str(TINY_WEIGHTS), *FAST, "--jobs", str(jobs)])
    assert code == 0 and "2 done, 0 skipped, 0 failed" in capsys.readouterr().out
    assert (tmp_path / "out0.gif").exists() and (tmp_path / "out1.gif").exists()
    assert not list(tmp_path.glob("*.claim*"))


def test_a_job_whose_claim_was_taken_over_writes_nothing(tmp_path, inputs):
    from magicanimate.cli.animate import ClaimLost, run_job
    from magicanimate.cli.jobs import Job
    from magicanimate.options import SampleOptions
    from magicanimate.runtime.job_claims import try_claim
    from goldens import tiny_model

    out = tmp_path / "out.gif"
    job = Job(reference=str(inputs["ref"]), motion=str(inputs["short"]), output=str(out),
              options=SampleOptions().replace(steps=1, size="64"))
    claim = try_claim(out, heartbeat=False)
    claim_path(out).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": 0, "token": "theirs"}))
    with pytest.raises(ClaimLost, match="taken over"):
        run_job(tiny_model(), job, quiet=True, claim=claim)
    assert not out.exists()
    claim.release()
    assert read_claim(claim_path(out)).token == "theirs"  # the new holder's claim stays


def test_claim_timeout_must_be_positive(tmp_path, inputs, capsys):
    from magicanimate.cli.main import main

    jobs = _jobs_file(tmp_path, inputs, ["short"])
    assert main(["animate", "--weights", str(TINY_WEIGHTS), *FAST, "--jobs", str(jobs), "--claim-timeout", "0"]) == 1
    assert "--claim-timeout must be a positive" in capsys.readouterr().err


def test_an_output_another_launch_writes_while_this_one_plans_is_skipped(tmp_path, inputs, monkeypatch, capsys):
    """Planning checks each job's files after the existence check: another launch may finish a job in
    between (seen with two concurrent launches); that job is done, not a failure."""
    import magicanimate.io.image as image
    from magicanimate.cli.main import main

    jobs = _jobs_file(tmp_path, inputs, ["short"])
    check = image.check_image_file

    def another_launch_finishes_the_job(path):
        (tmp_path / "out0.gif").write_bytes(b"written by another launch")
        return check(path)

    monkeypatch.setattr(image, "check_image_file", another_launch_finishes_the_job)
    assert main(["animate", "--weights", str(TINY_WEIGHTS), *FAST, "--jobs", str(jobs)]) == 0
    out = capsys.readouterr()
    assert "error" not in out.err and "skipped" in out.out
    assert (tmp_path / "out0.gif").read_bytes() == b"written by another launch"
