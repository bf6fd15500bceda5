"""``python -m magicanimate.bench``: speed, memory and FLOP efficiency of the sampler.

Builds random-weight models of a configuration (``tiny``, ``small``, ``sd15``), animates a
synthetic reference with a rendered DensePose motion, and reports seconds per frame and
per denoising step, peak memory (RSS on CPU, ``torch.cuda.max_memory_allocated`` on GPU),
the FLOPs executed (counted on the meta device) and the achieved fraction of the
device's peak. The same run with the exact savings switched off is timed in the same
process and the ratio printed. ``--lengths 32,64,128,256`` instead measures how peak
memory grows with the number of frames (one fresh process per length). ``--quality``
instead measures generation quality against exact ground truth on held-out synthetic people
(``magicanimate.tools.quality_benchmark``; with ``--real-motion``, on real DensePose motions).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from magicanimate.weights.random import SIZES, ModelSize
from magicanimate.sampling.windows import padded_length, sliding_windows

# Dense peak throughput (TFLOP/s) of known GPUs, by dtype.
GPU_PEAK_TFLOPS = {
    "H100": {"float16": 989.0, "bfloat16": 989.0, "float32": 67.0},
    "H200": {"float16": 989.0, "bfloat16": 989.0, "float32": 67.0},
    "A100": {"float16": 312.0, "bfloat16": 312.0, "float32": 19.5},
}


@dataclass
class RunResult:
    """One timed pipeline call."""

    config: str
    device: str
    dtype: str
    frames: int
    size: int
    steps: int
    guidance_scale: float
    exact_savings: bool
    seconds: float
    seconds_per_frame: float
    seconds_per_step: float
    peak_memory_mb: float
    memory_kind: str
    executed_tflop: float
    achieved_tflops: float
    peak_tflops: float
    fraction_of_peak: float


class PeakRSS:
    """Samples the process's resident set size in a thread; ``peak`` in bytes."""

    def __init__(self, interval: float = 0.005):
        import psutil

        self.process, self.interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> "PeakRSS":
        self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def count_tflop(size: ModelSize, *, frames: int, height: int, width: int, steps: int, guidance: bool,
                exact_savings: bool, window: int = 16, overlap: int = 4) -> float:
    """TFLOPs one pipeline call executes, counted with FlopCounterMode on meta-device models."""
    from torch.utils.flop_counter import FlopCounterMode

    from magicanimate.models.appearance_encoder import connect_reference_attention
    from magicanimate.models.vae import latent_shape
    from magicanimate.models.reference_attention import ReferenceBank
    from magicanimate.sampling.denoiser import Conditioning, Denoiser, DenoiserModels
    from magicanimate.weights.random import random_models

    with torch.device("meta"):
        models = random_models(size, vocab_size=514)
    bank = ReferenceBank(None, release_structure=not exact_savings)
    connect_reference_attention(models["appearance_encoder"], models["unet"], bank)
    c, h, w = latent_shape(models["vae"], height, width)
    padded = padded_length(frames, window)
    windows = sliding_windows(padded, window, overlap)
    text = torch.empty(1, 77, size.cross_attention_dim, device="meta")
    reference = torch.empty(1, c, h, w, device="meta")
    t = torch.tensor(500)

    def flops(fn) -> float:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            fn()
        return counter.get_total_flops()

    with bank.step():
        ae = flops(lambda: models["appearance_encoder"](reference, t, text, bank))
    cn_frame = flops(lambda: models["controlnet"](
        torch.empty(1, c, h, w, device="meta"), t, encoder_hidden_states=text,
        controlnet_cond=torch.empty(1, 3, height, width, device="meta"), return_dict=False))
    control = torch.zeros((window, height, width, 3), dtype=torch.uint8, device="meta")
    den = Denoiser(DenoiserModels(models["unet"], models["controlnet"], models["appearance_encoder"]), bank,
                   conditioning=Conditioning(text, reference, control), guidance=guidance,
                   share_cfg_down_path=exact_savings,
                   keep_all_residuals=True)  # residuals computed on entering the step, outside the count
    latents = torch.empty(1, c, window, h, w, device="meta")
    with torch.no_grad(), den.step(0, t, latents=latents, windows={0: list(range(window))}):
        unet_window = flops(lambda: den(latents, t, 0))
    vae = models["vae"]
    decode = flops(lambda: vae.decode(torch.empty(1, c, h, w, device="meta")))
    encode = flops(lambda: vae.encode(torch.empty(1, 3, height, width, device="meta")))
    per_step = ae + padded * cn_frame + len(windows) * unet_window  # each frame's ControlNet once per step
    return (steps * per_step + frames * decode + encode) / 1e12


