"""Job claims (OUTPUT.claim): exclusive, released, stale ones taken over by exactly one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from magicanimate.runtime.distributed import assign_jobs
from magicanimate.runtime.job_claims import (
    claim_path, holder, is_stale, pid_alive, pid_namespace, read_claim, try_claim,
)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)
    return proc.pid


def _plant(output, *, pid: int, host: str, age: float = 0.0, token: str = "planted",
           namespace: str | None = None) -> None:
    path = claim_path(output)
    path.write_text(json.dumps({"pid": pid, "host": host, "pid_namespace": namespace or pid_namespace(),
                                "started": time.time() - age, "token": token}))
    os.utime(path, (time.time() - age, time.time() - age))


def test_a_claim_is_exclusive_and_released(tmp_path):
    out = tmp_path / "a.mp4"
    first = try_claim(out)
    assert first is not None and claim_path(out) == tmp_path / "a.mp4.claim"
    info = holder(out)
    assert info.pid == os.getpid() and info.host == socket.gethostname() and info.token == first.token
    assert try_claim(out) is None  # held by a live process (this one)
    assert first.held()
    first.release()
    assert not claim_path(out).exists() and not first.held()
    second = try_claim(out)
    assert second is not None
    first.release()  # a released claim does not remove the next holder's
    assert second.held()
    with second:
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_dead_process_claim_on_this_host_is_taken_over(tmp_path):
    out = tmp_path / "a.mp4"
    _plant(out, pid=_dead_pid(), host=socket.gethostname())
    claim = try_claim(out)
    assert claim is not None and holder(out).token == claim.token
    claim.release()
    assert list(tmp_path.iterdir()) == []  # no tombstone left


def test_a_live_claim_is_kept_until_its_heartbeat_is_old(tmp_path):
    out = tmp_path / "a.mp4"
    _plant(out, pid=os.getpid(), host=socket.gethostname())
    assert try_claim(out) is None
    # another host: its pid means nothing here; only the heartbeat's age counts
    _plant(out, pid=_dead_pid(), host="elsewhere", age=5)
    assert try_claim(out, stale_after=60) is None
    # same hostname, another pid namespace (a container): its pids mean nothing here either
    _plant(out, pid=_dead_pid(), host=socket.gethostname(), namespace="pid:[1]", age=5)
    assert try_claim(out, stale_after=60) is None
    _plant(out, pid=os.getpid(), host="elsewhere", age=120)
    claim = try_claim(out, stale_after=60)
    assert claim is not None
    claim.release()


def test_an_unreadable_claim_counts_by_age(tmp_path):
    out = tmp_path / "a.mp4"
    claim_path(out).write_bytes(b"")  # its process died between creating and writing it
    info = read_claim(claim_path(out))
    assert info.pid is None and not is_stale(info, stale_after=60)
    assert try_claim(out, stale_after=60) is None
    assert is_stale(info, stale_after=60, now=time.time() + 61)
    old = time.time() - 61
    os.utime(claim_path(out), (old, old))
    claim = try_claim(out, stale_after=60)
    assert claim is not None
    claim.release()


def test_the_heartbeat_keeps_a_claim_fresh(tmp_path):
    out = tmp_path / "a.mp4"
    claim = try_claim(out, stale_after=0.5)  # beats every 0.05 s
    try:
        old = time.time() - 100
        os.utime(claim_path(out), (old, old))
        time.sleep(0.3)
        assert time.time() - read_claim(claim_path(out)).heartbeat < 0.5
        assert try_claim(out, stale_after=0.5) is None
    finally:
        claim.release()
    assert not claim_path(out).exists()


def test_a_taken_over_claim_is_not_held_and_its_release_keeps_the_new_one(tmp_path):
    out = tmp_path / "a.mp4"
    old = try_claim(out, heartbeat=False)
    stale = time.time() - 100
    os.utime(claim_path(out), (stale, stale))
    new = try_claim(out, stale_after=10)
    assert new is not None and not old.held() and new.held()
    old.release()
    assert new.held()
    new.release()


@pytest.mark.parametrize("round_", range(3))
def test_of_many_taking_over_one_stale_claim_one_wins(tmp_path, round_):
    out = tmp_path / "a.mp4"
    _plant(out, pid=_dead_pid(), host=socket.gethostname())
    start = threading.Barrier(8)
    won = []

    def take() -> None:
        start.wait()
        claim = try_claim(out, heartbeat=False)
        if claim is not None:
            won.append(claim)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and won[0].held()
    won[0].release()
    assert list(tmp_path.iterdir()) == []


def test_the_assignment_rule():
    # at least as many jobs as ranks: whole jobs, round-robin
    assert assign_jobs([True] * 5, 2) == [(0,), (1,), (0,), (1,), (0,)]
    assert assign_jobs([True, False], 1) == [(0,), (0,)]
    # fewer jobs than ranks: a long job gets every P-th rank, a short one its first rank only
    assert assign_jobs([True], 4) == [(0, 1, 2, 3)]
    assert assign_jobs([True, False], 5) == [(0, 2, 4), (1,)]
    assert assign_jobs([], 3) == []
