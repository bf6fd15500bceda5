"""Stage 0: the VAE (diffusers AutoencoderKL) trained from scratch on the frames of the data set.

A model trained from nothing has no SD VAE to start from. Per micro-batch, the reference
and target frames of each sample (single frames, ``data.num_frames: 1``; optionally a random
``autoencoder.crop`` window of them) are encoded, a
latent is drawn from the posterior and decoded; loss = L1 + mse_weight x MSE (pixels in
[-1, 1]; optionally a weighted mean that counts the person's pixels 1 + foreground_weight
times) + kl_weight x KL(posterior || N(0, I)) (summed over the latent, as in LDM).
The same loop, checkpoints, time budget and log as stages 1 and 2 (``Trainer``); the
export writes the release layout with the trained ``sd-vae-ft-mse/``, after folding the
latent spread into the VAE so that ``VAE_SCALE x latents`` has unit variance, as the
denoiser stages and the pipeline assume.
"""

from __future__ import annotations

import copy
import json
import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from einops import rearrange
from PIL import Image
from torch import nn

from magicanimate.io.densepose_colors import person_mask
from magicanimate.models.vae import VAE_SCALE, fold_latent_scale, latent_downsampling, latent_shape
from magicanimate.training.data import collate
from magicanimate.training.export import export_autoencoder_layout
from magicanimate.training.trainer import Trainer, _seed_for
from magicanimate.weights.build import build_vae
from magicanimate.weights.layout import WeightPaths

log = logging.getLogger(__name__)