def device_peak_tflops(device: torch.device, dtype: torch.dtype) -> float:
    """Peak dense TFLOP/s: a table for known GPUs, else a measured large matmul."""
    name = str(dtype).replace("torch.", "")
    if device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
        for key, table in GPU_PEAK_TFLOPS.items():
            if key in gpu:
                return table[name]
    n = 2048 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    start, reps = time.perf_counter(), 5
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e12


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


LOSSY_MODES = {  # name -> (keyword arguments, steps as a fraction of the faithful run's)
    "dpmsolver++ (half the steps)": ({"scheduler": "dpmsolver++"}, 0.5),
    "unipc (half the steps)": ({"scheduler": "unipc"}, 0.5),
    "deep cache, interval 2": ({"deep_cache": 2}, 1.0),
    "deep cache, interval 3": ({"deep_cache": 3}, 1.0),
    "overlap 0": ({"overlap": 0}, 1.0),
    "overlap 8": ({"overlap": 8}, 1.0),
}


def lossy_sweep(model, *, frames: int, image_size: int, steps: int, guidance_scale: float) -> list[dict]:
    """Time each lossy mode and its PSNR against the faithful video (same inputs and seed)."""
    from magicanimate.synthetic.simple_person import synthetic_reference
    from magicanimate.synthetic.simple_person import render_motion

    reference = synthetic_reference((image_size, image_size))
    motion = render_motion(frames, (image_size, image_size), seed=1)

    def timed(**kw):
        _sync(model.device)
        start = time.perf_counter()
        out = model(reference, motion, guidance_scale=guidance_scale, seed=1, size=image_size, **kw).frames
        _sync(model.device)
        return out, time.perf_counter() - start

    faithful, base = timed(steps=steps)
    rows = [{"mode": "faithful (DDIM)", "steps": steps, "seconds": base, "speedup": 1.0, "psnr_db": float("inf")}]
    for name, (kw, fraction) in LOSSY_MODES.items():
        n = max(1, round(steps * fraction))
        out, seconds = timed(steps=n, **kw)
        mse = float(np.mean((out - faithful) ** 2))
        rows.append({"mode": name, "steps": n, "seconds": seconds, "speedup": base / seconds,
                     "psnr_db": 10 * np.log10(1.0 / mse) if mse > 0 else float("inf")})
    return rows


