"""keep_freed_memory: freed tensors stay in the heap for reuse instead of going back to the system."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys, psutil, torch
if sys.argv[1] == "tuned":
    from magicanimate.runtime.cpu_tuning import keep_freed_memory
    assert keep_freed_memory()
process = psutil.Process()
x = torch.ones(50 * 2**20)  # 200 MB, touched
held = process.memory_info().rss
del x
print((held - process.memory_info().rss) / 2**20)
"""


def _released_mb(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_freed_tensor_memory_is_kept_only_when_tuned():
    assert _released_mb("system") > 150  # glibc unmaps a big block on free
    assert _released_mb("tuned") < 10  # kept in the heap for the next tensor
