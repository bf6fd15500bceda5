"""`magicanimate evaluate`: pairing, unit cutting, the seven metrics, reports and user errors, offline."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn

from conftest import golden_metric_arrays, reference_frechet

from magicanimate.cli.evaluate import add_evaluate_parser, run_evaluate
from magicanimate.errors import InputError, OutputError, WeightsError
from magicanimate.metrics import FeatureNetworks, random_feature_networks
from magicanimate.metrics.inputs import read_source, list_sources
from magicanimate.metrics.protocol import TABLE_METRICS

HEADER = "| Method | L1 | PSNR | SSIM | LPIPS | FID | FID-VID | FVD |"


class Probe(nn.Module):
    """Cheap stand-in feature network (channel means projected to `dim`)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(3, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.flatten(2).mean(dim=2))  # (B, 3, ...) → (B, 3) → (B, dim)


@pytest.fixture(scope="module")
def probes() -> FeatureNetworks:
    torch.manual_seed(0)
    lpips = random_feature_networks(("lpips",), seed=0).lpips
    return FeatureNetworks(inception=Probe(16), resnet3d=Probe(16), i3d=Probe(8), lpips=lpips)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_evaluate_parser(parser.add_subparsers())
    return parser.parse_args(["evaluate", *argv])


def _videos(seed: int, frames: int, size=(24, 32)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 256, (frames, *size, 3), dtype=np.uint8)
    gen = np.clip(gt.astype(int) + rng.integers(-40, 41, gt.shape), 0, 255).astype(np.uint8)
    return gen, gt


def _write_frames(folder: Path, video: np.ndarray) -> None:
    folder.mkdir(parents=True)
    for i, frame in enumerate(video):
        Image.fromarray(frame).save(folder / f"frame_{i}.png")  # unpadded: natural sort must order them


def _dataset(root: Path, lengths: dict[str, int], *, gen_scale: int = 1,
             size=(24, 32)) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    data = {}
    for seed, (name, frames) in enumerate(lengths.items()):
        gen, gt = _videos(seed, frames, size)
        if gen_scale != 1:  # generated at another resolution: nearest-neighbour upscale
            gen = gen.repeat(gen_scale, axis=1).repeat(gen_scale, axis=2)
        _write_frames(root / "gen" / name, gen)
        _write_frames(root / "gt" / name, gt)
        data[name] = (gen, gt)
    return data


def _run(tmp_path: Path, *extra: str, networks: FeatureNetworks | None = None) -> dict:
    args = _parse("--generated", str(tmp_path / "gen"), "--ground-truth", str(tmp_path / "gt"),
                  "--output", str(tmp_path / "out"), "--no-progress", "--device", "cpu", *extra)
    assert run_evaluate(args, networks=networks) == 0
    return json.loads((tmp_path / "out" / "metrics.json").read_text())


@pytest.mark.slow
def test_cli_runs_offline_with_random_weight_networks(tmp_path, capsys):
    """The whole path with the real architectures (random weights) at their documented input sizes."""
    _dataset(tmp_path, {"a": 1, "b": 1})  # one 16-frame unit per video (padded): 2 samples per side
    args = _parse("--generated", str(tmp_path / "gen"), "--ground-truth", str(tmp_path / "gt"),
                  "--output", str(tmp_path / "out"), "--random-weights-for-testing", "--device", "cpu")
    assert args.func(args) == 0
    out = capsys.readouterr()
    assert HEADER in out.out and "MagicAnimate (paper) | 3.13e-04 | 29.16" in out.out
    assert "TEST ONLY" in out.out
    assert "evaluate" in out.err  # the progress bar
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert list(report["metrics"]) == list(TABLE_METRICS)
    # random weights: the values mean nothing, but every metric ran to a finite non-negative number
    # (the values themselves are checked with golden networks below)
    assert all(np.isfinite(v) and v >= 0 for v in report["metrics"].values()), report["metrics"]
    assert report["counts"] == {"videos": 2, "frames": 2, "units": 2}
    assert report["networks"].startswith("random weights")
    rows = list(csv.reader((tmp_path / "out" / "metrics.csv").open()))
    assert rows[0][:9] == ["method", "protocol", *TABLE_METRICS] and rows[1][:2] == ["gen", "disco"]
    assert len(list(csv.DictReader((tmp_path / "out" / "per_video.csv").open()))) == 2


def _disco_psnr(gen: np.ndarray, gt: np.ndarray) -> float:
    """DisCo's code on uint8 arrays (the difference and its square wrap around), averaged over frames."""
    values = []
    for a, b in zip(gen, gt):
        mse = np.mean((a - b) ** 2)
        values.append(100.0 if mse == 0 else 20 * np.log10(255.0 / np.sqrt(mse)))
    return float(np.mean(values))


def _gray(video: np.ndarray) -> np.ndarray:
    """Float luma weights, rounded: within one level of OpenCV's fixed-point RGB2GRAY."""
    return np.rint(video @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)


