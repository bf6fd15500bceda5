"""``MagicAnimate``: load the released checkpoints and animate a reference image.

    model = MagicAnimate.from_pretrained("pretrained_models", device="cpu", dtype=torch.float32)
    result = model(reference, motion, steps=25, guidance_scale=7.5, seed=1, size=512)
    result.frames  # float32 (F, H, W, 3) in [0, 1]
    result.fps     # the motion video's fps, or None for arrays
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from einops import rearrange
from PIL import Image

from magicanimate.errors import InputError
from magicanimate.io.densepose_colors import background_color
from magicanimate.io.fit import apply_fit, plan_fit
from magicanimate.io.image import load_image
from magicanimate.io.video import Motion, read_motion
from magicanimate.models.appearance_encoder import connect_reference_attention
from magicanimate.models.reference_attention import ReferenceBank
from magicanimate.models.text import empty_prompt_embedding
from magicanimate.models.vae import VAE_SCALE, latent_downsampling, latent_shape
from magicanimate.options import WINDOW, SampleOptions, iter_options
from magicanimate.runtime.device import resolve_device_dtype
from magicanimate.runtime.distributed import WindowSplit
from magicanimate.sampling.denoiser import Conditioning, Denoiser, DenoiserModels
from magicanimate.sampling.sampler import Progress, ProgressCallback, sample
from magicanimate.sampling.schedulers import make_scheduler
from magicanimate.sampling.windows import padded_length, sliding_windows
from magicanimate.weights.build import Components, load_components
from magicanimate.weights.layout import WeightPaths, hub_weight_paths, resolve_weights

log = logging.getLogger(__name__)

ImageInput = Union[str, Path, Image.Image, np.ndarray]
MotionInput = Union[str, Path, np.ndarray, Motion]


@dataclass
class AnimationResult:
    """Generated video: ``frames`` float32 (F, H, W, 3) in [0, 1]; ``fps`` of the motion or None."""

    frames: np.ndarray
    fps: float | None


class MagicAnimate:
    """MagicAnimate (Xu et al., CVPR 2024), faithful to the released inference code."""

    def __init__(self, components: Components, *, device: torch.device | str, dtype: torch.dtype,
                 reference_bank_dtype: torch.dtype | None = torch.float16, exact_savings: bool = True):
        self.components = components
        self.device = torch.device(device)
        self.dtype = dtype
        # The release rounds the recorded appearance tokens to float16 even in float32 runs.
        self.bank = ReferenceBank(reference_bank_dtype)
        self.models = DenoiserModels(components.unet, components.controlnet, components.appearance_encoder)
        self.attention = connect_reference_attention(components.appearance_encoder, components.unet, self.bank)
        self.exact_savings = exact_savings
        self._text: torch.Tensor | None = None
        self.decode_chunk_size: int | None = None  # frames per VAE decode call; None = 8 (1 with savings off)

    @property
    def exact_savings(self) -> bool:
        """Whether the work-saving rearrangements are on (same function, rounding only).

        Off reproduces the release's structure of computation: both CFG halves through the
        whole UNet, reference attention on concatenated tokens for every row, ControlNet
        residuals of all frames cached per step, one VAE decode per frame. For benchmarks.
        """
        return self._exact_savings

    @exact_savings.setter
    def exact_savings(self, on: bool) -> None:
        self._exact_savings = on
        self.bank.release_structure = not on

    def close(self) -> None:
        """Put back the attention processors the models had before this pipeline was built."""
        self.attention.disconnect()

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        path: str | Path | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        local_files_only: bool = False,
        **component_paths: str | Path | None,
    ) -> "MagicAnimate":
        """Load the released checkpoints.

        ``path``: a folder in the release layout (``stable-diffusion-v1-5/``,
        ``sd-vae-ft-mse/``, ``MagicAnimate/…``), ``"mini"`` for the mini model shipped in
        the package (``magicanimate.MINI_WEIGHTS``), or None for the public Hub repositories
        (downloaded and cached by huggingface_hub). Components stored elsewhere can be
        given one by one: ``tokenizer``, ``text_encoder``, ``unet``, ``vae``,
        ``appearance_encoder``, ``controlnet`` (folders) and ``temporal_attention`` (file).
        ``dtype`` defaults to float16 on CUDA and float32 elsewhere.
        """
        device, dtype = resolve_device_dtype(device, dtype)
        if path is None:
            overrides = {k: v for k, v in component_paths.items() if v is not None}
            missing = set(WeightPaths.__dataclass_fields__) - set(overrides)
            paths = (hub_weight_paths(local_files_only=local_files_only) if missing
                     else WeightPaths(**{k: Path(v) for k, v in overrides.items()}))
            paths = paths.with_overrides(**overrides)
        else:
            path = resolve_weights(path)
            if not Path(path).is_dir():
                raise InputError(f"weights folder not found: {path}")
            paths = WeightPaths.release_layout(path).with_overrides(**component_paths)
        components = load_components(paths, device=device, dtype=dtype)
        return cls(components, device=device, dtype=dtype)

    def compile(self, *, backend: str = "inductor", mode: str | None = None) -> "MagicAnimate":
        """torch.compile the temporal UNet and the ControlNet (opt-in; same function).

        On CUDA the models also switch to channels_last memory format. The first call
        after compiling is slow (graph capture and code generation).
        """
        unet, controlnet = self.components.unet, self.components.controlnet
        if self.device.type == "cuda":
            unet.to(memory_format=torch.channels_last)
            controlnet.to(memory_format=torch.channels_last)
        self.models.unet = torch.compile(unet, backend=backend, mode=mode)
        self.models.controlnet = torch.compile(controlnet, backend=backend, mode=mode)
        return self

    def enable_model_offload(self) -> "MagicAnimate":
        """Keep the models in CPU memory and move each to the device only while it runs.

        Lowers peak accelerator memory to the largest model (the temporal UNet) plus
        activations, at the cost of host-device copies every step. Same results.
        """
        from magicanimate.runtime.offload import ModelOffload

        c = self.components
        self._offload = ModelOffload(self.device)
        for model in (c.text_encoder, c.appearance_encoder, c.controlnet, c.unet):
            self._offload.register(model)
        self._offload.register(c.vae, triggers=[c.vae.encoder, c.vae.post_quant_conv])
        return self

    def enable_feed_forward_chunking(self, rows: int | None = 1) -> "MagicAnimate":
        """Run the UNet's feed-forward layers ``rows`` frames at a time (None turns it off).

        Same results (rounding aside); the GEGLU hidden layer, the largest activation of
        the UNet (1.3 GB at 512x512 in float16), shrinks to a slice.
        """
        self.components.unet.set_feed_forward_chunking(rows)
        return self

    def enable_vae_tiling(self) -> "MagicAnimate":
        """Decode (and encode) large frames tile by tile (diffusers' VAE tiling; blends tile seams,
        so results change slightly). Use ``decode_chunk_size=1`` to also decode one frame at a time."""
        self.components.vae.enable_tiling()
        return self

    @property
    def native_size(self) -> int:
        """The side in pixels the weights were trained at (the size when none is given): the UNet's
        ``sample_size`` (latents) times the VAE's downsampling, as in diffusers' pipelines."""
        latent_side = self.components.unet.config.extra.get("sample_size", 64)
        return int(latent_side) * latent_downsampling(self.components.vae)

    # ------------------------------------------------------------------ encoders
    def text_embedding(self, *, use_cache: bool = True) -> torch.Tensor:
        """CLIP embedding of the empty prompt (1, 77, d); the release's only prompt (computed once)."""
        if self._text is None or not use_cache:
            c = self.components
            self._text = empty_prompt_embedding(c.tokenizer, c.text_encoder, device=self.device).to(self.dtype)
        return self._text

    def encode_reference(self, image: np.ndarray) -> torch.Tensor:
        """Clean VAE latent of a uint8 (H, W, 3) image: posterior mean × 0.18215, (1, 4, H/8, W/8) for SD's VAE."""
        x = torch.from_numpy(np.array(image, dtype=np.uint8)).float().to(self.dtype) / 127.5 - 1
        x = rearrange(x, "h w c -> 1 c h w").to(self.device)
        with torch.no_grad():
            return self.components.vae.encode(x).latent_dist.mean * VAE_SCALE

    def decode(self, latents: torch.Tensor, *, chunk: int = 8,
               progress: ProgressCallback | None = None) -> np.ndarray:
        """Latents (1, c, F, h, w) -> float32 frames (F, H, W, 3) in [0, 1], ``chunk`` frames at a time.

        ``progress`` gets ``Progress("decode", done, F)`` before the first chunk and after each one.
        """
        frames = rearrange(latents * (1 / VAE_SCALE), "1 c f h w -> f c h w")
        if progress:
            progress(Progress("decode", 0, frames.shape[0]))  # said at once: the first chunk takes seconds
        out = []
        for start in range(0, frames.shape[0], chunk):
            with torch.no_grad():
                x = self.components.vae.decode(frames[start:start + chunk]).sample
            out.append(rearrange((x / 2 + 0.5).clamp(0, 1), "f c h w -> f h w c").float().cpu().numpy())
            if progress:
                progress(Progress("decode", min(start + chunk, frames.shape[0]), frames.shape[0]))
        return np.concatenate(out)

    def configure_memory(self, options: SampleOptions) -> "MagicAnimate":
        """Apply the memory options of ``options`` (offload, VAE tiling, feed-forward chunking) to this model."""
        if options.offload and getattr(self, "_offload", None) is None:
            self.enable_model_offload()
        elif not options.offload and getattr(self, "_offload", None) is not None:
            self._offload.remove()
            for model in (self.components.text_encoder, self.components.appearance_encoder,
                          self.components.controlnet, self.components.unet, self.components.vae):
                model.to(self.device)
            self._offload = None
        if options.vae_tiling:
            self.enable_vae_tiling()
        else:
            self.components.vae.disable_tiling()
        self.enable_feed_forward_chunking(1 if options.ff_chunking else None)
        return self

    # ------------------------------------------------------------------ sampling
    def initial_noise(self, num_frames: int, height: int, width: int, *, seed: int, window: int = WINDOW,
                      per_segment: bool = False) -> torch.Tensor:
        """One noise draw of ``window`` frames, repeated along frames to ``num_frames`` (release);
        ``per_segment``: a new draw for every ``window`` frames instead (the paper's ablation)."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        draws = num_frames // window if per_segment else 1
        channels, h, w = latent_shape(self.components.vae, height, width)
        noise = torch.randn((1, channels, window * draws, h, w), generator=generator, device=self.device,
                            dtype=self.dtype)
        return noise.repeat(1, 1, num_frames // noise.shape[2], 1, 1)  # (1, c, window, h, w) -> (1, c, F, h, w)

    def __call__(
        self,
        reference: ImageInput,
        motion: MotionInput,
        options: SampleOptions | None = None,
        *,
        progress: ProgressCallback | None = None,
        split: WindowSplit | None = None,
        **overrides: Any,
    ) -> AnimationResult:
        """Animate ``reference`` with the DensePose ``motion``; one output frame per motion frame.

        The options are those of ``SampleOptions`` (``magicanimate.options``), given as an
        object and/or as keywords: ``steps=25, guidance_scale=7.5, seed=1, size=512,
        fit="stretch"`` reproduce the release. ``size``: 512 (square) or (width, height),
        multiples of 8. ``fit``: "stretch" resizes the inputs to ``size`` as the release
        does (PIL bicubic); "pad" pads them to the target aspect (edge-replicated reference,
        DensePose background for the motion), "crop" centre-crops them to it. The result is
        ``size`` in every mode (with "pad" it keeps the generated margins;
        ``magicanimate.io.fit.undo_fit`` crops them off). ``start``/``max_frames``/``fps`` select the
        motion frames when ``motion`` is a path. ``split`` spreads the windows over
        torch.distributed processes (``magicanimate.runtime.distributed``); every rank
        returns the same result, equal to a single-process run.

        Lossy fast modes (opt-in; they change the numbers, see docs/benchmarks.md):
        ``scheduler="dpmsolver++"`` or ``"unipc"`` with fewer ``steps``, another ``overlap``,
        and ``deep_cache`` > 1 (reuse deep UNet features between steps).
        """
        opts = _call_options(options, overrides)
        image, clip = resolve_inputs(reference, motion, opts)
        return self.animate(image, clip.frames, options=opts, fps=clip.fps, progress=progress, split=split)

    def animate(self, image: np.ndarray, frames: np.ndarray, *, options: SampleOptions, fps: float | None = None,
                progress: ProgressCallback | None = None, split: WindowSplit | None = None) -> AnimationResult:
        """Animate uint8 arrays: ``image`` (H, W, 3) and DensePose ``frames`` (F, H', W', 3)."""
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise InputError(f"motion must be uint8 frames (F, H, W, 3), got {frames.dtype} {frames.shape}")
        width, height = options.output_size(self.native_size)
        num_frames = frames.shape[0]
        # 1. Map the inputs onto the model's canvas.
        motion_plan = plan_fit(frames.shape[2:0:-1], (width, height), options.fit)
        image = apply_fit(image, plan_fit(image.shape[1::-1], (width, height), options.fit), pad_value="edge")
        control = apply_fit(frames, motion_plan, pad_value=background_color())

        # 2. Pad to whole windows by repeating the last frame (dropped again at the end).
        padded = padded_length(num_frames, WINDOW)
        control = np.concatenate([control, np.repeat(control[-1:], padded - num_frames, axis=0)])  # edge pad
        control_t = torch.from_numpy(control)  # uint8 (F, H, W, 3), stays on the CPU

        # 3. Conditioning: empty-prompt text, clean reference latent, initial noise.
        conditioning = Conditioning(text=self.text_embedding(), reference_latent=self.encode_reference(image),
                                    control=control_t)
        noise_scheduler = make_scheduler(options.scheduler, prediction_type=self.components.prediction_type)
        noise_scheduler.set_timesteps(options.steps, device=self.device)
        latents = self.initial_noise(padded, height, width, seed=options.seed,
                                     per_segment=options.noise == "per-segment")
        latents = latents * noise_scheduler.init_noise_sigma

        # 4. Denoise, then 5. decode the real frames.
        guidance = options.guidance_scale > 1.0
        denoiser = Denoiser(self.models, self.bank, conditioning=conditioning, guidance=guidance,
                            share_cfg_down_path=self.exact_savings, keep_all_residuals=not self.exact_savings,
                            deep_cache=options.deep_cache)
        windows = sliding_windows(padded, WINDOW, options.overlap)
        latents = sample(denoiser, noise_scheduler, latents=latents, windows=windows,
                         guidance_scale=options.guidance_scale, split=split, progress=progress)
        chunk = options.decode_chunk or self.decode_chunk_size or (8 if self.exact_savings else 1)
        out = self.decode(latents[:, :, :num_frames], chunk=chunk, progress=progress)
        return AnimationResult(frames=out, fps=fps)  # exactly ``size`` in every fit mode


def _call_options(options: SampleOptions | None, overrides: dict[str, Any]) -> SampleOptions:
    """``options`` with keyword overrides; only the options of ``__call__`` may be given as keywords."""
    allowed = {name for name, _ in iter_options(call=True)}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise TypeError(f"MagicAnimate() got unexpected keyword arguments {unknown}; options: {sorted(allowed)}")
    return (options or SampleOptions()).replace(**overrides) if overrides else (options or SampleOptions())


def resolve_inputs(reference: ImageInput, motion: MotionInput, options: SampleOptions) -> tuple[np.ndarray, Motion]:
    """Read a reference (path, PIL image or array) and a motion (path, array or ``Motion``) as arrays.

    A motion path is read with ``options.start``/``max_frames``; a video is resampled to
    ``options.fps`` when given, and untimed frames (a folder or .npy) take it as their rate.
    """
    image = load_image(reference)
    if isinstance(motion, Motion):
        return image, motion
    # Videos have a rate; frame folders, .npy files and arrays do not.
    timed = isinstance(motion, (str, Path)) and not (Path(motion).is_dir() or Path(motion).suffix.lower() == ".npy")
    clip = read_motion(motion, start=options.start, max_frames=options.max_frames,
                       fps=options.fps if timed else None)
    if not timed and options.fps:
        clip.fps = options.fps  # the declared rate of untimed frames
    return image, clip
