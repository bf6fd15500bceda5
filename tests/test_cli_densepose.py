"""``extract-motion`` and ``animate --driving-video`` as a user runs them, on real photo frames.

The detector runs with the DensePose fixture's random weights in the official format
(regenerated per session), so the detections are not people, but every step of the
commands runs: reading, detection, composing, alignment, colouring, writing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import TINY_WEIGHTS, require
from densepose_goldens import DENSEPOSE_TINY, densepose_weights  # noqa: F401 - session fixture
from magicanimate.cli.main import main
from magicanimate.io.densepose_colors import part_colors
from magicanimate.io.video import probe_video, read_motion, write_video

pytestmark = pytest.mark.slow
FPS = 10.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> dict[str, Path]:
    """Four 128x128 frames of a real photo shifted by a few pixels (a hand-held camera), and the photo."""
    folder = tmp_path_factory.mktemp("driving")
    photo = np.load(require(DENSEPOSE_TINY) / "monalisa.npz")["image_rgb"]
    photo = np.asarray(Image.fromarray(photo).resize((128, 128), Image.BILINEAR))
    frames = np.stack([np.roll(photo, shift=(k, 2 * k), axis=(0, 1)) for k in range(4)])  # (4, 128, 128, 3)
    Image.fromarray(photo).save(folder / "reference.png")
    return {"video": write_video(folder / "clip.mp4", frames, FPS), "reference": folder / "reference.png"}


def palette_distance(frames: np.ndarray) -> np.ndarray:
    """Per pixel, the largest channel distance to the nearest of the 25 dp_segm colours."""
    diff = np.abs(frames[..., None, :].astype(np.int16) - part_colors().astype(np.int16))  # (..., 25, 3)
    return diff.max(axis=-1).min(axis=-1)


def test_extract_motion_writes_only_part_colours(tmp_path, clip, densepose_weights):  # noqa: F811
    out = tmp_path / "motion_frames"  # a folder of PNGs: lossless, so the colours must be exact
    code = main(["extract-motion", str(clip["video"]), "--output", str(out), "--densepose-weights",
                 str(densepose_weights), "--quiet"])
    assert code == 0
    frames = read_motion(out).frames
    assert frames.shape == (4, 128, 128, 3)
    assert palette_distance(frames).max() == 0
    assert len(np.unique(frames.reshape(-1, 3), axis=0)) > 1  # detections were drawn, not just background


def test_extract_motion_options_change_the_output(tmp_path, clip, densepose_weights):  # noqa: F811
    """An .mp4 keeps every frame and the rate; the options' output (a PNG folder: lossless) differs from it.

    Exact colours are checked on PNGs: the random network's label maps are pixel noise, which
    H.264's 4:2:0 chroma smears far beyond the codec noise of real, smooth DensePose frames.
    """
    plain, chosen = tmp_path / "plain.mp4", tmp_path / "chosen"
    base = ["--densepose-weights", str(densepose_weights), "--quiet"]
    assert main(["extract-motion", str(clip["video"]), "--output", str(plain), *base]) == 0
    assert main(["extract-motion", str(clip["video"]), "--output", str(chosen), "--people", "largest",
                 "--smooth", "3", "--align-to", str(clip["reference"]), "--size", "96x128", *base]) == 0
    info = probe_video(plain)
    assert (info["frames"], info["fps"], info["width"], info["height"]) == (4, pytest.approx(FPS), 128, 128)
    chosen_frames = read_motion(chosen).frames
    assert chosen_frames.shape == (4, 128, 96, 3) and palette_distance(chosen_frames).max() == 0
    background = part_colors()[0].astype(np.int16)
    plain_fg = (np.abs(read_motion(plain).frames.astype(np.int16) - background).max(-1) > 12).mean()
    chosen_fg = (chosen_frames != part_colors()[0]).any(-1).mean()
    assert plain_fg > 0.01 and chosen_fg > 0.0 and chosen_fg != pytest.approx(plain_fg, abs=1e-3)


def test_animate_from_a_driving_video(tmp_path, clip, densepose_weights):  # noqa: F811
    out = tmp_path / "animation.mp4"
    code = main(["animate", "--weights", str(require(TINY_WEIGHTS)), "--steps", "1", "--size", "64", "--quiet",
                 "--reference", str(clip["reference"]), "--driving-video", str(clip["video"]), "--output", str(out),
                 "--densepose-weights", str(densepose_weights)])
    assert code == 0
    motion = probe_video(tmp_path / "animation.motion.mp4")
    assert probe_video(out)["frames"] == 4 and probe_video(out)["fps"] == pytest.approx(FPS)
    # the saved motion: every frame, the video's rate, at the reference's size (aligned onto it)
    assert (motion["frames"], motion["fps"], motion["width"], motion["height"]) == (4, pytest.approx(FPS), 128, 128)


def test_motion_and_driving_video_are_exclusive(tmp_path, clip, capsys):
    code = main(["animate", "--reference", str(clip["reference"]), "--motion", str(clip["video"]),
                 "--driving-video", str(clip["video"]), "--output", str(tmp_path / "x.mp4")])
    assert code == 1 and "either --motion or --driving-video" in capsys.readouterr().err
