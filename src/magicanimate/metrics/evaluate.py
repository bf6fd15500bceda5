"""The whole evaluation over paired videos: per-frame scores pooled, features gathered, distances taken."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from magicanimate.errors import InputError
from magicanimate.metrics import frame_metrics as fm
from magicanimate.metrics.features import i3d_unit_features, inception_features, resnet3d_unit_features
from magicanimate.metrics.arrays import match_size
from magicanimate.metrics.frechet import frechet_from_features
from magicanimate.metrics.inputs import count_frames, pair_sources, read_source
from magicanimate.metrics.networks import FeatureNetworks
from magicanimate.metrics.perceptual import lpips_per_frame
from magicanimate.metrics.protocol import TABLE_METRICS, Protocol
from magicanimate.metrics.units import video_units

# Which network each table metric needs.
METRIC_NETWORK = {"LPIPS": "lpips", "FID": "inception", "FID-VID": "resnet3d", "FVD": "i3d"}


@dataclass
class EvaluationResult:
    """Everything `evaluate` reports: the seven table values, the variants beside them, and counts."""

    method: str
    protocol: Protocol
    metrics: dict[str, float | None]
    variants: dict[str, float | None]
    counts: dict[str, int]
    per_video: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Accumulator:
    frame_scores: dict[str, list[np.ndarray]] = field(default_factory=dict)
    features: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = field(default_factory=dict)

    def add_scores(self, name: str, values: np.ndarray) -> float:
        self.frame_scores.setdefault(name, []).append(values)
        return float(values.mean())

    def add_features(self, name: str, generated: np.ndarray, ground_truth: np.ndarray) -> None:
        gen, gt = self.features.setdefault(name, ([], []))
        gen.append(generated)
        gt.append(ground_truth)

    def mean(self, name: str) -> float | None:
        values = self.frame_scores.get(name)
        return float(np.concatenate(values).mean()) if values else None


def _score_pair(gen: np.ndarray, gt: np.ndarray, acc: _Accumulator, *, metrics: tuple[str, ...],
                networks: FeatureNetworks, protocol: Protocol, batch_size: int) -> dict:
    """Add one pair's per-frame scores and features to `acc`; returns its per-video means."""
    paired = match_size(gen, gt)  # DisCo resizes the generated frame to the ground truth first
    row: dict = {"frames": len(gt)}
    if "L1" in metrics:
        row["l1_disco"] = acc.add_scores("l1_disco", fm.l1_disco_per_frame(paired, gt))
        row["l1"] = acc.add_scores("l1", fm.l1_per_frame(paired, gt))
    if "PSNR" in metrics:
        row["psnr_disco"] = acc.add_scores("psnr_disco", fm.psnr_disco_per_frame(paired, gt))
        row["psnr"] = acc.add_scores("psnr", fm.psnr_per_frame(paired, gt))
    if "SSIM" in metrics:
        row["ssim"] = acc.add_scores("ssim", fm.ssim_per_frame(paired, gt))
    if "LPIPS" in metrics:
        values = lpips_per_frame(paired, gt, networks.lpips, input_range=protocol.lpips_input, batch_size=batch_size)
        row["lpips"] = acc.add_scores("lpips", values)
    if "FID" in metrics:  # each set is resized from its own frames, as DisCo reads the files
        acc.add_features("FID", inception_features(gen, networks.inception, batch_size=batch_size),
                         inception_features(gt, networks.inception, batch_size=batch_size))
    units = video_units(len(gt), unit_frames=protocol.unit_frames, stride=protocol.unit_stride)
    row["units"] = len(units)
    if "FID-VID" in metrics:  # every 16-frame unit is one video: one segment, one feature
        acc.add_features("FID-VID", resnet3d_unit_features(gen, units, networks.resnet3d, batch_size=batch_size),
                         resnet3d_unit_features(gt, units, networks.resnet3d, batch_size=batch_size))
    if "FVD" in metrics:
        acc.add_features("FVD", i3d_unit_features(gen, units, networks.i3d, batch_size=batch_size),
                         i3d_unit_features(gt, units, networks.i3d, batch_size=batch_size))
    return row


