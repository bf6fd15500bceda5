"""Training log: one CSV row per logged step, a PNG plot drawn with PIL, optional TensorBoard."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

COLUMNS = ("step", "loss", "fixed_loss", "lr", "samples", "images", "step_seconds", "elapsed_seconds")


def progress_line(*, step: int, max_steps: int, loss: float, lr: float, seconds_per_step: float) -> str:
    """One progress line for the terminal: step, loss, learning rate, speed and the time left."""
    left = max(0, max_steps - step) * seconds_per_step
    return (f"step {step}/{max_steps}  loss {loss:.4g}  lr {lr:.3g}  {seconds_per_step:.3g} s/step  "
            f"ETA {format_duration(left)}")


def format_duration(seconds: float) -> str:
    """``3725`` -> ``1h02m05s``; under a minute ``42s``."""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class TrainingLog:
    """Appends rows to ``log.csv`` (continuing it on resume) and draws ``loss.png``."""

    def __init__(self, folder: Path, *, resume_step: int | None = None, tensorboard: bool = False):
        self.csv_path, self.png_path = folder / "log.csv", folder / "loss.png"
        rows = self.read(self.csv_path) if resume_step is not None and self.csv_path.is_file() else []
        # On resume, rows past the checkpoint belong to steps that will be redone.
        self.rows = [r for r in rows if int(r["step"]) <= (resume_step or 0)]
        with self.csv_path.open("w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)
        self.tensorboard = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                from magicanimate.errors import InputError

                raise InputError("tensorboard=true needs the tensorboard package (pip install tensorboard)") from err
            self.tensorboard = SummaryWriter(str(folder / "tensorboard"), purge_step=(resume_step or 0) + 1)

    @staticmethod
    def read(path: Path) -> list[dict[str, str]]:
        """Rows of a log.csv."""
        with path.open(newline="") as f:
            return list(csv.DictReader(f))

    def log(self, **values: Any) -> None:
        """Append one row (missing columns left empty; floats written exactly with repr)."""
        row = {k: (repr(float(v)) if isinstance(v, float) else v) for k, v in values.items() if v is not None}
        self.rows.append(row)
        with self.csv_path.open("a", newline="") as f:
            csv.DictWriter(f, COLUMNS).writerow(row)
        if self.tensorboard is not None:
            for key in ("loss", "fixed_loss", "lr"):
                if values.get(key) is not None:
                    self.tensorboard.add_scalar(f"train/{key}", float(values[key]), int(values["step"]))

    def plot(self) -> None:
        """Draw loss (raw and smoothed), fixed-batch loss and learning rate against step into loss.png."""
        steps = np.array([int(r["step"]) for r in self.rows], dtype=float)
        if len(steps) == 0:
            return
        panels = [("loss (log scale)", [("loss", (160, 160, 220)), ("loss_smooth", (30, 60, 200)),
                                        ("fixed_loss", (220, 60, 30))], True),
                  ("learning rate", [("lr", (30, 140, 60))], False)]
        series = {key: np.array([float(r[key]) if r.get(key) not in (None, "") else np.nan for r in self.rows])
                  for key in ("loss", "fixed_loss", "lr")}
        series["loss_smooth"] = _ema_smooth(series["loss"])
        width, height, margin = 900, 560, 60
        image = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(image)
        panel_h = (height - 3 * margin // 2) // 2
        for p, (title, lines, log_scale) in enumerate(panels):
            top = margin // 2 + p * (panel_h + margin // 2)
            box = (margin + 20, top + 15, width - 20, top + panel_h - 15)
            draw.rectangle(box, outline=(0, 0, 0))
            draw.text((box[0], top), title, fill=(0, 0, 0))
            values = np.concatenate([series[k] for k, _ in lines])
            values = values[np.isfinite(values) & ((values > 0) if log_scale else True)]
            if values.size == 0:
                continue
            lo, hi = float(values.min()), float(values.max())
            tf = (lambda v: math.log10(v)) if log_scale else (lambda v: v)
            lo_t, hi_t = tf(lo), tf(hi)
            if hi_t - lo_t < 1e-12:
                lo_t, hi_t = lo_t - 0.5, hi_t + 0.5
            s_lo, s_hi = steps.min(), max(steps.max(), steps.min() + 1)
            for label_value, y in ((hi, box[1]), (lo, box[3] - 10)):
                draw.text((2, y), f"{label_value:.3g}", fill=(0, 0, 0))
            draw.text((box[0], box[3] + 2), f"step {int(s_lo)}", fill=(0, 0, 0))
            draw.text((box[2] - 70, box[3] + 2), f"step {int(s_hi)}", fill=(0, 0, 0))
            for key, colour in lines:
                points = [
                    (box[0] + (s - s_lo) / (s_hi - s_lo) * (box[2] - box[0]),
                     box[3] - (tf(v) - lo_t) / (hi_t - lo_t) * (box[3] - box[1]))
                    for s, v in zip(steps, series[key]) if np.isfinite(v) and (v > 0 or not log_scale)
                ]
                if len(points) > 1:
                    draw.line(points, fill=colour, width=2)
                elif points:
                    draw.ellipse([points[0][0] - 2, points[0][1] - 2, points[0][0] + 2, points[0][1] + 2], fill=colour)
            legend_x = box[0] + 80
            for key, colour in lines:
                draw.text((legend_x, top), key, fill=colour)
                legend_x += 8 * len(key) + 20
        image.save(self.png_path)

    def close(self) -> None:
        """Flush TensorBoard."""
        if self.tensorboard is not None:
            self.tensorboard.close()


def _ema_smooth(values: np.ndarray, alpha: float = 0.1) -> np.ndarray:
    out, acc = np.full_like(values, np.nan), None
    for i, v in enumerate(values):
        if np.isfinite(v):
            acc = v if acc is None else (1 - alpha) * acc + alpha * v
            out[i] = acc
    return out
