"""Bad inputs on the real command line: refused before any work, one `error:` line, nothing written or changed."""

from __future__ import annotations

import hashlib
import os
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import TINY_WEIGHTS, require
from goldens import case_a
from magicanimate.cli.main import main
from magicanimate.io.video import write_video

FAST = ["--steps", "1", "--size", "64", "--quiet"]


@pytest.fixture
def inputs(tmp_path) -> dict[str, Path]:
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray(case_a("source_image")).save(d / "ref.png")
    write_video(d / "motion.mp4", case_a("control")[:4], fps=12)
    np.save(d / "motion.npy", case_a("control")[:4])
    write_video(d / "frames", case_a("control")[:4], fps=12)
    return {p.name: p for p in d.iterdir()}


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones included) and a hash of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def refused(capsys, argv: list[str], root: Path, *, expect: str) -> str:
    """Run the command; it must exit 1 with one `error:` line containing ``expect`` and touch nothing under root."""
    before = snapshot(root)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert expect in err, err
    assert snapshot(root) == before  # no output, no temp file, inputs byte-identical
    return err


def no_weights(tmp_path: Path) -> list[str]:
    """A weights folder that does not exist: an error about it means the check came too late."""
    return ["--weights", str(tmp_path / "no-weights")]


@pytest.mark.parametrize("output,flag", [("motion.mp4", "--motion"), ("frames", "--motion"),
                                         ("ref.png", "--reference")])
def test_output_equal_to_an_input_is_refused_even_with_overwrite(tmp_path, inputs, capsys, output, flag):
    motion = inputs["frames"] if output == "frames" else inputs["motion.mp4"]
    out = tmp_path / "in" / output
    refused(capsys, ["animate", *no_weights(tmp_path), *FAST, "--reference", str(inputs["ref.png"]),
                     "--motion", str(motion), "--output", str(out), "--overwrite"],
            tmp_path, expect=f"is the {flag} input")


def test_output_folder_holding_an_input_is_refused(tmp_path, inputs, capsys):
    refused(capsys, ["animate", *no_weights(tmp_path), *FAST, "--reference", str(inputs["ref.png"]),
                     "--motion", str(inputs["motion.mp4"]), "--output", str(tmp_path / "in"), "--overwrite"],
            tmp_path, expect="holds the --reference input")


def test_output_into_the_weights_folder_is_refused(tmp_path, inputs, capsys):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "unet.bin").write_bytes(b"weights")
    refused(capsys, ["animate", "--weights", str(weights), *FAST, "--reference", str(inputs["ref.png"]),
                     "--motion", str(inputs["motion.mp4"]), "--output", str(weights), "--overwrite"],
            tmp_path, expect="the --weights input")


@pytest.mark.parametrize("extra,expect", [
    (["--grid", "OUT"], "--grid and --output are the same file"),
    (["--save-array", "OUT"], "--save-array and --output are the same file"),
    (["--save-array", "x.npz"], "--save-array"),
    (["--device", "tpu9"], "unknown device 'tpu9'"),
    (["--guidance-scale", "nan"], "--guidance-scale"),
    (["--seed", str(2 ** 70)], "--seed"),
    (["--steps", "1001"], "--steps"),
    (["--fps", "0"], "--fps"),
])
def test_bad_arguments_fail_before_loading_anything(tmp_path, inputs, capsys, extra, expect):
    out = tmp_path / "out.mp4"
    extra = [str(out) if e == "OUT" else str(tmp_path / e) if e.endswith(".npz") else e for e in extra]
    err = refused(capsys, ["animate", *no_weights(tmp_path), "--quiet", "--reference", str(inputs["ref.png"]),
                           "--motion", str(inputs["motion.mp4"]), "--output", str(out), *extra],
                  tmp_path, expect=expect)
    assert "no-weights" not in err


def test_output_suffix_and_folder_are_checked_first(tmp_path, inputs, capsys):
    base = ["animate", *no_weights(tmp_path), *FAST, "--reference", str(inputs["ref.png"]),
            "--motion", str(inputs["motion.mp4"])]
    refused(capsys, [*base, "--output", str(tmp_path / "out.avi")], tmp_path, expect="unsupported output suffix")
    (tmp_path / "a-file").write_text("not a folder")
    refused(capsys, [*base, "--output", str(tmp_path / "a-file" / "sub" / "out.mp4")], tmp_path,
            expect="is a file, not a folder")


