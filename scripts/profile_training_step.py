"""Where a stage-1 training step's time goes: each network's forward pass and the backward pass.

Also times the frozen VAE's encoding of the step's targets and references. Loads a weights folder (default: the shipped mini model) as stage 1b does (UNet, appearance
encoder and ControlNet all trainable, motion modules bypassed), runs the training forward
pass on random latents of the mini recipe's batch (16 single frames, 8 x 8 latents, 64 x 64
DensePose) and times its parts. Prints a table and writes JSON:

    PYTHONPATH=src python scripts/profile_training_step.py --threads 2 --operators --json runs/step_profile.json
    PYTHONPATH=src python scripts/profile_training_step.py --threads 2 --bf16   # under CPU autocast
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import statistics
import time
from pathlib import Path

import torch

from magicanimate.training.config import ModelConfig, TrainConfig
from magicanimate.training.model import TrainingModel
from magicanimate.training.starting_models import build_starting_models
from magicanimate.weights.build import build_vae
from magicanimate.weights.layout import MINI_WEIGHTS, WeightPaths

OPERATOR_GROUPS = {  # substrings of profiler operator names -> group
    "convolution": ("conv",),
    "attention and linear": ("mm", "matmul", "linear", "softmax", "attention"),
    "normalisation": ("norm",),
}
PARTS = ("appearance encoder forward", "ControlNet forward", "UNet forward", "backward (all three)")


def vae_encode_seconds(weights: Path, *, frames: int, side: int, repeats: int) -> float:
    """Median seconds of the frozen VAE encoding ``frames`` frames in the trainer's chunks, as on every step."""
    vae = build_vae(WeightPaths.release_layout(str(weights)).vae).float().eval()
    pixels = torch.rand(frames, 3, side, side, generator=torch.Generator().manual_seed(0)) * 2 - 1
    chunks = pixels.split(TrainConfig().vae_chunk)
    seconds = []
    with torch.no_grad():
        for _ in range(3):  # warm-up: the first calls are several times slower
            vae.encode(chunks[0])
        for _ in range(repeats):
            start = time.perf_counter()
            for chunk in chunks:
                vae.encode(chunk).latent_dist.sample()
            seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def build_model(weights: Path) -> TrainingModel:
    """The stage-1b training model from a release-layout folder, float32, every network trainable."""
    cfg = ModelConfig(pretrained=str(weights), appearance_encoder="release", controlnet="release",
                      motion_modules="release", trainable=["unet.*", "appearance_encoder.*", "controlnet.*"])
    models = build_starting_models(cfg, seed=0).models
    model = TrainingModel(models.unet, models.controlnet, models.appearance_encoder, use_motion_modules=False)
    model.select_trainable(cfg.trainable)
    return model.float().train()


def random_batch(model: TrainingModel, *, batch: int, latent: int) -> dict[str, torch.Tensor]:
    """Random inputs of the training forward pass: one frame per sample."""
    g = torch.Generator().manual_seed(0)
    width = model.unet.config.cross_attention_dim
    return {
        "noisy": torch.randn(batch, 4, 1, latent, latent, generator=g),
        "reference": torch.randn(batch, 4, latent, latent, generator=g),
        "control": torch.rand(batch, 3, 1, latent * 8, latent * 8, generator=g),
        "text": torch.randn(batch, 77, width, generator=g),
        "timesteps": torch.randint(0, 1000, (batch,), generator=g),
    }


def timed_step(model: TrainingModel, inputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Seconds of each part of one training step: TrainingModel.forward's three networks (timed by
    forward hooks), then the backward pass."""
    seconds: dict[str, float] = {}
    started: dict[str, float] = {}
    handles = []
    for part, network in zip(PARTS, (model.appearance_encoder, model.controlnet, model.unet)):
        handles.append(network.register_forward_pre_hook(
            lambda module, args, part=part: started.__setitem__(part, time.perf_counter())))
        handles.append(network.register_forward_hook(
            lambda module, args, output, part=part: seconds.__setitem__(part, time.perf_counter() - started[part])))
    try:
        temporal = torch.zeros(inputs["noisy"].shape[0], dtype=torch.bool)  # single frames: no motion modules
        predicted = model(inputs["noisy"], inputs["timesteps"], inputs["reference"], inputs["control"],
                          inputs["text"], temporal)
    finally:
        for handle in handles:
            handle.remove()

    start = time.perf_counter()
    predicted.square().mean().backward()
    seconds[PARTS[3]] = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    return seconds


def operator_shares(model: TrainingModel, inputs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Share of one step's operator self time per group of OPERATOR_GROUPS (the rest: "other")."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        timed_step(model, inputs)
    groups: collections.Counter[str] = collections.Counter()
    for event in prof.key_averages():
        name = event.key.lower()
        group = next((g for g, keys in OPERATOR_GROUPS.items() if any(k in name for k in keys)), "other")
        groups[group] += event.self_cpu_time_total
    total = sum(groups.values())
    return {group: value / total for group, value in groups.most_common()}


def main() -> None:
    """Time a few steps after one warm-up and print the mean of each part."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=MINI_WEIGHTS, help="release-layout folder (default: mini)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--batch", type=int, default=16, help="samples per step (default 16, the mini recipe's)")
    parser.add_argument("--latent", type=int, default=8, help="latent side (default 8: 64 x 64 pixels)")
    parser.add_argument("--steps", type=int, default=4, help="timed steps after one warm-up (default 4)")
    parser.add_argument("--bf16", action="store_true", help="run the step under CPU bfloat16 autocast")
    parser.add_argument("--operators", action="store_true", help="also profile one step by operator group")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model = build_model(args.weights)
    inputs = random_batch(model, batch=args.batch, latent=args.latent)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()
    totals: collections.Counter[str] = collections.Counter()
    with autocast:
        timed_step(model, inputs)
        for _ in range(args.steps):
            totals.update(timed_step(model, inputs))
    mean = {part: totals[part] / args.steps for part in PARTS}
    step = sum(mean.values())

    print(f"| part | s | share |  ({args.threads} threads, batch {args.batch}, "
          f"{'bfloat16 autocast' if args.bf16 else 'float32'})")
    print("|---|---|---|")
    for part, seconds in mean.items():
        print(f"| {part} | {seconds:.3f} | {100 * seconds / step:.0f} % |")
    print(f"| **step** | **{step:.3f}** | |")
    vae = vae_encode_seconds(args.weights, frames=2 * args.batch, side=args.latent * 8, repeats=max(args.steps, 8))
    print(f"| frozen VAE, encoding the {2 * args.batch} targets and references (not in the step above) | {vae:.3f} | |")
    shares = operator_shares(model, inputs) if args.operators else {}
    for group, share in shares.items():
        print(f"operators, {group}: {100 * share:.0f} % of self time")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"threads": args.threads, "batch": args.batch, "latent": args.latent,
                                         "bf16": args.bf16, "steps": args.steps, "seconds": mean,
                                         "step_seconds": step, "vae_encode_seconds": vae, "operator_shares": shares, "torch": torch.__version__}, indent=2))


if __name__ == "__main__":
    main()
