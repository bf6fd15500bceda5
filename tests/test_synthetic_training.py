"""The synthetic set as a training data source: ``data.root = "synthetic:..."``."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from magicanimate.synthetic import SampleSpec, make_sample, split_specs, write_dataset
from magicanimate.synthetic.dataset import materialise, parse_source
from magicanimate.training.config import DataConfig
from magicanimate.training.data import TrainingDataset, load_items

SOURCE = "synthetic:train=3,heldout=2,images=2,frames=6,size=32"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("synthetic-cache")


def test_parse_source() -> None:
    assert parse_source("synthetic") == {"train": 64, "heldout": 16, "images": 0, "frames": 32, "size": 128,
                                         "zoom": 1.0}
    assert parse_source("synthetic:train=5,size=64")["train"] == 5
    assert parse_source("synthetic:train=5,zoom=1.5")["zoom"] == 1.5
    for bad in ("synthetic:trian=5", "synthetic:zoom=big", "synthetic:zoom=0", "synthetic:zoom=-1",
                "synthetic:size=6.5"):
        with pytest.raises(ValueError):
            parse_source(bad)


def test_a_zoomed_source_gets_its_own_folder_and_zoomed_clips(tmp_path) -> None:
    plain = materialise("synthetic:train=1,heldout=0,frames=3,size=32", cache=tmp_path)
    zoomed = materialise("synthetic:train=1,heldout=0,frames=3,size=32,zoom=1.5", cache=tmp_path)
    assert plain.name == "frames3_heldout0_images0_size32_train1"  # the name folders had before zoom existed
    assert zoomed.name == "frames3_heldout0_images0_size32_train1_zoom1.5"
    spec = split_specs("train", count=1, num_frames=3, size=(32, 32), zoom=1.5)[0]
    np.testing.assert_array_equal(np.load(zoomed / "videos" / f"{spec.name}.npy"), make_sample(spec).appearance)
    assert np.load(zoomed / "labels" / f"{spec.name}.npy").astype(bool).sum() > \
        1.5 * np.load(plain / "labels" / f"{spec.name}.npy").astype(bool).sum()


def test_written_clips_are_the_generated_samples(tmp_path) -> None:
    root = write_dataset(tmp_path / "set", train=2, heldout=1, num_frames=5, size=(32, 32))
    with (root / "index.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["split"] for r in rows] == ["train", "train", "heldout"]
    spec = split_specs("heldout", count=1, num_frames=5, size=(32, 32))[0]
    sample = make_sample(spec)
    np.testing.assert_array_equal(np.load(root / rows[2]["video"]), sample.appearance)
    np.testing.assert_array_equal(np.load(root / rows[2]["densepose"]), sample.densepose)
    np.testing.assert_array_equal(np.load(root / "labels" / f"{spec.name}.npy"), sample.labels)


def test_trainer_data_from_a_synthetic_root(cache, monkeypatch) -> None:
    monkeypatch.setenv("MAGICANIMATE_SYNTHETIC_CACHE", str(cache))
    cfg = DataConfig(root=SOURCE, width=32, height=32, num_frames=4, num_workers=0, image_threshold=0.3)
    train, problems = load_items(cfg, "train")
    heldout, _ = load_items(cfg, "heldout")
    assert not problems
    assert sorted(i.kind for i in train) == ["image", "image", "video", "video", "video"]
    assert len(heldout) == 2 and all(i.kind == "video" for i in heldout)
    assert {i.source for i in train}.isdisjoint({i.source for i in heldout})
    root = materialise(SOURCE)  # already there: the same folder, not rewritten
    assert root.parent == cache and (root / ".complete").exists()
    ds = TrainingDataset(train, cfg, seed=1)
    sample = ds[3]
    assert sample["target"].shape == (4, 32, 32, 3) and sample["control"].shape == (4, 32, 32, 3)
    assert sample["reference"].shape == (32, 32, 3)
    first = make_sample(SampleSpec(identity=0, motion="jumping_jacks", motion_seed=0, background_seed=0,
                                   num_frames=6, size=(32, 32)))
    np.testing.assert_array_equal(np.load(root / "videos" / f"{first.spec.name}.npy"), first.appearance)


@pytest.mark.parametrize("argv", [["python -m magicanimate.synthetic", "preview", "--zoom", "0"],
                                  ["python -m magicanimate.bench", "--quality", "--zoom", "nan"]])
def test_a_bad_zoom_on_the_command_line_is_a_one_line_usage_error(argv, capsys) -> None:
    from magicanimate.synthetic.__main__ import main as synthetic_main
    from magicanimate.tools.benchmark import main as bench_main

    main = synthetic_main if argv[0].endswith("synthetic") else bench_main
    with pytest.raises(SystemExit) as exit_info:
        main(argv[1:])
    assert exit_info.value.code == 2
    assert "--zoom: zoom must be a number in (0, 4]" in capsys.readouterr().err
