"""The trained network: temporal UNet + DensePose ControlNet + appearance encoder, as one module.

One ``forward`` is one noise prediction for a batch of samples, each with its own
reference image (the conditional path of the release: every frame attends to its
sample's reference). Still-image samples bypass the motion modules; stage 1 bypasses them
for all samples, so the UNet is SD 1.5 applied per frame.
"""

from __future__ import annotations

import fnmatch

import torch
from diffusers import ControlNetModel
from einops import rearrange, repeat
from torch import nn

from magicanimate.errors import InputError
from magicanimate.models.appearance_encoder import AppearanceEncoder, connect_reference_attention
from magicanimate.models.unet3d import TemporalUNet
from magicanimate.training.reference import BatchRecordingProcessor, BatchReferenceBank, BatchReferenceProcessor


class TrainingModel(nn.Module):
    """MagicAnimate's denoiser for training: ``forward`` -> predicted noise (b, c, f, h, w)."""

    def __init__(self, unet: TemporalUNet, controlnet: ControlNetModel, appearance_encoder: AppearanceEncoder,
                 *, use_motion_modules: bool):
        super().__init__()
        self.unet, self.controlnet, self.appearance_encoder = unet, controlnet, appearance_encoder
        self.use_motion_modules = use_motion_modules
        self.bank = BatchReferenceBank()
        self.attention = connect_reference_attention(appearance_encoder, unet, self.bank,
                                                     recorder=BatchRecordingProcessor, reader=BatchReferenceProcessor)

    # ------------------------------------------------------------------ parameters
    def select_trainable(self, patterns: list[str]) -> list[str]:
        """Freeze everything, then unfreeze parameters whose name matches a glob; returns their names.

        Without motion modules (stage 1) they stay frozen even under ``unet.*``: they never run.
        """
        self.requires_grad_(False)
        chosen = []
        for name, param in self.named_parameters():
            if not self.use_motion_modules and "motion_modules" in name:
                continue
            if any(fnmatch.fnmatchcase(name, p) for p in patterns):
                param.requires_grad_(True)
                chosen.append(name)
        if not chosen:
            raise InputError(f"model.trainable {patterns} matches no parameter; names start with "
                             "'unet.', 'controlnet.' or 'appearance_encoder.'")
        return chosen

    def trains(self, part: str) -> bool:
        """Whether any parameter of submodule ``part`` is trainable."""
        return any(p.requires_grad for p in getattr(self, part).parameters())

    # ------------------------------------------------------------------ forward
    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, reference: torch.Tensor,
                control: torch.Tensor, text: torch.Tensor, temporal: torch.Tensor,
                keep_reference: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted noise of ``noisy`` (b, c, f, h, w) at ``timesteps`` (b,).

        reference: clean reference latents (b, c, h, w); control: DensePose (b, 3, f, H, W)
        in [0, 1]; text: (b, n, d); temporal: (b,) bool, rows that run the motion modules;
        keep_reference: (b,) bool, rows that attend to their reference (None: all).
        """
        num_frames = noisy.shape[2]
        self.bank.clear()  # tokens of the previous step; kept until now for the backward pass
        # One host sync per step here rather than one per attention layer.
        self.bank.keep = None if keep_reference is None or bool(keep_reference.all()) else keep_reference

        # 1. Appearance encoder on the clean reference at the same timestep: fills the bank.
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.trains("appearance_encoder")):
            self.appearance_encoder(reference, timesteps, text, self.bank)

        # 2. ControlNet on every frame.
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.trains("controlnet")):
            down, mid = self.controlnet(
                rearrange(noisy, "b c f h w -> (b f) c h w"),
                repeat(timesteps, "b -> (b f)", f=num_frames),
                encoder_hidden_states=repeat(text, "b n d -> (b f) n d", f=num_frames),
                controlnet_cond=rearrange(control, "b c f h w -> (b f) c h w"),
                conditioning_scale=1.0, return_dict=False,
            )
        down = [rearrange(r, "(b f) c h w -> b c f h w", f=num_frames) for r in down]
        mid = rearrange(mid, "(b f) c h w -> b c f h w", f=num_frames)

        # 3. Temporal UNet with reference attention and the residuals; motion modules per row.
        return self.unet(noisy, timesteps, text, down_block_additional_residuals=down,
                         mid_block_additional_residual=mid,
                         temporal=temporal if self.use_motion_modules else False)
