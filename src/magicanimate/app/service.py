"""The web app's service layer (no Gradio): upload and frame limits, progress mapping, run folders.

``Animator`` checks a request, runs one generation at a time with a loaded model and
writes the result and grid videos into its own run folders; the page (``app/ui.py``)
only turns form values into a call of it.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from magicanimate.errors import InputError, MagicAnimateError
from magicanimate.io.image import IMAGE_SUFFIXES, MAX_IMAGE_PIXELS, load_image
from magicanimate.io.video import Motion, make_grid, read_motion, write_video
from magicanimate.options import DEFAULT_FPS, SampleOptions, iter_options
from magicanimate.sampling.memory_limit import SizeLimit
from magicanimate.sampling.sampler import Progress
from magicanimate.synthetic.simple_person import render_motion, synthetic_reference

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_MB = 200.0
DEFAULT_MAX_FRAMES = 300
MB = 1024 * 1024  # upload limits are in MiB, as Gradio's "200mb" is
KEEP_RUNS = 16  # result folders kept on disk (Gradio serves copies from its cache)
DENOISE_SHARE = 0.9  # fraction of the progress bar spent denoising; decoding gets the rest
EXAMPLES_VERSION = 1  # bump when the drawn examples change, so caches are redrawn

ExampleRow = tuple[str, str]  # (reference image path, motion video path)


def app_option_names() -> list[str]:
    """The options the page shows, in form order (those of ``SampleOptions`` with an app control)."""
    return [name for name, _ in iter_options(app=True)]


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


VIDEO_TYPES = "an mp4, webm, mov, mkv or avi video"


def read_reference_upload(path: str | os.PathLike, *, what: str = "reference image") -> np.ndarray:
    """The uploaded image as uint8 (H, W, 3); InputError in the page's words (no server path) when it is not one."""
    name = Path(path).name  # the name it was uploaded under; the folder is the server's
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit is checked below
            with Image.open(path) as image:
                pixels = image.width * image.height
    except Image.DecompressionBombError:
        pixels = MAX_IMAGE_PIXELS + 1
    except Exception:  # noqa: BLE001 - whatever PIL says, the upload is not a picture we can read
        raise InputError(f"the {what} upload {name!r} is not an image: upload a PNG, JPEG, WebP or BMP "
                         "picture") from None
    if pixels > MAX_IMAGE_PIXELS:
        raise InputError(f"the {what} {name!r} has more than {MAX_IMAGE_PIXELS // 1_000_000} megapixels, this "
                         "app's limit: downscale it first (the model works at 512 px)")
    try:
        return load_image(path, what=what)
    except InputError:
        raise InputError(f"the {what} upload {name!r} could not be decoded (a damaged file?): upload it again "
                         "or save it as PNG") from None