def run_once(model, size: ModelSize, *, frames: int, image_size: int, steps: int, guidance_scale: float,
             exact_savings: bool, peak_tflops: float) -> RunResult:
    """Time one pipeline call (models loaded) and measure its peak memory."""
    from magicanimate.synthetic.simple_person import synthetic_reference
    from magicanimate.synthetic.simple_person import render_motion

    reference = synthetic_reference((image_size, image_size))
    motion = render_motion(frames, (image_size, image_size), seed=1)
    model.exact_savings = exact_savings
    step_times: list[float] = []
    total_windows = len(sliding_windows(padded_length(frames)))

    def progress(event) -> None:
        if event.stage == "denoise" and event.done % total_windows == 0:
            step_times.append(time.perf_counter())

    device = model.device
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    with PeakRSS() as rss:
        start = time.perf_counter()
        model(reference, motion, steps=steps, guidance_scale=guidance_scale, seed=1, size=image_size,
              progress=progress)
        _sync(device)
        seconds = time.perf_counter() - start
    if device.type == "cuda":
        peak, kind = torch.cuda.max_memory_allocated(device) / 2**20, "cuda max_memory_allocated"
    else:
        peak, kind = rss.peak / 2**20, "process peak RSS"
    steps_span = np.diff([start] + step_times) if step_times else np.array([seconds])
    tflop = count_tflop(size, frames=frames, height=image_size, width=image_size, steps=steps,
                        guidance=guidance_scale > 1, exact_savings=exact_savings)
    return RunResult(
        config=size.name, device=str(device), dtype=str(model.dtype).replace("torch.", ""), frames=frames,
        size=image_size, steps=steps, guidance_scale=guidance_scale, exact_savings=exact_savings,
        seconds=seconds, seconds_per_frame=seconds / frames, seconds_per_step=float(np.median(steps_span)),
        peak_memory_mb=peak, memory_kind=kind, executed_tflop=tflop, achieved_tflops=tflop / seconds,
        peak_tflops=peak_tflops, fraction_of_peak=tflop / seconds / peak_tflops,
    )


def _table(results: list[RunResult]) -> str:
    head = ("| config | device | dtype | frames | size | steps | savings | s | s/frame | s/step | "
            "peak MB | TFLOP | TFLOP/s | of peak |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        rows.append(f"| {r.config} | {r.device} | {r.dtype} | {r.frames} | {r.size} | {r.steps} | "
                    f"{'on' if r.exact_savings else 'off'} | {r.seconds:.2f} | {r.seconds_per_frame:.3f} | "
                    f"{r.seconds_per_step:.2f} | {r.peak_memory_mb:.0f} | {r.executed_tflop:.2f} | "
                    f"{r.achieved_tflops:.3f} | {100 * r.fraction_of_peak:.1f}% |")
    return "\n".join(rows)


