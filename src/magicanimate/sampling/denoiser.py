"""The denoiser: MagicAnimate's noise prediction for one window of frames.

``Denoiser(window_latents, t, window)`` is all the sampler sees. Behind it: the reference
bank (the appearance encoder runs once per step, in ``step``), the DensePose ControlNet
residuals (cached per step, per frame), the release's classifier-free-guidance layout
(both halves in one batch) and, opt-in, DeepCache-style reuse of deep features.
Guidance itself (``apply_guidance``) is applied after the windows are fused, as the
release does.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import torch
from diffusers import ControlNetModel
from einops import rearrange

from magicanimate.models.appearance_encoder import AppearanceEncoder
from magicanimate.models.reference_attention import ReferenceBank
from magicanimate.models.unet3d import FeatureCache, TemporalUNet

Residuals = tuple[list[torch.Tensor], torch.Tensor]  # down (1, c, f, h, w) each, mid (1, c, f, h, w)


def control_frames(control: torch.Tensor, frames: Sequence[int], *, device: torch.device,
                   dtype: torch.dtype) -> torch.Tensor:
    """DensePose frames ``frames`` of uint8 (F, H, W, 3) ``control`` as (f, 3, H, W) in [0, 1]."""
    index = torch.as_tensor(list(frames), device=control.device)
    x = control.index_select(0, index).to(device=device, dtype=dtype) / 255.0  # as the release: cast, then scale
    return rearrange(x, "f h w c -> f c h w")


def apply_guidance(noise: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    """Classifier-free guidance of a [unconditional, conditional] batch (2, ...) -> (1, ...).

    A batch of one (no guidance) is returned as it is.
    """
    if noise.shape[0] == 1:
        return noise
    uncond, cond = noise.chunk(2)
    return uncond + guidance_scale * (cond - uncond)


@dataclass
class DenoiserModels:
    """The networks behind the denoiser (possibly ``torch.compile``d wrappers of them)."""

    unet: TemporalUNet
    controlnet: ControlNetModel
    appearance_encoder: AppearanceEncoder


@dataclass(frozen=True)
class Conditioning:
    """What every window of one video is conditioned on."""

    text: torch.Tensor  # (1, 77, d): the empty prompt
    reference_latent: torch.Tensor  # (1, c, h, w): clean VAE latent of the reference
    control: torch.Tensor  # uint8 (F, H, W, 3): the DensePose frames, on any device


class ControlResidualCache:
    """ControlNet residuals per frame for one denoising step, kept only while needed.

    ``window(j)`` returns the residuals of window j, computing the frames not yet cached
    (per-frame model: the grouping changes only rounding) and then dropping the frames no
    later window uses. Memory is bounded by about two windows, whatever the video length.
    ``keep_all=True`` instead computes every frame up front in non-overlapping groups of
    one window's length and keeps them, as the release does.
    """

    def __init__(self, controlnet: ControlNetModel, step: "StepInputs", *, windows: Mapping[int, list[int]],
                 keep_all: bool = False):
        self.controlnet, self.step_inputs = controlnet, step
        self.windows, self.keep_all = dict(windows), keep_all
        self.last_use = {f: j for j, w in self.windows.items() for f in w}
        self.store: dict[int, tuple[list[torch.Tensor], torch.Tensor]] = {}
        if keep_all and self.windows:
            size = len(next(iter(self.windows.values())))
            needed = sorted(self.last_use)
            for start in range(0, len(needed), size):
                self._compute(needed[start:start + size])

    def _compute(self, frames: list[int]) -> None:
        inputs = self.step_inputs
        x = rearrange(inputs.latents[:, :, frames], "1 c f h w -> f c h w")
        down, mid = self.controlnet(
            x, inputs.t, encoder_hidden_states=inputs.text.expand(len(frames), -1, -1),
            controlnet_cond=control_frames(inputs.control, frames, device=x.device, dtype=x.dtype),
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
                for k in range(len(self.store[frames[0]][0]))]  # f x (c, h, w) -> (c, f, h, w) -> (1, c, f, h, w)
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


@dataclass(frozen=True)
class StepInputs:
    """The state of one denoising step that every window's prediction reads."""

    latents: torch.Tensor  # (1, c, F, h, w): all frames at this step
    t: torch.Tensor
    text: torch.Tensor
    control: torch.Tensor


