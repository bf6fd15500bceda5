"""Peak accelerator memory of one pipeline call, estimated on any machine in seconds.

The pipeline's own code runs on meta-device models (shapes and dtypes, no arithmetic)
while ``LiveTensorBytes`` counts the bytes of every tensor storage alive at each moment,
plus the weights resident on the device: all components, or with model offload only the
one that is running. Attention is counted as a fused kernel (output only, as flash or
memory-efficient attention on a GPU), because on the meta device PyTorch would otherwise
take the math path and materialise every score matrix.

What this leaves out, so a measured ``torch.cuda.max_memory_allocated`` is somewhat
higher: library workspaces (cuBLAS, cuDNN), the caching allocator's rounding, and
fragmentation. It is the figure to plan with where no GPU is at hand; measured numbers
go in docs/benchmarks.md beside it when one is.
"""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from magicanimate.options import SampleOptions
from magicanimate.sampling.memory_limit import PhaseLine, SizeLimit
from magicanimate.weights.layout import WeightPaths
from magicanimate.weights.random import ModelSize
from magicanimate.sampling.windows import padded_length
from magicanimate.models.vae import VAE_SCALE, latent_shape


def module_bytes(module: nn.Module) -> int:
    """Bytes of a module's parameters and buffers."""
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


class LiveTensorBytes(TorchDispatchMode):
    """Tracks the bytes of tensor storages created inside the mode on ``device_type`` while they live.

    ``resident`` holds bytes that are on the device but not created inside the mode (the
    weights); ``peak`` is the largest ``live + resident`` seen, and ``peak_phase`` the
    ``phase`` label current at that moment.
    """

    def __init__(self, device_type: str = "meta"):
        super().__init__()
        self.device_type = device_type
        self.live = 0
        self.resident = 0
        self.peak = 0
        self.phase = ""
        self.peak_phase = ""
        self.phase_peaks: dict[str, int] = {}  # the largest live + resident seen during each phase
        self._seen: weakref.WeakSet = weakref.WeakSet()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor) and leaf.device.type == self.device_type:
                self._track(leaf.untyped_storage())
        return out

    def _track(self, storage: torch.UntypedStorage) -> None:
        if storage in self._seen:
            return
        self._seen.add(storage)
        size = storage.nbytes()
        self.live += size
        weakref.finalize(storage, self._release, size)
        self._update_peak()

    def _release(self, size: int) -> None:
        self.live -= size

    def _update_peak(self) -> None:
        now = self.live + self.resident
        if now > self.peak:
            self.peak, self.peak_phase = now, self.phase
        if now > self.phase_peaks.get(self.phase, -1):
            self.phase_peaks[self.phase] = now

    def ignore(self, tensors) -> None:
        """Never count these tensors' storages (nor views of them): they are in ``resident``."""
        for t in tensors:
            self._seen.add(t.untyped_storage())

    def set_resident(self, size: int) -> None:
        """Declare ``size`` bytes of weights on the device from now on."""
        self.resident = size
        self._update_peak()