def _distance(acc: _Accumulator, name: str, notes: list[str]) -> float | None:
    gen, gt = acc.features.get(name, ([], []))
    if not gen:
        return None
    gen_all, gt_all = np.concatenate(gen), np.concatenate(gt)
    if len(gen_all) < 2:
        notes.append(f"{name} needs at least 2 samples per side, got {len(gen_all)}; reported as null")
        return None
    return frechet_from_features(gen_all, gt_all)


def evaluate_videos(
    pairs: Iterable[tuple[str, np.ndarray, np.ndarray]],
    *,
    networks: FeatureNetworks,
    protocol: Protocol,
    metrics: tuple[str, ...] = TABLE_METRICS,
    method: str = "generated",
    batch_size: int = 8,
    progress: bool = True,
    total: int | None = None,
) -> EvaluationResult:
    """Evaluate (name, generated uint8 video, ground-truth uint8 video) pairs with the given protocol."""
    unknown = [m for m in metrics if m not in TABLE_METRICS]
    if unknown:
        raise InputError(f"unknown metrics {unknown}; choose from {', '.join(TABLE_METRICS)}")
    for metric, net in METRIC_NETWORK.items():
        if metric in metrics and getattr(networks, net) is None:
            raise InputError(f"{metric} needs the '{net}' network, which was not given")
    acc, per_video, notes = _Accumulator(), [], []
    for name, gen, gt in tqdm(pairs, total=total, desc="evaluate", unit="video", disable=not progress,
                              file=sys.stderr):
        if len(gen) != len(gt):
            raise InputError(f"'{name}': generated has {len(gen)} frames, ground truth {len(gt)}")
        row = _score_pair(gen, gt, acc, metrics=metrics, networks=networks, protocol=protocol, batch_size=batch_size)
        per_video.append({"name": name, **row})
    if not per_video:
        raise InputError("nothing to evaluate: no video pairs")

    table = {
        "L1": acc.mean("l1_disco"),
        "PSNR": acc.mean("psnr_disco" if protocol.psnr_wraparound else "psnr"),
        "SSIM": acc.mean("ssim"),
        "LPIPS": acc.mean("lpips"),
        "FID": _distance(acc, "FID", notes),
        "FID-VID": _distance(acc, "FID-VID", notes),
        "FVD": _distance(acc, "FVD", notes),
    }
    variants = {"l1": acc.mean("l1"), "psnr": acc.mean("psnr"), "psnr_disco": acc.mean("psnr_disco")}
    counts = {
        "videos": len(per_video),
        "frames": sum(r["frames"] for r in per_video),
        "units": sum(r["units"] for r in per_video),
    }
    return EvaluationResult(method, protocol, {m: table[m] for m in metrics}, variants, counts, per_video, notes)


def load_pairs(
    generated_dir: str | Path, ground_truth_dir: str | Path, *, truncate: bool = False
) -> tuple[int, Iterator[tuple[str, np.ndarray, np.ndarray]], list[str]]:
    """Pair the two folders by name, check frame counts up front, and read pairs lazily.

    Returns (number of pairs, pair iterator, notes). Length mismatches raise InputError
    unless `truncate`, which keeps the common first frames and records a note.
    """
    pairs = pair_sources(generated_dir, ground_truth_dir)
    notes: list[str] = []
    mismatched = []
    for gen, gt in pairs:
        n_gen, n_gt = count_frames(gen), count_frames(gt)
        if n_gen is not None and n_gt is not None and n_gen != n_gt:
            mismatched.append(f"{gen.name}: {n_gen} generated vs {n_gt} ground-truth frames")
    if mismatched and not truncate:
        raise InputError(
            "frame counts differ (frames are paired by index): " + "; ".join(mismatched)
            + ". Pass --truncate to compare only the common first frames."
        )

    def generate() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for gen, gt in pairs:
            a, b = read_source(gen), read_source(gt)
            if len(a) != len(b):
                if not truncate:
                    raise InputError(
                        f"'{gen.name}': {len(a)} generated vs {len(b)} ground-truth frames "
                        "(frames are paired by index); pass --truncate to compare the common first frames"
                    )
                n = min(len(a), len(b))
                notes.append(f"'{gen.name}' truncated to its first {n} frames ({len(a)} vs {len(b)})")
                a, b = a[:n], b[:n]
            yield gen.name, a, b

    return len(pairs), generate(), notes

