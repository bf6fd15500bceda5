"""The web app without a browser: limits, progress mapping, one generation, serving, the CLI."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio", reason="the web app needs gradio (pip install -e '.[app,test]')")
pytestmark = pytest.mark.filterwarnings(  # gradio's queue with pandas 3, not ours
    "ignore:.*(no_silent_downcasting|copy keyword).*:DeprecationWarning")

import gradio as gr  # noqa: E402

from magicanimate.app import service as app_module  # noqa: E402
from magicanimate.app.service import (  # noqa: E402
    MB,
    Animator,
    ProgressBar,
    check_upload,
    default_examples,
    progress_fraction,
    read_motion_limited,
)
from magicanimate.app.ui import build_app, launch_app, make_extract_handler, make_handler  # noqa: E402
from magicanimate.synthetic.simple_person import synthetic_reference  # noqa: E402
from magicanimate.cli.app import add_app_parser, check_port_free, run_app  # noqa: E402
from magicanimate.synthetic.simple_person import render_motion  # noqa: E402
from magicanimate.errors import InputError  # noqa: E402
from magicanimate.sampling.sampler import Progress  # noqa: E402
from magicanimate.io.video import probe_video, write_video  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NoModel:
    """Stands in for the model where a test must fail before sampling."""

    def animate(self, *args, **kwargs):
        raise AssertionError("the model must not run for refused inputs")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A reference PNG, a 10-frame 30 fps motion and a 30-frame motion."""
    folder = tmp_path_factory.mktemp("app_inputs")
    reference = folder / "reference.png"
    from PIL import Image

    Image.fromarray(synthetic_reference((80, 96))).save(reference)
    short = write_video(folder / "short.mp4", render_motion(10, (64, 64), seed=1), 30.0)
    long = write_video(folder / "long.mp4", render_motion(30, (64, 64), seed=1), 25.0)
    return reference, short, long


# --------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------


def test_check_upload_refuses_files_above_the_limit(tmp_path):
    big = tmp_path / "big.mp4"
    with open(big, "wb") as f:
        f.truncate(int(1.5 * MB))  # sparse: no 1.5 MB written
    with pytest.raises(InputError, match=r"motion video is 1\.5 MB, above this app's limit of 1 MB"):
        check_upload(big, what="motion video", max_upload_mb=1)
    assert check_upload(big, what="motion video", max_upload_mb=1.5) == big  # the limit itself is allowed
    with pytest.raises(InputError, match="upload a reference image first"):
        check_upload(None, what="reference image", max_upload_mb=1)
    with pytest.raises(InputError, match="not found on the server"):
        check_upload(tmp_path / "gone.png", what="reference image", max_upload_mb=1)


def test_read_motion_limited_refuses_long_motions_and_suggests_trimming(inputs):
    _, short, long = inputs
    with pytest.raises(InputError, match=r"more than 24 frames.*trim it to at most 24 frames"):
        read_motion_limited(long, max_frames=24)
    motion = read_motion_limited(short, max_frames=10)  # exactly at the limit
    assert motion.num_frames == 10 and motion.fps == pytest.approx(30.0)