def test_paired_metrics_pool_frames_over_videos(tmp_path, probes):
    """Independent values: numpy, DisCo's uint8 expression, scikit-image; pooled over all 8 frames."""
    data = _dataset(tmp_path, {"a": 5, "b": 3}, gen_scale=2)
    report = _run(tmp_path, networks=probes)
    # A 2× nearest-neighbour upscale resized back by half-pixel bilinear averages 2×2 equal pixels: the
    # generated frames compare as the originals, so the expected values need no resize.
    gen = np.concatenate([g[:, ::2, ::2] for g, _ in data.values()])
    gt = np.concatenate([t for _, t in data.values()])
    diff = gen.astype(float) - gt.astype(float)
    assert report["metrics"]["L1"] == pytest.approx(np.abs(diff).mean() / (24 * 32), rel=1e-12)
    assert report["metrics"]["PSNR"] == pytest.approx(_disco_psnr(gen, gt), rel=1e-12)
    true_psnr = [peak_signal_noise_ratio(b, a, data_range=255) for a, b in zip(gen, gt)]
    assert report["variants"]["psnr"] == pytest.approx(np.mean(true_psnr), rel=1e-12)
    # pooled over frames, not the mean of the two videos' means (5 and 3 frames weigh differently)
    assert report["variants"]["psnr"] != pytest.approx(np.mean([np.mean(true_psnr[:5]), np.mean(true_psnr[5:])]),
                                                       rel=1e-9)
    ssim_ref = [structural_similarity(_gray(a), _gray(b), data_range=255) for a, b in zip(gen, gt)]
    assert report["metrics"]["SSIM"] == pytest.approx(np.mean(ssim_ref), abs=2e-3)
    assert report["protocol"]["name"] == "disco"


# ---------------------------------------------------------------------------- golden networks, end to end


def _write_set(root: Path, videos: dict[str, np.ndarray]) -> None:
    for name, video in videos.items():
        _write_frames(root / name, video)


def _run_golden(tmp_path: Path, weights: Path, *metrics: str) -> dict:
    args = _parse("--generated", str(tmp_path / "gen"), "--ground-truth", str(tmp_path / "gt"),
                  "--output", str(tmp_path / "out"), "--no-progress", "--device", "cpu",
                  "--metrics-dir", str(weights), "--metrics", *metrics)
    assert run_evaluate(args) == 0
    return json.loads((tmp_path / "out" / "metrics.json").read_text())


def test_cli_fid_and_lpips_with_golden_networks(tmp_path, golden_metric_weights):
    """`magicanimate evaluate` from PNG folders, with the reference networks' weights: golden values."""
    inc, lp = golden_metric_arrays("inception"), golden_metric_arrays("lpips")
    _write_set(tmp_path / "gen", {"frames": inc["inc_video"]})  # 256×192: resized to 299 from its own frames
    _write_set(tmp_path / "gt", {"frames": inc["inc_x299"]})
    report = _run_golden(tmp_path, golden_metric_weights, "FID")
    expected = reference_frechet(inc["inc_feat_e2e"], inc["inc_feat299"])
    assert report["metrics"]["FID"] == pytest.approx(expected, rel=1e-4)

    lp_dir = tmp_path / "lpips"
    _write_set(lp_dir / "gen", {"pairs": lp["lp_a"]})
    _write_set(lp_dir / "gt", {"pairs": lp["lp_b"]})
    disco = _run_golden(lp_dir, golden_metric_weights, "LPIPS")
    assert disco["metrics"]["LPIPS"] == pytest.approx(lp["lp_disco"].mean(), abs=1e-5)


@pytest.mark.slow
def test_cli_fvd_and_fid_vid_with_golden_networks(tmp_path, golden_metric_weights):
    """Two 16-frame videos per side (DisCo units: one window each), paired by name, different sizes."""
    i3d = golden_metric_arrays("i3d")
    _write_set(tmp_path / "gen", {"p": i3d["video"], "q": i3d["i3d_clips"][1]})
    _write_set(tmp_path / "gt", {"p": i3d["i3d_clips"][0], "q": i3d["i3d_clips"][1]})
    report = _run_golden(tmp_path, golden_metric_weights, "FVD")
    assert report["counts"]["units"] == 2
    expected = reference_frechet(np.stack([i3d["i3d_logits_e2e_disco"][0], i3d["i3d_logits_disco"][1]]),
                                 i3d["i3d_logits_disco"])
    assert report["metrics"]["FVD"] == pytest.approx(expected, rel=1e-4)

    r3 = golden_metric_arrays("resnet3d")
    r3_dir = tmp_path / "fid_vid"
    _write_set(r3_dir / "gen", {"p": r3["video"], "q": r3["r3_clips"][1]})
    _write_set(r3_dir / "gt", {"p": r3["r3_clips"][0], "q": r3["r3_clips"][1]})
    report = _run_golden(r3_dir, golden_metric_weights, "FID-VID")
    expected = reference_frechet(np.stack([r3["r3_feat_e2e"][0], r3["r3_feat"][1]]), r3["r3_feat"])
    assert report["metrics"]["FID-VID"] == pytest.approx(expected, rel=1e-4)


