"""The sampling loop: overlapping closed-loop windows, fusion, guidance, DDIM steps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .denoiser import Denoiser
from .distributed import WindowSplit
from .models.unet3d import FeatureCache
from .scheduler import step_kwargs
from .windows import sliding_windows, window_counts


@dataclass(frozen=True)
class Progress:
    """A progress report: ``done`` of ``total`` units of ``stage`` ("denoise" or "decode")."""

    stage: str
    done: int
    total: int


ProgressCallback = Callable[[Progress], None]


def sample_latents(
    denoiser: Denoiser,
    scheduler,
    latents: torch.Tensor,
    *,
    control: torch.Tensor,
    reference_latent: torch.Tensor,
    text: torch.Tensor,
    guidance_scale: float,
    window: int = 16,
    overlap: int = 4,
    progress: ProgressCallback | None = None,
    keep_all_residuals: bool = False,
    split: WindowSplit = WindowSplit(),
    deep_cache_interval: int = 1,
) -> torch.Tensor:
    """Denoise ``latents`` (1, 4, F, h, w) over ``scheduler.timesteps`` (MagicAnimate sampling).

    Per step: record the reference tokens, compute ControlNet residuals of every frame,
    predict each overlapping window, average each frame's predictions over the windows
    containing it, apply guidance (uncond + g·(cond − uncond)), then one scheduler step.
    ``control`` is the DensePose video as uint8 (F, H, W, 3), on any device; frames are
    converted when the ControlNet needs them. Residuals are kept only while a later
    window needs them, unless ``keep_all_residuals`` (the release's cache of every frame).
    ``split`` distributes the windows over processes; the result equals one process's.
    ``deep_cache_interval`` > 1 (lossy, opt-in) runs the full UNet every that many steps
    and only its shallow path in between, reusing each window's deep features.
    """
    if deep_cache_interval < 1:
        raise ValueError("deep_cache_interval must be >= 1")
    num_frames = latents.shape[2]
    windows = sliding_windows(num_frames, window, overlap)
    counts = torch.tensor(window_counts(windows, num_frames), device=latents.device, dtype=latents.dtype)
    counts = counts.view(1, 1, -1, 1, 1)  # broadcast over (b, c, f, h, w)
    guidance = guidance_scale > 1.0
    timesteps = scheduler.timesteps
    mine = split.local(len(windows))
    caches = {j: FeatureCache() for j in mine} if deep_cache_interval > 1 else {}
    total = len(timesteps) * len(mine)
    for i, t in enumerate(timesteps):
        with torch.no_grad(), denoiser.bank.step():
            denoiser.record_reference(reference_latent, t, text)
            local_windows = [windows[j] for j in mine]
            residuals = denoiser.control_residuals(latents, t, text, control, local_windows,
                                                   keep_all=keep_all_residuals)
            noise = torch.zeros((2 if guidance else 1, *latents.shape[1:]), device=latents.device, dtype=latents.dtype)
            predictions = {}
            for n, j in enumerate(mine):
                cache = caches.get(j)
                if cache is not None:
                    cache.reuse = i % deep_cache_interval != 0
                pred = denoiser(latents[:, :, windows[j]], t, text, residuals.window(n), guidance=guidance,
                                feature_cache=cache)
                if split.world_size == 1:
                    noise[:, :, windows[j]] += pred  # fuse at once: no need to hold every window
                else:
                    predictions[j] = pred
                if progress:
                    progress(Progress("denoise", i * len(mine) + n + 1, total))
            if split.world_size > 1:
                gathered = split.gather(predictions)
                for j, frames in enumerate(windows):  # window order, as one process would
                    noise[:, :, frames] += gathered[j]
            noise = noise / counts
            if guidance:
                uncond, cond = noise.chunk(2)
                noise = uncond + guidance_scale * (cond - uncond)
            latents = scheduler.step(noise, t, latents, **step_kwargs(scheduler)).prev_sample
    return latents
