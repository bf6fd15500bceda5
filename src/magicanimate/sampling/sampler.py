"""The sampling loop: every step, every window through the denoiser, fusion, guidance, a scheduler step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from magicanimate.runtime.distributed import WindowSplit
from magicanimate.sampling.denoiser import Denoiser, apply_guidance
from magicanimate.sampling.schedulers import step_kwargs
from magicanimate.sampling.windows import fuse_windows


@dataclass(frozen=True)
class Progress:
    """A progress report: ``done`` of ``total`` units of ``stage`` ("denoise" or "decode")."""

    stage: str
    done: int
    total: int


ProgressCallback = Callable[[Progress], None]


def sample(
    denoiser: Denoiser,
    scheduler,
    *,
    latents: torch.Tensor,
    windows: list[list[int]],
    guidance_scale: float,
    split: WindowSplit | None = None,
    progress: ProgressCallback | None = None,
) -> torch.Tensor:
    """Denoise ``latents`` (1, c, F, h, w) over ``scheduler.timesteps`` (MagicAnimate sampling).

    Per step: the denoiser predicts every window (``split`` says which ones this process
    computes and gathers the others), the predictions are averaged per frame over the
    windows containing it, guidance combines the two halves, and the scheduler steps.
    Every process returns the same latents, equal to a single-process run.
    """
    split = split or WindowSplit()
    num_frames = latents.shape[2]
    mine = split.local(len(windows))
    total = len(scheduler.timesteps) * len(mine)
    done = 0

    def predict(j: int) -> torch.Tensor:
        nonlocal done
        prediction = denoiser(latents[:, :, windows[j]], t, j)
        done += 1
        if progress:
            progress(Progress("denoise", done, total))
        return prediction

    for i, t in enumerate(scheduler.timesteps):
        with torch.no_grad(), denoiser.step(i, t, latents=latents, windows={j: windows[j] for j in mine}):
            noise = fuse_windows(split.predictions(len(windows), predict), windows, num_frames=num_frames)
            noise = apply_guidance(noise, guidance_scale)
            latents = scheduler.step(noise, t, latents, **step_kwargs(scheduler)).prev_sample
    return latents
