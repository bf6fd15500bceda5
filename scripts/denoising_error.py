#!/usr/bin/env python
"""Noise-prediction error of trained weights per timestep, through the pipeline's own Denoiser.

    python scripts/denoising_error.py WEIGHTS [WEIGHTS ...] [--split train] [--clips 8] [--json F]

For each weights folder: ``--clips`` synthetic clips of 16 frames at the weights' native size
(identities and motions of ``--split``), each encoded by the weights' VAE (posterior mean),
noised to fixed timesteps with fixed noise (seed 0, the same for every folder), denoised once
without guidance; the mean squared error of the predicted noise is averaged over the clips.
The training loss mixes all timesteps, so it hides a model that gets better at low noise and
worse at high noise, where a frame's layout and colours are decided (docs/mini_model.md,
"Stage 2 revisited"); this table shows it. Prints a markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TIMESTEPS = (50, 200, 400, 600, 800, 950)
WINDOW_FRAMES = 16


def denoising_error(weights: str, *, split: str, clips: int) -> dict[int, float]:
    """Mean noise-prediction MSE per timestep of ``weights`` over ``clips`` synthetic clips."""
    import torch
    from einops import rearrange

    from magicanimate.models.vae import VAE_SCALE
    from magicanimate.sampling.denoiser import Conditioning, Denoiser
    from magicanimate.sampling.pipeline import MagicAnimate
    from magicanimate.sampling.schedulers import training_noise_scheduler
    from magicanimate.synthetic.dataset import make_reference, make_sample, split_specs

    model = MagicAnimate.from_pretrained(weights, device="cpu", dtype=torch.float32)
    scheduler = training_noise_scheduler()
    size = model.native_size
    totals = dict.fromkeys(TIMESTEPS, 0.0)
    generator = torch.Generator().manual_seed(0)
    frames = list(range(WINDOW_FRAMES))
    with torch.no_grad():
        for spec in split_specs(split, count=clips, num_frames=WINDOW_FRAMES, size=(size, size)):
            sample = make_sample(spec)
            reference, _ = make_reference(spec)
            pixels = torch.from_numpy(sample.appearance).float() / 127.5 - 1  # (F, H, W, 3) in [-1, 1]
            latents = model.components.vae.encode(rearrange(pixels, "f h w c -> f c h w")).latent_dist.mean
            latents = rearrange(latents * VAE_SCALE, "f c h w -> 1 c f h w")  # (1, c, F, h, w)
            conditioning = Conditioning(text=model.text_embedding(), reference_latent=model.encode_reference(reference),
                                        control=torch.from_numpy(sample.densepose))
            denoiser = Denoiser(model.models, model.bank, conditioning=conditioning, guidance=False,
                                share_cfg_down_path=model.exact_savings, keep_all_residuals=not model.exact_savings)
            for step in TIMESTEPS:
                noise = torch.randn(latents.shape, generator=generator)
                t = torch.tensor(step)
                noisy = scheduler.add_noise(latents, noise, t)
                with denoiser.step(0, t, latents=noisy, windows={0: frames}):
                    predicted = denoiser(noisy, t, 0)
                totals[step] += float(((predicted[-1:] - noise) ** 2).mean()) / clips
    return totals


def main(argv: list[str] | None = None) -> int:
    """Print the table of every weights folder given; write JSON when asked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", nargs="+", help="weights folders in the release layout (or 'mini')")
    parser.add_argument("--split", default="train", choices=("train", "heldout"), help="synthetic split")
    parser.add_argument("--clips", type=int, default=8, help="clips averaged per timestep")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args(argv)
    if args.clips < 1:
        parser.error("--clips must be >= 1")
    import torch

    torch.set_num_threads(1)
    rows = {w: denoising_error(w, split=args.split, clips=args.clips) for w in args.weights}
    print("| weights | " + " | ".join(f"t = {t}" for t in TIMESTEPS) + " |")
    print("|---|" + "---|" * len(TIMESTEPS))
    for weights, errors in rows.items():
        print(f"| {weights} | " + " | ".join(f"{errors[t]:.4f}" for t in TIMESTEPS) + " |")
    if args.json:
        report = {"command": " ".join(sys.argv), "split": args.split, "clips": args.clips,
                  "rows": {w: {str(t): e for t, e in errors.items()} for w, errors in rows.items()}}
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
