"""The command line as a user runs it: outputs, batch jobs, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import TINY_WEIGHTS, require
from goldens import case_a
from magicanimate.cli.main import main
from magicanimate.io.video import probe_video, read_motion, write_video

FAST = ["--steps", "1", "--size", "64", "--quiet"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    Image.fromarray(case_a("source_image")).save(d / "ref.png")
    write_video(d / "motion.mp4", case_a("control")[:6], fps=12)
    np.save(d / "motion.npy", case_a("control")[:5])
    (d / "corrupt.png").write_bytes(b"\x89PNG not really")
    (d / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 garbage")
    return {p.stem + p.suffix: p for p in d.iterdir()}


def animate(*args: str) -> int:
    return main(["animate", "--weights", str(require(TINY_WEIGHTS)), *FAST, *args])


@pytest.mark.parametrize("name", ["out.mp4", "out.gif", "out.webm", "frames"])
def test_every_output_kind(tmp_path, inputs, name):
    out = tmp_path / name
    assert animate("--reference", str(inputs["ref.png"]), "--motion", str(inputs["motion.mp4"]),
                   "--output", str(out)) == 0
    clip = read_motion(out)
    assert clip.frames.shape == (6, 64, 64, 3)
    if name != "frames":
        assert probe_video(out)["fps"] == pytest.approx(12, rel=0.02)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    import torch

    assert torch.is_grad_enabled()  # no global autograd switch left behind for the caller


def test_grid_array_fps_and_overwrite(tmp_path, inputs, capsys):
    out = tmp_path / "a.mp4"
    args = ["--reference", str(inputs["ref.png"]), "--motion", str(inputs["motion.npy"]), "--output", str(out),
            "--grid", "--save-array", str(tmp_path / "a.npy"), "--fps", "8"]
    assert animate(*args) == 0
    frames = np.load(tmp_path / "a.npy")
    assert frames.shape == (5, 64, 64, 3) and frames.dtype == np.float32
    grid = read_motion(tmp_path / "a.grid.mp4").frames
    assert grid.shape[0] == 5 and grid.shape[2] > 3 * 64
    assert probe_video(out)["fps"] == pytest.approx(8)
    before = out.stat().st_mtime_ns
    assert animate(*args) == 1  # exists, no --overwrite
    assert "already exists" in capsys.readouterr().err
    assert out.stat().st_mtime_ns == before
    assert animate(*args, "--overwrite") == 0


@pytest.mark.parametrize("case,expected", [
    (lambda i, t: ["--reference", str(t / "nope.png"), "--motion", str(i["motion.mp4"])], "not found"),
    (lambda i, t: ["--reference", str(i["corrupt.png"]), "--motion", str(i["motion.mp4"])], "corrupt.png"),
    (lambda i, t: ["--reference", str(i["ref.png"]), "--motion", str(i["corrupt.mp4"])], "corrupt.mp4"),
    (lambda i, t: ["--reference", str(i["ref.png"]), "--motion", str(i["motion.mp4"]), "--size", "60"], "multiple"),
    (lambda i, t: ["--reference", str(i["ref.png"]), "--motion", str(i["motion.mp4"]), "--start", "50"], "frame"),
])
def test_user_errors_are_one_line(tmp_path, inputs, capsys, case, expected):
    code = animate(*case(inputs, tmp_path), "--output", str(tmp_path / "x.mp4"))
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and expected in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "x.mp4").exists()


def test_weights_folder_missing_a_component_is_named(tmp_path, inputs, capsys):
    import shutil

    weights = tmp_path / "w"
    shutil.copytree(require(TINY_WEIGHTS), weights)
    shutil.rmtree(weights / "MagicAnimate" / "densepose_controlnet")
    code = main(["animate", "--weights", str(weights), *FAST, "--reference", str(inputs["ref.png"]),
                 "--motion", str(inputs["motion.mp4"]), "--output", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err
    assert code == 1 and "controlnet" in err and "Traceback" not in err


def test_zero_frame_motion_is_refused(tmp_path, inputs, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = animate("--reference", str(inputs["ref.png"]), "--motion", str(empty), "--output", str(tmp_path / "x.mp4"))
    assert code == 1 and "frame" in capsys.readouterr().err


def test_verbose_shows_the_traceback(tmp_path, inputs):
    proc = subprocess.run(
        [sys.executable, "-m", "magicanimate", "animate", "--weights", str(TINY_WEIGHTS), *FAST, "--verbose",
         "--reference", str(tmp_path / "missing.png"), "--motion", str(inputs["motion.mp4"]),
         "--output", str(tmp_path / "x.mp4")], capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "error: " in proc.stderr


@pytest.mark.parametrize("fmt", ["yaml", "json", "csv"])
def test_batch_resumes_and_reports_failures(tmp_path, inputs, capsys, fmt):
    jobs = [
        {"reference": str(inputs["ref.png"]), "motion": str(inputs["motion.mp4"]), "output": "one.mp4"},
        {"reference": "missing.png", "motion": str(inputs["motion.mp4"]), "output": "two.mp4"},
        {"reference": str(inputs["ref.png"]), "motion": str(inputs["motion.npy"]), "output": "three.gif",
         "seed": 3},
    ]
    path = tmp_path / f"jobs.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(jobs))
    elif fmt == "yaml":
        import yaml

        path.write_text(yaml.safe_dump({"jobs": jobs}))
    else:
        path.write_text("reference,motion,output,seed\n" + "\n".join(
            f"{j['reference']},{j['motion']},{j['output']},{j.get('seed', '')}" for j in jobs))
    code = main(["animate", "--weights", str(TINY_WEIGHTS), *FAST, "--jobs", str(path)])
    out = capsys.readouterr()
    assert code == 1  # job two failed
    assert (tmp_path / "one.mp4").exists() and (tmp_path / "three.gif").exists()
    assert not (tmp_path / "two.mp4").exists()
    assert "2 done, 0 skipped, 1 failed" in out.out and "missing.png" in out.err
    mtime = (tmp_path / "one.mp4").stat().st_mtime_ns
    code = main(["animate", "--weights", str(TINY_WEIGHTS), *FAST, "--jobs", str(path)])
    out = capsys.readouterr()
    assert code == 1 and "0 done, 2 skipped, 1 failed" in out.out  # a re-run resumes
    assert (tmp_path / "one.mp4").stat().st_mtime_ns == mtime


def test_check_weights_command(capsys, tmp_path):
    assert main(["check-weights", str(TINY_WEIGHTS)]) == 0
    assert "8 of 8 checks ok" in capsys.readouterr().out
    assert main(["check-weights", str(tmp_path)]) == 1
    assert "MISSING" in capsys.readouterr().out


def test_tiny_weights_builder_makes_a_working_release_layout(tmp_path):
    from magicanimate.weights.build import verify_components
    from magicanimate.sampling.pipeline import MagicAnimate
    from magicanimate.weights.random import write_tiny_weights

    paths = write_tiny_weights(tmp_path / "tiny")
    assert all(status == "ok" for _, status, _ in verify_components(paths))
    model = MagicAnimate.from_pretrained(tmp_path / "tiny", device="cpu")
    result = model(case_a("source_image"), case_a("control")[:4], steps=1, size=64)
    assert result.frames.shape == (4, 64, 64, 3) and result.frames.std() > 0.01


def test_download_lays_out_the_release_and_verifies_sizes(tmp_path, monkeypatch, capsys):
    """`magicanimate download` against a stand-in Hub that serves small files."""
    import huggingface_hub

    from magicanimate.weights.layout import HUB_FILES, WeightPaths

    served = {}

    def fake_download(repo, filename, local_dir):
        path = Path(local_dir) / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * (len(repo) + len(filename)))
        served[(repo, filename)] = path.stat().st_size
        return str(path)

    class Meta:
        def __init__(self, size):
            self.size = size

    sizes = {}
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr("magicanimate.cli.weights._check_hub_reachable", lambda target: None)  # a stand-in Hub
    monkeypatch.setattr(huggingface_hub, "hf_hub_url", lambda repo, filename: (repo, filename))
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", lambda key: Meta(sizes.get(key, served[key])))
    assert main(["download", "--to", str(tmp_path / "w")]) == 0
    assert len(served) == sum(len(f) for f in HUB_FILES.values())
    paths = WeightPaths.release_layout(tmp_path / "w")
    assert paths.temporal_attention.is_file() and (paths.unet / "config.json").is_file()
    capsys.readouterr()
    sizes[("zcxu-eric/MagicAnimate", "temporal_attention/temporal_attention.ckpt")] = 10**9  # truncated file
    assert main(["download", "--to", str(tmp_path / "w")]) == 1
    assert "temporal_attention.ckpt has" in capsys.readouterr().err


def test_out_of_memory_names_the_options_that_help(tmp_path, inputs, monkeypatch, capsys):
    import torch

    from magicanimate.sampling import pipeline as pipeline

    def exhausted(self, *args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(pipeline.MagicAnimate, "animate", exhausted)
    code = animate("--reference", str(inputs["ref.png"]), "--motion", str(inputs["motion.mp4"]),
                   "--output", str(tmp_path / "x.mp4"))
    err = capsys.readouterr().err
    assert code == 1 and "out of memory" in err and "--size" in err and "Traceback" not in err
    assert not (tmp_path / "x.mp4").exists()


def test_progress_shows_the_decode_after_the_denoising(tmp_path, inputs, capsys):
    """The VAE decode gets its own bar, shown at once (0/5) and filled per chunk (5/5) before the output is written."""
    out = tmp_path / "p.mp4"
    code = main(["animate", "--weights", str(require(TINY_WEIGHTS)), "--steps", "1", "--size", "64",
                 "--decode-chunk", "2", "--reference", str(inputs["ref.png"]), "--motion", str(inputs["motion.npy"]),
                 "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    denoise, decode0, decode5, wrote = (err.index("animate denoising"), err.index("animate decoding:   0%"),
                                        err.index("5/5 [", err.index("animate decoding")), err.index("wrote "))
    assert denoise < decode0 < decode5 < wrote, err  # (tqdm skips the updates in between on a fast run)


def test_fit_pad_output_is_exactly_the_size(tmp_path, inputs):
    """Square inputs, --fit pad --size 64x48: a 64 wide, 48 high video (not 48x48 cropped back to square)."""
    out = tmp_path / "pad.mp4"
    assert animate("--reference", str(inputs["ref.png"]), "--motion", str(inputs["motion.npy"]), "--output", str(out),
                   "--size", "64x48", "--fit", "pad") == 0
    info = probe_video(out)
    assert (info["frames"], info["width"], info["height"]) == (5, 64, 48)
