"""The four metric networks against their reference implementations (golden outputs, shared random weights).

../shared/fixtures/metric-networks holds uint8 inputs and the outputs of pytorch-fid's InceptionV3,
the `lpips` package (VGG, v0.1), kenshohara's 3D ResNet-50 and DisCo's I3D, all run with
deterministic random weights written in the official file formats. Here the same weight files are
regenerated (conftest.golden_metric_weights: make_weights.py, a few seconds, a temporary folder) and
loaded through the public `load_feature_networks`; the inputs go through the public feature functions, `lpips`, and
`fid` / `fid_vid` / `fvd`, including the DisCo protocol's resize and scaling.

Tolerances. The references agree with this code to ~2e-6 (features, relative to the largest value)
and ~6e-8 (LPIPS, absolute) on CPU in float32. The gates below leave ~50× room for other CPUs and
BLAS builds, and stay far below what the plausible bugs listed in the fixture README do (a padding
option 4e-2, a pooling kind 0.3, a BatchNorm eps 4e-3 to 8e-3, the input scaling 1e-2, clipping after
the resize 5e-2, the LPIPS shift 7e-2 absolute).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import linalg

from conftest import golden_metric_arrays, reference_frechet
from magicanimate.metrics import fid, fid_vid, fvd, load_feature_networks, lpips
from magicanimate.metrics.distribution import video_feature_resnet3d
from magicanimate.metrics.features import i3d_unit_features, inception_features, resnet3d_unit_features
from magicanimate.metrics.perceptual import lpips_per_frame

FEATURE_REL = 1e-4  # max|Δ| / max|reference| for features and logits
LPIPS_ABS = 1e-5
DISTANCE_REL = 1e-4  # Fréchet distances built on golden features
WHOLE_CLIP = [np.arange(16)]  # one 16-frame unit: frames 0..15


def _golden(name: str) -> dict[str, np.ndarray]:
    return golden_metric_arrays(name)


def _rel(ours: np.ndarray, reference: np.ndarray) -> float:
    assert ours.shape == reference.shape, (ours.shape, reference.shape)
    return float(np.abs(ours - reference).max() / np.abs(reference).max())


# ---------------------------------------------------------------------------- the networks, from the weight files


@pytest.fixture(scope="module")
def nets(golden_metric_weights):
    return load_feature_networks(cache_dir=golden_metric_weights, device="cpu")


# ---------------------------------------------------------------------------- InceptionV3 (FID)


def test_inception_pool_features_at_299(nets):
    z = _golden("inception")
    assert _rel(inception_features(z["inc_x299"], nets.inception), z["inc_feat299"]) <= FEATURE_REL


def test_inception_from_video_frames_with_disco_resize(nets):
    """256×192 uint8 frames → PIL float bicubic to 299 (no clip) → (x − 128)/128 → pool3."""
    z = _golden("inception")
    ours = inception_features(z["inc_video"], nets.inception)
    assert _rel(ours, z["inc_feat_e2e"]) <= FEATURE_REL
    # the fixture tells the two resizers apart: clean-fid 0.1.35's clipped variant is far away
    assert _rel(ours, z["inc_feat_e2e_cleanfid_clip"]) > 10 * FEATURE_REL


def test_fid_equals_the_reference_frechet_of_golden_features(nets):
    z = _golden("inception")
    expected = reference_frechet(z["inc_feat299"], z["inc_feat_e2e"])
    assert fid([z["inc_x299"]], [z["inc_video"]], network=nets.inception) == pytest.approx(expected, rel=DISTANCE_REL)


# ---------------------------------------------------------------------------- LPIPS-VGG


@pytest.mark.parametrize("input_range, key", [("disco", "lp_disco"), ("standard", "lp_standard")])
def test_lpips_per_pair(nets, input_range, key):
    """Pairs: noise ±12, a (3, −2) roll, an unrelated image, an identical pair (golden 0)."""
    z = _golden("lpips")
    per_pair = [lpips(a[None], b[None], network=nets.lpips, input_range=input_range) for a, b in zip(z["lp_a"], z["lp_b"])]
    np.testing.assert_allclose(per_pair, z[key], rtol=0, atol=LPIPS_ABS)
    batched = lpips_per_frame(z["lp_a"], z["lp_b"], nets.lpips, input_range=input_range)
    np.testing.assert_allclose(batched, z[key], rtol=0, atol=LPIPS_ABS)
    assert lpips(z["lp_a"], z["lp_b"], network=nets.lpips, input_range=input_range) == pytest.approx(
        z[key].mean(), abs=LPIPS_ABS)


# ---------------------------------------------------------------------------- 3D ResNet-50 (FID-VID)


def test_resnet3d_features_of_112_clips(nets):
    z = _golden("resnet3d")
    clips = z["r3_clips"]  # (2, 16, 112, 112, 3)
    ours = np.concatenate([resnet3d_unit_features(clip, WHOLE_CLIP, nets.resnet3d) for clip in clips])
    assert _rel(ours, z["r3_feat"]) <= FEATURE_REL


def test_resnet3d_from_video_with_disco_resize_and_mean(nets):
    """16 frames 256×192 → bicubic float to 112 → minus the ActivityNet mean (0-255, no std)."""
    z = _golden("resnet3d")
    assert _rel(video_feature_resnet3d(z["video"], nets.resnet3d)[None], z["r3_feat_e2e"]) <= FEATURE_REL


def test_fid_vid_equals_the_reference_frechet_of_golden_features(nets):
    z = _golden("resnet3d")
    clips, video = z["r3_clips"], z["video"]
    expected = reference_frechet(z["r3_feat"], np.stack([z["r3_feat_e2e"][0], z["r3_feat"][1]]))
    ours = fid_vid([clips[0], clips[1]], [video, clips[1]], network=nets.resnet3d)
    assert ours == pytest.approx(expected, rel=DISTANCE_REL)


# ---------------------------------------------------------------------------- I3D (FVD)


def test_i3d_logits_of_224_clips(nets):
    z = _golden("i3d")
    ours = np.concatenate([i3d_unit_features(clip, WHOLE_CLIP, nets.i3d) for clip in z["i3d_clips"]])
    assert _rel(ours, z["i3d_logits_disco"]) <= FEATURE_REL
    # DisCo's copy (BatchNorm eps 1e-3) is the gated reference; VideoGPT's eps 1e-5 is measurably apart
    assert _rel(ours, z["i3d_logits_videogpt"]) > 10 * FEATURE_REL


def test_i3d_from_video_with_disco_resize_and_scaling(nets):
    """16 frames 256×192 → bicubic float to 224 → x / 127.5 − 1 → logits averaged over time."""
    z = _golden("i3d")
    assert _rel(i3d_unit_features(z["video"], WHOLE_CLIP, nets.i3d), z["i3d_logits_e2e_disco"]) <= FEATURE_REL


def test_fvd_equals_the_reference_frechet_of_golden_features(nets):
    z = _golden("i3d")
    clips, video = z["i3d_clips"], z["video"]
    expected = reference_frechet(z["i3d_logits_disco"],
                                  np.stack([z["i3d_logits_e2e_disco"][0], z["i3d_logits_disco"][1]]))
    ours = fvd([clips[0], clips[1]], [video, clips[1]], network=nets.i3d)
    assert ours == pytest.approx(expected, rel=DISTANCE_REL)


def test_reference_frechet_agrees_with_scipy_in_full_dimension():
    """The subspace shortcut above against the plain 8-d formula (so the reference itself is checked)."""
    rng = np.random.default_rng(0)
    f1, f2 = rng.standard_normal((3, 8)), rng.standard_normal((4, 8)) + 0.3
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = np.real(linalg.sqrtm(s1 @ s2))
    diff = f1.mean(0) - f2.mean(0)
    full = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert reference_frechet(f1, f2) == pytest.approx(full, rel=1e-6)
