"""``magicanimate animate``: one animation, or a batch of jobs with the models loaded once."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from magicanimate.cli.arguments import add_option_flags, options_from_args
from magicanimate.cli.extract_motion import (
    add_extraction_flags, check_densepose_weights_file, check_extraction_flags, extract_labels, load_extractor,
)
from magicanimate.cli.jobs import BadJob, Job, grid_path, read_jobs
from magicanimate.cli.loading import ModelCache, check_size_fits, load_model, say
from magicanimate.cli.outputs import (
    JobPaths, check_job_outputs, clashes_between_jobs, extracted_motion_path, job_paths,
)
from magicanimate.errors import InputError, MagicAnimateError
from magicanimate.options import DEFAULT_FPS, WINDOW
from magicanimate.runtime.job_claims import DEFAULT_STALE_AFTER

log = logging.getLogger(__name__)


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
    io.add_argument("--driving-video", metavar="VIDEO",
                    help="instead of --motion: an ordinary video of a person; its DensePose motion is extracted, "
                         "aligned to the reference and saved beside the output as OUTPUT.motion.mp4")
    io.add_argument("--no-align", dest="align", action="store_false",
                    help="with --driving-video: keep the extracted motion as it is (no fit to the reference)")
    io.add_argument("--output", help="result: .mp4 (H.264), .webm, .gif, or a folder for numbered PNGs")
    io.add_argument("--jobs", type=Path,
                    help="batch file (.yaml/.json/.csv) listing jobs; see README. Finished outputs are skipped; "
                         "each running job holds OUTPUT.claim, so launches sharing the file never run a job "
                         "twice. Under torchrun each rank runs whole jobs; only with fewer pending jobs than ranks "
                         "is a long job (over 16 frames) split over several ranks")
    io.add_argument("--claim-timeout", type=float, default=DEFAULT_STALE_AFTER, metavar="SECONDS",
                    help="with --jobs: a claim whose heartbeat is older than this may be taken over "
                         "(default %(default)g; a claim of a dead process on the same host at once)")
    io.add_argument("--grid", nargs="?", const="auto", default=None, metavar="PATH",
                    help="also write reference | motion | result side by side (default path: OUTPUT with '.grid')")
    io.add_argument("--save-array", metavar="OUT.npy", help="also save the float32 frames (F, H, W, 3) in [0, 1]")
    io.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    m = p.add_argument_group("model")
    m.add_argument("--weights", help="folder in the release layout, or 'mini' for the mini model in the "
                                     "package (default: the released weights from the Hugging Face Hub cache)")
    m.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default auto)")
    add_option_flags(p)
    add_extraction_flags(p)
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run_animate)


def _jobs_from_args(args: argparse.Namespace) -> list[Job | BadJob]:
    check_extraction_flags(args)
    defaults = Job(reference="", motion=None, output="", options=options_from_args(args), overwrite=args.overwrite,
                   align=args.align)
    if args.jobs is not None:
        if any(getattr(args, n) for n in ("reference", "motion", "driving_video", "output")):
            raise InputError("give either --jobs or --reference/--motion/--output, not both")
        if not args.claim_timeout > 0:
            raise InputError(f"--claim-timeout must be a positive number of seconds, got {args.claim_timeout:g}")
        return read_jobs(args.jobs, defaults)
    missing = [f"--{n}" for n in ("reference", "output") if not getattr(args, n)]
    if not args.motion and not args.driving_video:
        missing.insert(1, "--motion (or --driving-video)")
    if missing:
        raise InputError(f"missing {', '.join(missing)} (or give --jobs FILE)")
    if args.motion and args.driving_video:
        raise InputError("give either --motion or --driving-video, not both")
    defaults.reference, defaults.motion, defaults.output = args.reference, args.motion, args.output
    defaults.driving_video = args.driving_video
    defaults.grid, defaults.save_array = args.grid, args.save_array
    return [defaults]


class MotionExtraction:
    """DensePose extraction for ``--driving-video`` jobs: the extractor is loaded once, on first use."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self._extractor = None

    def motion(self, job: Job, reference, *, quiet: bool, label: str):
        """The job's DensePose motion (a ``Motion`` of dp_segm frames), aligned to ``reference`` if asked."""
        from magicanimate.io.densepose_colors import colorize_parts
        from magicanimate.io.video import Motion, read_motion

        opts = job.options
        video = read_motion(job.driving_video, start=opts.start, max_frames=opts.max_frames, fps=opts.fps)
        say(quiet, f"{label}read {video.num_frames} frames of {job.driving_video}; extracting DensePose")
        if self._extractor is None:
            self._extractor = load_extractor(self.args)
        labels = extract_labels(self._extractor, video.frames, self.args,
                                reference=reference if job.align else None, label=f"{label}DensePose".strip())
        return Motion(frames=colorize_parts(labels), fps=video.fps or opts.fps)


