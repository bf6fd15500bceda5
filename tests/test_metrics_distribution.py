"""FID, FID-VID and FVD: preprocessing, 16-frame units, and Fréchet behaviour on feature sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from magicanimate.metrics import fid, fid_vid, frechet_from_features, fvd, lpips, random_feature_networks, video_units
from magicanimate.metrics.features import inception_features
from magicanimate.metrics.arrays import resize_bicubic_float
from magicanimate.metrics.resnet3d import MEAN_RGB_255


class Probe(nn.Module):
    """Stand-in feature network: records its inputs, returns a fixed projection of channel means."""

    def __init__(self, dim: int, seed: int = 0) -> None:
        super().__init__()
        self.proj = nn.Linear(3, dim)
        with torch.no_grad():
            self.proj.weight.copy_(torch.randn(dim, 3, generator=torch.Generator().manual_seed(seed)))
            self.proj.bias.zero_()
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.detach().clone())
        return self.proj(x.flatten(2).mean(dim=2))  # (B, 3, ...) → (B, 3) → (B, dim)


def _ramp_video(frames: int, size: int = 20) -> np.ndarray:
    """Frame i is a constant gray of value 5·i: units and padding can be read back from the inputs."""
    return np.stack([np.full((size, size, 3), 5 * i, np.uint8) for i in range(frames)])


# ---------------------------------------------------------------------------- units


def test_video_units_segments_pad_the_last_one():
    units = video_units(40, unit_frames=16, stride=16)
    assert [u.tolist() for u in units] == [list(range(16)), list(range(16, 32)), list(range(32, 40)) + [39] * 8]


def test_video_units_sliding_windows_are_complete():
    units = video_units(20, unit_frames=16, stride=1)
    assert len(units) == 5
    assert units[0].tolist() == list(range(16)) and units[-1].tolist() == list(range(4, 20))
    assert video_units(16, stride=1)[0].tolist() == list(range(16))


def test_video_units_short_video_gives_one_padded_unit():
    for stride in (1, 16):
        (unit,) = video_units(5, stride=stride)
        assert unit.tolist() == [0, 1, 2, 3, 4] + [4] * 11
    with pytest.raises(ValueError):
        video_units(10, stride=17)


# ---------------------------------------------------------------------------- preprocessing


def test_bicubic_float_resize_keeps_constants_and_overshoot():
    flat = np.full((1, 30, 40, 3), 77, np.uint8)
    assert np.allclose(resize_bicubic_float(flat, 299), 77.0, atol=1e-3)
    edge = np.zeros((1, 8, 8, 3), np.uint8)
    edge[:, :, 4:] = 255
    out = resize_bicubic_float(edge, 29)
    assert out.dtype == np.float32 and out.shape == (1, 29, 29, 3)
    assert out.min() < 0.0 and out.max() > 255.0  # no clipping, no quantisation (clean-fid)


def test_inception_input_scaling():
    probe = Probe(8)
    videos = [_ramp_video(3), _ramp_video(2)]
    fid(videos, videos, network=probe)
    x = torch.cat(probe.inputs[:2])  # the generated set: 3 + 2 frames
    assert x.shape == (5, 3, 299, 299)
    expected = (torch.tensor([0, 5, 10, 0, 5], dtype=torch.float32) - 128) / 128
    assert torch.allclose(x.mean(dim=(1, 2, 3)), expected, atol=1e-5)


def test_fid_vid_segments_and_mean_subtraction():
    probe = Probe(16)
    video = _ramp_video(40)
    fid_vid([video, video[:20]], [video, video[:20]], network=probe)
    x = probe.inputs[0]  # first generated video: 3 segments in one batch of 4
    assert x.shape == (3, 3, 16, 112, 112)
    frame_values = x[2, 0, :, 0, 0] + MEAN_RGB_255[0]  # red channel of the padded last segment
    assert torch.allclose(frame_values, torch.tensor([5.0 * i for i in range(32, 40)] + [195.0] * 8), atol=1e-3)
    assert torch.allclose(x[0, 2, 0, 0, 0], torch.tensor(0 - MEAN_RGB_255[2], dtype=torch.float32), atol=1e-3)


def test_fvd_units_and_scaling():
    probe = Probe(32)
    video = _ramp_video(40)
    fvd([video, video], [video, video], network=probe, stride=16)
    x = probe.inputs[0]
    assert x.shape == (3, 3, 16, 224, 224)
    assert torch.allclose(x[1, 1, :, 5, 5], torch.tensor([5.0 * i / 127.5 - 1 for i in range(16, 32)]), atol=1e-5)
    # stride 1 (DisCo's clips): every complete 16-frame window is a sample
    probe.inputs.clear()
    fvd([video], [video], network=probe, stride=1, batch_size=100)
    assert probe.inputs[0].shape[0] == 40 - 16 + 1


# ---------------------------------------------------------------------------- Fréchet behaviour


def test_fid_grows_with_a_known_shift():
    """Brightening every frame by s moves every probe feature by W·(s/128)·1: FID = ‖W·1‖² (s/128)²."""
    probe = Probe(8, seed=3)
    rng = np.random.default_rng(0)
    frames = [rng.integers(40, 200, (6, 16, 16, 3), dtype=np.uint8)]
    shift_dir = probe.proj.weight.detach().sum(dim=1).double().numpy()  # W·1
    assert fid(frames, frames, network=probe) == pytest.approx(0.0, abs=1e-9)
    for s in (5, 20, 40):
        shifted = [frames[0] + np.uint8(s)]
        expected = (shift_dir @ shift_dir) * (s / 128) ** 2
        assert fid(frames, shifted, network=probe) == pytest.approx(expected, rel=1e-3)


def test_fid_of_a_set_against_itself_with_inception():
    net = random_feature_networks(("inception",), seed=1).inception
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (2, 24, 24, 3), dtype=np.uint8)
    feats = inception_features(frames, net)
    assert feats.shape == (2, 2048) and np.abs(feats[0] - feats[1]).max() > 1e-3
    spread = frechet_from_features(feats, feats[::-1] + 1.0)  # mean shift of 1 in every dimension
    assert spread == pytest.approx(2048.0, rel=1e-6)
    assert fid(frames, frames, network=net) <= 1e-9 * np.sum(feats**2)


def test_fvd_and_fid_vid_of_a_set_against_itself_are_zero():
    videos = [_ramp_video(18), _ramp_video(33)]
    assert fid_vid(videos, videos, network=Probe(16)) == pytest.approx(0.0, abs=1e-9)
    assert fvd(videos, videos, network=Probe(16)) == pytest.approx(0.0, abs=1e-9)
    brighter = [np.clip(v.astype(int) + 30, 0, 255).astype(np.uint8) for v in videos]
    assert fvd(videos, brighter, network=Probe(16)) > 1e-3


class PairProbe(nn.Module):
    """Stand-in LPIPS network: records both inputs, returns the mean |x0 − x1| per pair."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        self.inputs.append((x0.clone(), x1.clone()))
        return (x0 - x1).abs().flatten(1).mean(dim=1)


