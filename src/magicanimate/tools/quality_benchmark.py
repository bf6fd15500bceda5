"""``python -m magicanimate.bench --quality``: generation quality against exact ground truth.

Held-out synthetic people (identities never trained on) doing held-out motions
(``magicanimate.synthetic``): each video is generated from the person's reference frame and
the sample's DensePose, and compared with the true appearance video. Every row runs on the
same videos, so rows compare directly:

- the model with faithful defaults (DDIM, 25 steps, overlap 4, shared noise);
- baselines: copying the reference frame onto every frame, and untrained random weights of
  the same size; and the ceiling: the true video through the model's VAE and back;
- the paper's ablations: other weights (e.g. stage 1, no motion modules), no window fusion
  (overlap 0), a new initial noise per segment;
- the lossy modes (fewer steps with DPM-Solver++ / UniPC, DeepCache, other overlaps,
  bfloat16 on the CPU), each against the ground truth.

``real_motion_benchmark`` animates real people's DensePose motions (the release's demo
motions) with a synthetic reference person, where no true video exists: the generated
person's silhouette (against the reference's known scene) is compared with the motion's own
person mask.

Metrics per video, averaged over videos: L1 (0-1), PSNR, SSIM (``magicanimate.metrics``),
silhouette IoU with what it loses (person recall, background false alarms) and part-colour
error (``magicanimate.metrics.person``), the frame-to-frame
change error over all pairs and at the seams of 16-frame segments
(``magicanimate.metrics.temporal``), and seconds per video. Rows are cached per video under
``--work-dir`` (JSON), so an interrupted run continues where it stopped; each cached result
records what made it (row, options, dtype, seed, frames, size and the weights' files), and a
result made otherwise (other weights in the same folder, another seed) is generated again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from einops import rearrange

from magicanimate.metrics.frame_metrics import l1, psnr, ssim
from magicanimate.metrics.person import part_colour_error, silhouette_errors, silhouette_iou
from magicanimate.metrics.temporal import frame_change_error, seam_pairs
from magicanimate.options import WINDOW, SampleOptions
from magicanimate.synthetic.dataset import Sample, SampleSpec, make_reference, make_sample, split_specs

METRICS = ("l1", "psnr", "ssim", "silhouette_iou", "person_recall", "background_false_alarm", "part_colour_error",
           "temporal_error", "seam_error")
Generate = Callable[[np.ndarray, Sample], np.ndarray]  # (reference, sample) -> frames (F, H, W, 3) in [0, 1]


@dataclass(frozen=True)
class QualityRow:
    """One line of the benchmark: a name, what produced it, and how to generate a video."""

    name: str
    weights: str  # a label: "mini", "random", "stage1", "stage2", "vae" (round trip of the truth), "-" (copy)
    options: dict[str, Any] = field(default_factory=dict)  # SampleOptions overrides
    dtype: str = "float32"


def score(generated: np.ndarray, sample: Sample) -> dict[str, float]:
    """Every metric of one generated video (F, H, W, 3) against its sample's ground truth."""
    truth = sample.appearance
    return {
        "l1": l1(generated, truth),
        "psnr": psnr(generated, truth),
        "ssim": ssim(generated, truth),
        "silhouette_iou": silhouette_iou(generated, sample.labels, background=sample.background),
        **silhouette_errors(generated, sample.labels, background=sample.background),
        "part_colour_error": part_colour_error(generated, truth, labels=sample.labels),
        "temporal_error": frame_change_error(generated, truth),
        "seam_error": frame_change_error(generated, truth, pairs=seam_pairs(len(truth), WINDOW)),
    }


def benchmark_specs(*, videos: int, frames: int, size: int, split: str = "heldout",
                    zoom: float = 1.0) -> list[SampleSpec]:
    """The benchmark's samples: ``videos`` identities x the split's motions in turn (held-out by default;
    ``split="train"``: the first training samples, to measure the gap between trained and unseen people),
    people drawn ``zoom`` times larger (``SampleSpec.zoom``)."""
    return split_specs(split, count=videos, num_frames=frames, size=(size, size), zoom=zoom)


