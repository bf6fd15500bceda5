"""`--weights mini`, the weights used when none are given, and the weights' native size."""

from pathlib import Path

import pytest
import torch

import magicanimate
from magicanimate.errors import WeightsError
from magicanimate.weights import layout
from magicanimate.weights.random import MINI, TINY, random_components, write_tiny_weights


def test_mini_weights_is_a_path_inside_the_package():
    assert isinstance(magicanimate.MINI_WEIGHTS, Path)
    assert magicanimate.MINI_WEIGHTS == Path(magicanimate.__file__).resolve().parent / "mini_weights"


def test_the_name_mini_resolves_to_the_shipped_folder(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setitem(layout.NAMED_WEIGHTS, "mini", shipped)
    monkeypatch.chdir(tmp_path)
    assert layout.resolve_weights("mini") == shipped
    assert layout.resolve_weights("other/folder") == Path("other/folder")
    (tmp_path / "mini").mkdir()  # a folder of that name here is what the user means
    assert layout.resolve_weights("mini") == Path("mini")


def test_missing_mini_weights_say_how_to_build_them(tmp_path, monkeypatch):
    monkeypatch.setitem(layout.NAMED_WEIGHTS, "mini", tmp_path / "absent")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightsError, match="make mini-model"):
        layout.resolve_weights("mini")


def test_default_weights_prefer_released_ones_then_the_mini_model(tmp_path, monkeypatch):
    def offline(**_):
        raise WeightsError("offline")

    monkeypatch.setattr(layout, "hub_weight_paths", offline)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAGICANIMATE_WEIGHTS", raising=False)
    monkeypatch.setattr(layout, "MINI_WEIGHTS", tmp_path / "absent")
    weights, line = layout.default_weights()
    assert weights is None and "downloaded" in line
    mini = tmp_path / "mini_weights"
    mini.mkdir()
    monkeypatch.setattr(layout, "MINI_WEIGHTS", mini)
    weights, line = layout.default_weights()
    assert weights == str(mini) and "mini model" in line
    released = tmp_path / "released"
    write_tiny_weights(released)
    monkeypatch.setenv("MAGICANIMATE_WEIGHTS", str(released))
    weights, line = layout.default_weights()
    assert weights == str(released) and "released weights" in line


@pytest.mark.parametrize("size, expected", [(MINI, 64), (TINY, 512)])
def test_native_size_is_the_unet_sample_size_times_the_vae_downsampling(size, expected):
    from magicanimate.sampling.pipeline import MagicAnimate

    model = MagicAnimate(random_components(size, device="cpu", dtype=torch.float32), device="cpu",
                         dtype=torch.float32)
    # MINI: sample_size 8 latents x 2**3 (four VAE blocks); TINY: the SD 1.5 value 64 x 8
    assert model.native_size == expected
