"""The web app: a Gradio page around ``MagicAnimate`` (``magicanimate app``).

    model = MagicAnimate.from_pretrained("pretrained_models")
    demo = build_app(model, max_upload_mb=200, max_frames=300)
    launch_app(demo, host="127.0.0.1", port=7860, max_upload_mb=200)

The page takes a reference image and a DensePose motion video (any frame rate),
the sampling options of ``magicanimate animate`` (steps, guidance, seed, size,
fit), shows a progress bar while sampling and returns the result video (at the
motion's frame rate) and the reference | motion | result grid.

Serving rules, set here once:
- one generation at a time, through Gradio's queue (concurrency limit 1);
- uploads above ``max_upload_mb`` are refused by Gradio's upload route and
  again by the handler, motions with more than ``max_frames`` frames are
  refused before any sampling, each with a message saying what to change;
- fully offline: no analytics, no share link, no web fonts (system font stacks
  only), server-side rendering off; the examples are drawn on the fly
  (`densepose_render`) into a cache folder, so nothing outside the package is read.
  This needs Gradio 6: Gradio 5's page loads scripts from CDNs, and Gradio 4
  does not import with huggingface_hub >= 1.
"""

from __future__ import annotations

import atexit
import html
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Must be set before gradio is imported, which reads it for its analytics and version check.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402

from .cli_animate import DEFAULT_FPS  # noqa: E402
from .densepose_render import render_motion, render_parts  # noqa: E402
from .errors import InputError, MagicAnimateError  # noqa: E402
from .fit import FIT_MODES, parse_size  # noqa: E402
from .imageio import load_image  # noqa: E402
from .sampler import Progress  # noqa: E402
from .videoio import Motion, make_grid, read_motion, write_video  # noqa: E402

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_MB = 200.0
DEFAULT_MAX_FRAMES = 300
MB = 1024 * 1024  # upload limits are in MiB, as Gradio's "200mb" is
QUEUE_SIZE = 16  # waiting requests beyond this are told the queue is full
KEEP_RUNS = 16  # result folders kept on disk (Gradio serves copies from its cache)
DENOISE_SHARE = 0.9  # fraction of the progress bar spent denoising; decoding gets the rest
EXAMPLES_VERSION = 1  # bump when the drawn examples change, so caches are redrawn

ExampleRow = tuple[str, str]  # (reference image path, motion video path)

_SYSTEM_FONTS = ("ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue",
                 "Arial", "sans-serif")
_SYSTEM_MONO = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace")
_CSS = """
.gradio-container {max-width: 1280px !important; margin: auto;}
#title h1 {margin-bottom: 0;}
#info {min-height: 2em;}
"""


# ==========================================================================
# Checks and progress (no Gradio here: unit-tested directly)
# ==========================================================================


def check_upload(path: str | os.PathLike | None, *, what: str, max_upload_mb: float) -> Path:
    """The uploaded file as a Path; InputError when it is missing or larger than the limit."""
    if not path:
        raise InputError(f"upload a {what} first")
    file = Path(path)
    if not file.is_file():
        raise InputError(f"the {what} upload was not found on the server; upload it again")
    size = file.stat().st_size
    if size > max_upload_mb * MB:
        raise InputError(f"the {what} is {size / MB:.1f} MB, above this app's limit of {max_upload_mb:g} MB: "
                         "upload a smaller file")
    return file


def read_motion_limited(path: str | os.PathLike, *, max_frames: int) -> Motion:
    """Read a motion video at its own fps; InputError when it has more than ``max_frames`` frames."""
    motion = read_motion(path, max_frames=max_frames + 1)  # decodes at most one frame too many
    if motion.num_frames > max_frames:
        raise InputError(
            f"the motion has more than {max_frames} frames, this app's limit: trim it to at most "
            f"{max_frames} frames (e.g. ffmpeg -i motion.mp4 -frames:v {max_frames} short.mp4) "
            "or use the command line (magicanimate animate --max-frames)")
    return motion


