"""Tiny random weights in the release's folder layout, built with this package's own code.

For demos and tests on machines without the released checkpoints: every component has
the real architecture at toy width (32 channels, 16 norm groups, a 2-layer CLIP with a
byte-level vocabulary), so the whole chain runs in seconds on a CPU. The output is noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from .models.appearance_encoder import TRUNCATED_KEYS
from .models.unet3d import TemporalUNet, TemporalUNetConfig
from .weights import WeightPaths

UNET_CONFIG = {
    "_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": 8,
    "block_out_channels": [32, 32, 32, 32], "center_input_sample": False, "cross_attention_dim": 32,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
    "mid_block_scale_factor": 1, "norm_eps": 1e-5, "norm_num_groups": 16, "out_channels": 4, "sample_size": 8,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}
CONTROLNET_CONFIG = {
    "_class_name": "ControlNetModel", "act_fn": "silu", "attention_head_dim": 8,
    "block_out_channels": [32, 32, 32, 32], "conditioning_embedding_out_channels": [16, 16, 32, 32],
    "controlnet_conditioning_channel_order": "rgb", "cross_attention_dim": 32,
    "down_block_types": UNET_CONFIG["down_block_types"], "downsample_padding": 1, "flip_sin_to_cos": True,
    "freq_shift": 0, "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-5,
    "norm_num_groups": 16, "only_cross_attention": False, "upcast_attention": False, "use_linear_projection": False,
}
VAE_CONFIG = {
    "_class_name": "AutoencoderKL", "act_fn": "silu", "block_out_channels": [32, 32, 32, 32],
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 16,
    "sample_size": 64, "scaling_factor": 0.18215,
}
TEXT_CONFIG = {
    "architectures": ["CLIPTextModel"], "model_type": "clip_text_model", "hidden_act": "quick_gelu",
    "hidden_size": 32, "intermediate_size": 128, "num_attention_heads": 4, "num_hidden_layers": 2,
    "max_position_embeddings": 77, "layer_norm_eps": 1e-5, "projection_dim": 32,
    "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
}


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


def _wake_zero_layers(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Give zero-initialised ControlNet output convs small random values, so they matter."""
    for name, p in model.named_parameters():
        if name.startswith(("controlnet_down_blocks", "controlnet_mid_block", "controlnet_cond_embedding.conv_out")):
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.05)


def write_tiny_weights(root: str | Path, *, seed: int = 0) -> WeightPaths:
    """Write a complete tiny model set in the release layout under ``root``; returns its paths."""
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    paths = WeightPaths.release_layout(root)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        vocab = _write_tokenizer(paths.tokenizer)

        text = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG, vocab_size=vocab))
        paths.text_encoder.mkdir(parents=True, exist_ok=True)
        (paths.text_encoder / "config.json").write_text(json.dumps({**TEXT_CONFIG, "vocab_size": vocab}, indent=2))
        text_state = {k if k.startswith("text_model.") else "text_model." + k: v
                      for k, v in text.state_dict().items() if not k.endswith("position_ids")}
        save_file({k: v.contiguous() for k, v in text_state.items()}, str(paths.text_encoder / "model.safetensors"))

        cfg = {k: v for k, v in UNET_CONFIG.items() if not k.startswith("_")}
        unet = UNet2DConditionModel(**cfg)
        _save_diffusers(paths.unet, UNET_CONFIG, unet.state_dict(), bin_file=True)

        encoder = UNet2DConditionModel(**cfg)
        state = {k: v for k, v in encoder.state_dict().items() if k not in TRUNCATED_KEYS}
        _save_diffusers(paths.appearance_encoder, {**UNET_CONFIG, "_class_name": "AppearanceEncoderModel"}, state)

        controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 16, 32, 32))
        _wake_zero_layers(controlnet, generator)
        _save_diffusers(paths.controlnet, CONTROLNET_CONFIG, controlnet.state_dict())

        vae = AutoencoderKL(**{k: v for k, v in VAE_CONFIG.items() if not k.startswith("_")})
        _save_diffusers(paths.vae, VAE_CONFIG, vae.state_dict())

        temporal = TemporalUNet(TemporalUNetConfig.from_unet_config(UNET_CONFIG))
        motion = {k: v.contiguous() for k, v in temporal.state_dict().items() if ".motion_modules." in k}
        paths.temporal_attention.parent.mkdir(parents=True, exist_ok=True)
        torch.save(motion, paths.temporal_attention)
    return paths
