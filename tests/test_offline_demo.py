"""`python -m magicanimate.demo` (`make demo`) with the shipped mini model: inputs, output files, bad options."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from magicanimate.io.video import read_motion
from magicanimate.synthetic.dataset import make_reference, split_specs
from magicanimate.tools.offline_demo import main
from magicanimate.weights.layout import MINI_SIZE, MINI_ZOOM

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.mark.parametrize("argv", [["--clip", "-1"], ["--frames", "0"]])
def test_bad_demo_options_are_refused_in_one_line(argv, capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--output-dir", str(tmp_path)])
    assert stop.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_the_mini_demo_animates_the_chosen_held_out_clip_at_the_training_framing(tmp_path, capsys):
    assert main(["--mini", "--clip", "2", "--frames", "8", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "using the mini model" in out and "PSNR" in out

    # the reference is the third held-out person, drawn as large as the people the model trained on
    spec = split_specs("heldout", count=1, num_frames=8, size=(MINI_SIZE, MINI_SIZE), zoom=MINI_ZOOM, start=2)[0]
    expected, _ = make_reference(spec)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "reference.png")), expected)
    frames = np.load(tmp_path / "animation.npy")
    assert frames.shape == (8, MINI_SIZE, MINI_SIZE, 3) and 0 <= frames.min() <= frames.max() <= 1
    assert read_motion(tmp_path / "motion.mp4").num_frames == 8
    strip = Image.open(tmp_path / "comparison.png")
    assert strip.size == (2 * MINI_SIZE * 2, 2 * MINI_SIZE * 2)  # frames 0 and 4, truth over result, 2x
