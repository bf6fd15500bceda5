#!/usr/bin/env python
"""Denoising error of trained weights per timestep, through the pipeline's own Denoiser.

    python scripts/denoising_error.py WEIGHTS [WEIGHTS ...] [--split train] [--clips 8] [--zoom 1] [--json F]

For each weights folder: ``--clips`` synthetic clips of 16 frames at the weights' native size
(identities and motions of ``--split``, people drawn ``--zoom`` times larger), each encoded by
the weights' VAE (posterior mean), noised to fixed timesteps with fixed noise (seed 0, the
same for every folder), denoised once without guidance. Two tables, averaged over the clips:

- the mean squared error of the predicted noise (weights that predict the velocity have it
  turned into the noise it implies). The training loss mixes all timesteps, so it hides a
  model that gets better at low noise and worse at high noise (docs/mini_model.md, "Stage 2
  revisited");
- the PSNR of the clean frames that one step predicts (decoded by the VAE) against the true
  frames. Near t = 1000 the noisy latent holds almost nothing, so this is how well the
  network draws a frame from its conditions alone; the VAE round trip bounds it.

Prints markdown tables and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from magicanimate.synthetic.dataset import parse_zoom

TIMESTEPS = (50, 200, 400, 600, 800, 950, 999)
WINDOW_FRAMES = 16


def denoising_error(weights: str, *, split: str, clips: int, zoom: float = 1.0) -> dict[str, dict[int, float]]:
    """Per timestep: "noise_mse" (predicted noise) and "frame_psnr" (one-step clean frames), means over the clips."""
    import numpy as np
    import torch
    from einops import rearrange

    from magicanimate.metrics import psnr
    from magicanimate.models.vae import VAE_SCALE
    from magicanimate.sampling.denoiser import Conditioning, Denoiser
    from magicanimate.sampling.pipeline import MagicAnimate
    from magicanimate.sampling.schedulers import training_noise_scheduler
    from magicanimate.synthetic.dataset import make_reference, make_sample, split_specs

    model = MagicAnimate.from_pretrained(weights, device="cpu", dtype=torch.float32)
    vae = model.components.vae
    scheduler = training_noise_scheduler()
    size = model.native_size
    noise_mse, frame_psnr = dict.fromkeys(TIMESTEPS, 0.0), dict.fromkeys(TIMESTEPS, 0.0)
    generator = torch.Generator().manual_seed(0)
    frames = list(range(WINDOW_FRAMES))

    def decoded(latents: torch.Tensor) -> np.ndarray:
        pixels = vae.decode(rearrange(latents, "1 c f h w -> f c h w") / VAE_SCALE).sample  # (F, 3, H, W)
        return ((pixels.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()  # (F, H, W, 3)

    with torch.no_grad():
        for spec in split_specs(split, count=clips, num_frames=WINDOW_FRAMES, size=(size, size), zoom=zoom):
            sample = make_sample(spec)
            reference, _ = make_reference(spec)
            pixels = torch.from_numpy(sample.appearance).float() / 127.5 - 1  # (F, H, W, 3) in [-1, 1]
            latents = vae.encode(rearrange(pixels, "f h w c -> f c h w")).latent_dist.mean
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
                    predicted = denoiser(noisy, t, 0)[-1:]  # the conditional half
                alpha, sigma = scheduler.alphas_cumprod[step].sqrt(), (1 - scheduler.alphas_cumprod[step]).sqrt()
                if model.components.prediction_type == "v_prediction":  # velocity -> noise: eps = a v + s z
                    predicted = alpha * predicted + sigma * noisy
                noise_mse[step] += float(((predicted - noise) ** 2).mean()) / clips
                clean = (noisy - sigma * predicted) / alpha  # the clean latent this step implies
                frame_psnr[step] += psnr(decoded(clean), sample.appearance) / clips
    return {"noise_mse": noise_mse, "frame_psnr": frame_psnr}


def main(argv: list[str] | None = None) -> int:
    """Print the tables of every weights folder given; write JSON when asked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", nargs="+", help="weights folders in the release layout (or 'mini')")
    parser.add_argument("--split", default="train", choices=("train", "heldout"), help="synthetic split")
    parser.add_argument("--clips", type=int, default=8, help="clips averaged per timestep")
    parser.add_argument("--zoom", type=float, default=1.0, help="people drawn this many times larger (default 1)")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args(argv)
    if args.clips < 1:
        parser.error("--clips must be >= 1")
    try:
        parse_zoom(args.zoom)
    except ValueError as error:
        parser.error(f"--zoom: {error}")
    import torch

    torch.set_num_threads(1)
    rows = {w: denoising_error(w, split=args.split, clips=args.clips, zoom=args.zoom) for w in args.weights}
    for key, title, fmt in (("noise_mse", "noise-prediction MSE", "{:.4f}"),
                            ("frame_psnr", "PSNR (dB) of the one-step clean frames", "{:.2f}")):
        print(f"\n{title}\n\n| weights | " + " | ".join(f"t = {t}" for t in TIMESTEPS) + " |")
        print("|---|" + "---|" * len(TIMESTEPS))
        for weights, tables in rows.items():
            print(f"| {weights} | " + " | ".join(fmt.format(tables[key][t]) for t in TIMESTEPS) + " |")
    if args.json:
        report = {"command": " ".join(sys.argv), "split": args.split, "clips": args.clips, "zoom": args.zoom,
                  "rows": {w: {key: {str(t): v for t, v in table.items()} for key, table in tables.items()}
                           for w, tables in rows.items()}}
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