def test_lpips_input_conventions():
    """DisCo feeds ToTensor values (x/255, [0, 1]); 'standard' feeds 2x/255 − 1. Values: test_metrics_golden."""
    gen = np.full((2, 8, 8, 3), 51, np.uint8)  # 51/255 = 0.2
    gt = np.full((2, 8, 8, 3), 204, np.uint8)  # 204/255 = 0.8
    probe = PairProbe()
    assert lpips(gen, gt, network=probe) == pytest.approx(0.6, abs=1e-6)
    x0, x1 = probe.inputs[-1]
    assert x0.shape == (2, 3, 8, 8)  # NCHW
    assert torch.allclose(x0, torch.full_like(x0, 0.2)) and torch.allclose(x1, torch.full_like(x1, 0.8))
    assert lpips(gen, gt, network=probe, input_range="standard") == pytest.approx(1.2, abs=1e-6)
    x0, x1 = probe.inputs[-1]
    assert torch.allclose(x0, torch.full_like(x0, -0.6)) and torch.allclose(x1, torch.full_like(x1, 0.6))
    # float frames are quantised to 8 bits first (0.2012 → 51), generated frames resized to the ground truth
    probe.inputs.clear()
    lpips(np.full((1, 4, 4, 3), 0.2012), np.zeros((1, 8, 8, 3), np.uint8), network=probe)
    x0, _ = probe.inputs[-1]
    assert x0.shape == (1, 3, 8, 8) and torch.allclose(x0, torch.full_like(x0, 0.2))