def copy_reference(reference: np.ndarray, sample: Sample) -> np.ndarray:
    """The baseline that copies the reference frame onto every frame, floats in [0, 1]."""
    return np.repeat(reference[None].astype(np.float32) / 255, len(sample.appearance), axis=0)


def vae_round_trip(model) -> Generate:
    """The ceiling: the true video encoded and decoded by ``model``'s VAE (no generation at all)."""
    import torch

    def generate(reference: np.ndarray, sample: Sample) -> np.ndarray:
        latents = torch.cat([model.encode_reference(frame) for frame in sample.appearance])  # (F, c, h, w)
        return model.decode(rearrange(latents, "f c h w -> 1 c f h w"))

    return generate


def model_generator(model, row: QualityRow, *, seed: int) -> Generate:
    """Generate with ``model`` and the row's options at the sample's size."""

    def generate(reference: np.ndarray, sample: Sample) -> np.ndarray:
        height, width = sample.appearance.shape[1:3]
        options = SampleOptions(seed=seed, size=(width, height)).replace(**row.options)
        return model.animate(reference, sample.densepose, options=options).frames

    return generate


def weights_fingerprint(folder: str | Path) -> str:
    """A digest of a weights folder's files (relative path, size, modification time): changes when they do."""
    from magicanimate.weights.layout import resolve_weights

    root = resolve_weights(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _read_cached(cache: Path | None, key: dict[str, Any]) -> dict[str, Any] | None:
    """A cached per-video result made with exactly ``key``, else None (missing, unreadable or made otherwise)."""
    if cache is None or not cache.is_file():
        return None
    try:
        cached = json.loads(cache.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(cached, dict) or cached.pop("key", None) != key:
        return None
    if not all(isinstance(cached.get(metric), (int, float)) for metric in METRICS):
        return None  # written before a metric existed: scored again
    return cached  # the scores, without the key


def run_row(row: QualityRow, generate: Generate, specs: Iterable[SampleSpec], *, work_dir: Path | None,
            made_by: dict[str, Any] | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Scores of one row, averaged over the videos (per-video results cached as JSON in ``work_dir``).

    ``made_by`` (weights fingerprint, seed, ...) joins the row and the video in each cached
    result's key: a cached result is reused only when its key matches.
    """
    per_video = []
    for spec in specs:
        cache = work_dir / _slug(row.name) / f"{spec.name}.json" if work_dir else None
        key = {"row": row.name, "options": row.options, "dtype": row.dtype, "video": spec.name,
               "frames": spec.num_frames, "size": list(spec.size), "zoom": spec.zoom, **(made_by or {})}
        cached = _read_cached(cache, key)
        if cached is not None:
            per_video.append(cached)
            continue
        sample = make_sample(spec)
        reference, _ = make_reference(spec)
        start = time.perf_counter()
        generated = generate(reference, sample)
        result = {"video": spec.name, "seconds": time.perf_counter() - start, **score(generated, sample)}
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            partial = cache.with_suffix(".part")
            partial.write_text(json.dumps({**result, "key": key}))
            partial.replace(cache)  # never a half-written cache file
        per_video.append(result)
        if progress:
            progress(f"{row.name}: {spec.name} PSNR {result['psnr']:.2f} dB, IoU {result['silhouette_iou']:.3f} "
                     f"({result['seconds']:.1f} s)")
    means = {key: float(np.mean([v[key] for v in per_video])) for key in (*METRICS, "seconds")}
    return {"name": row.name, "weights": row.weights, "options": row.options, "dtype": row.dtype,
            "videos": len(per_video), **means, "per_video": per_video}


def markdown_table(rows: list[dict[str, Any]], *, reference_seconds: float | None = None) -> str:
    """The rows as a markdown table (speed-up relative to ``reference_seconds`` when given)."""
    head = ("| row | PSNR (dB) | L1 | SSIM | silhouette IoU | person recall | background false alarms "
            "| part-colour error | temporal error | seam error | s/video | speed-up |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = []
    for r in rows:
        speed = (f"{reference_seconds / r['seconds']:.2f}x" if reference_seconds and r["seconds"] > 0.01 else "–")
        lines.append(f"| {r['name']} | {r['psnr']:.2f} | {r['l1']:.4f} | {r['ssim']:.3f} | {r['silhouette_iou']:.3f} "
                     f"| {r['person_recall']:.3f} | {r['background_false_alarm']:.3f} "
                     f"| {r['part_colour_error']:.1f} | {r['temporal_error']:.2f} | {r['seam_error']:.2f} "
                     f"| {r['seconds']:.1f} | {speed} |")
    return head + "\n" + "\n".join(lines)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()


def default_rows(*, steps: int, stage1_weights: bool, stage2_weights: bool = False) -> list[QualityRow]:
    """The benchmark's rows (issue 12): the model, baselines, the paper's ablations and the lossy modes."""
    fewer = max(1, steps // 2)
    rows = [
        QualityRow(f"model, faithful (DDIM {steps} steps, overlap 4)", "mini"),
        QualityRow("copy the reference frame", "-"),
        QualityRow("VAE round trip of the true video (the ceiling)", "vae"),
        QualityRow("untrained random weights (same size)", "random"),
    ]
    if stage1_weights:
        rows.append(QualityRow("stage-1 weights (no motion modules)", "stage1"))
    if stage2_weights:
        rows.append(QualityRow("stage-2 weights (motion modules trained)", "stage2"))
    rows += [
        QualityRow("no window fusion (overlap 0)", "mini", {"overlap": 0}),
        QualityRow("initial noise per segment", "mini", {"noise": "per-segment"}),
        QualityRow("guidance scale 3 (not lossy: another setting)", "mini", {"guidance_scale": 3.0}),
        QualityRow(f"DPM-Solver++ {fewer} steps", "mini", {"scheduler": "dpmsolver++", "steps": fewer}),
        QualityRow(f"UniPC {fewer} steps", "mini", {"scheduler": "unipc", "steps": fewer}),
        QualityRow("DeepCache interval 2", "mini", {"deep_cache": 2}),
        QualityRow("DeepCache interval 3", "mini", {"deep_cache": 3}),
        QualityRow("overlap 2", "mini", {"overlap": 2}),
        QualityRow("overlap 8", "mini", {"overlap": 8}),
        QualityRow("bfloat16 on the CPU", "mini", dtype="bfloat16"),
    ]
    return [QualityRow(r.name, r.weights, {"steps": steps, **r.options}, r.dtype) for r in rows]


def quality_benchmark(*, weights: str | Path, stage1_weights: str | Path | None = None,
                      stage2_weights: str | Path | None = None, videos: int = 16,
                      frames: int = 32, size: int | None = None, steps: int = 25, seed: int = 1,
                      device: str = "cpu", only: Iterable[str] | None = None, work_dir: Path | None = None,
                      split: str = "heldout", zoom: float = 1.0,
                      progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every row (or those whose name contains one of ``only``) on the same videos of ``split``
    (people drawn ``zoom`` times larger)."""
    import torch

    from magicanimate.sampling.pipeline import MagicAnimate
    from magicanimate.weights.random import random_components, size_of_folder

    models: dict[tuple[str, str], Any] = {}

    def folder_for(row: QualityRow) -> str | Path:
        return {"stage1": stage1_weights, "stage2": stage2_weights}.get(row.weights, weights)

    def model_for(row: QualityRow):
        key = ("mini" if row.weights == "vae" else row.weights, row.dtype)  # the round trip uses the model's VAE
        if key not in models:
            models.clear()  # one model in memory at a time
            dtype = getattr(torch, row.dtype)
            if row.weights == "random":
                models[key] = MagicAnimate(random_components(size_of_folder(weights), device=device, dtype=dtype),
                                           device=device, dtype=dtype)
            else:
                models[key] = MagicAnimate.from_pretrained(folder_for(row), device=device, dtype=dtype)
        return models[key]

    rows = default_rows(steps=steps, stage1_weights=stage1_weights is not None,
                        stage2_weights=stage2_weights is not None)
    if only:
        wanted = [w.lower() for w in only]
        rows = [r for r in rows if any(w in r.name.lower() for w in wanted)]
    if size is None:
        size = model_for(QualityRow("native size", "mini")).native_size
    specs = benchmark_specs(videos=videos, frames=frames, size=size, split=split, zoom=zoom)
    results = []
    for row in rows:
        made_by: dict[str, Any] = {"seed": seed, "weights": row.weights}
        if row.weights == "-":
            generate = copy_reference
        elif row.weights == "vae":
            generate = vae_round_trip(model_for(row))
        else:
            generate = model_generator(model_for(row), row, seed=seed)
        if row.weights not in ("-", "random"):
            made_by["weights"] = weights_fingerprint(folder_for(row))
        results.append(run_row(row, generate, specs, work_dir=work_dir, made_by=made_by, progress=progress))
    faithful = next((r for r in results if r["name"].startswith("model, faithful")), None)
    return {"videos": videos, "split": split, "zoom": zoom, "frames": frames, "size": size, "steps": steps,
            "seed": seed,
            "rows": results,
            "table": markdown_table(results, reference_seconds=faithful["seconds"] if faithful else None)}


def real_motion_benchmark(model, motions: Iterable[str | Path], *, frames: int, steps: int = 25, seed: int = 1,
                          framing: str = "standing", zoom: float = 1.0,
                          progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Silhouette IoU (and its person recall and background false alarms) of animations of real DensePose
    motions (first ``frames`` frames, model's native size) against each motion's person mask, with held-out
    synthetic reference people (one per motion), standing full-body (``framing="standing"``) or drawn with their
    head at the size and place of the motion's head (``framing="motion"``: ``reference_framed_like``); the
    standing reference is drawn ``zoom`` times larger (``SampleSpec.zoom``)."""
    from magicanimate.io.video import read_motion
    from magicanimate.io.densepose_colors import parts_from_colours
    from magicanimate.metrics.person import motion_mask, motion_silhouette_iou
    from magicanimate.synthetic.dataset import reference_framed_like, scene_for

    if framing not in ("standing", "motion"):
        raise ValueError(f"framing must be 'standing' or 'motion', got {framing!r}")

    size = model.native_size
    motions = list(motions)  # counted, then iterated: a generator would be spent by the count
    rows = []
    specs = split_specs("heldout", count=len(motions), num_frames=1, size=(size, size), zoom=zoom)
    for spec, path in zip(specs, motions):
        motion = read_motion(path, max_frames=frames).frames
        if framing == "motion":
            labels = motion if motion.ndim == 3 else parts_from_colours(motion)  # (F, H, W) part labels
            reference, _ = reference_framed_like(spec, labels)
        else:
            reference, _ = make_reference(spec)
        start = time.perf_counter()
        generated = model.animate(reference, motion, options=SampleOptions(seed=seed, steps=steps, size=size)).frames
        seconds = time.perf_counter() - start
        background = scene_for(spec)
        iou = motion_silhouette_iou(generated, motion, background=background)
        errors = silhouette_errors(generated, motion_mask(motion, size=generated.shape[1:3]), background=background)
        rows.append({"motion": Path(path).name, "frames": len(motion), "identity": spec.identity,
                     "silhouette_iou": iou, **errors, "seconds": seconds})
        if progress:
            progress(f"real motion {Path(path).name}: silhouette IoU {iou:.3f} ({seconds:.1f} s)")
    return rows