def test_existing_output_names_the_flag(tmp_path, inputs, capsys):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an earlier result")
    err = refused(capsys, ["animate", *no_weights(tmp_path), *FAST, "--reference", str(inputs["ref.png"]),
                           "--motion", str(inputs["motion.mp4"]), "--output", str(out)],
                  tmp_path, expect="add --overwrite")
    assert "overwrite=True" not in err.split("add --overwrite")[0]


def write_jobs(path: Path, jobs: list[dict]) -> Path:
    path.write_text(json.dumps(jobs))
    return path


def test_jobs_file_cannot_grant_itself_overwrite(tmp_path, inputs, capsys):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an earlier result")
    jobs = write_jobs(tmp_path / "jobs.json", [{"reference": str(inputs["ref.png"]),
                                               "motion": str(inputs["motion.mp4"]),
                                               "output": str(out), "overwrite": True}])
    before = snapshot(tmp_path)
    code = main(["animate", *no_weights(tmp_path), *FAST, "--jobs", str(jobs)])
    captured = capsys.readouterr()
    assert code == 1 and "only --overwrite on the command line" in captured.err
    assert "0 done, 0 skipped, 1 failed" in captured.out and "no-weights" not in captured.err
    assert snapshot(tmp_path) == before


def test_jobs_with_the_same_output_or_writing_an_input_fail_up_front(tmp_path, inputs, capsys):
    ref, motion = str(inputs["ref.png"]), str(inputs["motion.mp4"])
    jobs = write_jobs(tmp_path / "jobs.json", [
        {"reference": ref, "motion": motion, "output": "same.mp4"},
        {"reference": ref, "motion": motion, "output": "same.mp4", "seed": 2},
        {"reference": ref, "motion": str(inputs["motion.npy"]), "output": motion},
        {"reference": ref, "motion": motion, "output": "jobs.json"},
    ])
    before = snapshot(tmp_path)
    code = main(["animate", *no_weights(tmp_path), *FAST, "--overwrite", "--jobs", str(jobs)])
    captured = capsys.readouterr()
    assert code == 1
    assert "[2/4] error: --output" in captured.err and "same.mp4 is also written by job 1" in captured.err
    assert "[3/4] error: --output" in captured.err and "motion.mp4 is the --motion input of job 1" in captured.err
    assert "[4/4] error: --output" in captured.err and "is the --jobs input" in captured.err
    # job 1 was the only one to run: it failed on the missing weights, nothing was written
    assert "0 done, 0 skipped, 4 failed" in captured.out
    assert snapshot(tmp_path) == before


def test_one_job_with_a_bad_value_fails_alone(tmp_path, inputs, capsys):
    ref, motion = str(inputs["ref.png"]), str(inputs["motion.mp4"])
    jobs = write_jobs(tmp_path / "jobs.json", [
        {"reference": ref, "motion": motion, "output": "bad.mp4", "size": "60"},
        {"reference": ref, "motion": motion, "output": "good.mp4"},
        {"reference": ref, "motion": motion, "output": "unknown.mp4", "colour": "red"},
    ])
    code = main(["animate", "--weights", str(require(TINY_WEIGHTS)), *FAST, "--jobs", str(jobs)])
    captured = capsys.readouterr()
    assert code == 1 and "1 done, 0 skipped, 2 failed" in captured.out
    assert "[1/3] error: job" in captured.err and "size 60x60 must be positive multiples of 8" in captured.err
    assert "[3/3] error: unknown job fields ['colour']" in captured.err
    assert (tmp_path / "good.mp4").is_file()
    assert not (tmp_path / "bad.mp4").exists() and not (tmp_path / "unknown.mp4").exists()


def test_broken_frame_in_a_motion_folder_is_named_as_a_motion_frame(tmp_path, inputs, capsys):
    (inputs["frames"] / "frame_00002.png").write_bytes(b"\x89PNG broken")
    err = refused(capsys, ["animate", "--weights", str(require(TINY_WEIGHTS)), *FAST,
                           "--reference", str(inputs["ref.png"]), "--motion", str(inputs["frames"]),
                           "--output", str(tmp_path / "out.mp4")],
                  tmp_path, expect="cannot read motion frame")
    assert "frame_00002.png" in err and "reference image" not in err