def progress_fraction(event: Progress) -> tuple[float, str]:
    """Map a sampler event to (fraction of the whole run in [0, 1], label) for the progress bar."""
    part = min(max(event.done / event.total, 0.0), 1.0) if event.total > 0 else 1.0
    if event.stage == "denoise":
        return DENOISE_SHARE * part, f"Denoising {event.done}/{event.total} (steps × windows)"
    if event.stage == "decode":
        return DENOISE_SHARE + (1 - DENOISE_SHARE) * part, f"Decoding {event.done}/{event.total} frames"
    return part, f"{event.stage} {event.done}/{event.total}"


class ProgressBar:
    """A sampler progress callback that drives a ``gr.Progress`` (or any ``f(fraction, desc=...)``)."""

    def __init__(self, progress: Callable[..., Any]):
        self.progress = progress

    def __call__(self, event: Progress) -> None:
        """Forward one sampler event."""
        fraction, label = progress_fraction(event)
        self.progress(fraction, desc=label)


# ==========================================================================
# One generation
# ==========================================================================


@dataclass
class AppResult:
    """Paths of the written result video and grid video, and a one-line summary (Markdown)."""

    video: Path
    grid: Path
    summary: str


class Animator:
    """Runs one generation at a time with a loaded model and writes its videos to ``output_dir``."""

    def __init__(self, model: Any, *, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
                 max_frames: int = DEFAULT_MAX_FRAMES, output_dir: str | os.PathLike | None = None):
        if max_upload_mb <= 0 or max_frames < 1:
            raise InputError(f"limits must be positive, got max_upload_mb={max_upload_mb}, max_frames={max_frames}")
        self.model = model
        self.max_upload_mb = float(max_upload_mb)
        self.max_frames = int(max_frames)
        if output_dir is None:
            output_dir = tempfile.mkdtemp(prefix="magicanimate-app-")
            atexit.register(shutil.rmtree, output_dir, True)  # ours alone: removed when the server exits
        self.output_dir = Path(output_dir)
        self._lock = threading.Lock()  # the model keeps per-call state (reference bank)
        self._runs = 0

    def __call__(
        self,
        reference: str | os.PathLike | None,
        motion: str | os.PathLike | None,
        *,
        steps: int | float = 25,
        guidance_scale: float = 7.5,
        seed: int | float | None = 1,
        size: str | int = "512",
        fit: str = "stretch",
        progress: Callable[[Progress], None] | None = None,
    ) -> AppResult:
        """Check the inputs, animate, write result.mp4 and grid.mp4; raises InputError for user mistakes."""
        # 1. Cheap checks first: options, then upload sizes, then the frame count.
        steps_n, seed_n = _whole(steps, "steps", minimum=1), _whole(seed, "seed")
        guidance = _number(guidance_scale, "guidance scale")
        width, height = parse_size(str(size).strip())
        if fit not in FIT_MODES:
            raise InputError(f"fit must be one of {', '.join(FIT_MODES)}, got {fit!r}")
        reference_file = check_upload(reference, what="reference image", max_upload_mb=self.max_upload_mb)
        motion_file = check_upload(motion, what="motion video", max_upload_mb=self.max_upload_mb)
        image = load_image(reference_file)
        clip = read_motion_limited(motion_file, max_frames=self.max_frames)
        fps = clip.fps or DEFAULT_FPS

        # 2. Sample (one at a time), 3. write the videos.
        start = time.perf_counter()
        with self._lock:
            result = self.model(image, clip, steps=steps_n, guidance_scale=guidance, seed=seed_n,
                                size=(width, height), fit=fit, progress=progress)
            run_dir = self._next_run_dir()
        video = write_video(run_dir / "result.mp4", result.frames, fps)
        grid = write_video(run_dir / "grid.mp4", make_grid(image, clip.frames, result.frames), fps)
        out_h, out_w = result.frames.shape[1:3]
        summary = (f"**{clip.num_frames} frames** at {fps:g} fps, {out_w}×{out_h}, {steps_n} steps, "
                   f"guidance {guidance:g}, seed {seed_n}, fit {fit} "
                   f"({time.perf_counter() - start:.1f} s)")
        return AppResult(video=video, grid=grid, summary=summary)

    def _next_run_dir(self) -> Path:
        """A fresh folder for this run's videos; the oldest beyond KEEP_RUNS are deleted."""
        self._runs += 1
        run_dir = self.output_dir / f"run-{self._runs:05d}"
        run_dir.mkdir(parents=True, exist_ok=True)
        for old in sorted(self.output_dir.glob("run-*"))[:-KEEP_RUNS]:
            shutil.rmtree(old, ignore_errors=True)
        return run_dir