class AutoencoderModel(nn.Module):
    """The VAE as one module whose ``forward`` is a training reconstruction (parameters named ``vae.*``)."""

    def __init__(self, vae: AutoencoderKL):
        super().__init__()
        self.vae = vae

    def forward(self, images: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction of ``images`` (n, 3, H, W) in [-1, 1] from the latent mean + std x ``eps``, and the KL (n,)."""
        posterior = self.vae.encode(images).latent_dist
        latents = posterior.mean + posterior.std * eps  # (n, 4, H/8, W/8)
        return self.vae.decode(latents).sample, posterior.kl()


def pixel_weights(batch: dict[str, Any], foreground_weight: float) -> torch.Tensor:
    """Loss weight per pixel of ``frames_of(batch)``, (n, 1, H, W): 1, and 1 + ``foreground_weight`` on the person.

    The person is where a target frame's DensePose is not background, dilated by one pixel so
    that the outline counts too; references have no DensePose and weigh 1 everywhere.
    """
    references = batch["reference"].shape[0]
    control = rearrange(batch["control"], "b f h w c -> (b f) h w c").numpy()
    mask = torch.from_numpy(person_mask(control)).float()[:, None]  # (b f, 1, H, W)
    mask = F.max_pool2d(mask, kernel_size=3, stride=1, padding=1)
    height, width = mask.shape[2:]
    return torch.cat([torch.ones(references, 1, height, width), 1 + foreground_weight * mask])


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (n, c, H, W) with per-pixel ``weights`` (n, 1, H, W), shared by the channels."""
    return (values * weights).sum() / (weights.sum() * values.shape[1])


def frames_of(batch: dict[str, Any]) -> torch.Tensor:
    """Every frame of a batch, references first: uint8 (b, H, W, 3) + (b, f, H, W, 3) -> float (n, 3, H, W) in [-1, 1]."""
    frames = torch.cat([batch["reference"], rearrange(batch["target"], "b f h w c -> (b f) h w c")])
    return rearrange(frames, "n h w c -> n c h w").float() / 127.5 - 1


class AutoencoderTrainer(Trainer):
    """Stage 0: trains every VAE parameter; ``weights/`` is the starting layout with the new VAE."""

    # ------------------------------------------------------------------ setup
    def _build_network(self) -> nn.Module:
        vae = build_vae(WeightPaths.release_layout(self.pretrained).vae)  # CPU, float32
        if self.cfg.model.gradient_checkpointing:
            vae.enable_gradient_checkpointing()
        net = AutoencoderModel(vae).train().requires_grad_(True)
        self.trainable_names = [name for name, _ in net.named_parameters()]
        return net.to(self.device)

    def _validation_inputs(self, items: list) -> dict[str, Any]:
        return self._frames_batch(stream=4, count=4)

    def _frames_batch(self, *, stream: int, count: int) -> dict[str, Any]:
        """``count`` samples of a fixed stream of the data set (not the training draws)."""
        return collate([self.dataset.sample(i, stream=stream) for i in range(count)])

    # ------------------------------------------------------------------ loss
    def batch_loss(self, model: nn.Module, batch: dict[str, Any], generator: torch.Generator) -> torch.Tensor:
        a = self.cfg.autoencoder
        images = frames_of(batch)
        weights = pixel_weights(batch, a.foreground_weight) if a.foreground_weight else None
        grid = latent_downsampling(self.net.vae)
        if a.crop:  # one random window per micro-batch, at multiples of the latent grid
            top, left = (grid * int(torch.randint(0, (size - a.crop) // grid + 1, (1,), generator=generator))
                         for size in images.shape[2:])
            images = images[:, :, top:top + a.crop, left:left + a.crop]
            if weights is not None:
                weights = weights[:, :, top:top + a.crop, left:left + a.crop]
        n, _, height, width = images.shape
        eps = torch.randn((n, *latent_shape(self.net.vae, height, width)), generator=generator)
        images = images.to(self.device)
        reconstruction, kl = model(images, eps.to(self.device))
        reconstruction = reconstruction.float()
        if weights is None:
            l1, mse = F.l1_loss(reconstruction, images), F.mse_loss(reconstruction, images)
        else:
            weights = weights.to(self.device)
            error = reconstruction - images
            l1, mse = weighted_mean(error.abs(), weights), weighted_mean(error.square(), weights)
        return l1 + a.mse_weight * mse + a.kl_weight * kl.float().mean()

    def release_activations(self) -> None:
        pass  # no reference bank in stage 0

    def fixed_batch_loss(self) -> float:
        generator = torch.Generator().manual_seed(_seed_for(self.cfg.seed, 3))
        with torch.no_grad(), self.accelerator.autocast():
            return self.batch_loss(self.net, self.fixed_batch, generator).item()

    # ------------------------------------------------------------------ outputs
    @torch.no_grad()
    def latent_factor(self, vae: AutoencoderKL) -> float:
        """Factor making ``VAE_SCALE x`` the posterior means of ``autoencoder.scale_samples`` frames unit-variance."""
        count = self.cfg.autoencoder.scale_samples
        if count == 0:
            return 1.0
        batch = self._frames_batch(stream=5, count=max(1, count // 2))  # reference + one target per sample
        images = frames_of(batch)
        means = [vae.encode(images[i:i + 16].to(self.device)).latent_dist.mean.float()
                 for i in range(0, len(images), 16)]
        std = torch.cat(means).std().item()
        return 1.0 / (VAE_SCALE * std)

    def export(self) -> Path | None:
        """weights/: the starting layout with the trained (EMA) VAE, latent spread folded in (main process)."""
        acc = self.accelerator
        target = self.output / "weights"
        if acc.is_main_process:
            with self.ema.swapped_in() if self.ema is not None else nullcontext():
                vae = copy.deepcopy(self.net.vae).eval()
            factor = self.latent_factor(vae)
            fold_latent_scale(vae, factor)
            export_autoencoder_layout(target, pretrained=self.pretrained, vae=vae, link_mode=self.cfg.link_untouched)
            (self.output / "latent_scale.json").write_text(json.dumps({"step": self.step, "factor": factor}) + "\n")
            log.info("VAE latent spread folded in: factor %.4g", factor)
        acc.wait_for_everyone()
        return target

    @torch.no_grad()
    def write_validation(self) -> Path | None:
        """samples/step_N.png: real frames (top) over their reconstructions (bottom), current (EMA) weights."""
        acc = self.accelerator
        path = None
        if acc.is_main_process and self.validation is not None:
            self.net.eval()
            try:
                with self.ema.swapped_in() if self.ema is not None else nullcontext():
                    images = frames_of(self.validation).to(self.device)
                    posterior = self.net.vae.encode(images).latent_dist
                    decoded = self.net.vae.decode(posterior.mean).sample.float().clamp(-1, 1)
            finally:
                self.net.train()
            rows = [rearrange(x, "n c h w -> h (n w) c") for x in (images.float(), decoded)]
            strip = ((torch.cat(rows) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()  # (2H, n W, 3)
            path = self.output / "samples" / f"step_{self.step:06d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.ascontiguousarray(strip)).save(path)
        acc.wait_for_everyone()
        return path
