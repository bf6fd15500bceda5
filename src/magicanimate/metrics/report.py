"""Presenting an evaluation: the paper's table layout on screen, JSON and CSV on disk."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from magicanimate.errors import OutputError
from magicanimate.metrics.evaluate import EvaluationResult
from magicanimate.metrics.protocol import PAPER_ROWS, TABLE_METRICS

# The paper prints L1 in scientific notation and the others with 2-3 decimals.
FORMATS = {"L1": "{:.2e}", "PSNR": "{:.2f}", "SSIM": "{:.3f}", "LPIPS": "{:.3f}",
           "FID": "{:.2f}", "FID-VID": "{:.2f}", "FVD": "{:.2f}"}
JSON_NAME, CSV_NAME, PER_VIDEO_CSV_NAME = "metrics.json", "metrics.csv", "per_video.csv"


def finite_or_none(value: float | None) -> float | None:
    """JSON-safe number: NaN and infinities become None."""
    return None if value is None or not math.isfinite(value) else float(value)


def _cell(metric: str, value: float | None) -> str:
    return "n/a" if finite_or_none(value) is None else FORMATS[metric].format(value)


def format_table(result: EvaluationResult, *, with_paper: bool | None = None) -> str:
    """Markdown table: | Method | L1 | PSNR | SSIM | LPIPS | FID | FID-VID | FVD |, the paper's rows first."""
    if with_paper is None:
        with_paper = result.protocol.name == "disco"
    lines = ["| Method | " + " | ".join(TABLE_METRICS) + " |", "|---" * (len(TABLE_METRICS) + 1) + "|"]
    if with_paper:
        for name, values in PAPER_ROWS.items():
            lines.append(f"| {name} | " + " | ".join(_cell(m, v) for m, v in zip(TABLE_METRICS, values)) + " |")
    cells = [_cell(m, result.metrics.get(m)) for m in TABLE_METRICS]
    lines.append(f"| {result.method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_json_dict(result: EvaluationResult, *, networks: str) -> dict:
    """The JSON report: table values, variants, protocol, counts, per-video means, notes."""
    return {
        "method": result.method,
        "protocol": result.protocol.as_dict(),
        "networks": networks,
        "metrics": {m: finite_or_none(v) for m, v in result.metrics.items()},
        "variants": {k: finite_or_none(v) for k, v in result.variants.items()},
        "counts": result.counts,
        "per_video": [{k: (finite_or_none(v) if isinstance(v, float) else v) for k, v in row.items()}
                      for row in result.per_video],
        "notes": result.notes,
    }


def write_reports(
    result: EvaluationResult, out_dir: str | Path, *, networks: str, overwrite: bool = False
) -> list[Path]:
    """Write metrics.json, metrics.csv (one row) and per_video.csv into `out_dir`; returns the paths."""
    out_dir = Path(out_dir)
    paths = [out_dir / JSON_NAME, out_dir / CSV_NAME, out_dir / PER_VIDEO_CSV_NAME]
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise OutputError(f"{existing[0]} already exists; pass --overwrite or choose another --output")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths[0].write_text(json.dumps(to_json_dict(result, networks=networks), indent=2) + "\n")
        header = ["method", "protocol", *TABLE_METRICS, *result.variants, *result.counts]
        row = [result.method, result.protocol.name,
               *[finite_or_none(result.metrics.get(m)) for m in TABLE_METRICS],
               *[finite_or_none(v) for v in result.variants.values()], *result.counts.values()]
        with open(paths[1], "w", newline="") as f:
            csv.writer(f).writerows([header, ["" if v is None else v for v in row]])
        keys = list(dict.fromkeys(k for r in result.per_video for k in r))
        with open(paths[2], "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(result.per_video)
    except OSError as exc:
        raise OutputError(f"cannot write the evaluation report to {out_dir}: {exc}") from exc
    return paths
