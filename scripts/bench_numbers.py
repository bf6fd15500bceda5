#!/usr/bin/env python
"""Machine-dependent numbers that unit tests must not assert on (speed, resident memory).

    python scripts/bench_numbers.py frechet [--sqrtm]   # Fréchet distance at 2048 dims: eigen route (and scipy sqrtm)
    python scripts/bench_numbers.py malloc              # MB given back to the system when a 200 MB tensor is freed

Prints one JSON object. The unit tests check the deterministic side of each claim (which route
runs, what malloc does with the block); the numbers live here.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

RSS_PROBE = """
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


def frechet(with_sqrtm: bool) -> dict:
    from scipy import linalg

    from magicanimate.metrics import frechet_distance, gaussian_stats

    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 2048))
    mu1, s1 = gaussian_stats(x)
    mu2, s2 = gaussian_stats(x[::-1] * 1.1 + 0.05)
    start = time.perf_counter()
    frechet_distance(mu1, s1, mu2, s2)
    out = {"frechet_2048_eigen_s": round(time.perf_counter() - start, 3)}  # goal: well under scipy's sqrtm
    if with_sqrtm:
        start = time.perf_counter()
        linalg.sqrtm(s1 @ s2)
        out["frechet_2048_sqrtm_s"] = round(time.perf_counter() - start, 3)
    return out


def malloc() -> dict:
    def released(mode: str) -> float:
        run = subprocess.run([sys.executable, "-c", RSS_PROBE, mode], capture_output=True, text=True, check=True)
        return round(float(run.stdout.strip()), 1)

    # expected on glibc: ~200 MB released by default, ~0 with keep_freed_memory
    return {"rss_released_mb_system": released("system"), "rss_released_mb_tuned": released("tuned")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("frechet", "malloc"))
    ap.add_argument("--sqrtm", action="store_true", help="also time scipy.linalg.sqrtm (~35 s on 2 cores)")
    args = ap.parse_args()
    print(json.dumps(frechet(args.sqrtm) if args.what == "frechet" else malloc()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