class FusedAttention(TorchFunctionMode):
    """Counts ``scaled_dot_product_attention`` as a fused kernel: it allocates only its output."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            q, v = args[0], args[2] if len(args) > 2 else kwargs["value"]
            return q.new_empty((*q.shape[:-1], v.shape[-1]))
        return func(*args, **kwargs)


@dataclass
class MemoryEstimate:
    """Estimated peak device memory of one pipeline call."""

    config: str
    dtype: str
    frames: int
    height: int
    width: int
    options: str
    peak_bytes: int
    peak_phase: str
    weights_bytes: dict[str, int] = field(default_factory=dict)
    phase_peaks: dict[str, int] = field(default_factory=dict)  # peak bytes of each phase

    @property
    def peak_gib(self) -> float:
        """Peak in GiB."""
        return self.peak_bytes / 2**30


# The small-GPU options, alone and together, by their CLI flags.
OPTIONS = {
    "default": {},
    "--decode-chunk 1": {"decode_chunk_size": 1},
    "--vae-tiling": {"vae_tiling": True},
    "--ff-chunking": {"feed_forward_chunk": 1},
    "--ff-chunking --decode-chunk 1": {"feed_forward_chunk": 1, "decode_chunk_size": 1},
    "--offload": {"offload": True},
    "--offload --ff-chunking": {"offload": True, "feed_forward_chunk": 1},
    "--offload --ff-chunking --decode-chunk 1": {"offload": True, "feed_forward_chunk": 1, "decode_chunk_size": 1},
}


def meta_model(size: ModelSize, dtype: torch.dtype, *, tokenizer_dir: str | Path | None = None):
    """A ``MagicAnimate`` whose models live on the meta device (no memory, no arithmetic)."""
    from magicanimate.sampling.pipeline import MagicAnimate
    from magicanimate.weights.random import random_components

    components = random_components(size, device="meta", dtype=dtype, tokenizer_dir=tokenizer_dir)
    return MagicAnimate(components, device="meta", dtype=dtype)


def meta_model_from_weights(paths: WeightPaths, dtype: torch.dtype):
    """A meta-device ``MagicAnimate`` built from the config files of ``paths`` (no tensor is read)."""
    from diffusers import AutoencoderKL, ControlNetModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from magicanimate.models.appearance_encoder import AppearanceEncoder
    from magicanimate.models.unet3d import TemporalUNet, TemporalUNetConfig
    from magicanimate.sampling.pipeline import MagicAnimate
    from magicanimate.weights.build import Components, load_tokenizer, prepare_for_inference, quiet_diffusers, read_config

    def clean(folder: Path) -> dict[str, Any]:
        return {k: v for k, v in read_config(folder).items() if not k.startswith("_")}

    with torch.device("meta"), quiet_diffusers():
        models = {
            "text_encoder": CLIPTextModel(CLIPTextConfig(**clean(paths.text_encoder))),
            "vae": AutoencoderKL.from_config(clean(paths.vae)),
            "unet": TemporalUNet(TemporalUNetConfig.from_unet_config(read_config(paths.unet))),
            "appearance_encoder": AppearanceEncoder.from_unet_config(read_config(paths.appearance_encoder)),
            "controlnet": ControlNetModel.from_config(clean(paths.controlnet)),
        }
    components = Components(tokenizer=load_tokenizer(paths.tokenizer),
                            **{k: prepare_for_inference(m, device="meta", dtype=dtype) for k, m in models.items()})
    return MagicAnimate(components, device="meta", dtype=dtype)


CALIBRATION_SIDES = (128, 256)  # two sizes give each phase's line (latents divisible by 8: exact)


def size_limit(model, *, options: SampleOptions, device: torch.device, device_bytes: int) -> SizeLimit:
    """The ``SizeLimit`` of a meta-device ``model`` with ``options``' memory settings on ``device``.

    Two estimates (seconds on a CPU) give each phase's resident bytes and bytes per pixel;
    the decode is counted with ``decode_chunk`` frames (default 8) at a time.
    """
    kw = dict(frames=16, offload=options.offload, vae_tiling=options.vae_tiling,
              decode_chunk_size=options.decode_chunk or 8, feed_forward_chunk=1 if options.ff_chunking else None)
    small, large = (estimate_peak_memory(model, height=side, width=side, **kw) for side in CALIBRATION_SIDES)
    pixels = [side * side for side in CALIBRATION_SIDES]
    lines = []
    for phase, low in small.phase_peaks.items():
        high = large.phase_peaks.get(phase, low)
        per_pixel = max(0.0, (high - low) / (pixels[1] - pixels[0]))
        lines.append(PhaseLine(phase, low - per_pixel * pixels[0], per_pixel))
    return SizeLimit(lines=tuple(lines), device_bytes=device_bytes, device=str(device), options=options,
                     dtype=str(model.dtype).replace("torch.", ""), native_size=model.native_size)


def estimate_peak_memory(model, *, frames: int, height: int, width: int, guidance_scale: float = 7.5,
                         window: int = 16, overlap: int = 4, offload: bool = False, vae_tiling: bool = False,
                         decode_chunk_size: int = 8, feed_forward_chunk: int | None = None,
                         config: str = "", options: str = "") -> MemoryEstimate:
    """Peak device bytes of ``model(reference, motion, steps=..., size=(width, height))``.

    On a meta-device model (``meta_model``) this is an estimate in seconds, attention
    counted as a fused kernel; on a real model it counts the tensors of a real run
    (the tests compare the two). One denoising step stands for all of them (every step
    allocates the same).
    """
    from magicanimate.sampling.denoiser import Conditioning, Denoiser
    from magicanimate.sampling.sampler import sample
    from magicanimate.sampling.schedulers import make_scheduler
    from magicanimate.sampling.windows import sliding_windows

    c = model.components
    parts = {"text_encoder": c.text_encoder, "vae": c.vae, "appearance_encoder": c.appearance_encoder,
             "controlnet": c.controlnet, "unet": c.unet}
    weights = {name: module_bytes(m) for name, m in parts.items()}
    padded = padded_length(frames, window)
    device = model.device
    mem = LiveTensorBytes(device.type)
    for m in parts.values():
        mem.ignore([*m.parameters(), *m.buffers()])
    hooks = []
    if offload:  # only the running component is on the device
        triggers = [(c.text_encoder, "text_encoder"), (c.vae.encoder, "vae"), (c.vae.decoder, "vae"),
                    (c.appearance_encoder, "appearance_encoder"), (c.controlnet, "controlnet"), (c.unet, "unet")]
        for module, name in triggers:
            hooks.append(module.register_forward_pre_hook(
                lambda _m, _a, name=name: mem.set_resident(weights[name])))
    if vae_tiling:
        c.vae.enable_tiling()
    c.unet.set_feed_forward_chunking(feed_forward_chunk)
    control = torch.zeros((padded, height, width, 3), dtype=torch.uint8)  # stays on the host
    attention = FusedAttention() if device.type == "meta" else contextlib.nullcontext()
    try:
        with mem, attention:
            mem.phase = "text encoder"
            mem.set_resident(0 if offload else sum(weights.values()))
            text = model.text_embedding(use_cache=False)  # run the text encoder inside the count
            mem.phase = "VAE encode"
            reference_latent = model.encode_reference(np.zeros((height, width, 3), np.uint8))
            scheduler = make_scheduler("ddim")
            scheduler.set_timesteps(1)
            channels, h, w = latent_shape(model.components.vae, height, width)
            latents = torch.zeros((1, channels, padded, h, w), device=device, dtype=model.dtype)
            mem.phase = "denoise"
            denoiser = Denoiser(model.models, model.bank, conditioning=Conditioning(text, reference_latent, control),
                                guidance=guidance_scale > 1.0, share_cfg_down_path=model.exact_savings)
            latents = sample(denoiser, scheduler, latents=latents, windows=sliding_windows(padded, window, overlap),
                             guidance_scale=guidance_scale)
            mem.phase = "VAE decode"
            frames_latent = latents[0, :, :frames].transpose(0, 1) / VAE_SCALE  # (c, f, h, w) -> (f, c, h, w)
            for start in range(0, frames, decode_chunk_size):
                with torch.no_grad():
                    c.vae.decode(frames_latent[start:start + decode_chunk_size])
    finally:
        for h in hooks:
            h.remove()
        if vae_tiling:
            c.vae.disable_tiling()
        c.unet.set_feed_forward_chunking(None)
    return MemoryEstimate(config=config, dtype=str(model.dtype).replace("torch.", ""), frames=frames,
                          height=height, width=width, options=options, peak_bytes=mem.peak,
                          peak_phase=mem.peak_phase, weights_bytes=weights, phase_peaks=dict(mem.phase_peaks))