class _Progress:
    """tqdm bars on stderr: denoising (steps x windows), then decoding (frames)."""

    def __init__(self, quiet: bool, label: str):
        self.quiet, self.label, self.bar, self.stage = quiet, label, None, None

    def __call__(self, event) -> None:
        if self.quiet or event.stage not in ("denoise", "decode"):
            return
        if event.stage != self.stage:
            self.close()
            from tqdm import tqdm

            what, unit = ("denoising", "window") if event.stage == "denoise" else ("decoding", "frame")
            self.bar = tqdm(total=event.total, desc=f"{self.label} {what}", unit=unit, file=sys.stderr,
                            dynamic_ncols=True)
            self.stage = event.stage
        self.bar.update(event.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run_job(model, job: Job, *, quiet: bool, label: str = "", split=None,
            extraction: MotionExtraction | None = None, claim=None) -> Path:
    """Run one job with a loaded model; writes its outputs atomically (rank 0 of its split only).

    With a ``claim`` (``runtime.job_claims.Claim``), nothing is written once the claim was taken over.
    """
    from magicanimate.io.image import load_image
    from magicanimate.io.video import check_output, make_grid, save_array, write_video
    from magicanimate.runtime.distributed import WindowSplit
    from magicanimate.sampling.pipeline import resolve_inputs

    split = split or WindowSplit()
    quiet = quiet or split.rank != 0
    opts = job.options

    check_output(job.output, overwrite=job.overwrite)  # fail before spending minutes
    grid = grid_path(job)
    if grid is not None:
        check_output(grid, overwrite=job.overwrite)
    if job.driving_video:
        saved_motion = extracted_motion_path(job)
        check_output(saved_motion, overwrite=job.overwrite)
        if extraction is None:
            raise InputError("a --driving-video job needs the DensePose extraction settings")
        reference = load_image(job.reference)
        motion = extraction.motion(job, reference, quiet=quiet, label=label)
        if split.rank == 0:
            write_video(saved_motion, motion.frames, motion.fps or DEFAULT_FPS, overwrite=job.overwrite)
            say(quiet, f"{label}wrote the extracted motion {saved_motion}")
    else:
        reference, motion = resolve_inputs(job.reference, job.motion, opts)
        say(quiet, f"{label}read {motion.num_frames} motion frames"
                    f"{f' at {motion.fps:g} fps' if motion.fps else ''} from {job.motion}")
    progress = _Progress(quiet, label.strip() or "animate")
    model.configure_memory(opts)
    try:
        result = model.animate(reference, motion.frames, options=opts, fps=motion.fps, progress=progress, split=split)
    finally:
        progress.close()
    if split.rank != 0:
        return Path(job.output)  # every rank holds the result; one writes it
    if claim is not None and not claim.held():
        raise ClaimLost(f"the claim {claim.path} was taken over by another launch; not writing {job.output}")
    fps = result.fps or opts.fps or DEFAULT_FPS
    if result.fps is None and opts.fps is None:
        say(quiet, f"{label}the motion has no frame rate; writing at {DEFAULT_FPS:g} fps (set --fps)")
    out = write_video(job.output, result.frames, fps, overwrite=job.overwrite)
    if grid is not None:
        write_video(grid, make_grid(reference, motion.frames, result.frames), fps, overwrite=job.overwrite)
    if job.save_array:
        save_array(job.save_array, result.frames, overwrite=job.overwrite)
    say(quiet, f"{label}wrote {out}")
    return out


def run_animate(args: argparse.Namespace) -> int:
    """Entry point of ``magicanimate animate``: every argument and path is checked before loading anything."""
    from magicanimate.io.image import check_image_file
    from magicanimate.runtime.device import resolve_device

    jobs = _jobs_from_args(args)
    resolve_device(args.device)  # `--device tpu9`: our message now, not after reading the inputs
    if args.jobs is None:
        job = jobs[0]
        for path in (job.reference, job.motion or job.driving_video):
            if not Path(path).exists():
                raise InputError(f"input not found: {path}")
        check_image_file(job.reference)  # unreadable or too large: said now, not after loading the weights
        check_job_outputs(job, job_paths(job, weights=args.weights))
        if job.driving_video:
            check_densepose_weights_file(args)
        check_size_fits(job.options, weights=args.weights, device=args.device)  # estimated: no weights read
        from magicanimate.runtime.distributed import split_from_environment

        split = split_from_environment()
        model = load_model(args.weights, args.device, job.options.dtype, quiet=args.quiet or split.rank != 0)
        run_job(model, job, quiet=args.quiet, split=split, extraction=MotionExtraction(args))
        return 0
    return run_batch(jobs, args)


def plan_batch(jobs: list[Job | BadJob], args: argparse.Namespace) -> dict[int, tuple[str, str]]:
    """The jobs that will not run, found before loading anything: (status, why) by index.

    Invalid entries, sizes that need more memory than the device has (estimated), outputs
    that clash with an input or with another job's output, and outputs that cannot be written fail; existing outputs are skipped (a re-run resumes).
    A job's ``overwrite: true`` counts only with ``--overwrite`` on the command line.
    """
    from magicanimate.io.image import check_image_file

    status: dict[int, tuple[str, str]] = {}
    paths: dict[int, JobPaths] = {}
    for i, job in enumerate(jobs):
        if isinstance(job, BadJob):
            status[i] = ("failed", job.problem)
            continue
        asked_overwrite = job.overwrite
        job.overwrite = job.overwrite and args.overwrite  # a jobs file cannot grant more than the command
        paths[i] = job_paths(job, jobs_file=args.jobs, weights=args.weights)
        if Path(job.output).exists() and not job.overwrite:
            status[i] = (("failed", f"output {job.output} exists and the job says overwrite: true, but only "
                                    "--overwrite on the command line may replace outputs") if asked_overwrite
                         else ("skipped", "output exists"))
    for i, job_path in paths.items():
        if i not in status:
            try:
                check_image_file(jobs[i].reference)
                check_job_outputs(jobs[i], job_path)
                if jobs[i].driving_video:
                    check_densepose_weights_file(args)
                check_size_fits(jobs[i].options, weights=args.weights, device=args.device, flag="size")
            except MagicAnimateError as err:
                if Path(jobs[i].output).exists() and not jobs[i].overwrite:
                    # another launch sharing the jobs file finished it while this one planned
                    status[i] = ("skipped", "output exists (written by another launch meanwhile)")
                else:
                    status[i] = ("failed", str(err))
    indices = sorted(paths)
    for k, why in clashes_between_jobs([paths[i] for i in indices]).items():
        status.setdefault(indices[k], ("failed", why))
    return status


class ClaimLost(MagicAnimateError):
    """Another launch took this job's claim over while it ran (its heartbeat stopped for too long)."""


def job_is_long(job: Job) -> bool:
    """Whether the job's motion is longer than one window (worth splitting over ranks); unknown counts as long."""
    import numpy as np

    from magicanimate.io.video import declared_frame_count, frame_files

    source = Path(job.motion or job.driving_video or "")
    try:
        if source.is_dir():
            total = len(frame_files(source))
        elif source.suffix.lower() == ".npy":
            total = int(np.load(source, mmap_mode="r", allow_pickle=False).shape[0])
        else:
            total = declared_frame_count(source)
    except Exception:
        return True
    if total is None:
        return True
    frames = max(total - job.options.start, 0)
    if job.options.max_frames is not None:
        frames = min(frames, job.options.max_frames)
    return frames > WINDOW


def run_batch(jobs: list[Job | BadJob], args: argparse.Namespace) -> int:
    """Run every job; skip those whose output exists or that another launch claims; report failures and go on.

    Under torchrun, rank 0 plans and every rank gets whole jobs (``runtime.distributed.assign_jobs``);
    with fewer pending jobs than ranks, long jobs get groups of ranks that split their windows.
    """
    from magicanimate.runtime.distributed import Coordinator, assign_jobs, split_from_environment

    world = split_from_environment()
    coordinator = Coordinator(world)
    plan = None
    if world.rank == 0:
        status = plan_batch(jobs, args)
        pending = [i for i in range(len(jobs)) if i not in status]
        few = world.world_size > 1 and len(pending) < world.world_size
        long_jobs = [job_is_long(jobs[i]) if few else False for i in pending]
        plan = (status, pending, assign_jobs(long_jobs, world.world_size))
    status, pending, ranks_of = coordinator.broadcast(plan)
    if world.rank == 0:
        for i, (state, why) in sorted(status.items()):
            if state == "failed":
                print(f"[{i + 1}/{len(jobs)}] error: {why}", file=sys.stderr)
    else:
        for job in jobs:  # plan_batch did this on rank 0
            if isinstance(job, Job):
                job.overwrite = job.overwrite and args.overwrite
    splits = [coordinator.split_for(ranks) for ranks in ranks_of]  # every rank, every job, in order
    where = f"rank {world.rank} " if world.world_size > 1 else ""
    models = ModelCache(args.weights, args.device, quiet=args.quiet)
    extraction = MotionExtraction(args)
    mine: dict[int, tuple[str, str]] = {}
    for i, ranks, (split, control) in zip(pending, ranks_of, splits):
        if split is None:
            continue
        label = f"{where}[{i + 1}/{len(jobs)}] "
        result = _run_claimed(jobs[i], args, models=models, extraction=extraction, label=label, split=split,
                              control=control, leader=ranks[0], coordinator=coordinator)
        if split.rank == 0:
            mine[i] = result
    for part in coordinator.all_gather(mine):
        status.update(part)
    if world.rank == 0:
        print(summary_table(jobs, status))
    return 1 if any(s == "failed" for s, _ in status.values()) else 0


def _run_claimed(job: Job, args: argparse.Namespace, *, models: ModelCache, extraction: MotionExtraction,
                 label: str, split, control, leader: int, coordinator) -> tuple[str, str]:
    """Claim ``job`` (its group's first rank), run it unless claimed elsewhere or done meanwhile: (status, why)."""
    from magicanimate.runtime.job_claims import holder, try_claim

    claim, decision = None, None
    if split.rank == 0:
        claim = try_claim(job.output, stale_after=args.claim_timeout)
        if claim is None:
            who = holder(job.output)
            decision = ("skipped", f"claimed by {who.describe() if who else 'another launch'}")
        elif Path(job.output).exists() and not job.overwrite:
            claim.release()  # finished by another launch since the plan
            claim, decision = None, ("skipped", "output exists")
    if control is not None:
        decision = coordinator.broadcast(decision, src=leader, group=control)
    if decision is not None:
        if not args.quiet and split.rank == 0:
            print(f"{label}{decision[0]}: {decision[1]}", file=sys.stderr)
        return decision
    start = time.perf_counter()
    try:
        run_job(models.get(job.options), job, quiet=args.quiet, label=label, split=split, extraction=extraction,
                claim=claim)
        return "done", f"{time.perf_counter() - start:.1f} s"
    except Exception as err:  # one bad job must not stop the batch
        if getattr(args, "verbose", False):
            log.exception("job %s failed", job.output)
        message = str(err) if isinstance(err, MagicAnimateError) else f"{type(err).__name__}: {err}"
        print(f"{label}error: {message}", file=sys.stderr)
        return "failed", message
    finally:
        if claim is not None:
            claim.release()


def summary_table(jobs: list[Job | BadJob], status: dict[int, tuple[str, str]]) -> str:
    """A plain-text table: job, output, status, detail."""
    rows = [("#", "output", "status", "detail")]
    rows += [(str(i + 1), jobs[i].output, *status[i]) for i in range(len(jobs))]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    lines = ["  ".join(r[c].ljust(widths[c]) for c in range(3)) + "  " + r[3] for r in rows]
    counts = {s: sum(1 for v, _ in status.values() if v == s) for s in ("done", "skipped", "failed")}
    lines.append(f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed")
    return "\n".join(lines)
