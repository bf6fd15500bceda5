"""Claiming batch jobs across processes, launches and hosts: one lock file beside each job's output.

A claim is ``OUTPUT.claim``, created with ``os.open(O_CREAT | O_EXCL)`` (atomic on local
filesystems and on NFSv3+), holding the claimer's pid, host, start time and a random token.
While the job runs, a heartbeat thread refreshes the file's mtime every ``stale_after / 10``
seconds (at most 30 s). The claim is removed when the job ends, done or failed.

A claim is *stale*, and may be taken over, when

* it was made on this host (same hostname and pid namespace) and its pid is no longer
  alive (a killed launch), or
* its heartbeat (mtime) is older than ``stale_after`` seconds (any host; default 600 s), or
* it cannot be read (the claimer died between creating and writing it) and is older than that.

Taking over first creates ``OUTPUT.claim.takeover`` (``O_EXCL`` too), re-reads the claim,
removes it only if it is still the file judged stale (same inode and content), drops the
takeover lock and then claims afresh with ``O_EXCL``; so of several processes taking over one
stale claim, one wins. (A takeover lock left by a process that died within those
milliseconds is itself stale after its pid dies or 60 s.) A holder checks with
``Claim.held()`` that nobody took its claim over before writing its outputs.
Hosts are compared by ``socket.gethostname()`` and the pid namespace; clocks of hosts sharing a filesystem must
agree to well within ``stale_after``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CLAIM_SUFFIX = ".claim"
DEFAULT_STALE_AFTER = 600.0  # seconds without a heartbeat after which another host may take a claim over
MAX_HEARTBEAT_EVERY = 30.0
TAKEOVER_SUFFIX = ".takeover"  # CLAIM.takeover: held for the milliseconds of removing a stale claim
TAKEOVER_STALE_AFTER = 60.0


@dataclass(frozen=True)
class ClaimInfo:
    """What a claim file says: who holds it, since when, and its last heartbeat (mtime)."""

    path: Path
    pid: int | None
    host: str | None
    started: float | None
    token: str | None
    heartbeat: float
    pid_namespace: str | None
    inode: int
    raw: bytes

    def describe(self) -> str:
        """``host pid N`` (or ``an unreadable claim``), for messages."""
        if self.pid is None:
            return f"an unreadable claim {self.path}"
        return f"{self.host} pid {self.pid}"


def claim_path(output: str | Path) -> Path:
    """The claim file of a job: its output path with ``.claim`` added, beside it."""
    out = Path(output)
    return out.with_name(out.name + CLAIM_SUFFIX)


def read_claim(path: str | Path) -> ClaimInfo | None:
    """The claim at ``path``, or None when there is none."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            stat = os.fstat(f.fileno())
            raw = f.read(4096)
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw.decode())
        pid, host = int(data["pid"]), str(data["host"])
        started, token = float(data["started"]), str(data["token"])
        namespace = data.get("pid_namespace")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, AttributeError):
        pid = host = started = token = namespace = None
    return ClaimInfo(path=path, pid=pid, host=host, started=started, token=token, heartbeat=stat.st_mtime,
                     pid_namespace=namespace, inode=stat.st_ino, raw=raw)


def pid_namespace() -> str | None:
    """This process's pid namespace (Linux: ``pid:[inode]``), so containers sharing a hostname differ."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def is_stale(info: ClaimInfo, *, stale_after: float = DEFAULT_STALE_AFTER, now: float | None = None) -> bool:
    """Whether ``info`` may be taken over: its process died on this host, or its heartbeat is too old."""
    now = time.time() if now is None else now
    here = info.host == socket.gethostname() and info.pid_namespace == pid_namespace()
    if info.pid is not None and here and not pid_alive(info.pid):
        return True
    return now - info.heartbeat > stale_after


class Claim:
    """A held claim: refreshed by a heartbeat thread until ``release()`` (also a context manager)."""

    def __init__(self, path: Path, token: str, *, stale_after: float, heartbeat: bool = True):
        self.path, self.token, self.stale_after = path, token, stale_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if heartbeat:
            every = min(MAX_HEARTBEAT_EVERY, stale_after / 10)
            self._thread = threading.Thread(target=self._beat, args=(every,), daemon=True,
                                            name=f"claim heartbeat {path.name}")
            self._thread.start()

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            if not self.held():
                return
            try:
                os.utime(self.path)
            except OSError:
                return

    def held(self) -> bool:
        """Whether the claim file is still this claim (not released, not taken over)."""
        info = read_claim(self.path)
        return info is not None and info.token == self.token

    def release(self) -> None:
        """Stop the heartbeat and remove the claim file if it is still ours."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        if self.held():
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def try_claim(output: str | Path, *, stale_after: float = DEFAULT_STALE_AFTER, heartbeat: bool = True) -> Claim | None:
    """Claim the job writing ``output``; None when a live claim of another process holds it.

    A stale claim (see the module docstring) is taken over.
    """
    path = claim_path(output)
    for _ in range(50):  # more rounds while others take over or release at the same moment
        claim = _create(path, stale_after=stale_after, heartbeat=heartbeat)
        if claim is not None:
            return claim
        info = read_claim(path)
        if info is None:
            continue  # released meanwhile: try again
        if not is_stale(info, stale_after=stale_after):
            return None
        _remove_stale(info, stale_after=stale_after)
    return None


def holder(output: str | Path) -> ClaimInfo | None:
    """Who claims the job writing ``output`` now (None: nobody)."""
    return read_claim(claim_path(output))


def _create(path: Path, *, stale_after: float, heartbeat: bool) -> Claim | None:
    """Create the claim file exclusively, or None when it exists."""
    token = uuid.uuid4().hex
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    try:
        record = {"pid": os.getpid(), "host": socket.gethostname(), "pid_namespace": pid_namespace(),
                  "started": time.time(), "token": token}
        os.write(fd, json.dumps(record).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return Claim(path, token, stale_after=stale_after, heartbeat=heartbeat)


def _remove_stale(info: ClaimInfo, *, stale_after: float) -> None:
    """Remove the stale claim ``info``, holding ``CLAIM.takeover`` meanwhile, unless it was replaced since read."""
    lock = info.path.with_name(info.path.name + TAKEOVER_SUFFIX)
    takeover = _create(lock, stale_after=stale_after, heartbeat=False)
    if takeover is None:  # another process is taking over; or died doing so
        other = read_claim(lock)
        if other is not None and is_stale(other, stale_after=min(stale_after, TAKEOVER_STALE_AFTER)):
            _rename_away(other)
        time.sleep(0.01)
        return
    try:
        now = read_claim(info.path)
        if now is not None and now.inode == info.inode and now.raw == info.raw:
            os.unlink(info.path)  # nobody can replace it meanwhile: that needs the path gone or the takeover lock
    finally:
        takeover.release()


def _rename_away(info: ClaimInfo) -> None:
    """Remove the stale takeover lock ``info`` (renamed first; put back if it was not the one judged stale)."""
    tomb = info.path.with_name(f"{info.path.name}.stale-{uuid.uuid4().hex}")
    try:
        os.rename(info.path, tomb)
    except FileNotFoundError:
        return
    moved = read_claim(tomb)
    if moved is not None and (moved.inode != info.inode or moved.raw != info.raw):
        try:
            os.link(tomb, info.path)
        except FileExistsError:
            pass
    try:
        os.unlink(tomb)
    except FileNotFoundError:
        pass
