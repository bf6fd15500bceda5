"""`magicanimate --help` and usage errors answer at once: building the parser imports no heavy library."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("torch", "diffusers", "transformers", "safetensors", "scipy", "av", "PIL", "gradio", "huggingface_hub")

CHECK = textwrap.dedent("""
    import sys
    from magicanimate.cli.main import main
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
    print("heavy modules:", *sorted(m for m in {heavy} if m in sys.modules))
""").format(heavy=HEAVY)


@pytest.mark.parametrize("argv", [["--help"], ["animate", "--help"], ["train", "--help"], ["evaluate", "--help"],
                                  ["extract-motion", "--help"], ["app", "--help"], ["check-weights", "--help"],
                                  ["animate", "--no-such-flag"], ["bogus-command"]])
def test_help_and_usage_errors_import_no_heavy_library(argv):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", CHECK, *argv], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "heavy modules:"
