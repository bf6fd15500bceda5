"""Where the released weights live: the release's folder layout, overrides, and the Hub."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

from magicanimate.errors import WeightsError

# Hub repositories of the released components, with the files each component needs.
HUB_FILES = {
    "stable-diffusion-v1-5/stable-diffusion-v1-5": (
        "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json",
        "tokenizer/vocab.json", "text_encoder/config.json", "text_encoder/model.safetensors",
        "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
    ),
    "stabilityai/sd-vae-ft-mse": ("config.json", "diffusion_pytorch_model.safetensors"),
    "zcxu-eric/MagicAnimate": (
        "appearance_encoder/config.json", "appearance_encoder/diffusion_pytorch_model.safetensors",
        "densepose_controlnet/config.json", "densepose_controlnet/diffusion_pytorch_model.safetensors",
        "temporal_attention/temporal_attention.ckpt",
    ),
}
# Folder of each Hub repository inside the release layout.
LAYOUT_DIRS = {
    "stable-diffusion-v1-5/stable-diffusion-v1-5": "stable-diffusion-v1-5",
    "stabilityai/sd-vae-ft-mse": "sd-vae-ft-mse",
    "zcxu-eric/MagicAnimate": "MagicAnimate",
}


# The mini model trained by `make mini-model` (docs/mini_model.md), packed inside the package.
MINI_WEIGHTS = Path(__file__).resolve().parents[1] / "mini_weights"
MINI_SIZE = 64  # pixels per side the mini model was trained at: its native size
MINI_ZOOM = 1.5  # its synthetic people were drawn this many times larger (data option zoom=)
NAMED_WEIGHTS = {"mini": MINI_WEIGHTS}


def resolve_weights(value: str | Path) -> Path:
    """A weights folder from ``--weights``: a name of ``NAMED_WEIGHTS`` ("mini") or a path.

    A name wins over a folder of the same name only if no such folder exists here.
    """
    if isinstance(value, str) and value in NAMED_WEIGHTS and not Path(value).exists():
        folder = NAMED_WEIGHTS[value]
        if not folder.is_dir():
            raise WeightsError(f"the {value} weights are not part of this installation (expected {folder}); "
                               "build them with `make mini-model` (docs/mini_model.md)")
        return folder
    return Path(value)


# What a denoiser predicts: the noise (SD 1.5 and the release) or the velocity (v-prediction);
# weights declare it in their scheduler config (WeightPaths.scheduler_config).
PREDICTION_TYPES = ("epsilon", "v_prediction")


@dataclass(frozen=True)
class WeightPaths:
    """Location of every component (folders in diffusers/transformers layout, one .ckpt file)."""

    tokenizer: Path
    text_encoder: Path
    unet: Path
    vae: Path
    appearance_encoder: Path
    controlnet: Path
    temporal_attention: Path

    @classmethod
    def release_layout(cls, root: str | Path) -> "WeightPaths":
        """Paths inside a folder laid out as the release's ``pretrained_models/``."""
        root = Path(root)
        sd, ma = root / "stable-diffusion-v1-5", root / "MagicAnimate"
        return cls(
            tokenizer=sd / "tokenizer", text_encoder=sd / "text_encoder", unet=sd / "unet",
            vae=root / "sd-vae-ft-mse", appearance_encoder=ma / "appearance_encoder",
            controlnet=ma / "densepose_controlnet",
            temporal_attention=ma / "temporal_attention" / "temporal_attention.ckpt",
        )

    @property
    def scheduler_config(self) -> Path:
        """The SD folder's ``scheduler/scheduler_config.json`` (beside the UNet): only its prediction type is read."""
        return self.unet.parent / "scheduler" / "scheduler_config.json"

    def with_overrides(self, **overrides: str | Path | None) -> "WeightPaths":
        """Replace the components given (``None`` values are ignored)."""
        names = {f.name for f in fields(self)}
        unknown = set(overrides) - names
        if unknown:
            raise TypeError(f"unknown weight components: {sorted(unknown)}; known: {sorted(names)}")
        return replace(self, **{k: Path(v) for k, v in overrides.items() if v is not None})

    def problems(self) -> list[str]:
        """One line per component that is missing or incomplete (empty when all are present)."""
        from magicanimate.weights.state_dict import DIFFUSERS_WEIGHT_NAMES, TRANSFORMERS_WEIGHT_NAMES

        out = []
        needs = {
            "tokenizer": ("vocab.json", "merges.txt"),
            "text_encoder": ("config.json",),
            "unet": ("config.json",),
            "vae": ("config.json",),
            "appearance_encoder": ("config.json",),
            "controlnet": ("config.json",),
        }
        for name, required in needs.items():
            folder: Path = getattr(self, name)
            if not folder.is_dir():
                out.append(f"{name}: folder {folder} not found")
                continue
            for f in required:
                if not (folder / f).is_file():
                    out.append(f"{name}: {folder / f} not found")
            weights = TRANSFORMERS_WEIGHT_NAMES if name == "text_encoder" else DIFFUSERS_WEIGHT_NAMES
            if name != "tokenizer" and not any((folder / w).is_file() for w in weights):
                out.append(f"{name}: no weights in {folder} (expected {' or '.join(weights)})")
        if not self.temporal_attention.is_file():
            out.append(f"temporal_attention: file {self.temporal_attention} not found")
        return out

    def require_complete(self) -> "WeightPaths":
        """Raise a ``WeightsError`` listing every missing component."""
        problems = self.problems()
        if problems:
            raise WeightsError("incomplete weights:\n  " + "\n  ".join(problems)
                               + "\nSee README.md (\"Weights\") for the expected layout.")
        return self