def test_animator_refuses_before_sampling(tmp_path, inputs):
    reference, short, long = inputs
    animator = Animator(NoModel(), max_upload_mb=200, max_frames=24, output_dir=tmp_path)
    cases = [
        (dict(reference=reference, motion=long), "more than 24 frames"),
        (dict(reference=None, motion=short), "upload a reference image first"),
        (dict(reference=reference, motion=None), "upload a motion video first"),
        (dict(reference=reference, motion=short, size="65"), "multiples of 8"),
        (dict(reference=reference, motion=short, size="big"), "N or WxH"),
        (dict(reference=reference, motion=short, fit="zoom"), "fit must be one of"),
        (dict(reference=reference, motion=short, scheduler="unipc"), "page has no options"),
        (dict(reference=reference, motion=short, seed=None), "seed must be set"),
        (dict(reference=reference, motion=short, seed=1.5), "seed must be a whole number"),
        (dict(reference=reference, motion=short, guidance_scale="x"), "guidance_scale must be a number"),
        (dict(reference=reference, motion=short, steps=0), "steps must be at least 1"),
        (dict(reference=reference, motion=reference), "single image"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InputError, match=message):
            animator(**kwargs)
    small = Animator(NoModel(), max_upload_mb=0.001, output_dir=tmp_path)  # about 1 kB
    with pytest.raises(InputError, match="above this app's limit"):
        small(reference, short)


# --------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------


def test_progress_fraction_maps_denoise_then_decode_onto_one_bar():
    events = [Progress("denoise", i, 6) for i in range(1, 7)] + [Progress("decode", i, 12) for i in (8, 12)]
    fractions = [progress_fraction(e)[0] for e in events]
    assert fractions == sorted(fractions) and 0 < fractions[0] and fractions[-1] == 1.0
    assert fractions[5] == pytest.approx(app_module.DENOISE_SHARE)  # denoising done
    assert progress_fraction(Progress("denoise", 3, 6))[1].startswith("Denoising 3/6")
    assert progress_fraction(Progress("decode", 8, 12))[1] == "Decoding 8/12 frames"
    assert progress_fraction(Progress("denoise", 0, 0))[0] == pytest.approx(app_module.DENOISE_SHARE)


def test_progress_bar_forwards_events_to_gradio_style_callback():
    calls = []
    bar = ProgressBar(lambda fraction, desc=None: calls.append((round(fraction, 3), desc)))
    bar(Progress("denoise", 1, 2))
    bar(Progress("decode", 4, 4))
    assert calls == [(0.45, "Denoising 1/2 (steps × windows)"), (1.0, "Decoding 4/4 frames")]


# --------------------------------------------------------------------------
# One generation with the tiny weights
# --------------------------------------------------------------------------


def test_handler_animates_at_the_motion_fps_and_reports_progress(tmp_path, inputs):
    from goldens import tiny_model

    reference, short, _ = inputs
    handler = make_handler(Animator(tiny_model(), max_frames=24, output_dir=tmp_path))
    calls = []
    video, grid, summary = handler(lambda fraction, desc=None: calls.append((fraction, desc)),
                                   reference, short, 2, 7.5, 3, "64", "stretch")
    assert probe_video(video) == {"frames": 10, "fps": pytest.approx(30.0), "width": 64, "height": 64}
    grid_info = probe_video(grid)
    assert (grid_info["frames"], grid_info["width"], grid_info["height"]) == (10, 3 * 64 + 8, 64 + 4)
    assert "10 frames" in summary and "30 fps" in summary and "seed 3" in summary
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(desc.startswith("Denoising") for _, desc in calls)
    assert ("Decoding 0/10 frames" in [desc for _, desc in calls]  # said before the first chunk's seconds
            and [desc for _, desc in calls][-1] == "Decoding 10/10 frames")
    assert Path(video).parent.parent == tmp_path


def test_handler_turns_user_errors_into_gradio_errors(tmp_path, inputs):
    reference, _, long = inputs
    handler = make_handler(Animator(NoModel(), max_frames=24, output_dir=tmp_path))
    with pytest.raises(gr.Error, match="trim it"):
        handler(lambda *a, **k: None, reference, long, 2, 7.5, 1, "64", "stretch")


# --------------------------------------------------------------------------
# The page and serving
# --------------------------------------------------------------------------


def test_default_examples_are_drawn_once(tmp_path):
    rows = default_examples(tmp_path)
    assert len(rows) == 2 and all(Path(p).is_file() for row in rows for p in row)
    fps = sorted(probe_video(motion)["fps"] for _, motion in rows)
    assert fps == pytest.approx([25.0, 30.0])  # "any fps": two rates
    stamp = Path(rows[0][1]).stat().st_mtime_ns
    assert default_examples(tmp_path) == rows and Path(rows[0][1]).stat().st_mtime_ns == stamp
    image = synthetic_reference((64, 48))
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8


def test_build_app_has_every_control_and_one_at_a_time_queue(tmp_path, inputs):
    reference, short, _ = inputs
    demo = build_app(NoModel(), max_upload_mb=5, max_frames=24, examples=[(reference, short)], output_dir=tmp_path)
    config = demo.get_config_file()
    ids = {c["props"].get("elem_id") for c in config["components"]}
    assert {"reference", "motion", "steps", "guidance", "seed", "size", "fit", "animate", "result", "grid",
            "info"} <= ids
    fit = next(c for c in config["components"] if c["props"].get("elem_id") == "fit")
    assert [choice[0] for choice in fit["props"]["choices"]] == ["stretch", "pad", "crop"]
    assert any(c["type"] == "dataset" for c in config["components"])  # the examples
    fns = list(demo.fns.values()) if isinstance(demo.fns, dict) else list(demo.fns)
    animate = next(fn for fn in fns if fn.api_name == "animate")
    assert animate.concurrency_limit == 1 and animate.queue is not False
    assert "5 MB and 24 frames" in json.dumps(config)


def test_launch_app_serves_on_loopback_with_the_upload_limit(tmp_path):
    demo = build_app(NoModel(), max_upload_mb=3, examples=(), output_dir=tmp_path)
    port = free_port()
    url = launch_app(demo, port=port, max_upload_mb=3, block=False, quiet=True)
    try:
        assert url.startswith(f"http://127.0.0.1:{port}")
        assert demo.max_file_size == 3 * MB and not demo.share
        with urllib.request.urlopen(url, timeout=30) as response:
            page = response.read().decode()
        assert response.status == 200 and "fonts.googleapis.com" not in page
        with pytest.raises(InputError, match="pick another --port"):
            check_port_free("127.0.0.1", port)
        assert post_upload(url, 2 * MB) == 200
        assert post_upload(url, 4 * MB) == 413  # Gradio's upload route enforces the limit
    finally:
        demo.close()


def test_uploads_of_the_wrong_kind_are_refused_in_our_words(tmp_path, inputs):
    """A text file as the reference or the motion: our message, without the server's folder."""
    reference, short, _ = inputs
    notes = tmp_path / "uploads" / "notes.txt"
    notes.parent.mkdir()
    notes.write_text("not a picture, not a video\n")
    animator = Animator(NoModel(), output_dir=tmp_path / "runs")
    cases = [((notes, short), "the reference image upload 'notes.txt' is not an image: upload a PNG, JPEG, WebP or "
                              "BMP picture"),
             ((reference, notes), "the motion video upload 'notes.txt' is not a video this app can read: upload an "
                                  "mp4, webm, mov, mkv or avi video"),
             ((reference, reference), "the motion video upload 'reference.png' is a single image: upload an mp4, "
                                      "webm, mov, mkv or avi video")]
    for (ref, motion), message in cases:
        with pytest.raises(InputError) as err:
            animator(ref, motion)
        assert str(err.value) == message


def test_served_page_refuses_wrong_uploads_with_one_log_line_and_no_traceback(tmp_path, inputs, capfd, caplog):
    """Through Gradio's queue, as the page sends them: our message to the client, one warning in the log."""
    from gradio_client import Client, handle_file

    reference, short, _ = inputs
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture, not a video\n")
    demo = build_app(NoModel(), examples=(), output_dir=tmp_path / "runs")
    port = free_port()
    url = launch_app(demo, port=port, block=False, quiet=False)
    try:
        client = Client(url, verbose=False)
        for ref, motion, message in ((notes, short, "the reference image upload 'notes.txt' is not an image"),
                                     (reference, notes, "the motion video upload 'notes.txt' is not a video")):
            with pytest.raises(Exception, match=message) as err:
                client.predict(handle_file(str(ref)), handle_file(str(motion)), 2, 7.5, 1, "64", "stretch",
                               api_name="/animate")
            assert "gradio" not in str(err.value).lower() and str(tmp_path) not in str(err.value)
    finally:
        demo.close()
    printed = capfd.readouterr()
    server_log = printed.out + printed.err
    assert "Traceback" not in server_log and "share=True" not in server_log, server_log
    assert f"serving on http://127.0.0.1:{port}/" in server_log
    refusals = [r.getMessage() for r in caplog.records if r.name == "magicanimate.app.ui"]
    assert len(refusals) == 2 and all(m.startswith("animation refused: the ") for m in refusals), refusals


def post_upload(url: str, num_bytes: int) -> int:
    """POST a file of num_bytes to Gradio's upload route; returns the HTTP status."""
    boundary = "magicanimate-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"m.mp4\"\r\n"
            f"Content-Type: video/mp4\r\n\r\n").encode() + b"\0" * num_bytes + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url.rstrip("/") + "/gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


