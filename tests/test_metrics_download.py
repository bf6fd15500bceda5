"""`download-metrics`: real download code, exercised offline through file:// URLs and manual entries."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib

import pytest

from magicanimate.cli.evaluate import add_download_metrics_parser
from magicanimate.errors import WeightsError
from magicanimate.metrics import downloads
from magicanimate.metrics.downloads import WEIGHT_FILES, download_weights


def _serve(monkeypatch, tmp_path, key: str, payload: bytes, *, prefix: str | None) -> None:
    source = tmp_path / "server" / "file.bin"
    source.parent.mkdir()
    source.write_bytes(payload)
    spec = dataclasses.replace(WEIGHT_FILES[key], url=source.as_uri(), hf_repo=None, sha256_prefix=prefix, md5=None)
    monkeypatch.setitem(WEIGHT_FILES, key, spec)


def test_download_fetches_and_verifies(tmp_path, monkeypatch):
    payload = b"weights" * 100
    _serve(monkeypatch, tmp_path, "i3d", payload, prefix=hashlib.sha256(payload).hexdigest()[:8])
    cache = tmp_path / "cache"
    assert download_weights(["i3d"], cache_dir=cache) == {"i3d": "downloaded"}
    assert (cache / "i3d_pretrained_400.pt").read_bytes() == payload
    assert download_weights(["i3d"], cache_dir=cache) == {"i3d": "present"}
    assert not list(cache.glob("*.part"))


def test_download_with_wrong_hash_is_removed(tmp_path, monkeypatch):
    _serve(monkeypatch, tmp_path, "inception", b"tampered", prefix="6726825d")
    cache = tmp_path / "cache"
    with pytest.raises(WeightsError, match="6726825d"):
        download_weights(["inception"], cache_dir=cache)
    assert not (cache / WEIGHT_FILES["inception"].filename).exists()


def test_unreachable_url_is_a_weights_error(tmp_path, monkeypatch):
    spec = dataclasses.replace(WEIGHT_FILES["vgg16"], url=(tmp_path / "absent.pth").as_uri())
    monkeypatch.setitem(WEIGHT_FILES, "vgg16", spec)
    with pytest.raises(WeightsError, match="could not download 'vgg16-397923af.pth'"):
        download_weights(["vgg16"], cache_dir=tmp_path / "cache")


def test_manual_file_is_reported_not_fetched(tmp_path):
    status = download_weights(["resnet3d"], cache_dir=tmp_path)
    assert status["resnet3d"].startswith("manual:")
    assert "resnet-50-kinetics.pth" in status["resnet3d"] and str(tmp_path) in status["resnet3d"]


def test_default_set_skips_the_optional_torchscript(monkeypatch, tmp_path):
    fetched = []
    monkeypatch.setattr(downloads, "_fetch_url", lambda url, dest: fetched.append(dest.name) or dest.write_bytes(b"x"))
    monkeypatch.setattr(downloads, "_fetch_hf", lambda spec, dest: fetched.append(dest.name) or dest.write_bytes(b"x"))
    monkeypatch.setattr(downloads, "check_hash", lambda spec, path: None)
    status = download_weights(cache_dir=tmp_path)
    assert set(status) == {"inception", "vgg16", "lpips_vgg", "resnet3d", "i3d"}
    assert sorted(fetched) == sorted(["pt_inception-2015-12-05-6726825d.pth", "vgg16-397923af.pth",
                                      "lpips_vgg_v0.1.pth", "i3d_pretrained_400.pt"])


def test_cli_exit_code_and_messages(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_download_metrics_parser(parser.add_subparsers())
    args = parser.parse_args(["download-metrics", "--metrics-dir", str(tmp_path), "--only", "resnet3d"])
    assert args.func(args) == 1
    out = capsys.readouterr()
    assert "resnet-50-kinetics.pth: manual" in out.out
    assert "by hand" in out.err