def test_huge_reference_is_refused_unread_in_our_words(tmp_path, inputs, capsys, recwarn):
    huge = tmp_path / "in" / "huge.png"
    Image.new("1", (12000, 12000)).save(huge)  # 144 megapixels, a few kB on disk
    err = refused(capsys, ["animate", *no_weights(tmp_path), *FAST, "--reference", str(huge),
                           "--motion", str(inputs["motion.mp4"]), "--output", str(tmp_path / "out.mp4")],
                  tmp_path, expect="has more than 64 megapixels")
    assert "12000x12000" in err and "downscale" in err
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_read_only_output_folder_is_refused_up_front(tmp_path, inputs, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        refused(capsys, ["animate", *no_weights(tmp_path), *FAST, "--reference", str(inputs["ref.png"]),
                         "--motion", str(inputs["motion.mp4"]), "--output", str(folder / "out.mp4")],
                tmp_path, expect="no permission to write into the folder")
    finally:
        folder.chmod(0o700)


def test_check_weights_on_a_file_says_what_it_takes(tmp_path, capsys):
    file = tmp_path / "unet.safetensors"
    file.write_bytes(b"x")
    err = refused(capsys, ["check-weights", str(file)], tmp_path, expect="is a file: check-weights takes the weights folder")
    assert "not found" not in err


def test_usage_errors_exit_2_as_the_readme_says(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["animate", "--no-such-flag"])
    assert exit_.value.code == 2
    assert "error: unrecognized arguments: --no-such-flag" in capsys.readouterr().err
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "exit code 2" in readme


def test_download_offline_leaves_no_empty_folder_and_names_hf(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    def offline(repo, filename, local_dir):  # what huggingface_hub leaves behind before it fails
        (Path(local_dir) / ".cache" / "huggingface" / "download").mkdir(parents=True, exist_ok=True)
        (Path(local_dir) / ".cache" / "huggingface" / ".gitignore").write_text("*")
        raise OSError("We couldn't connect to 'https://huggingface.co' to download.\nCheck your connection.")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    monkeypatch.setattr("magicanimate.cli.weights._check_hub_reachable", lambda target: None)  # the Hub answers
    assert main(["download", "--to", str(tmp_path / "w")]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("[1/15] ") and len(lines) == 2  # the progress line, then one error line
    err = lines[1]
    assert err.startswith("error: ") and "failed (OSError: We couldn't connect" in err
    assert "`hf download stable-diffusion-v1-5/stable-diffusion-v1-5 --local-dir" in err
    assert "huggingface-cli" not in err
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("output", ["motion.mp4", "."])
def test_extract_motion_never_writes_over_its_video(tmp_path, inputs, capsys, output):
    out = (tmp_path / "in" / output).resolve()
    expect = "is the VIDEO input" if output != "." else "holds the VIDEO input"
    refused(capsys, ["extract-motion", str(inputs["motion.mp4"]), "--output", str(out), "--overwrite",
                     "--densepose-weights", str(tmp_path / "none.pkl")], tmp_path, expect=expect)


def test_download_without_a_connection_fails_at_once(tmp_path, monkeypatch, capsys):
    import socket

    import huggingface_hub

    def no_network(*args, **kwargs):
        raise OSError("[Errno -2] Name or service not known")

    def never(*args, **kwargs):
        raise AssertionError("no download may start without a connection")

    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", never)
    err = refused(capsys, ["download", "--to", str(tmp_path / "w")], tmp_path,
                  expect="cannot reach the Hugging Face Hub at https://huggingface.co ([Errno -2]")
    assert "`hf download REPO --local-dir" in err and not (tmp_path / "w").exists()


def test_driving_video_without_densepose_weights_fails_before_loading(tmp_path, inputs, capsys):
    err = refused(capsys, ["animate", *no_weights(tmp_path), *FAST, "--reference", str(inputs["ref.png"]),
                           "--driving-video", str(inputs["motion.mp4"]), "--output", str(tmp_path / "out.mp4"),
                           "--densepose-weights", str(tmp_path / "model_final_162be9.pkl")],
                  tmp_path, expect="DensePose weight file not found")
    assert "no-weights" not in err