# --------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------


def app_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="magicanimate")
    add_app_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_app_defaults_and_no_share_flag(capsys):
    args = app_parser().parse_args(["app"])
    assert (args.host, args.port, args.max_upload_mb, args.max_frames, args.weights) == (
        "127.0.0.1", 7860, 200.0, 300, None)
    assert args.func is run_app
    for bad in (["app", "--share"], ["app", "--port", "70000"], ["app", "--max-upload-mb", "0"]):
        with pytest.raises(SystemExit):
            app_parser().parse_args(bad)
    capsys.readouterr()


def test_cli_app_serves_until_interrupted(tiny_weights, tmp_path):
    """`magicanimate app` as a user runs it: a subprocess serving the page until Ctrl+C."""
    port = free_port()
    command = [sys.executable, "-m", "magicanimate", "app", "--weights", str(tiny_weights), "--port", str(port),
               "--device", "cpu", "--max-upload-mb", "50", "--max-frames", "40"]
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # its examples and Gradio's cache stay in the test's folder
    # A shell's background job (`make test &`) ignores SIGINT, and an ignored signal survives exec: give
    # the server Ctrl+C's default disposition, as in a terminal.
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        config, deadline = None, time.monotonic() + 180
        while config is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as response:
                    config = json.loads(response.read())
            except OSError:
                time.sleep(0.5)
        assert config is not None, f"the app did not come up: {server.poll()=}"
        assert "50 MB and 40 frames" in json.dumps(config)
        assert config["max_file_size"] == 50 * MB
    finally:
        server.send_signal(signal.SIGINT)
        try:
            output, _ = server.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
            output, _ = server.communicate()
    assert server.returncode in (0, 130), output
    assert f"serving on http://127.0.0.1:{port}" in output and "loading weights" in output
    assert "share=True" not in output and "Running on local URL" not in output, output  # Gradio's banner