def _number(value: Any, name: str) -> float:
    """A finite number from a form field, or InputError."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise InputError(f"{name} must be a number, got {value!r}")
    return number


def _whole(value: Any, name: str, *, minimum: int | None = None) -> int:
    """A whole number from a form field, or InputError."""
    number = _number(value, name)
    if number != int(number):
        raise InputError(f"{name} must be a whole number, got {value!r}")
    if minimum is not None and number < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {int(number)}")
    return int(number)


def user_message(err: BaseException) -> str:
    """The message shown in the page for an exception raised by a generation."""
    if isinstance(err, MagicAnimateError):
        return str(err)
    if isinstance(err, MemoryError) or "out of memory" in str(err).lower():
        return "out of memory: lower the size or the number of frames"
    return f"generation failed: {type(err).__name__}: {err}"


# ==========================================================================
# Examples
# ==========================================================================

# Clothing colours by DensePose part (index = part, 0 = background, drawn separately).
_SKIN, _SHIRT, _TROUSERS, _SHOES = (224, 178, 148), (196, 64, 72), (52, 72, 122), (40, 36, 38)
_PART_RGB = np.array([(0, 0, 0), _SHIRT, _SHIRT, _SKIN, _SKIN, _SHOES, _SHOES, *[_TROUSERS] * 8,
                      *[_SHIRT] * 4, *[_SKIN] * 4, _SKIN, _SKIN], dtype=np.uint8)


def example_reference(size: tuple[int, int] = (512, 512), *, seed: int = 0) -> np.ndarray:
    """A synthetic reference photo: a person drawn over the motion's first pose, uint8 (H, W, 3)."""
    width, height = size
    labels = render_parts(1, size, seed=seed)[0]
    rows = np.linspace(0.0, 1.0, height)[:, None, None]  # (H, 1, 1): wall gradient, then floor
    wall = (1 - rows) * np.array([206, 222, 236]) + rows * np.array([236, 226, 206])
    floor = np.array([178, 150, 120]) * (rows > 0.86)
    background = np.where(rows > 0.86, floor, wall) * np.ones((1, width, 1))  # (H, W, 3)
    image = np.where(labels[..., None] > 0, _PART_RGB[labels], background).astype(np.uint8)
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(0.8)))


def default_examples(folder: str | os.PathLike | None = None) -> list[ExampleRow]:
    """Draw (once) and return the built-in example inputs: a reference and two synthetic motions."""
    root = Path(folder) if folder else Path(tempfile.gettempdir()) / f"magicanimate-app-examples-v{EXAMPLES_VERSION}"
    root.mkdir(parents=True, exist_ok=True)
    reference = root / "person.png"
    if not reference.exists():
        temp = root / f".person-{os.getpid()}.png"
        Image.fromarray(example_reference()).save(temp)
        temp.replace(reference)  # atomic: a concurrent app never sees half a file
    motions = {"jumping_jacks_25fps.mp4": (48, 25.0, 0), "jumping_jacks_30fps.mp4": (60, 30.0, 3)}
    rows = []
    for name, (frames, fps, seed) in motions.items():
        path = root / name
        if not path.exists():
            write_video(path, render_motion(frames, (512, 512), seed=seed), fps, overwrite=True)
        rows.append((str(reference), str(path)))
    return rows


# ==========================================================================
# The page
# ==========================================================================


def make_handler(animator: Animator) -> Callable[..., tuple[str, str, str]]:
    """The click handler: form values in, (video path, grid path, summary) out, gr.Error for failures."""

    # A gr.Progress() default is how Gradio is asked for a progress bar.
    def animate(reference, motion, steps, guidance_scale, seed, size, fit, progress=gr.Progress()):  # noqa: B008
        try:
            progress(0.0, desc="Reading the inputs")
            result = animator(reference, motion, steps=steps, guidance_scale=guidance_scale, seed=seed,
                              size=size, fit=fit, progress=ProgressBar(progress))
        except Exception as err:  # noqa: BLE001 - every failure becomes a message in the page
            if not isinstance(err, MagicAnimateError):
                log.exception("generation failed")
            raise gr.Error(html.escape(user_message(err), quote=False)) from None  # shown as HTML
        return str(result.video), str(result.grid), result.summary

    return animate


