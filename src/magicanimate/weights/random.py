"""Random weights of any width in the release's folder layout, built with this package's code.

For demos, tests and benchmarks on machines without the released checkpoints: every
component has the real architecture (``TINY``: the shared fixture's 32-channel widths;
``MINI``: the model trained from scratch by ``make mini-model``, docs/mini_model.md;
``SMALL``: the benchmark's; ``SD15``: full size), with a byte-level CLIP vocabulary. The
output of such weights is noise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from magicanimate.models.appearance_encoder import TRUNCATED_KEYS
from magicanimate.models.init import init_controlnet_zero_layers_randomly
from magicanimate.models.unet3d import TemporalUNet, TemporalUNetConfig
from magicanimate.weights.build import read_config
from magicanimate.weights.layout import WeightPaths, resolve_weights
from magicanimate.models.vae import VAE_SCALE

_DOWN = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
_UP = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]


@dataclass(frozen=True)
class ModelSize:
    """Widths of every component; ``TINY`` is the shared fixture's, ``SD15`` the released model's."""

    name: str
    unet_channels: tuple[int, int, int, int]
    unet_groups: int
    cross_attention_dim: int
    controlnet_embedding: tuple[int, ...]  # as many widths as the VAE has blocks
    vae_channels: tuple[int, ...]  # one block per width: len - 1 halvings (4 blocks: 8x downsampling)
    vae_groups: int
    text_hidden: int
    text_layers: int
    text_heads: int
    attention_head_dim: int = 8  # SD 1.5 naming: the number of heads
    sample_size: int = 64  # the UNet's latent size at the native resolution: 64 -> 512 x 512 pixels
    latent_channels: int = 4  # the VAE's latent channels = the UNet's input and output channels

    def unet_config(self) -> dict[str, Any]:
        """diffusers UNet2DConditionModel config (SD 1.5 key set)."""
        return {
            "_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": self.attention_head_dim,
            "block_out_channels": list(self.unet_channels), "center_input_sample": False,
            "cross_attention_dim": self.cross_attention_dim, "down_block_types": _DOWN, "downsample_padding": 1,
            "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": self.latent_channels, "layers_per_block": 2,
            "mid_block_scale_factor": 1, "norm_eps": 1e-5, "norm_num_groups": self.unet_groups,
            "out_channels": self.latent_channels,
            "sample_size": self.sample_size, "up_block_types": _UP,
        }

    def controlnet_config(self) -> dict[str, Any]:
        """diffusers ControlNetModel config."""
        unet = self.unet_config()
        keep = ("act_fn", "attention_head_dim", "block_out_channels", "cross_attention_dim", "down_block_types",
                "downsample_padding", "flip_sin_to_cos", "freq_shift", "in_channels", "layers_per_block",
                "mid_block_scale_factor", "norm_eps", "norm_num_groups")
        return {"_class_name": "ControlNetModel", **{k: unet[k] for k in keep},
                "conditioning_embedding_out_channels": list(self.controlnet_embedding),
                "controlnet_conditioning_channel_order": "rgb", "only_cross_attention": False,
                "upcast_attention": False, "use_linear_projection": False}

    def vae_config(self) -> dict[str, Any]:
        """diffusers AutoencoderKL config."""
        return {"_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": list(self.vae_channels),
                "down_block_types": ["DownEncoderBlock2D"] * len(self.vae_channels),
                "up_block_types": ["UpDecoderBlock2D"] * len(self.vae_channels),
                "in_channels": 3, "out_channels": 3, "latent_channels": self.latent_channels, "layers_per_block": 2,
                "norm_num_groups": self.vae_groups, "sample_size": 64, "scaling_factor": VAE_SCALE}

    def text_config(self, vocab_size: int) -> dict[str, Any]:
        """transformers CLIPTextConfig fields."""
        return {"architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "hidden_act": "quick_gelu",
                "hidden_size": self.text_hidden, "intermediate_size": 4 * self.text_hidden,
                "num_attention_heads": self.text_heads, "num_hidden_layers": self.text_layers,
                "max_position_embeddings": 77, "layer_norm_eps": 1e-5, "projection_dim": self.text_hidden,
                "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1, "vocab_size": vocab_size}


def size_of_folder(root: str | Path) -> ModelSize:
    """The widths of the release-layout weights at ``root`` (a folder or "mini"): random weights of the same architecture."""
    root = resolve_weights(root)
    paths = WeightPaths.release_layout(root)
    unet, controlnet, vae = read_config(paths.unet), read_config(paths.controlnet), read_config(paths.vae)
    text = read_config(paths.text_encoder)
    return ModelSize(
        Path(root).name, tuple(unet["block_out_channels"]), unet["norm_num_groups"], unet["cross_attention_dim"],
        tuple(controlnet["conditioning_embedding_out_channels"]), tuple(vae["block_out_channels"]),
        vae["norm_num_groups"], text["hidden_size"], text["num_hidden_layers"], text["num_attention_heads"],
        attention_head_dim=unet["attention_head_dim"], sample_size=unet["sample_size"],
        latent_channels=vae["latent_channels"])


TINY = ModelSize("tiny", (32, 32, 32, 32), 16, 32, (16, 16, 32, 32), (32, 32, 32, 32), 16, 32, 2, 4)
# 64 x 64 pixels (8 x 8 latents) on a 2-core CPU: 10.7 M parameters, 20.4 MiB in float16. Stage 0 of
# the mini recipe starts here; its stage 1 re-initialises the UNet at (64, 64, 64, 64) (13.5 M in all).
MINI = ModelSize("mini", (32, 64, 64, 64), 16, 32, (16, 16, 32, 32), (16, 32, 64, 64), 8, 32, 2, 4,
                 attention_head_dim=4, sample_size=8)
SMALL = ModelSize("small", (224, 448, 448, 448), 32, 64, (16, 32, 96, 256), (32, 64, 64, 64), 32, 64, 2, 4)
SD15 = ModelSize("sd15", (320, 640, 1280, 1280), 32, 768, (16, 32, 96, 256), (128, 256, 512, 512), 32, 768, 12, 12)
SIZES = {s.name: s for s in (TINY, MINI, SMALL, SD15)}


def _byte_alphabet() -> list[str]:
    """The 256 printable characters byte-level BPE uses for the 256 byte values."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def _write_tokenizer(folder: Path) -> int:
    """A byte-level CLIP tokenizer without merges; returns the vocabulary size."""
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = _byte_alphabet()
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
               "pad_token": "<|endoftext|>"}
    (folder / "special_tokens_map.json").write_text(json.dumps(special))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {**special, "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True}))
    return len(tokens)


def _save_diffusers(folder: Path, config: dict, state: dict[str, torch.Tensor], *, bin_file: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    state = {k: v.contiguous() for k, v in state.items()}
    if bin_file:  # SD 1.5's unet ships as .bin in older snapshots; exercise that path too
        torch.save(state, folder / "diffusion_pytorch_model.bin")
    else:
        save_file(state, str(folder / "diffusion_pytorch_model.safetensors"))


def _clean(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def random_models(size: ModelSize, vocab_size: int, *, seed: int = 0) -> dict[str, torch.nn.Module]:
    """Randomly initialised models of every component (CPU, float32), keyed like ``WeightPaths``."""
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from magicanimate.models.appearance_encoder import AppearanceEncoder

    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        unet2d = UNet2DConditionModel(**_clean(size.unet_config()))
        controlnet = ControlNetModel.from_unet(unet2d, conditioning_embedding_out_channels=size.controlnet_embedding)
        init_controlnet_zero_layers_randomly(controlnet, generator)
        temporal = TemporalUNet(TemporalUNetConfig.from_unet_config(size.unet_config()))
        temporal.load_state_dict(unet2d.state_dict(), strict=False)  # spatial part = the SD UNet
        return {
            "text_encoder": CLIPTextModel(CLIPTextConfig(**size.text_config(vocab_size))),
            "unet2d": unet2d,
            "unet": temporal,
            "appearance_encoder": AppearanceEncoder.from_unet_config(size.unet_config()),
            "controlnet": controlnet,
            "vae": AutoencoderKL(**_clean(size.vae_config())),
        }


def random_components(size: ModelSize, *, device: torch.device | str, dtype: torch.dtype,
                      seed: int = 0, tokenizer_dir: str | Path | None = None):
    """In-memory ``Components`` with random weights of ``size`` (for benchmarks; no weight files).

    ``device="meta"`` builds them without memory or initialisation (shapes only).
    """
    import contextlib
    import tempfile

    from magicanimate.weights.build import Components, load_tokenizer, prepare_for_inference

    folder = Path(tokenizer_dir or tempfile.mkdtemp(prefix="magicanimate-tokenizer-"))
    vocab = _write_tokenizer(folder)
    on_meta = torch.device("meta") if torch.device(device).type == "meta" else contextlib.nullcontext()
    with on_meta:
        models = random_models(size, vocab, seed=seed)
    return Components(
        tokenizer=load_tokenizer(folder),
        **{k: prepare_for_inference(models[k], device=device, dtype=dtype) for k in ("text_encoder", "vae", "unet", "appearance_encoder",
                                                          "controlnet")},
    )


def write_random_weights(root: str | Path, size: ModelSize = TINY, *, seed: int = 0) -> WeightPaths:
    """Write a complete random model set of ``size`` in the release layout under ``root``."""
    paths = WeightPaths.release_layout(root)
    vocab = _write_tokenizer(paths.tokenizer)
    models = random_models(size, vocab, seed=seed)

    paths.text_encoder.mkdir(parents=True, exist_ok=True)
    (paths.text_encoder / "config.json").write_text(json.dumps(size.text_config(vocab), indent=2))
    text_state = {k if k.startswith("text_model.") else "text_model." + k: v.contiguous()
                  for k, v in models["text_encoder"].state_dict().items() if not k.endswith("position_ids")}
    save_file(text_state, str(paths.text_encoder / "model.safetensors"))

    _save_diffusers(paths.unet, size.unet_config(), models["unet2d"].state_dict(), bin_file=True)
    encoder_state = {k: v for k, v in models["appearance_encoder"].state_dict().items() if k not in TRUNCATED_KEYS}
    _save_diffusers(paths.appearance_encoder, {**size.unet_config(), "_class_name": "AppearanceEncoderModel"},
                    encoder_state)
    _save_diffusers(paths.controlnet, size.controlnet_config(), models["controlnet"].state_dict())
    _save_diffusers(paths.vae, size.vae_config(), models["vae"].state_dict())

    motion = {k: v.contiguous() for k, v in models["unet"].state_dict().items() if ".motion_modules." in k}
    paths.temporal_attention.parent.mkdir(parents=True, exist_ok=True)
    torch.save(motion, paths.temporal_attention)
    return paths


def write_tiny_weights(root: str | Path, *, seed: int = 0) -> WeightPaths:
    """Write the tiny model set (the shared fixture's widths) in the release layout."""
    return write_random_weights(root, TINY, seed=seed)