def _sweep(args: argparse.Namespace) -> list[dict]:
    """Peak memory per length, each in a fresh process."""
    out = []
    for n in [int(v) for v in args.lengths.split(",")]:
        cmd = [sys.executable, "-m", "magicanimate.bench", "--config", args.config, "--frames", str(n),
               "--size", str(args.size), "--steps", str(args.steps), "--guidance-scale", str(args.guidance_scale),
               "--device", args.device, "--dtype", args.dtype, "--threads", str(args.threads),
               "--no-baseline", "--json", "-", "--quiet"] + (["--system-malloc"] if args.system_malloc else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        record = json.loads(proc.stdout)["runs"][0]
        io_mb = n * args.size * args.size * 3 * (1 + 4) / 2**20  # uint8 motion in, float32 frames out
        out.append({"frames": n, "peak_memory_mb": record["peak_memory_mb"], "input_output_arrays_mb": io_mb,
                    "seconds": record["seconds"]})
        if not args.quiet:
            print(f"{n:5d} frames: peak {record['peak_memory_mb']:.0f} MB "
                  f"(input+output arrays {io_mb:.0f} MB), {record['seconds']:.1f} s", file=sys.stderr)
    return out


def memory_options(args: argparse.Namespace) -> list[dict]:
    """Estimated peak device memory of each small-GPU option (``memory_estimate.OPTIONS``)."""
    from magicanimate.tools.memory_estimate import OPTIONS, estimate_peak_memory, meta_model

    dtype = {"auto": torch.float16, "float32": torch.float32, "float16": torch.float16,
             "bfloat16": torch.bfloat16}[args.dtype]
    model = meta_model(SIZES[args.config], dtype)
    rows = []
    for name, options in OPTIONS.items():
        estimate = estimate_peak_memory(model, frames=args.frames, height=args.size, width=args.size,
                                        guidance_scale=args.guidance_scale, config=args.config, options=name,
                                        **options)
        rows.append({**asdict(estimate), "peak_gib": estimate.peak_gib})
        if not args.quiet:
            print(f"{name:45s} {estimate.peak_gib:6.2f} GiB (peak during {estimate.peak_phase})", file=sys.stderr)
    return rows


def densepose_speed(args: argparse.Namespace, *, device: torch.device, dtype: torch.dtype) -> dict:
    """The DensePose extractor's speed per detect size on the given (or synthetic) frames."""
    from magicanimate.densepose import DensePoseExtractor
    from magicanimate.densepose.benchmark import benchmark_densepose
    from magicanimate.io.image import IMAGE_SUFFIXES, load_image
    from magicanimate.io.video import read_motion
    from magicanimate.synthetic.simple_person import synthetic_reference

    source = args.densepose_input
    if source is None:
        frames = np.stack([synthetic_reference((args.size, args.size), seed=k) for k in range(args.frames)])
    elif Path(source).suffix.lower() in IMAGE_SUFFIXES:
        frames = load_image(source)[None]
    else:
        frames = read_motion(source, max_frames=args.frames).frames
    sizes = tuple(int(v) for v in args.detect_sizes.split(","))
    extractor = DensePoseExtractor.from_pretrained(args.densepose_weights, device=device,
                                                   dtype=dtype if device.type == "cuda" else torch.float32)
    return benchmark_densepose(extractor, frames, detect_sizes=sizes)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print/save the results."""
    p = argparse.ArgumentParser(prog="python -m magicanimate.bench", description=__doc__.splitlines()[0])
    p.add_argument("--config", choices=sorted(SIZES), default="small")
    p.add_argument("--frames", type=int, help="frames per video (default 16; --quality: 32)")
    p.add_argument("--size", type=int, help="pixels per side (default 128; --quality: the weights' native size)")
    p.add_argument("--steps", type=int, help="sampling steps (default 5; --quality: 25)")
    p.add_argument("--guidance-scale", type=float, default=7.5)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"])
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--no-baseline", action="store_true", help="skip the run with exact savings off")
    p.add_argument("--lengths", help="comma-separated frame counts: measure peak memory growth instead")
    p.add_argument("--lossy", action="store_true",
                   help="time each lossy fast mode and its PSNR against the faithful output instead")
    p.add_argument("--memory-options", action="store_true",
                   help="estimate the peak device memory of each small-GPU option instead (meta-device "
                        "models: no GPU or weights needed; see magicanimate.tools.memory_estimate)")
    p.add_argument("--densepose", action="store_true",
                   help="instead: seconds per frame of the DensePose extractor at each --detect-sizes, and the label "
                        "agreement of the smaller sizes with the first (default 800)")
    p.add_argument("--densepose-weights", metavar="PKL", help="model_final_162be9.pkl (default: the cached download)")
    p.add_argument("--densepose-input", metavar="PATH",
                   help="video, frame folder or image for --densepose (default: --frames synthetic people)")
    p.add_argument("--detect-sizes", default="800,512", help="comma-separated detector sizes (default 800,512)")
    p.add_argument("--quality", action="store_true",
                   help="instead: quality against exact ground truth on held-out synthetic people "
                        "(magicanimate.tools.quality_benchmark): the model, baselines, ablations and lossy modes")
    p.add_argument("--weights", default="mini", help="--quality: the model's weights folder (default mini)")
    p.add_argument("--stage1-weights", help="--quality: also a row with these weights (e.g. runs/mini/stage1/weights)")
    p.add_argument("--stage2-weights", help="--quality: also a row with these weights (e.g. runs/mini/stage2/weights)")
    p.add_argument("--videos", type=int, default=16, help="--quality: held-out videos (default 16)")
    p.add_argument("--split", choices=("heldout", "train"), default="heldout",
                   help="--quality: the synthetic people and motions to score: heldout (default, never trained "
                        "on) or train (the first ones the mini recipe trains on: the generalisation gap)")
    p.add_argument("--real-motion", nargs="*", metavar="MOTION",
                   help="--quality: instead, animate these real DensePose motions (e.g. ../shared/inputs/densepose/"
                        "*.mp4) with synthetic reference people; silhouette IoU against each motion's person mask")
    p.add_argument("--reference-framing", choices=("standing", "motion"), default="standing",
                   help="--real-motion: the synthetic reference person as a full-body shot (standing, default) or "
                        "drawn with its head at the size and place of the motion's head (motion)")
    p.add_argument("--zoom", type=float, default=1.0,
                   help="--quality: draw the synthetic people (and the standing --real-motion reference) this many "
                        "times larger, as the data option zoom= does (default 1)")
    p.add_argument("--rows", help="--quality: comma-separated parts of row names to run (default all)")
    p.add_argument("--work-dir", default="runs/quality",
                   help="--quality: per-video results are cached here, so a rerun continues (default runs/quality)")
    p.add_argument("--json", help="write results as JSON to this path ('-' = stdout)")
    p.add_argument("--markdown", help="append the table, with the command, to this markdown file")
    p.add_argument("--system-malloc", action="store_true",
                   help="on the CPU, leave glibc malloc as it is (default: keep freed memory for reuse, "
                        "see magicanimate.runtime.cpu_tuning)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    from magicanimate.synthetic.dataset import parse_zoom

    try:
        parse_zoom(args.zoom)
    except ValueError as error:
        p.error(f"--zoom: {error}")
    size_given = args.size
    args.frames = args.frames or (32 if args.quality else 16)
    args.steps = args.steps or (25 if args.quality else 5)
    args.size = args.size or 128
    torch.set_num_threads(args.threads)
    command = "python -m magicanimate.bench " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))

    from magicanimate.runtime.device import resolve_device_dtype

    device, dtype = resolve_device_dtype(args.device, args.dtype)
    tuned_malloc = False
    if device.type == "cpu" and not args.system_malloc and not args.memory_options:
        from magicanimate.runtime.cpu_tuning import keep_freed_memory

        tuned_malloc = keep_freed_memory()
    meta = {"command": command, "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "threads": args.threads, "torch": torch.__version__, "malloc_keeps_freed_memory": tuned_malloc,
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    if args.quality and args.real_motion:
        from magicanimate.sampling.pipeline import MagicAnimate
        from magicanimate.tools.quality_benchmark import real_motion_benchmark

        model = MagicAnimate.from_pretrained(args.weights, device=device, dtype=dtype)
        rows = real_motion_benchmark(model, args.real_motion, frames=args.frames, steps=args.steps,
                                     framing=args.reference_framing, zoom=args.zoom,
                                     progress=None if args.quiet else (lambda line: print(line, file=sys.stderr)))
        report = {**meta, "weights": args.weights, "size": model.native_size,
                  "reference_framing": args.reference_framing, "zoom": args.zoom, "real_motion": rows,
                  "mean_silhouette_iou": float(np.mean([r["silhouette_iou"] for r in rows]))}
        table = ("| motion | frames | silhouette IoU | person recall | background false alarms | s |\n"
                 "|---|---|---|---|---|---|\n"
                 + "\n".join(f"| {r['motion']} | {r['frames']} | {r['silhouette_iou']:.3f} | {r['person_recall']:.3f} "
                             f"| {r['background_false_alarm']:.3f} | {r['seconds']:.1f} |" for r in rows)
                 + f"\n| **mean** | | **{report['mean_silhouette_iou']:.3f}** "
                 f"| {np.mean([r['person_recall'] for r in rows]):.3f} "
                 f"| {np.mean([r['background_false_alarm'] for r in rows]):.3f} | |")
    elif args.quality:
        from magicanimate.tools.quality_benchmark import quality_benchmark

        report = {**meta, **quality_benchmark(
            weights=args.weights, stage1_weights=args.stage1_weights, stage2_weights=args.stage2_weights,
            videos=args.videos, frames=args.frames, split=args.split, zoom=args.zoom,
            size=size_given, steps=args.steps, device=str(device),
            only=args.rows.split(",") if args.rows else None, work_dir=Path(args.work_dir),
            progress=None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True)))}
        table = report.pop("table")
    elif args.densepose:
        report = {**meta, **densepose_speed(args, device=device, dtype=dtype)}
        table = "| detect size | s/frame | pixels equal to the first | foreground IoU |\n|---|---|---|---|\n" + "\n".join(
            f"| {size} | {r['seconds_per_frame']:.2f} | {r.get('pixels_equal', 1.0):.3f} | "
            f"{r.get('foreground_iou', 1.0):.3f} |" for size, r in report["sizes"].items())
    elif args.memory_options:
        rows = memory_options(args)
        report = {**meta, "config": args.config, "frames": args.frames, "size": args.size, "memory_options": rows}
        table = ("| options | estimated peak GiB | peak during |\n|---|---|---|\n"
                 + "\n".join(f"| `{r['options']}` | {r['peak_gib']:.2f} | {r['peak_phase']} |" for r in rows))
    elif args.lengths:
        report = {**meta, "sweep": _sweep(args)}
        table = "| frames | peak MB | input+output arrays MB | s |\n|---|---|---|---|\n" + "\n".join(
            f"| {r['frames']} | {r['peak_memory_mb']:.0f} | {r['input_output_arrays_mb']:.0f} | {r['seconds']:.1f} |"
            for r in report["sweep"])
    elif args.lossy:
        from magicanimate.sampling.pipeline import MagicAnimate
        from magicanimate.weights.random import random_components

        model = MagicAnimate(random_components(SIZES[args.config], device=device, dtype=dtype),
                             device=device, dtype=dtype)
        rows = lossy_sweep(model, frames=args.frames, image_size=args.size, steps=args.steps,
                           guidance_scale=args.guidance_scale)
        report = {**meta, "config": args.config, "frames": args.frames, "size": args.size, "lossy": rows}
        table = "| mode | steps | s | speed-up | PSNR vs faithful (dB) |\n|---|---|---|---|---|\n" + "\n".join(
            f"| {r['mode']} | {r['steps']} | {r['seconds']:.1f} | {r['speedup']:.2f}x | {r['psnr_db']:.1f} |"
            for r in rows)
    else:
        from magicanimate.sampling.pipeline import MagicAnimate
        from magicanimate.weights.random import random_components

        size = SIZES[args.config]
        components = random_components(size, device=device, dtype=dtype)
        model = MagicAnimate(components, device=device, dtype=dtype)
        peak = device_peak_tflops(device, dtype)
        kw = dict(frames=args.frames, image_size=args.size, steps=args.steps, guidance_scale=args.guidance_scale,
                  peak_tflops=peak)
        runs = [run_once(model, size, exact_savings=True, **kw)]
        if not args.no_baseline:
            runs.append(run_once(model, size, exact_savings=False, **kw))
        report = {**meta, "peak_tflops": peak, "runs": [asdict(r) for r in runs]}
        if len(runs) == 2:
            report["savings_speedup"] = runs[1].seconds / runs[0].seconds
        table = _table(runs)
        if len(runs) == 2:
            table += f"\n\nexact savings: {report['savings_speedup']:.2f}x faster than the release's structure"
    if not args.quiet or args.json != "-":
        print(table, file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json:
        text = json.dumps(report, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(text)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(f"\n### {meta['date'][:10]}, {meta['device_name']}, {args.threads} threads\n\n"
                    f"`{command}`\n\n{table}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
