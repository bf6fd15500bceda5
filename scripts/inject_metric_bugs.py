#!/usr/bin/env python
"""Prove the metric tests can fail: inject plausible bugs, one at a time, into a scratch copy of src/.

    python scripts/inject_metric_bugs.py [--tests tests/test_metrics_golden.py ...] [--only NAME ...]

For each bug the package is copied to a temporary folder, one source line is edited, and pytest runs
the chosen test files against that copy (PYTHONPATH). The table printed at the end lists, per bug,
the tests that failed; a bug that no test notices is marked MISSED and the exit status is 1.
The edits are textual and name files under src/magicanimate/metrics/: when the package layout
changes, update PATH in BUGS (the script stops with an error if a pattern is no longer found).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
M = "magicanimate/metrics/"
DEFAULT_TESTS = ["tests/test_metrics_golden.py", "tests/test_metrics_frame.py", "tests/test_metrics_frechet.py"]

# (name, file under src/, exact text, replacement)
BUGS = [
    ("inception avg pools count padding (count_include_pad=True)", M + "inception.py",
     "count_include_pad=False", "count_include_pad=True"),
    ("inception Mixed_7c pools with avg instead of max", M + "inception.py",
     "self.Mixed_7c = BlockE(2048, max_pool=True)", "self.Mixed_7c = BlockE(2048, max_pool=False)"),
    ("inception BatchNorm eps 1e-5 instead of 1e-3", M + "inception.py",
     "nn.BatchNorm2d(cout, eps=1e-3)", "nn.BatchNorm2d(cout, eps=1e-5)"),
    ("inception input scaled (x - 127.5) / 127.5", M + "features.py",
     "(resized - 128.0) / 128.0", "(resized - 127.5) / 127.5"),
    ("LPIPS without the channel-norm feature normalisation", M + "lpips_vgg.py",
     "out.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))", "out.append(x)"),
    ("LPIPS without the shift/scale input layer", M + "lpips_vgg.py",
     "x = (x - self.shift) / self.scale", "x = x"),
    ("LPIPS DisCo range fed as [-1, 1] (2x - 1 always)", M + "perceptual.py",
     'return x if input_range == "disco" else 2.0 * x - 1.0', "return 2.0 * x - 1.0"),
    ("3D ResNet BatchNorm eps 1e-3 instead of 1e-5", M + "resnet3d.py",
     "self.bn2 = nn.BatchNorm3d(planes)", "self.bn2 = nn.BatchNorm3d(planes, eps=1e-3)"),
    ("3D ResNet ImageNet mean instead of ActivityNet", M + "resnet3d.py",
     "MEAN_RGB_255 = (114.7748, 107.7354, 99.4750)", "MEAN_RGB_255 = (123.675, 116.28, 103.53)"),
    ("I3D BatchNorm eps 1e-5 (VideoGPT) instead of 1e-3", M + "i3d.py",
     "nn.BatchNorm3d(cout, eps=1e-3)", "nn.BatchNorm3d(cout, eps=1e-5)"),
    ("I3D symmetric padding (extra pixel first) instead of TF SAME", M + "i3d.py",
     "pads += [total // 2, total - total // 2]", "pads += [total - total // 2, total // 2]"),
    ("feature resize bilinear instead of bicubic", M + "arrays.py",
     "resample=Image.Resampling.BICUBIC", "resample=Image.Resampling.BILINEAR"),
    ("feature resize clipped to [0, 255] (clean-fid 0.1.35)", M + "arrays.py",
     "np.asarray(channel.resize((size, size), resample=Image.Resampling.BICUBIC))",
     "np.clip(np.asarray(channel.resize((size, size), resample=Image.Resampling.BICUBIC)), 0, 255)"),
    ("paired-frame resize nearest instead of bilinear", M + "arrays.py",
     'mode="bilinear", align_corners=False, antialias=False', 'mode="nearest"'),
    ("paired-frame resize with align_corners=True", M + "arrays.py",
     'mode="bilinear", align_corners=False, antialias=False', 'mode="bilinear", align_corners=True'),
    ("Fréchet low-rank route divides by sqrt(N1 N2) instead of sqrt((N1-1)(N2-1))", M + "frechet.py",
     "np.sqrt((n1 - 1) * (n2 - 1))", "np.sqrt(n1 * n2)"),
    ("Fréchet covariance route without the factor 2", M + "frechet.py",
     "- 2.0 * trace_sqrt_product(sigma1, sigma2)", "- trace_sqrt_product(sigma1, sigma2)"),
    ("Fréchet covariance route uses tr(Σ1Σ2) without the square root", M + "frechet.py",
     "return float(np.sqrt(values[values > tolerance]).sum())", "return float(values[values > tolerance].sum())"),
]


def run_one(name: str, path: str, old: str, new: str, tests: list[str]) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="inject_") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(REPO / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        target = src / path
        text = target.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"{name}: expected one '{old}' in {target}, found {text.count(old)}")
        target.write_text(text.replace(old, new))
        env = {**os.environ, "PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1"}
        check = subprocess.run([sys.executable, "-c", "import magicanimate; print(magicanimate.__file__)"],
                               env=env, capture_output=True, text=True, check=True).stdout.strip()
        if not check.startswith(str(src)):
            raise SystemExit(f"the scratch copy is not the one imported: {check}")
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", *tests],
                             cwd=REPO, env=env, capture_output=True, text=True)
        return sorted(set(re.findall(r"^FAILED (\S+?)(?: - .*)?$", out.stdout, flags=re.M)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tests", nargs="+", default=DEFAULT_TESTS)
    ap.add_argument("--only", nargs="+", default=None, help="substrings of bug names to run")
    args = ap.parse_args()
    bugs = [b for b in BUGS if args.only is None or any(s in b[0] for s in args.only)]
    missed = 0
    rows = []
    for name, path, old, new in bugs:
        failed = run_one(name, path, old, new, args.tests)
        missed += not failed
        rows.append((name, failed))
        print(f"{name}: {'MISSED' if not failed else ', '.join(failed)}", flush=True)
    print("\n| injected bug | failing tests |\n|---|---|")
    for name, failed in rows:
        print(f"| {name} | {'**MISSED**' if not failed else '<br>'.join(f.split('::')[-1] for f in failed)} |")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