def read_motion_limited(path: str | os.PathLike, *, max_frames: int, what: str = "motion video") -> Motion:
    """Read an uploaded video at its own fps; InputError in the page's words when it is not a readable video
    or has more than ``max_frames`` frames."""
    name = Path(path).name
    if Path(path).suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(f"the {what} upload {name!r} is a single image: upload {VIDEO_TYPES}")
    try:
        motion = read_motion(path, max_frames=max_frames + 1)  # decodes at most one frame too many
    except InputError:
        raise InputError(f"the {what} upload {name!r} is not a video this app can read: upload "
                         f"{VIDEO_TYPES}") from None
    if motion.num_frames > max_frames:
        raise InputError(
            f"the {what} has more than {max_frames} frames, this app's limit: trim it to at most "
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


@dataclass
class ExtractionResult:
    """Path of the extracted motion video and a one-line summary (Markdown)."""

    motion: Path
    summary: str


class Animator:
    """Runs one generation at a time with a loaded model and writes its videos to ``output_dir``.

    ``size_limit``: sizes whose estimated peak memory exceeds the device's are refused.
    """

    def __init__(self, model: Any, *, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
                 max_frames: int = DEFAULT_MAX_FRAMES, output_dir: str | os.PathLike | None = None,
                 densepose_weights: str | os.PathLike | None = None, size_limit: SizeLimit | None = None):
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
        self.densepose_weights = densepose_weights  # None: the cached download, loaded on first use
        self._extractor = None
        self.size_limit = size_limit  # None: sizes are not checked against the device's memory

    def __call__(
        self,
        reference: str | os.PathLike | None,
        motion: str | os.PathLike | None,
        *,
        progress: Callable[[Progress], None] | None = None,
        **values: Any,
    ) -> AppResult:
        """Check the inputs, animate, write result.mp4 and grid.mp4; raises InputError for user mistakes.

        ``values``: the form's options by name (see ``app_option_names``), as text or numbers.
        """
        # 1. Cheap checks first: options, then upload sizes, then the frame count.
        unknown = sorted(set(values) - set(app_option_names()))
        if unknown:
            raise InputError(f"the page has no options {unknown}")
        options = SampleOptions.from_mapping(values)
        if self.size_limit is not None:
            self.size_limit.check(options.size, flag="size")  # estimated; before reading any upload
        reference_file = check_upload(reference, what="reference image", max_upload_mb=self.max_upload_mb)
        motion_file = check_upload(motion, what="motion video", max_upload_mb=self.max_upload_mb)
        image = read_reference_upload(reference_file)
        clip = read_motion_limited(motion_file, max_frames=self.max_frames)
        fps = clip.fps or DEFAULT_FPS

        # 2. Sample (one at a time), 3. write the videos.
        start = time.perf_counter()
        with self._lock:
            result = self.model.animate(image, clip.frames, options=options, fps=clip.fps, progress=progress)
            run_dir = self._next_run_dir()
        video = write_video(run_dir / "result.mp4", result.frames, fps)
        grid = write_video(run_dir / "grid.mp4", make_grid(image, clip.frames, result.frames), fps)
        out_h, out_w = result.frames.shape[1:3]
        shown = ", ".join(f"{name.replace('_', ' ')} {getattr(options, name)}" for name in app_option_names()
                          if name != "size")
        summary = (f"**{clip.num_frames} frames** at {fps:g} fps, {out_w}×{out_h}, {shown} "
                   f"({time.perf_counter() - start:.1f} s)")
        return AppResult(video=video, grid=grid, summary=summary)

    def extract_motion(
        self,
        driving: str | os.PathLike | None,
        reference: str | os.PathLike | None = None,
        *,
        progress: Callable[[float, str], None] | None = None,
    ) -> ExtractionResult:
        """DensePose motion of an ordinary video (aligned to ``reference`` when given), written as motion.mp4."""
        from magicanimate.densepose import DensePoseExtractor, extract_motion
        from magicanimate.io.densepose_colors import colorize_parts

        driving_file = check_upload(driving, what="driving video", max_upload_mb=self.max_upload_mb)
        image = None
        if reference:
            image = read_reference_upload(check_upload(reference, what="reference image",
                                                       max_upload_mb=self.max_upload_mb))
        clip = read_motion_limited(driving_file, max_frames=self.max_frames, what="driving video")
        start = time.perf_counter()
        with self._lock:
            if self._extractor is None:
                self._extractor = DensePoseExtractor.from_pretrained(self.densepose_weights,
                                                                     device=getattr(self.model, "device", None))

            def report(done: int, total: int | None) -> None:
                if progress is not None:
                    progress(done / (total or clip.num_frames), f"DensePose {done}/{total or clip.num_frames} frames")

            labels = extract_motion(clip.frames, extractor=self._extractor, align_to=image, progress=report)
            run_dir = self._next_run_dir()
        fps = clip.fps or DEFAULT_FPS
        motion = write_video(run_dir / "motion.mp4", colorize_parts(labels), fps)
        aligned = " aligned to the reference" if image is not None else ""
        summary = (f"**motion extracted**: {clip.num_frames} frames at {fps:g} fps{aligned} "
                   f"({time.perf_counter() - start:.1f} s); check it, then press Animate")
        return ExtractionResult(motion=motion, summary=summary)

    def _next_run_dir(self) -> Path:
        """A fresh folder for this run's videos; the oldest beyond KEEP_RUNS are deleted."""
        self._runs += 1
        run_dir = self.output_dir / f"run-{self._runs:05d}"
        run_dir.mkdir(parents=True, exist_ok=True)
        for old in sorted(self.output_dir.glob("run-*"))[:-KEEP_RUNS]:
            shutil.rmtree(old, ignore_errors=True)
        return run_dir


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


def default_examples(folder: str | os.PathLike | None = None) -> list[ExampleRow]:
    """Draw (once) and return the built-in example inputs: a reference and two synthetic motions."""
    root = Path(folder) if folder else Path(tempfile.gettempdir()) / f"magicanimate-app-examples-v{EXAMPLES_VERSION}"
    root.mkdir(parents=True, exist_ok=True)
    reference = root / "person.png"
    if not reference.exists():
        temp = root / f".person-{os.getpid()}.png"
        Image.fromarray(synthetic_reference()).save(temp)
        temp.replace(reference)  # atomic: a concurrent app never sees half a file
    motions = {"jumping_jacks_25fps.mp4": (48, 25.0, 0), "jumping_jacks_30fps.mp4": (60, 30.0, 3)}
    rows = []
    for name, (frames, fps, seed) in motions.items():
        path = root / name
        if not path.exists():
            write_video(path, render_motion(frames, (512, 512), seed=seed), fps, overwrite=True)
        rows.append((str(reference), str(path)))
    return rows
