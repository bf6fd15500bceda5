"""keep_freed_memory: freed tensors stay in the heap for reuse instead of going back to the system.

Checked with glibc's own bookkeeping (mallinfo2), not the resident size: how many blocks malloc
serves with mmap and how big its heap arena is are exact counts, independent of machine load.
The resident-memory effect (MB given back on free) is measured by `scripts/bench_numbers.py malloc`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import sys

import pytest

PROBE = """
import ctypes, ctypes.util, sys, torch
libc = ctypes.CDLL(ctypes.util.find_library("c"))
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "tuned":
    from magicanimate.runtime.cpu_tuning import keep_freed_memory
    assert keep_freed_memory()
before = libc.mallinfo2()
x = torch.ones(50 * 2**20)  # 200 MiB
during = libc.mallinfo2()
del x
after = libc.mallinfo2()
MiB = 2**20
print(during.hblks - before.hblks, (during.hblkhd - before.hblkhd) // MiB, (after.arena - before.arena) // MiB)
"""


def _has_mallinfo2() -> bool:
    name = ctypes.util.find_library("c")
    return name is not None and hasattr(ctypes.CDLL(name), "mallinfo2")


def _malloc_counts(mode: str) -> tuple[int, int, int]:
    """(new mmapped blocks, their MiB, heap arena growth in MiB after the free) for a 200 MiB tensor."""
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    blocks, mapped_mib, kept_mib = (int(v) for v in out.stdout.split())
    return blocks, mapped_mib, kept_mib


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _has_mallinfo2(),
                    reason="glibc malloc (>= 2.33, mallinfo2) only")
def test_freed_tensor_memory_is_kept_only_when_tuned():
    # glibc's default: a 200 MiB block is its own mmap, unmapped on free; the heap does not grow
    blocks, mapped_mib, kept_mib = _malloc_counts("system")
    assert (blocks, mapped_mib) == (1, 200) and kept_mib < 1
    # tuned: no mmap at all; the block comes from the heap, which keeps it after the free
    blocks, mapped_mib, kept_mib = _malloc_counts("tuned")
    # the arena grows by the tensor less whatever free heap it already had (199 MiB seen on an Intel Xeon)
    assert (blocks, mapped_mib) == (0, 0) and kept_mib >= 190
