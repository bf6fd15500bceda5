"""Seconds per stage-1 step of the whole trainer (data, VAE, networks, optimiser, EMA) with and without its speed options.

Runs ``magicanimate train``'s Trainer on the mini recipe's stage-1 config (``configs/mini/stage1.yaml``:
batch 16, 64 x 64, the generated data set) for ``--steps`` steps per variant, from a stage-0
export, and reports the median step time after ``--warm-up`` steps, and the set-up time
(which holds the latent table's one-off encoding when the table is not found yet).
Prints a Markdown table and writes JSON:

    MAGICANIMATE_SYNTHETIC_CACHE=runs/mini/data PYTHONPATH=src python scripts/bench_training_speed.py \\
        --pretrained runs/exp_fg/s0_10k/weights --threads 2 --json docs/bench/training_speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from magicanimate.training.config import load_config
from magicanimate.training.logger import TrainingLog
from magicanimate.training.trainer import Trainer

VARIANTS = {  # name -> config overrides
    "per-tensor AdamW, VAE every step": {"optim.fused_adam": False, "data.latent_cache": False},
    "fused AdamW, VAE every step": {"optim.fused_adam": True, "data.latent_cache": False},
    "fused AdamW, latent table": {"optim.fused_adam": True, "data.latent_cache": True},
}


def time_variant(overrides: dict, *, pretrained: str, steps: int, warm_up: int, table_dir: Path,
                 output: Path) -> dict:
    """Train ``steps`` stage-1 steps with ``overrides``; the median step seconds after ``warm_up`` and the set-up time."""
    values = {"model.pretrained": pretrained, "output": str(output), "max_steps": steps, "time_budget": None,
              "log_every": 1, "checkpoint_every": steps + 1, "fixed_batch_every": 0, "progress_every": 0,
              "data.latent_cache_dir": str(table_dir), **overrides}
    cfg = load_config("configs/mini/stage1.yaml", {k: v for k, v in values.items()})
    start = time.monotonic()
    trainer = Trainer(cfg)
    set_up = time.monotonic() - start
    trainer.run()
    seconds = [float(r["step_seconds"]) for r in TrainingLog.read(output / "log.csv")
               if r.get("step_seconds") and int(r["step"]) > warm_up]
    return {"median_step_seconds": statistics.median(seconds), "steps_timed": len(seconds),
            "set_up_seconds": round(set_up, 1)}


def main() -> None:
    """Time each variant, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pretrained", required=True, help="stage-0 export (release layout) to start from")
    parser.add_argument("--steps", type=int, default=120, help="steps per variant")
    parser.add_argument("--warm-up", type=int, default=20, help="first steps left out of the median")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--table-dir", default=None, help="folder of latent tables (default: a temporary one, so "
                        "the one-off encoding is in the set-up time)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        table_dir = Path(args.table_dir) if args.table_dir else Path(tmp) / "latents"
        for name, overrides in VARIANTS.items():
            results[name] = time_variant(overrides, pretrained=args.pretrained, steps=args.steps,
                                         warm_up=args.warm_up, table_dir=table_dir,
                                         output=Path(tmp) / name.replace(" ", "_").replace(",", ""))
    base = results[next(iter(VARIANTS))]["median_step_seconds"]
    print(f"\n| variant | s/step (median of steps {args.warm_up + 1}-{args.steps}) | speed-up | set-up (s) |")
    print("|---|---|---|---|")
    for name, row in results.items():
        row["speed_up"] = round(base / row["median_step_seconds"], 3)
        print(f"| {name} | {row['median_step_seconds']:.3f} | {row['speed_up']:.2f}x | {row['set_up_seconds']} |")
    if args.json:
        payload = {"command": "scripts/bench_training_speed.py", "threads": args.threads, "steps": args.steps,
                   "warm_up": args.warm_up, "pretrained": args.pretrained, "torch": torch.__version__,
                   "machine": platform.processor() or platform.machine(), "variants": results}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