def _theme() -> gr.themes.ThemeClass:
    """The Soft theme with system fonts only (Gradio's defaults may load web fonts)."""
    return gr.themes.Soft(primary_hue="indigo", font=list(_SYSTEM_FONTS), font_mono=list(_SYSTEM_MONO))


def build_app(
    model: Any,
    *,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    max_frames: int = DEFAULT_MAX_FRAMES,
    examples: Sequence[ExampleRow] | None = None,
    output_dir: str | os.PathLike | None = None,
    title: str = "MagicAnimate",
) -> gr.Blocks:
    """The Gradio page around a loaded model; ``examples=None`` draws the built-in ones, ``()`` shows none."""
    animator = Animator(model, max_upload_mb=max_upload_mb, max_frames=max_frames, output_dir=output_dir)
    rows = default_examples() if examples is None else [tuple(map(str, row)) for row in examples]
    animate = make_handler(animator)

    # delete_cache: Gradio's copies of uploads and results, checked hourly, removed after an hour.
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            f"# {html.escape(title)}\n"
            "Animate a reference image with a DensePose motion video of any frame rate. "
            f"Uploads up to {max_upload_mb:g} MB and {max_frames} frames; one generation at a time.",
            elem_id="title")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                with gr.Row():
                    reference = gr.Image(label="Reference image", type="filepath", elem_id="reference", height=220,
                                         sources=["upload", "clipboard"])
                    motion = gr.Video(label="Motion (DensePose)", elem_id="motion", height=220,
                                      sources=["upload"])
                with gr.Row():
                    steps = gr.Slider(1, 100, value=25, step=1, label="Steps", elem_id="steps")
                    guidance = gr.Slider(1.0, 15.0, value=7.5, step=0.5, label="Guidance scale", elem_id="guidance")
                with gr.Row():
                    seed = gr.Number(value=1, precision=0, label="Seed", elem_id="seed", min_width=80)
                    size = gr.Textbox(value="512", label="Size (N or WxH)", max_lines=1,
                                      elem_id="size", min_width=120)
                    fit = gr.Dropdown(list(FIT_MODES), value="stretch", label="Fit", elem_id="fit", min_width=100)
                button = gr.Button("Animate", variant="primary", elem_id="animate")
                if rows:
                    gr.Examples(examples=[list(r) for r in rows], inputs=[reference, motion], label="Examples")
            with gr.Column(scale=1):
                video = gr.Video(label="Result", elem_id="result", height=300, interactive=False, autoplay=True,
                                 loop=True)
                grid = gr.Video(label="Reference | motion | result", elem_id="grid", height=200, interactive=False,
                                autoplay=True, loop=True)
                info = gr.Markdown(elem_id="info")
        button.click(animate, inputs=[reference, motion, steps, guidance, seed, size, fit],
                     outputs=[video, grid, info], api_name="animate", concurrency_limit=1,
                     concurrency_id="generate")
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    return demo


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    return host in ("localhost", "::1") or host.startswith("127.")


def launch_app(
    demo: gr.Blocks,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    block: bool = True,
    quiet: bool = False,
) -> str:
    """Serve the page on host:port (never a share link); returns its local URL."""
    if not is_loopback(host):
        log.warning("serving on %s: anyone who can reach this address can use the app (no login)", host)
    try:
        _, url, _ = demo.launch(
            server_name=host, server_port=port, share=False, inbrowser=False, quiet=quiet, show_error=True,
            prevent_thread_lock=not block,
            max_file_size=int(max_upload_mb * MB),  # refused by Gradio's upload route itself
            ssr_mode=False,  # no Node server
            theme=_theme(), css=_CSS,
        )
    except OSError as err:
        raise InputError(f"cannot listen on {host}:{port} ({err}); pick another --port") from None
    return str(url)
