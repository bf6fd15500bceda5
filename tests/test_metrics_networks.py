"""The four metric networks on random weights: documented input sizes give documented output shapes."""

from __future__ import annotations

import pytest
import torch

from magicanimate.metrics import random_feature_networks
from magicanimate.metrics.i3d import InceptionI3D, same_padding
from magicanimate.metrics.inception import InceptionV3, TorchScriptInception
from magicanimate.metrics.lpips_vgg import LPIPSVGG
from magicanimate.metrics.networks import load_inception_network
from magicanimate.metrics.resnet3d import ResNet3D50


@pytest.fixture(scope="module")
def nets():
    return random_feature_networks(seed=0)


def test_inception_pool_features(nets):
    x = torch.rand(2, 3, 299, 299) * 2 - 1
    with torch.inference_mode():
        y = nets.inception(x)
    assert y.shape == (2, 2048)
    assert torch.isfinite(y).all() and (y >= 0).all()  # pooled post-ReLU activations
    assert not torch.allclose(y[0], y[1])


def test_resnet3d_features(nets):
    x = torch.randn(1, 3, 16, 112, 112) * 50
    with torch.inference_mode():
        y = nets.resnet3d(x)
    assert y.shape == (1, 2048)
    assert torch.isfinite(y).all()
    with pytest.raises(ValueError, match="16×112"):
        with torch.inference_mode():
            nets.resnet3d(torch.randn(1, 3, 24, 112, 112))


def test_i3d_logits_averaged_over_time(nets):
    x = torch.rand(1, 3, 16, 224, 224) * 2 - 1
    with torch.inference_mode():
        y = nets.i3d(x)
    assert y.shape == (1, 400)
    assert torch.isfinite(y).all()


def test_lpips_distance(nets):
    a, b = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.inference_mode():
        d = nets.lpips(a, b)
        same = nets.lpips(a, a)
        swapped = nets.lpips(b, a)
    assert d.shape == (2,)
    assert (d > 0).all()
    assert torch.allclose(same, torch.zeros(2))
    assert torch.allclose(d, swapped)


def test_same_padding_follows_tensorflow():
    # stride 2 over 16 frames / 224 pixels with a 7-tap kernel: total 5, split 2 before, 3 after
    assert same_padding((16, 224, 224), (7, 7, 7), (2, 2, 2)) == (2, 3, 2, 3, 2, 3)
    # size not divisible by the stride: total = k − (size mod s) = 3 − 1 = 2
    assert same_padding((7, 7, 7), (3, 3, 3), (2, 2, 2)) == (1, 1, 1, 1, 1, 1)
    # kernel 1: no padding; an odd total puts the extra pixel after (TF), time untouched here
    assert same_padding((5, 5, 5), (1, 1, 1), (1, 1, 1)) == (0,) * 6
    assert same_padding((8, 8, 8), (1, 3, 3), (1, 2, 2)) == (0, 1, 0, 1, 0, 0)


def test_parameter_counts_match_the_published_architectures():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # pytorch-fid's InceptionV3 without the 1008-way classifier
    assert count(InceptionV3()) == 21_785_568
    # I3D: ~12.3M in the trunk + 1024·400 + 400 logits
    assert count(InceptionI3D()) == 12_697_264
    # 3D ResNet-50 (shortcut B, Kinetics-400 head)
    assert count(ResNet3D50()) == 47_018_576
    # VGG16 convolutional trunk (torchvision `features`) + 1472 LPIPS weights
    assert count(LPIPSVGG()) == 14_714_688 + 1472


def test_torchscript_inception_backend(tmp_path, monkeypatch):
    """NVIDIA's TorchScript file is used through its `layers` submodule, as clean-fid does."""

    class Fake(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Conv2d(3, 2048, 1))

        def forward(self, x):
            return self.layers(x)

    torch.jit.save(torch.jit.script(Fake()), str(tmp_path / "inception-2015-12-05.pt"))
    net = load_inception_network(cache_dir=tmp_path, backend="torchscript")
    assert isinstance(net, TorchScriptInception)
    with torch.inference_mode():
        assert net(torch.rand(2, 3, 299, 299)).shape == (2, 2048)