class Denoiser:
    """Noise prediction of MagicAnimate for one window of latent frames.

    Use: ``with denoiser.step(i, t, latents=latents, windows=windows): denoiser(latents[:, :, frames], t, j)``
    for each window ``j`` of ``windows`` (the ones this process predicts). The reference
    attention processors must already be installed on the models
    (``connect_reference_attention``, done once by ``MagicAnimate``).
    """

    def __init__(
        self,
        models: DenoiserModels,
        bank: ReferenceBank,
        *,
        conditioning: Conditioning,
        guidance: bool,
        share_cfg_down_path: bool = True,
        keep_all_residuals: bool = False,
        deep_cache: int = 1,
    ):
        if deep_cache < 1:
            raise ValueError(f"deep_cache must be >= 1, got {deep_cache}")
        self.models, self.bank, self.conditioning = models, bank, conditioning
        self.guidance = guidance
        self.share_cfg_down_path = share_cfg_down_path
        self.keep_all_residuals = keep_all_residuals
        self.deep_cache = deep_cache
        self._feature_caches: dict[int, FeatureCache] = {}
        self._residuals: ControlResidualCache | None = None
        self._reuse_deep_features = False

    @contextlib.contextmanager
    def step(self, index: int, t: torch.Tensor, *, latents: torch.Tensor,
             windows: Mapping[int, list[int]]) -> Iterator["Denoiser"]:
        """Context of denoising step ``index``: records the reference tokens and prepares ControlNet residuals."""
        cond = self.conditioning
        with self.bank.step():
            self.models.appearance_encoder(cond.reference_latent, t, cond.text, self.bank)
            inputs = StepInputs(latents=latents, t=t, text=cond.text, control=cond.control)
            self._residuals = ControlResidualCache(self.models.controlnet, inputs, windows=windows,
                                                   keep_all=self.keep_all_residuals)
            self._reuse_deep_features = self.deep_cache > 1 and index % self.deep_cache != 0
            try:
                yield self
            finally:
                self._residuals = None

    def __call__(self, latents: torch.Tensor, t: torch.Tensor, window: int) -> torch.Tensor:
        """Noise of window ``window`` from its latents (1, c, f, h, w), inside ``step``.

        With guidance the result is (2, c, f, h, w) = [unconditional, conditional]: both
        halves see the same latents, text ("") and ControlNet residuals; only the
        conditional half attends to the reference (the release's CFG). Without it the
        result is the conditional half alone (1, c, f, h, w). The halves are identical up
        to the first reference-attention layer (mid block), so by default the down path
        runs once (``share_cfg_down_path``); the result is the same function.
        """
        if self._residuals is None:
            raise RuntimeError("Denoiser called outside its step() context")
        down, mid = self._residuals.window(window)  # batch 1: broadcast over the CFG batch
        cache = None
        if self.deep_cache > 1:
            cache = self._feature_caches.setdefault(window, FeatureCache())
            cache.reuse = self._reuse_deep_features
        text, unet, num_frames = self.conditioning.text, self.models.unet, latents.shape[2]
        with self.bank.reading(slice(num_frames if self.guidance else 0, None)):
            if self.guidance and self.share_cfg_down_path:
                return unet(latents, t, text, down_block_additional_residuals=down,
                            mid_block_additional_residual=mid, repeat_batch_at_mid=2, feature_cache=cache)
            batch = 2 if self.guidance else 1
            return unet(latents.expand(batch, -1, -1, -1, -1), t, text.expand(batch, -1, -1),
                        down_block_additional_residuals=down, mid_block_additional_residual=mid,
                        feature_cache=cache)
