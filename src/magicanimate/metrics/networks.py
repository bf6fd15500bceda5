"""Building the four metric networks, from the public weight files or (tests only) at random."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from magicanimate.errors import WeightsError
from magicanimate.weights.state_dict import read_state_dict, tensors_only
from magicanimate.metrics.i3d import InceptionI3D, load_i3d
from magicanimate.metrics.inception import InceptionV3, TorchScriptInception, load_inception
from magicanimate.metrics.lpips_vgg import LPIPSVGG, load_lpips_heads, load_vgg16_trunk
from magicanimate.metrics.resnet3d import ResNet3D50, load_resnet3d
from magicanimate.metrics.downloads import (  # noqa: F401 - INCEPTION_BACKENDS is part of this module's API
    INCEPTION_BACKENDS, WEIGHT_FILES, missing_message, metrics_dir, weight_path,
)

PathLike = str | os.PathLike[str] | None
NETWORK_FILES = {
    "inception": ("inception",),
    "resnet3d": ("resnet3d",),
    "i3d": ("i3d",),
    "lpips": ("vgg16", "lpips_vgg"),
}


@dataclass
class FeatureNetworks:
    """The networks behind LPIPS, FID, FID-VID and FVD (any may be None when not needed)."""

    inception: nn.Module | None = None
    resnet3d: nn.Module | None = None
    i3d: nn.Module | None = None
    lpips: nn.Module | None = None


def _read_file(path) -> dict[str, torch.Tensor]:
    """The tensors of a metric weight file (unwrapping a ``state_dict`` entry)."""
    return tensors_only(read_state_dict(path, unwrap=("state_dict",)), path)


def _ready(module: nn.Module, device: torch.device | str) -> nn.Module:
    return module.eval().requires_grad_(False).to(device)


def require_weights(keys: list[str], cache_dir: PathLike = None) -> None:
    """Raise one WeightsError listing every missing weight file among `keys` (file, path, how to get it)."""
    folder = metrics_dir(cache_dir)
    missing = [k for k in keys if not (folder / WEIGHT_FILES[k].filename).is_file()]
    if missing:
        lines = [missing_message(WEIGHT_FILES[k], folder / WEIGHT_FILES[k].filename) for k in missing]
        raise WeightsError(f"{len(missing)} metric weight file(s) missing:\n  - " + "\n  - ".join(lines))


def load_inception_network(
    *, cache_dir: PathLike = None, device: torch.device | str = "cpu", backend: str = "pytorch-fid"
) -> nn.Module:
    """FID InceptionV3 from pytorch-fid's weights, or NVIDIA's TorchScript file (backend 'torchscript')."""
    if backend == "pytorch-fid":
        model = InceptionV3()
        load_inception(model, _read_file(weight_path("inception", cache_dir)))
        return _ready(model, device)
    if backend == "torchscript":
        path = weight_path("inception_torchscript", cache_dir)
        try:
            scripted = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise WeightsError(f"cannot load TorchScript file {path}: {exc}") from exc
        return _ready(TorchScriptInception(scripted), device)
    raise WeightsError(f"unknown Inception backend '{backend}'; choose one of {INCEPTION_BACKENDS}")


def load_resnet3d_network(*, cache_dir: PathLike = None, device: torch.device | str = "cpu") -> nn.Module:
    """3D ResNet-50 (Kinetics-400) for FID-VID from `resnet-50-kinetics.pth`."""
    model = ResNet3D50()
    load_resnet3d(model, _read_file(weight_path("resnet3d", cache_dir)))
    return _ready(model, device)


def load_i3d_network(*, cache_dir: PathLike = None, device: torch.device | str = "cpu") -> nn.Module:
    """I3D (Kinetics-400) for FVD from `i3d_pretrained_400.pt`."""
    model = InceptionI3D()
    load_i3d(model, _read_file(weight_path("i3d", cache_dir)))
    return _ready(model, device)


def load_lpips_network(*, cache_dir: PathLike = None, device: torch.device | str = "cpu") -> nn.Module:
    """LPIPS-VGG from torchvision's VGG16 trunk and the LPIPS v0.1 linear layers."""
    model = LPIPSVGG()
    load_vgg16_trunk(model, _read_file(weight_path("vgg16", cache_dir)))
    load_lpips_heads(model, _read_file(weight_path("lpips_vgg", cache_dir)))
    return _ready(model, device)


def load_feature_networks(
    names: tuple[str, ...] = ("inception", "resnet3d", "i3d", "lpips"),
    *,
    cache_dir: PathLike = None,
    device: torch.device | str = "cpu",
    inception_backend: str = "pytorch-fid",
) -> FeatureNetworks:
    """Load the named pretrained networks; checks all files first so one error lists everything missing."""
    keys = [k for n in names for k in NETWORK_FILES[n]]
    if "inception" in names and inception_backend == "torchscript":
        keys = [("inception_torchscript" if k == "inception" else k) for k in keys]
    require_weights(keys, cache_dir)
    loaders = {
        "inception": lambda: load_inception_network(cache_dir=cache_dir, device=device, backend=inception_backend),
        "resnet3d": lambda: load_resnet3d_network(cache_dir=cache_dir, device=device),
        "i3d": lambda: load_i3d_network(cache_dir=cache_dir, device=device),
        "lpips": lambda: load_lpips_network(cache_dir=cache_dir, device=device),
    }
    return FeatureNetworks(**{name: loaders[name]() for name in names})


def random_feature_networks(
    names: tuple[str, ...] = ("inception", "resnet3d", "i3d", "lpips"),
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> FeatureNetworks:
    """TEST ONLY: the same architectures with random weights (numbers are meaningless)."""
    torch.manual_seed(seed)
    builders = {"inception": InceptionV3, "resnet3d": ResNet3D50, "i3d": InceptionI3D, "lpips": LPIPSVGG}
    return FeatureNetworks(**{name: _ready(_he_init(builders[name]()), device) for name in names})


def _he_init(module: nn.Module) -> nn.Module:
    # He-normal weights keep activations at a usable scale through 50+ random layers
    # (PyTorch's default init shrinks them towards 0); LPIPS heads stay non-negative like trained ones.
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    if isinstance(module, LPIPSVGG):
        for head in module.heads:
            head.weight.data.abs_()
    return module