def test_cli_app_refuses_a_busy_port_before_loading(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = app_parser().parse_args(["app", "--weights", str(tmp_path / "missing"), "--port", str(port)])
        with pytest.raises(InputError, match="pick another --port"):
            run_app(args)


@pytest.mark.slow
def test_motion_is_extracted_from_a_driving_video_and_aligned(tmp_path, inputs):
    from densepose_goldens import DENSEPOSE_TINY, require_densepose_fixtures

    require_densepose_fixtures()
    weights = tmp_path / "densepose.pkl"  # the fixture's random weights in the official format
    subprocess.run([sys.executable, str(DENSEPOSE_TINY / "make_weights.py"), str(weights)], check=True,
                   capture_output=True)
    reference, _, _ = inputs
    photo = np.load(DENSEPOSE_TINY / "monalisa.npz")["image_rgb"][::4, ::4]  # (128, 128, 3)
    driving = write_video(tmp_path / "driving.mp4", np.stack([np.roll(photo, k, axis=1) for k in range(3)]), 15.0)
    animator = Animator(NoModel(), max_frames=24, output_dir=tmp_path / "runs", densepose_weights=weights)
    calls = []
    handler = make_extract_handler(animator)
    motion, summary = handler(lambda fraction, desc=None: calls.append(fraction), driving, reference)
    info = probe_video(motion)
    assert (info["frames"], info["fps"]) == (3, pytest.approx(15.0))
    assert (info["width"], info["height"]) == (80, 96)  # aligned onto the reference photo (80x96)
    assert "3 frames" in summary and "aligned" in summary and calls[-1] == pytest.approx(1.0)
    with pytest.raises(gr.Error, match="upload a driving video first"):
        handler(lambda *a, **k: None, None, reference)