def test_protocols_differ_where_documented(tmp_path, probes):
    data = _dataset(tmp_path, {"a": 20, "b": 18}, size=(16, 16))
    disco = _run(tmp_path, networks=probes)
    standard = _run(tmp_path, "--protocol", "standard", "--overwrite", networks=probes)
    # 16-frame units: every window (DisCo) vs non-overlapping, last padded
    assert disco["counts"]["units"] == (20 - 15) + (18 - 15)
    assert standard["counts"]["units"] == 2 + 2
    gen = np.concatenate([g for g, _ in data.values()])
    gt = np.concatenate([t for _, t in data.values()])
    true_psnr = np.mean([peak_signal_noise_ratio(b, a, data_range=255) for a, b in zip(gen, gt)])
    assert standard["metrics"]["PSNR"] == pytest.approx(true_psnr, rel=1e-12)
    assert disco["metrics"]["PSNR"] == pytest.approx(_disco_psnr(gen, gt), rel=1e-12)
    assert disco["metrics"]["LPIPS"] != pytest.approx(standard["metrics"]["LPIPS"])
    assert disco["metrics"]["L1"] == standard["metrics"]["L1"]


def test_video_files_and_gifs_are_paired_by_name(tmp_path, probes):
    gen, gt = _videos(0, 6, size=(32, 32))
    for folder, video in (("gen", gen), ("gt", gt)):
        (tmp_path / folder).mkdir()
        with av.open(str(tmp_path / folder / "clip.mp4"), "w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
            for frame in video:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
        frames = [Image.fromarray(f) for f in video]
        frames[0].save(tmp_path / folder / "loop.gif", save_all=True, append_images=frames[1:])
    assert sorted(list_sources(tmp_path / "gen")) == ["clip", "loop"]
    assert read_source(list_sources(tmp_path / "gt")["clip"]).shape == (6, 32, 32, 3)
    report = _run(tmp_path, "--metrics", "l1", "psnr", "fvd", networks=probes)
    assert report["counts"] == {"videos": 2, "frames": 12, "units": 2}
    assert set(report["metrics"]) == {"L1", "PSNR", "FVD"}


def test_unpaired_names_are_an_input_error(tmp_path, probes):
    _dataset(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "gt" / "b").rename(tmp_path / "gt" / "c")
    with pytest.raises(InputError, match=r"only in --generated: \['b'\]; only in --ground-truth: \['c'\]"):
        _run(tmp_path, networks=probes)


def test_length_mismatch_is_an_input_error_unless_truncated(tmp_path, probes):
    _dataset(tmp_path, {"a": 4})
    (tmp_path / "gt" / "a" / "frame_3.png").unlink()
    with pytest.raises(InputError, match=r"a: 4 generated vs 3 ground-truth frames.*--truncate"):
        _run(tmp_path, networks=probes)
    report = _run(tmp_path, "--truncate", "--metrics", "L1", "SSIM", networks=probes)
    assert report["counts"]["frames"] == 3
    assert any("truncated" in note for note in report["notes"])


def test_existing_report_is_not_overwritten(tmp_path, probes):
    _dataset(tmp_path, {"a": 2})
    _run(tmp_path, "--metrics", "L1", networks=probes)
    with pytest.raises(OutputError, match="--overwrite"):
        _run(tmp_path, "--metrics", "L1", networks=probes)
    _run(tmp_path, "--metrics", "L1", "--overwrite", networks=probes)


def test_missing_weights_are_reported_before_any_work(tmp_path):
    _dataset(tmp_path, {"a": 2})
    with pytest.raises(WeightsError) as info:
        _run(tmp_path, "--metrics-dir", str(tmp_path / "empty"))
    message = str(info.value)
    for name in ("pt_inception-2015-12-05-6726825d.pth", "vgg16-397923af.pth", "resnet-50-kinetics.pth",
                 "i3d_pretrained_400.pt", "magicanimate download-metrics"):
        assert name in message
    assert not (tmp_path / "out").exists()
    # metrics that need no network run without any weight file
    report = _run(tmp_path, "--metrics-dir", str(tmp_path / "empty"), "--metrics", "l1", "psnr", "ssim")
    assert list(report["metrics"]) == ["L1", "PSNR", "SSIM"]


def test_too_few_units_gives_null_with_a_note(tmp_path, probes):
    _dataset(tmp_path, {"a": 3})
    report = _run(tmp_path, "--metrics", "FID-VID", "FID", networks=probes)
    assert report["metrics"]["FID-VID"] is None
    assert isinstance(report["metrics"]["FID"], float)  # 3 frames are 3 samples
    assert any("FID-VID needs at least 2 samples" in n for n in report["notes"])


def test_bad_arguments(tmp_path, probes):
    _dataset(tmp_path, {"a": 2})
    with pytest.raises(InputError, match="unit-stride"):
        _run(tmp_path, "--unit-stride", "17", networks=probes)
    with pytest.raises(InputError, match="not a folder"):
        run_evaluate(_parse("--generated", str(tmp_path / "nope"), "--ground-truth", str(tmp_path / "gt")))
    with pytest.raises(SystemExit):
        _parse("--generated", "a", "--ground-truth", "b", "--metrics", "IS")
