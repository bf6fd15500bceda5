"""``magicanimate animate``: one animation, or a batch of jobs with the models loaded once."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .cli import non_negative_int, positive_int, resolve_device_dtype
from .errors import InputError, MagicAnimateError
from .fit import FIT_MODES, parse_size
from .scheduler import SCHEDULERS

log = logging.getLogger(__name__)
DEFAULT_FPS = 25.0  # for motion inputs without a frame rate (frame folders, arrays)


@dataclass
class Job:
    """One animation: inputs, output and sampling options (names equal the CLI flags)."""

    reference: str
    motion: str
    output: str
    steps: int = 25
    guidance_scale: float = 7.5
    seed: int = 1
    size: str = "512"
    fit: str = "stretch"
    scheduler: str = "ddim"
    deep_cache: int = 1
    overlap: int = 4
    start: int = 0
    max_frames: int | None = None
    fps: float | None = None
    grid: str | None = None
    save_array: str | None = None
    overwrite: bool = False
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, base: Path, defaults: "Job") -> "Job":
        """A job from one entry of a jobs file; relative paths are relative to the file."""
        names = {f.name for f in fields(cls)} - {"extra"}
        keys = {k.replace("-", "_"): v for k, v in data.items() if v not in (None, "")}
        unknown = set(keys) - names
        if unknown:
            raise InputError(f"unknown job fields {sorted(unknown)}; known: {sorted(names)}")
        for required in ("reference", "motion", "output"):
            if required not in keys:
                raise InputError(f"job {data} has no '{required}'")
        values = {f.name: getattr(defaults, f.name) for f in fields(cls) if f.name != "extra"}
        values.update(keys)
        for name in ("reference", "motion", "output", "grid", "save_array"):
            if values.get(name) is not None:
                p = Path(str(values[name])).expanduser()
                values[name] = str(p if p.is_absolute() else base / p)
        casts = {"steps": int, "seed": int, "start": int, "guidance_scale": float, "size": str,
                 "deep_cache": int, "overlap": int,
                 "max_frames": int, "fps": float, "overwrite": _as_bool}
        for name, cast in casts.items():
            if values.get(name) is not None:
                try:
                    values[name] = cast(values[name])
                except (TypeError, ValueError):
                    raise InputError(f"job field {name}={values[name]!r} is not a valid {cast.__name__}") from None
        return cls(**values)


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "y")


def add_animate_parser(subparsers) -> None:
    """Register ``animate``."""
    p = subparsers.add_parser(
        "animate", help="animate a reference image with a DensePose motion video",
        description="Animate a reference image with a DensePose motion (video file, frame folder or .npy). "
                    "Defaults reproduce the release: 25 DDIM steps, guidance 7.5, seed 1, 512x512.",
    )
    io = p.add_argument_group("inputs and outputs")
    io.add_argument("--reference", help="reference image (PNG, JPEG, WebP, BMP)")
    io.add_argument("--motion", help="DensePose motion: mp4/mov/webm/mkv/avi/gif, a folder of frames, or .npy")
    io.add_argument("--output", help="result: .mp4 (H.264), .webm, .gif, or a folder for numbered PNGs")
    io.add_argument("--jobs", type=Path, help="batch file (.yaml/.json/.csv) listing jobs; see README")
    io.add_argument("--grid", nargs="?", const="auto", default=None, metavar="PATH",
                    help="also write reference | motion | result side by side (default path: OUTPUT with '.grid')")
    io.add_argument("--save-array", metavar="OUT.npy", help="also save the float32 frames (F, H, W, 3) in [0, 1]")
    io.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    io.add_argument("--start", type=non_negative_int, default=0, help="first motion frame to use (default 0)")
    io.add_argument("--max-frames", type=positive_int, help="use at most this many motion frames")
    io.add_argument("--fps", type=float,
                    help="resample a motion video to this fps (default: keep its own); for a frame folder or "
                         ".npy, the rate of its frames (default 25)")
    s = p.add_argument_group("sampling")
    s.add_argument("--steps", type=positive_int, default=25, help="DDIM steps (default 25)")
    s.add_argument("--guidance-scale", type=float, default=7.5, help="classifier-free guidance (default 7.5)")
    s.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    s.add_argument("--size", default="512", help="N (square, default 512) or WxH, multiples of 8")
    s.add_argument("--fit", choices=FIT_MODES, default="stretch",
                   help="how inputs map onto the size: stretch (release), pad, crop (default stretch)")
    lossy = p.add_argument_group("lossy fast modes (opt-in: they change the output; see docs/benchmarks.md)")
    lossy.add_argument("--scheduler", choices=SCHEDULERS, default="ddim",
                       help="ddim (release, default), or dpmsolver++ / unipc with fewer --steps (e.g. 10-15)")
    lossy.add_argument("--deep-cache", type=positive_int, default=1, metavar="N",
                       help="run the full UNet every N steps, reuse its deep features in between (default 1: off)")
    lossy.add_argument("--overlap", type=non_negative_int, default=4,
                       help="frames shared by consecutive 16-frame windows (release: 4)")
    m = p.add_argument_group("model")
    m.add_argument("--weights", help="folder in the release layout (default: Hugging Face Hub cache)")
    m.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default auto)")
    m.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"],
                   help="auto = float16 on CUDA, float32 on CPU")
    m.add_argument("--offload", action="store_true",
                   help="keep models in CPU memory, each on the GPU only while it runs (less GPU memory)")
    m.add_argument("--vae-tiling", action="store_true",
                   help="decode large frames tile by tile (less memory; slightly changes the output)")
    m.add_argument("--ff-chunking", action="store_true",
                   help="run the UNet's feed-forward layers one frame at a time (less memory, same output)")
    m.add_argument("--decode-chunk", type=positive_int, default=None, metavar="N",
                   help="frames per VAE decode call (default 8; 1 = least memory, same output)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run_animate)


def _jobs_from_args(args: argparse.Namespace) -> list[Job]:
    defaults = Job(reference="", motion="", output="", steps=args.steps, guidance_scale=args.guidance_scale,
                   seed=args.seed, size=args.size, fit=args.fit, scheduler=args.scheduler,
                   deep_cache=args.deep_cache, overlap=args.overlap, start=args.start, max_frames=args.max_frames,
                   fps=args.fps, overwrite=args.overwrite)
    if args.jobs is not None:
        if any(getattr(args, n) for n in ("reference", "motion", "output")):
            raise InputError("give either --jobs or --reference/--motion/--output, not both")
        return read_jobs(args.jobs, defaults)
    missing = [f"--{n}" for n in ("reference", "motion", "output") if not getattr(args, n)]
    if missing:
        raise InputError(f"missing {', '.join(missing)} (or give --jobs FILE)")
    defaults.reference, defaults.motion, defaults.output = args.reference, args.motion, args.output
    defaults.grid, defaults.save_array = args.grid, args.save_array
    return [defaults]


def read_jobs(path: Path, defaults: Job) -> list[Job]:
    """Jobs from a YAML/JSON list of mappings or a CSV with a header row."""
    if not path.is_file():
        raise InputError(f"jobs file not found: {path}")
    text = path.read_text()
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            entries = yaml.safe_load(text)
        elif suffix == ".json":
            entries = json.loads(text)
        elif suffix == ".csv":
            entries = list(csv.DictReader(text.splitlines()))
        else:
            raise InputError(f"jobs file {path} must be .yaml, .yml, .json or .csv")
    except MagicAnimateError:
        raise
    except Exception as err:
        raise InputError(f"cannot parse jobs file {path}: {err}") from None
    if isinstance(entries, dict) and "jobs" in entries:
        entries = entries["jobs"]
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise InputError(f"jobs file {path} must hold a non-empty list of jobs (mappings)")
    return [Job.from_mapping(e, base=path.parent, defaults=defaults) for e in entries]


def grid_path(job: Job) -> Path | None:
    """Where the grid goes: an explicit path, or OUTPUT with '.grid' before the suffix."""
    if job.grid is None:
        return None
    if job.grid != "auto":
        return Path(job.grid)
    out = Path(job.output)
    return out.with_name(out.stem + ".grid" + out.suffix) if out.suffix else out.with_name(out.name + "_grid")


class _Progress:
    """A tqdm bar over denoising steps x windows, and a line for decoding."""

    def __init__(self, quiet: bool, label: str):
        self.quiet, self.label, self.bar = quiet, label, None

    def __call__(self, event) -> None:
        if self.quiet:
            return
        if event.stage == "denoise":
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=event.total, desc=f"{self.label} denoising", unit="window",
                                file=sys.stderr, dynamic_ncols=True)
            self.bar.update(event.done - self.bar.n)
        elif event.stage == "decode" and event.done == event.total:
            self.close()
            print(f"{self.label} decoded {event.total} frames", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr)


def run_job(model, job: Job, *, quiet: bool, label: str = "", split=None) -> Path:
    """Run one job with a loaded model; writes its outputs atomically (rank 0 only under torchrun)."""
    from .distributed import WindowSplit
    from .imageio import load_image
    from .videoio import check_output, make_grid, read_motion, save_array, write_video

    split = split or WindowSplit()
    quiet = quiet or split.rank != 0

    check_output(job.output, overwrite=job.overwrite)  # fail before spending minutes
    grid = grid_path(job)
    if grid is not None:
        check_output(grid, overwrite=job.overwrite)
    reference = load_image(job.reference)
    source = Path(job.motion)
    timed = not (source.is_dir() or source.suffix.lower() == ".npy")  # frame folders and arrays have no rate
    motion = read_motion(source, start=job.start, max_frames=job.max_frames, fps=job.fps if timed else None)
    if not timed and job.fps:
        motion.fps = job.fps  # --fps declares the rate of untimed frames
    _say(quiet, f"{label}read {motion.num_frames} motion frames"
                f"{f' at {motion.fps:g} fps' if motion.fps else ''} from {job.motion}")
    progress = _Progress(quiet, label.strip() or "animate")
    try:
        result = model(reference, motion, steps=job.steps, guidance_scale=job.guidance_scale, seed=job.seed,
                       size=parse_size(job.size), fit=job.fit, progress=progress, split=split,
                       scheduler=job.scheduler, deep_cache_interval=job.deep_cache, overlap=job.overlap)
    finally:
        progress.close()
    if split.rank != 0:
        return Path(job.output)  # every rank holds the result; one writes it
    fps = result.fps or job.fps or DEFAULT_FPS
    if result.fps is None and job.fps is None:
        _say(quiet, f"{label}the motion has no frame rate; writing at {DEFAULT_FPS:g} fps (set --fps)")
    out = write_video(job.output, result.frames, fps, overwrite=job.overwrite)
    if grid is not None:
        write_video(grid, make_grid(reference, motion.frames, result.frames), fps, overwrite=job.overwrite)
    if job.save_array:
        save_array(job.save_array, result.frames, overwrite=job.overwrite)
    _say(quiet, f"{label}wrote {out}")
    return out


def load_model(weights: str | None, device: str, dtype: str, *, quiet: bool, offload: bool = False,
               vae_tiling: bool = False, ff_chunking: bool = False, decode_chunk: int | None = None):
    """Load MagicAnimate for the command line, with a short status line."""
    from .pipeline import MagicAnimate

    from .distributed import local_device

    if device == "auto" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = str(local_device())  # torchrun: one GPU per rank
    dev, dt = resolve_device_dtype(device, dtype)
    _say(quiet, f"loading weights from {weights or 'the Hugging Face Hub'} on {dev} ({str(dt).replace('torch.', '')})")
    start = time.perf_counter()
    model = MagicAnimate.from_pretrained(weights, device=dev, dtype=dt)
    report = model.components.temporal_report
    if report is not None:
        _say(quiet, f"temporal_attention.ckpt: {report.path}, {report.loaded} tensors")
    if offload:
        model.enable_model_offload()
    if vae_tiling:
        model.enable_vae_tiling()
    if ff_chunking:
        model.enable_feed_forward_chunking(1)
    model.decode_chunk_size = decode_chunk
    _say(quiet, f"loaded in {time.perf_counter() - start:.1f} s")
    return model


def run_animate(args: argparse.Namespace) -> int:
    """Entry point of ``magicanimate animate``."""
    jobs = _jobs_from_args(args)
    for job in jobs:  # cheap checks before loading several GB of weights
        parse_size(job.size)
        if job.fit not in FIT_MODES:
            raise InputError(f"unknown fit {job.fit!r}: use one of {', '.join(FIT_MODES)}")
    if args.jobs is None:
        job = jobs[0]
        for path in (job.reference, job.motion):
            if not Path(path).exists():
                raise InputError(f"input not found: {path}")
        from .distributed import split_from_environment

        split = split_from_environment()
        model = load_model(args.weights, args.device, args.dtype, quiet=args.quiet or split.rank != 0,
                           offload=args.offload, vae_tiling=args.vae_tiling,
                           ff_chunking=args.ff_chunking, decode_chunk=args.decode_chunk)
        run_job(model, job, quiet=args.quiet, split=split)
        return 0
    return run_batch(jobs, args)


def run_batch(jobs: list[Job], args: argparse.Namespace) -> int:
    """Run every job; skip those whose output exists; report failures and go on."""
    todo = [j for j in jobs if j.overwrite or not Path(j.output).exists()]
    status: dict[int, tuple[str, str]] = {}
    for i, job in enumerate(jobs):
        if job not in todo:
            status[i] = ("skipped", "output exists")
    model = (load_model(args.weights, args.device, args.dtype, quiet=args.quiet, offload=args.offload,
                        vae_tiling=args.vae_tiling, ff_chunking=args.ff_chunking,
                        decode_chunk=args.decode_chunk) if todo else None)
    for i, job in enumerate(jobs):
        if i in status:
            continue
        label = f"[{i + 1}/{len(jobs)}] "
        start = time.perf_counter()
        try:
            run_job(model, job, quiet=args.quiet, label=label)
            status[i] = ("done", f"{time.perf_counter() - start:.1f} s")
        except KeyboardInterrupt:
            raise
        except Exception as err:  # one bad job must not stop the batch
            if getattr(args, "verbose", False):
                log.exception("job %d failed", i + 1)
            message = str(err) if isinstance(err, MagicAnimateError) else f"{type(err).__name__}: {err}"
            status[i] = ("failed", message)
            print(f"{label}error: {message}", file=sys.stderr)
    print(summary_table(jobs, status))
    return 1 if any(s == "failed" for s, _ in status.values()) else 0


def summary_table(jobs: list[Job], status: dict[int, tuple[str, str]]) -> str:
    """A plain-text table: job, output, status, detail."""
    rows = [("#", "output", "status", "detail")]
    rows += [(str(i + 1), jobs[i].output, *status[i]) for i in range(len(jobs))]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    lines = ["  ".join(r[c].ljust(widths[c]) for c in range(3)) + "  " + r[3] for r in rows]
    counts = {s: sum(1 for v, _ in status.values() if v == s) for s in ("done", "skipped", "failed")}
    lines.append(f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed")
    return "\n".join(lines)
