"""The denoiser: one noise prediction for a window of frames.

Combines the temporal UNet, the DensePose ControlNet residuals, reference attention and
the release's classifier-free-guidance layout. A function of tensors; the sampler
(windows, fusion, scheduler steps) only calls it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import ControlNetModel
from einops import rearrange

from .models.appearance_encoder import AppearanceEncoder
from .models.reference_attention import ReferenceAttnProcessor, ReferenceBank, install_processors
from .models.unet3d import TemporalUNet


@dataclass
class ControlResiduals:
    """ControlNet residuals of every frame: ``down[i]`` is (F, c_i, h_i, w_i), ``mid`` (F, c, h, w)."""

    down: list[torch.Tensor]
    mid: torch.Tensor

    def select(self, frames: list[int]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Residuals of ``frames`` as (1, c, f, h, w) tensors for the temporal UNet."""
        index = torch.as_tensor(frames, device=self.mid.device)

        def pick(r: torch.Tensor) -> torch.Tensor:
            return rearrange(r.index_select(0, index), "f c h w -> 1 c f h w")

        return [pick(r) for r in self.down], pick(self.mid)


class Denoiser:
    """Noise prediction of MagicAnimate for one window of latent frames."""

    def __init__(self, unet: TemporalUNet, controlnet: ControlNetModel,
                 appearance_encoder: AppearanceEncoder, bank: ReferenceBank):
        self.unet, self.controlnet, self.appearance_encoder, self.bank = unet, controlnet, appearance_encoder, bank
        writers = appearance_encoder.attach(bank)
        readers = install_processors(unet, bank, ReferenceAttnProcessor)
        if writers != readers:
            raise ValueError(f"appearance encoder and UNet fusion layers differ: {writers} vs {readers}")

    def record_reference(self, reference_latent: torch.Tensor, t: torch.Tensor, text: torch.Tensor) -> None:
        """Run the appearance encoder on the clean reference latent (1, 4, h, w) at ``t``."""
        self.appearance_encoder(reference_latent, t, text)

    def control_residuals(self, latents: torch.Tensor, t: torch.Tensor, text: torch.Tensor,
                          control: torch.Tensor, *, chunk: int = 16) -> ControlResiduals:
        """ControlNet residuals for every frame of ``latents`` (1, 4, F, h, w).

        ``control`` is the DensePose video (F, 3, H, W) in [0, 1]; frames are processed in
        non-overlapping groups of ``chunk`` as the release does.
        """
        frames = rearrange(latents, "1 c f h w -> f c h w")
        down: list[list[torch.Tensor]] = []
        mid: list[torch.Tensor] = []
        for start in range(0, frames.shape[0], chunk):
            x = frames[start:start + chunk]
            d, m = self.controlnet(
                x, t, encoder_hidden_states=text.expand(x.shape[0], -1, -1),
                controlnet_cond=control[start:start + chunk], conditioning_scale=1.0, return_dict=False,
            )
            down.append(list(d))
            mid.append(m)
        return ControlResiduals([torch.cat(parts) for parts in zip(*down)], torch.cat(mid))

    def __call__(self, latents: torch.Tensor, t: torch.Tensor, text: torch.Tensor,
                 residuals: tuple[list[torch.Tensor], torch.Tensor], *, guidance: bool) -> torch.Tensor:
        """Noise of a window ``latents`` (1, 4, f, h, w).

        With ``guidance`` the result is (2, 4, f, h, w) = [unconditional, conditional]: both
        halves see the same latents, text ("") and ControlNet residuals; only the
        conditional half attends to the reference (the release's CFG). Without it the
        result is the conditional half alone (1, 4, f, h, w).
        """
        num_frames = latents.shape[2]
        batch = 2 if guidance else 1
        down, mid = residuals  # (1, c, f, h, w): broadcast over the CFG batch
        with self.bank.reading(slice(num_frames if guidance else 0, None)):
            return self.unet(
                latents.expand(batch, -1, -1, -1, -1), t, text.expand(batch, -1, -1),
                down_block_additional_residuals=down, mid_block_additional_residual=mid,
            )
