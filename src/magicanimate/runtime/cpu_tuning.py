"""Process-wide CPU settings that change speed, never results.

glibc's malloc serves large blocks (over 32 MB at most) with fresh ``mmap`` pages and
unmaps them on free, so every large activation of a CPU run is page-faulted in again:
about 5-10 % of a small-model run on two cores. ``keep_freed_memory`` makes malloc keep
freed memory in its heap for reuse instead. The trade-off is a higher resident size
after a run, because freed memory is not given back to the system while the process
lives. It is called by the command line and the benchmark when they run on the CPU; a
library user may call it once at start-up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# mallopt parameters (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Have glibc malloc reuse freed memory instead of unmapping it; False where not available."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    log.debug("malloc keeps freed memory: %s", ok)
    return ok
