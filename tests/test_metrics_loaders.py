"""Each loader maps every tensor of a synthetic state dict with the official key names and shapes.

The key lists below are written from the reference code of each release (torchvision's
Inception3 / VGG16, kenshohara's 3D ResNet, piergiaj's I3D, the lpips package), not from our
modules, so a renamed or reshaped layer on our side fails here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from magicanimate.errors import WeightsError
from magicanimate.weights.state_dict import read_state_dict
from magicanimate.metrics.i3d import InceptionI3D, load_i3d
from magicanimate.metrics.inception import InceptionV3, load_inception
from magicanimate.metrics.lpips_vgg import LPIPSVGG, load_lpips_heads, load_vgg16_trunk
from magicanimate.metrics.networks import load_feature_networks, require_weights
from magicanimate.metrics.resnet3d import ResNet3D50, load_resnet3d
from magicanimate.metrics.downloads import ENV_VAR, WEIGHT_FILES, metrics_dir, weight_path

# ---------------------------------------------------------------------------- official key specs


def _bn(prefix: str, c: int, *, counter: bool = True) -> dict:
    keys = {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,)}
    if counter:
        keys[f"{prefix}.num_batches_tracked"] = ()
    return keys


def _basic_conv2d(prefix: str, cin: int, cout: int, kh: int, kw: int) -> dict:
    return {f"{prefix}.conv.weight": (cout, cin, kh, kw), **_bn(f"{prefix}.bn", cout)}


def inception_spec() -> dict:
    """pytorch-fid's pt_inception-2015-12-05 file: torchvision Inception3(num_classes=1008, aux_logits=False)."""
    spec = {}
    for name, cin, cout, k in [("Conv2d_1a_3x3", 3, 32, 3), ("Conv2d_2a_3x3", 32, 32, 3), ("Conv2d_2b_3x3", 32, 64, 3),
                               ("Conv2d_3b_1x1", 64, 80, 1), ("Conv2d_4a_3x3", 80, 192, 3)]:
        spec |= _basic_conv2d(name, cin, cout, k, k)
    for name, cin, pool in [("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)]:
        for branch, args in {"branch1x1": (cin, 64, 1, 1), "branch5x5_1": (cin, 48, 1, 1),
                             "branch5x5_2": (48, 64, 5, 5),
                             "branch3x3dbl_1": (cin, 64, 1, 1), "branch3x3dbl_2": (64, 96, 3, 3),
                             "branch3x3dbl_3": (96, 96, 3, 3), "branch_pool": (cin, pool, 1, 1)}.items():
            spec |= _basic_conv2d(f"{name}.{branch}", *args)
    for branch, args in {"branch3x3": (288, 384, 3, 3), "branch3x3dbl_1": (288, 64, 1, 1),
                         "branch3x3dbl_2": (64, 96, 3, 3), "branch3x3dbl_3": (96, 96, 3, 3)}.items():
        spec |= _basic_conv2d(f"Mixed_6a.{branch}", *args)
    for name, c7 in [("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)]:
        for branch, args in {"branch1x1": (768, 192, 1, 1), "branch7x7_1": (768, c7, 1, 1),
                             "branch7x7_2": (c7, c7, 1, 7), "branch7x7_3": (c7, 192, 7, 1),
                             "branch7x7dbl_1": (768, c7, 1, 1), "branch7x7dbl_2": (c7, c7, 7, 1),
                             "branch7x7dbl_3": (c7, c7, 1, 7), "branch7x7dbl_4": (c7, c7, 7, 1),
                             "branch7x7dbl_5": (c7, 192, 1, 7), "branch_pool": (768, 192, 1, 1)}.items():
            spec |= _basic_conv2d(f"{name}.{branch}", *args)
    for branch, args in {"branch3x3_1": (768, 192, 1, 1), "branch3x3_2": (192, 320, 3, 3),
                         "branch7x7x3_1": (768, 192, 1, 1), "branch7x7x3_2": (192, 192, 1, 7),
                         "branch7x7x3_3": (192, 192, 7, 1), "branch7x7x3_4": (192, 192, 3, 3)}.items():
        spec |= _basic_conv2d(f"Mixed_7a.{branch}", *args)
    for name, cin in [("Mixed_7b", 1280), ("Mixed_7c", 2048)]:
        for branch, args in {"branch1x1": (cin, 320, 1, 1), "branch3x3_1": (cin, 384, 1, 1),
                             "branch3x3_2a": (384, 384, 1, 3), "branch3x3_2b": (384, 384, 3, 1),
                             "branch3x3dbl_1": (cin, 448, 1, 1), "branch3x3dbl_2": (448, 384, 3, 3),
                             "branch3x3dbl_3a": (384, 384, 1, 3), "branch3x3dbl_3b": (384, 384, 3, 1),
                             "branch_pool": (cin, 192, 1, 1)}.items():
            spec |= _basic_conv2d(f"{name}.{branch}", *args)
    return spec | {"fc.weight": (1008, 2048), "fc.bias": (1008,)}


def resnet3d_spec() -> dict:
    """kenshohara's resnet-50-kinetics.pth 'state_dict': DataParallel prefix, 2017 BN (no counters)."""
    spec = {"module.conv1.weight": (64, 3, 7, 7, 7), **_bn("module.bn1", 64, counter=False)}
    inplanes = 64
    for index, (planes, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], start=1):
        for b in range(blocks):
            p = f"module.layer{index}.{b}"
            spec[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1, 1)
            spec[f"{p}.conv2.weight"] = (planes, planes, 3, 3, 3)
            spec[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1, 1)
            for i, c in ((1, planes), (2, planes), (3, planes * 4)):
                spec |= _bn(f"{p}.bn{i}", c, counter=False)
            if b == 0:
                spec[f"{p}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1, 1)
                spec |= _bn(f"{p}.downsample.1", planes * 4, counter=False)
            inplanes = planes * 4
    return spec | {"module.fc.weight": (400, 2048), "module.fc.bias": (400,)}


def i3d_spec() -> dict:
    """VideoGPT's i3d_pretrained_400.pt: piergiaj's InceptionI3d(400) names."""
    def unit(prefix, cin, cout, k):
        return {f"{prefix}.conv3d.weight": (cout, cin, k, k, k), **_bn(f"{prefix}.bn", cout)}

    spec = unit("Conv3d_1a_7x7", 3, 64, 7) | unit("Conv3d_2b_1x1", 64, 64, 1) | unit("Conv3d_2c_3x3", 64, 192, 3)
    mixed = [("Mixed_3b", 192, [64, 96, 128, 16, 32, 32]), ("Mixed_3c", 256, [128, 128, 192, 32, 96, 64]),
             ("Mixed_4b", 128 + 192 + 96 + 64, [192, 96, 208, 16, 48, 64]),
             ("Mixed_4c", 192 + 208 + 48 + 64, [160, 112, 224, 24, 64, 64]),
             ("Mixed_4d", 160 + 224 + 64 + 64, [128, 128, 256, 24, 64, 64]),
             ("Mixed_4e", 128 + 256 + 64 + 64, [112, 144, 288, 32, 64, 64]),
             ("Mixed_4f", 112 + 288 + 64 + 64, [256, 160, 320, 32, 128, 128]),
             ("Mixed_5b", 256 + 320 + 128 + 128, [256, 160, 320, 32, 128, 128]),
             ("Mixed_5c", 256 + 320 + 128 + 128, [384, 192, 384, 48, 128, 128])]
    for name, cin, o in mixed:
        spec |= unit(f"{name}.b0", cin, o[0], 1)
        spec |= unit(f"{name}.b1a", cin, o[1], 1) | unit(f"{name}.b1b", o[1], o[2], 3)
        spec |= unit(f"{name}.b2a", cin, o[3], 1) | unit(f"{name}.b2b", o[3], o[4], 3)
        spec |= unit(f"{name}.b3b", cin, o[5], 1)
    return spec | {"logits.conv3d.weight": (400, 384 + 384 + 128 + 128, 1, 1, 1), "logits.conv3d.bias": (400,)}


def vgg16_spec() -> dict:
    """torchvision's vgg16-397923af.pth: `features.N` convolutions and the ImageNet classifier."""
    convs = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256), (14, 256, 256),
             (17, 256, 512), (19, 512, 512), (21, 512, 512), (24, 512, 512), (26, 512, 512), (28, 512, 512)]
    spec = {}
    for i, cin, cout in convs:
        spec[f"features.{i}.weight"] = (cout, cin, 3, 3)
        spec[f"features.{i}.bias"] = (cout,)
    for i, cin, cout in [(0, 25088, 4096), (3, 4096, 4096), (6, 4096, 1000)]:
        spec[f"classifier.{i}.weight"] = (cout, cin)
        spec[f"classifier.{i}.bias"] = (cout,)
    return spec


def lpips_spec() -> dict:
    """lpips v0.1 vgg.pth: one NetLinLayer (Dropout, Conv2d) per tapped layer."""
    return {f"lin{k}.model.1.weight": (1, c, 1, 1) for k, c in enumerate([64, 128, 256, 512, 512])}


def synthetic(spec: dict, *, seed: int = 0, cheap: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Distinct random values per tensor; keys starting with `cheap` get zero-stride placeholders."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in spec.items():
        if key.startswith(cheap):
            out[key] = torch.zeros(()).expand(shape)  # never loaded: shape only, no memory
        elif key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(7)
        else:
            out[key] = torch.randn(shape, generator=gen)
    return out


# ---------------------------------------------------------------------------- mapping tests


def _assert_all_landed(module_tensors: dict, file_tensors: dict, mapping: dict) -> None:
    for file_key, module_key in mapping.items():
        assert torch.equal(module_tensors[module_key], file_tensors[file_key]), file_key


CASES = {
    "inception": (InceptionV3, load_inception, inception_spec, lambda k: None if k.startswith("fc.") else k, ()),
    "resnet3d": (ResNet3D50, load_resnet3d, resnet3d_spec, lambda k: k.removeprefix("module."), ()),
    "i3d": (InceptionI3D, load_i3d, i3d_spec, lambda k: k, ()),
}


@pytest.mark.parametrize("name", list(CASES))
def test_loader_maps_every_tensor(name):
    build, load, spec_fn, expected_name, cheap = CASES[name]
    model, spec = build(), spec_fn()
    tensors = synthetic(spec, cheap=cheap)
    report = load(model, tensors)
    mapping = {k: expected_name(k) for k in spec if expected_name(k) is not None}
    assert report.loaded == len(mapping)
    assert sorted(report.ignored) == sorted(k for k in spec if expected_name(k) is None)
    state = model.state_dict()
    _assert_all_landed(state, tensors, mapping)
    # every tensor of the module received a value from the file, counters aside
    assert {k for k in state if not k.endswith("num_batches_tracked")} <= set(mapping.values())


def test_lpips_loaders_map_every_tensor():
    model = LPIPSVGG()
    trunk = synthetic(vgg16_spec(), cheap=("classifier.",))
    heads = synthetic(lpips_spec(), seed=1)
    trunk_report = load_vgg16_trunk(model, trunk)
    head_report = load_lpips_heads(model, heads)
    assert trunk_report.loaded == 26 and len(trunk_report.ignored) == 6
    assert head_report.loaded == 5 and not head_report.ignored
    state = model.state_dict()
    _assert_all_landed(state, trunk, {k: k for k in vgg16_spec() if k.startswith("features.")})
    _assert_all_landed(state, heads, {f"lin{k}.model.1.weight": f"heads.{k}.weight" for k in range(5)})
    trunk_keys = {k for k in vgg16_spec() if k.startswith("features.")}
    assert set(state) == trunk_keys | {f"heads.{k}.weight" for k in range(5)}


def test_loader_rejects_missing_extra_and_misshapen_keys():
    spec = i3d_spec()
    tensors = synthetic(spec)
    missing = dict(tensors)
    del missing["Mixed_4d.b2b.conv3d.weight"]
    with pytest.raises(WeightsError, match="1 missing"):
        load_i3d(InceptionI3D(), missing)
    extra = dict(tensors) | {"Mixed_6a.b0.conv3d.weight": torch.zeros(1)}
    with pytest.raises(WeightsError, match="1 unexpected"):
        load_i3d(InceptionI3D(), extra)
    bad = dict(tensors) | {"logits.conv3d.bias": torch.zeros(600)}
    with pytest.raises(WeightsError, match="shape mismatch"):
        load_i3d(InceptionI3D(), bad)
    # a file without BatchNorm counters (pre-0.4.1 PyTorch) still loads
    old = {k: v for k, v in tensors.items() if not k.endswith("num_batches_tracked")}
    assert load_i3d(InceptionI3D(), old).loaded == len(old)


# ---------------------------------------------------------------------------- files and the cache


def test_networks_load_from_the_cache_folder(tmp_path):
    """The whole path: files with the documented names in the cache folder, read and mapped."""
    files = {
        "inception": synthetic(inception_spec()),
        "resnet3d": {"epoch": 200, "arch": "resnet-50", "state_dict": synthetic(resnet3d_spec())},
        "i3d": synthetic(i3d_spec()),
        "vgg16": synthetic(vgg16_spec(), cheap=("classifier.",)),
        "lpips_vgg": synthetic(lpips_spec()),
    }
    for key, obj in files.items():
        torch.save(obj, tmp_path / WEIGHT_FILES[key].filename)
    nets = load_feature_networks(cache_dir=tmp_path)
    r3d = files["resnet3d"]["state_dict"]
    assert torch.equal(nets.resnet3d.layer3[5].conv2.weight, r3d["module.layer3.5.conv2.weight"])
    assert torch.equal(nets.i3d.Mixed_5c.b3b.bn.running_var, files["i3d"]["Mixed_5c.b3b.bn.running_var"])
    inception = files["inception"]
    assert torch.equal(nets.inception.Mixed_7c.branch_pool.conv.weight, inception["Mixed_7c.branch_pool.conv.weight"])
    assert torch.equal(nets.lpips.heads[3].weight, files["lpips_vgg"]["lin3.model.1.weight"])
    assert not nets.i3d.training and not any(p.requires_grad for p in nets.i3d.parameters())
    assert read_state_dict(tmp_path / WEIGHT_FILES["resnet3d"].filename, unwrap=("state_dict",)).keys() == resnet3d_spec().keys()


def test_missing_file_error_names_file_path_and_command(tmp_path):
    with pytest.raises(WeightsError) as info:
        weight_path("i3d", tmp_path)
    message = str(info.value)
    assert "i3d_pretrained_400.pt" in message
    assert str(tmp_path / "i3d_pretrained_400.pt") in message
    assert "magicanimate download-metrics" in message
    # the file without a stable URL says so and names its source
    with pytest.raises(WeightsError, match="resnet-50-kinetics.pth.*by hand.*kenshohara"):
        weight_path("resnet3d", tmp_path)


def test_require_weights_lists_every_missing_file(tmp_path):
    torch.save(synthetic(lpips_spec()), tmp_path / WEIGHT_FILES["lpips_vgg"].filename)
    with pytest.raises(WeightsError) as info:
        require_weights(["inception", "vgg16", "lpips_vgg", "resnet3d", "i3d"], tmp_path)
    message = str(info.value)
    assert message.startswith("4 metric weight file(s) missing")
    for key in ("inception", "vgg16", "resnet3d", "i3d"):
        assert WEIGHT_FILES[key].filename in message
    assert "lpips_vgg_v0.1.pth" not in message


def test_cache_folder_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert metrics_dir() == Path(os.path.expanduser("~/.cache/magicanimate/metrics"))
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert metrics_dir() == tmp_path / "env"
    assert metrics_dir(tmp_path / "arg") == tmp_path / "arg"


def test_unreadable_file_is_a_weights_error(tmp_path):
    path = tmp_path / WEIGHT_FILES["i3d"].filename
    path.write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="cannot read weight file"):
        load_feature_networks(("i3d",), cache_dir=tmp_path)
