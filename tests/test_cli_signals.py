"""SIGTERM (a scheduler's kill, `docker stop`) during an output write leaves no partial or temporary file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import TINY_WEIGHTS, require
from goldens import case_a

# The real command line, with the frame writer slowed down and announcing each frame,
# so that the signal arrives while the output is half written.
SLOW_WRITER = textwrap.dedent("""
    import sys, time
    from magicanimate.io import video

    def announce(write):
        def slow(*args):
            print("writing a frame", flush=True)
            time.sleep(0.3)
            return write(*args)
        return slow

    video._save_png = announce(video._save_png)
    video._video_frame = announce(video._video_frame)
    from magicanimate.cli.main import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.parametrize("name", ["frames", "out.mp4"])
def test_sigterm_while_writing_leaves_no_temp_files(tmp_path, name):
    Image.fromarray(case_a("source_image")).save(tmp_path / "ref.png")
    np.save(tmp_path / "motion.npy", case_a("control")[:8])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, "animate", "--weights", str(require(TINY_WEIGHTS)), "--steps", "1",
         "--size", "64", "--quiet", "--reference", str(tmp_path / "ref.png"),
         "--motion", str(tmp_path / "motion.npy"), "--output", str(tmp_path / name)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline() == "writing a frame\n"  # the output is being written now
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "terminated"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)  # no output, no .NAME.<hex>.tmp
    assert all((tmp_path / n).read_bytes() == data for n, data in before.items())