def hub_weight_paths(*, local_files_only: bool = False, cache_dir: str | Path | None = None) -> WeightPaths:
    """Download (or find in the Hugging Face cache) the released files; their paths."""
    from huggingface_hub import hf_hub_download

    roots: dict[str, Path] = {}
    try:
        for repo, files in HUB_FILES.items():
            for filename in files:
                local = Path(hf_hub_download(repo, filename, local_files_only=local_files_only,
                                             cache_dir=cache_dir))
                roots[repo] = local.parents[len(Path(filename).parts) - 1]
    except Exception as err:  # offline and not cached, gated, network failure, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise WeightsError(
            f"could not get the released weights from the Hugging Face Hub ({type(err).__name__}: {reason}); "
            "download them on a machine with internet access with `magicanimate download --to "
            "pretrained_models` (or `hf download` of the repositories " + ", ".join(HUB_FILES)
            + ") and pass the folder: --weights pretrained_models"
        ) from err
    sd = roots["stable-diffusion-v1-5/stable-diffusion-v1-5"]
    ma = roots["zcxu-eric/MagicAnimate"]
    return WeightPaths(
        tokenizer=sd / "tokenizer", text_encoder=sd / "text_encoder", unet=sd / "unet",
        vae=roots["stabilityai/sd-vae-ft-mse"], appearance_encoder=ma / "appearance_encoder",
        controlnet=ma / "densepose_controlnet",
        temporal_attention=ma / "temporal_attention" / "temporal_attention.ckpt",
    )


def released_weights_at_hand() -> Path | WeightPaths | None:
    """The released weights if they are here without downloading: ``$MAGICANIMATE_WEIGHTS``,
    ``./pretrained_models`` (complete release layouts), or the Hugging Face cache; else None."""
    import os

    for candidate in (os.environ.get("MAGICANIMATE_WEIGHTS"), "pretrained_models"):
        if candidate and Path(candidate).is_dir() and not WeightPaths.release_layout(candidate).problems():
            return Path(candidate)
    try:
        return hub_weight_paths(local_files_only=True)
    except WeightsError:
        return None


def default_weights() -> tuple[str | None, str]:
    """The weights a command uses when none are given, and a line saying which.

    The released checkpoints when they are at hand (a folder, or None for the Hugging Face
    cache); otherwise the mini model in the package (when built), which is NOT the released model.
    """
    found = released_weights_at_hand()
    if isinstance(found, Path):
        return str(found), f"using the released weights in {found}"
    if found is not None:
        return None, "using the released weights from the Hugging Face cache"
    if MINI_WEIGHTS.is_dir():
        return str(MINI_WEIGHTS), ("no released weights found (./pretrained_models, $MAGICANIMATE_WEIGHTS or the "
                                   "Hugging Face cache): using the mini model in the package "
                                   f"({MINI_SIZE} x {MINI_SIZE}, trained on synthetic people; docs/mini_model.md)")
    return None, "no released weights found here: they will be downloaded from the Hugging Face Hub"
