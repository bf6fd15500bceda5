"""The denoiser: one noise prediction for a window of frames.

Combines the temporal UNet, the DensePose ControlNet residuals, reference attention and
the release's classifier-free-guidance layout. A function of tensors; the sampler
(windows, fusion, scheduler steps) only calls it.
"""

from __future__ import annotations

from typing import Sequence

import torch
from diffusers import ControlNetModel
from einops import rearrange

from .models.appearance_encoder import AppearanceEncoder
from .models.reference_attention import ReferenceAttnProcessor, ReferenceBank, install_processors
from .models.unet3d import FeatureCache, TemporalUNet

Residuals = tuple[list[torch.Tensor], torch.Tensor]  # down (1, c, f, h, w) each, mid (1, c, f, h, w)


def control_frames(control: torch.Tensor, frames: Sequence[int], device: torch.device,
                   dtype: torch.dtype) -> torch.Tensor:
    """DensePose frames ``frames`` of uint8 (F, H, W, 3) ``control`` as (f, 3, H, W) in [0, 1]."""
    index = torch.as_tensor(list(frames), device=control.device)
    x = control.index_select(0, index).to(device=device, dtype=dtype) / 255.0  # as the release: cast, then scale
    return rearrange(x, "f h w c -> f c h w")


class ControlResidualCache:
    """ControlNet residuals per frame for one denoising step, kept only while needed.

    ``window(j)`` returns the residuals of window j, computing the frames not yet cached
    (per-frame model: the grouping changes only rounding) and then dropping the frames no
    later window uses. Memory is bounded by about two windows, whatever the video length.
    ``keep_all=True`` instead computes every frame up front in non-overlapping groups of
    ``window`` frames and keeps them, as the release does.
    """

    def __init__(self, denoiser: "Denoiser", latents: torch.Tensor, t: torch.Tensor, text: torch.Tensor,
                 control: torch.Tensor, windows: list[list[int]], *, keep_all: bool = False):
        self.denoiser, self.latents, self.t, self.text, self.control = denoiser, latents, t, text, control
        self.windows, self.keep_all = windows, keep_all
        self.last_use = {f: j for j, w in enumerate(windows) for f in w}
        self.store: dict[int, tuple[list[torch.Tensor], torch.Tensor]] = {}
        if keep_all:
            size = len(windows[0])
            needed = sorted(self.last_use)
            for start in range(0, len(needed), size):
                self._compute(needed[start:start + size])

    def _compute(self, frames: list[int]) -> None:
        x = rearrange(self.latents[:, :, frames], "1 c f h w -> f c h w")
        down, mid = self.denoiser.controlnet(
            x, self.t, encoder_hidden_states=self.text.expand(len(frames), -1, -1),
            controlnet_cond=control_frames(self.control, frames, x.device, x.dtype),
            conditioning_scale=1.0, return_dict=False,
        )
        for i, f in enumerate(frames):
            self.store[f] = ([d[i] for d in down], mid[i])

    def window(self, j: int) -> Residuals:
        """Residuals of window ``j`` as (1, c, f, h, w) tensors."""
        frames = self.windows[j]
        missing = [f for f in frames if f not in self.store]
        if missing:
            self._compute(missing)
        down = [torch.stack([self.store[f][0][k] for f in frames], dim=1)[None]
                for k in range(len(self.store[frames[0]][0]))]  # (c, f, h, w) -> (1, c, f, h, w)
        mid = torch.stack([self.store[f][1] for f in frames], dim=1)[None]
        if not self.keep_all:
            for f in frames:
                if self.last_use[f] == j:
                    del self.store[f]
                elif f in missing:  # a view into this window's ControlNet batch: copy it out so the batch is freed
                    frame_down, frame_mid = self.store[f]
                    self.store[f] = ([d.clone() for d in frame_down], frame_mid.clone())
        return down, mid

    @property
    def cached_frames(self) -> int:
        """Number of frames whose residuals are held now."""
        return len(self.store)


class Denoiser:
    """Noise prediction of MagicAnimate for one window of latent frames."""

    def __init__(self, unet: TemporalUNet, controlnet: ControlNetModel,
                 appearance_encoder: AppearanceEncoder, bank: ReferenceBank, *, share_cfg_down_path: bool = True):
        self.unet, self.controlnet, self.appearance_encoder, self.bank = unet, controlnet, appearance_encoder, bank
        self.share_cfg_down_path = share_cfg_down_path
        writers = appearance_encoder.attach(bank)
        readers = install_processors(unet, bank, ReferenceAttnProcessor)
        if writers != readers:
            raise ValueError(f"appearance encoder and UNet fusion layers differ: {writers} vs {readers}")

    def record_reference(self, reference_latent: torch.Tensor, t: torch.Tensor, text: torch.Tensor) -> None:
        """Run the appearance encoder on the clean reference latent (1, 4, h, w) at ``t``."""
        self.appearance_encoder(reference_latent, t, text)

    def control_residuals(self, latents: torch.Tensor, t: torch.Tensor, text: torch.Tensor,
                          control: torch.Tensor, windows: list[list[int]], *,
                          keep_all: bool = False) -> ControlResidualCache:
        """ControlNet residuals for ``windows`` of ``latents`` (1, 4, F, h, w); control uint8 (F, H, W, 3)."""
        return ControlResidualCache(self, latents, t, text, control, windows, keep_all=keep_all)

    def __call__(self, latents: torch.Tensor, t: torch.Tensor, text: torch.Tensor,
                 residuals: Residuals, *, guidance: bool, feature_cache: FeatureCache | None = None) -> torch.Tensor:
        """Noise of a window ``latents`` (1, 4, f, h, w).

        With ``guidance`` the result is (2, 4, f, h, w) = [unconditional, conditional]: both
        halves see the same latents, text ("") and ControlNet residuals; only the
        conditional half attends to the reference (the release's CFG). Without it the
        result is the conditional half alone (1, 4, f, h, w). The halves are identical up
        to the first reference-attention layer (mid block), so by default the down path
        runs once (``share_cfg_down_path``); the result is the same function.
        """
        num_frames = latents.shape[2]
        down, mid = residuals  # batch 1: broadcast over the CFG batch
        with self.bank.reading(slice(num_frames if guidance else 0, None)):
            if guidance and self.share_cfg_down_path:
                return self.unet(latents, t, text, down_block_additional_residuals=down,
                                 mid_block_additional_residual=mid, repeat_batch_at_mid=2,
                                 feature_cache=feature_cache)
            batch = 2 if guidance else 1
            return self.unet(
                latents.expand(batch, -1, -1, -1, -1), t, text.expand(batch, -1, -1),
                down_block_additional_residuals=down, mid_block_additional_residual=mid,
                feature_cache=feature_cache,
            )
