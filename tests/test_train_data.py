"""Training data and configuration: index, sampling, augmentation, skip-and-report, config schema."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from magicanimate.io.densepose_colors import colorize_parts
from magicanimate.synthetic.simple_person import render_parts
from magicanimate.errors import InputError
from magicanimate.training.augment import MIRRORED_PART, crop_box, mirror_densepose, part_labels
from magicanimate.training.config import DataConfig, describe_fields, iter_fields, load_config, parse_duration
from magicanimate.training.data import DrawSampler, Item, TrainingDataset, check_items, collate, load_items
from magicanimate.training.synthetic import make_synthetic_dataset
from magicanimate.io.video import write_video


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    root = make_synthetic_dataset(tmp_path_factory.mktemp("data"), clips=3, frames=12, size=(48, 40), images=2)
    # A clip whose DensePose is shorter than the video: must be skipped and reported, not crash.
    labels = render_parts(12, (48, 40), seed=9)
    write_video(root / "videos" / "broken.mp4", colorize_parts(labels), 25.0)
    write_video(root / "densepose" / "broken.mp4", colorize_parts(labels[:7]), 25.0)
    return root


def data_config(root, **kw) -> DataConfig:
    cfg = DataConfig(root=str(root), width=32, height=24, num_frames=4, num_workers=0)
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


# ---------------------------------------------------------------------------------- DensePose flip


def test_mirror_table_is_densepose_symmetry():
    # detectron2 DensePoseTransformData.POINT_LABEL_SYMMETRIES
    assert MIRRORED_PART.tolist() == [0, 1, 2, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17, 20, 19,
                                      22, 21, 24, 23]
    assert (MIRRORED_PART[MIRRORED_PART] == np.arange(25)).all()


def test_mirror_densepose_swaps_left_right_parts():
    labels = render_parts(3, (64, 64), seed=3)
    frames = colorize_parts(labels)
    assert (part_labels(frames) == labels).all()
    mirrored = mirror_densepose(frames)
    assert (mirrored == colorize_parts(MIRRORED_PART[labels][:, :, ::-1])).all()
    assert (mirror_densepose(mirrored) == frames).all()
    # The figure faces the camera: the right hand is on the image left before and after a flip.
    for image in (frames, mirrored):
        xs = np.nonzero(part_labels(image) == 3)[2]
        assert xs.size and xs.mean() < 32


def test_mirror_keeps_compression_noise():
    frames = colorize_parts(render_parts(1, (32, 32), seed=1)).astype(np.int16)
    noise = np.random.default_rng(0).integers(-3, 4, frames.shape)
    noisy = np.clip(frames + noise, 0, 255).astype(np.uint8)
    mirrored = mirror_densepose(noisy).astype(np.int16)
    clean = mirror_densepose(frames.astype(np.uint8)).astype(np.int16)
    assert np.abs(mirrored - clean).max() <= 3
    assert not (mirrored == clean).all()


def test_crop_box_covers_target_aspect():
    left, top, right, bottom = crop_box((100, 50), (32, 32), None)
    assert (right - left, bottom - top) == (50, 50) and left == 25 and top == 0
    box = crop_box((100, 50), (64, 16), np.random.default_rng(0))
    assert box[2] - box[0] == pytest.approx(100) and box[3] - box[1] == pytest.approx(25)


# ---------------------------------------------------------------------------------- index and samples


def test_discovery_and_index(dataset_root, tmp_path):
    items, problems = load_items(data_config(dataset_root), "train")
    assert sorted(i.kind for i in items) == ["image"] * 2 + ["video"] * 4
    assert problems == []
    # CSV and JSON indexes with splits
    (dataset_root / "index.csv").write_text("video,densepose,split\nvideos/clip000.mp4,densepose/clip000.mp4,train\n"
                                            "videos/clip001,densepose/clip001,val\nvideos/nope.mp4,densepose/x.mp4,train\n")
    items, problems = load_items(data_config(dataset_root, index="index.csv"), "train")
    assert [i.source.name for i in items] == ["clip000.mp4"] and "not found" in problems[0]
    (dataset_root / "index.json").write_text(json.dumps(
        [{"video": "images/image000.png", "densepose": "images_densepose/image000.png", "split": "val"}]))
    items, _ = load_items(data_config(dataset_root, index="index.json"), "val")
    assert [i.kind for i in items] == ["image"]


def test_samples_shapes_and_determinism(dataset_root):
    items, _ = load_items(data_config(dataset_root), "train")
    items = [i for i in items if i.source.stem != "broken"]
    ds = TrainingDataset(items, data_config(dataset_root, frame_stride=2), seed=5)
    a, b = ds[7], ds[7]
    assert a["reference"].shape == (24, 32, 3) and a["target"].shape == (4, 24, 32, 3)
    assert a["control"].shape == (4, 24, 32, 3) and a["temporal"] is True and a["kind"] == "video"
    for key in ("reference", "target", "control"):
        assert a[key].dtype == np.uint8 and (a[key] == b[key]).all()
    # A fresh dataset object (another worker process) gives the same sample.
    assert (TrainingDataset(items, ds.cfg, seed=5)[7]["target"] == a["target"]).all()
    assert not (ds[8]["target"] == a["target"]).all()
    batch = collate([ds[i] for i in range(3)])
    assert batch["target"].shape == (3, 4, 24, 32, 3) and batch["temporal"].dtype == torch.bool


def test_joint_training_draws(dataset_root):
    items, _ = load_items(data_config(dataset_root), "train")
    items = [i for i in items if i.source.stem != "broken"]
    ds = TrainingDataset(items, data_config(dataset_root, image_threshold=0.3, frame_threshold=0.5), seed=0)
    kinds = [ds.draw(i).kind for i in range(2000)]
    assert abs(kinds.count("image") / 2000 - 0.3) < 0.04 and abs(kinds.count("frame") / 2000 - 0.2) < 0.04
    for i, kind in enumerate(kinds[:40]):
        s = ds[i]
        assert s["kind"] == kind and s["temporal"] == (kind == "video")
        if kind != "video":  # a still repeated along frames
            assert (s["target"] == s["target"][:1]).all() and (s["control"] == s["control"][:1]).all()
        if kind == "image":
            assert (s["reference"] == s["target"][0]).all()
    with pytest.raises(InputError, match="no still images"):
        TrainingDataset([i for i in items if i.kind == "video"], data_config(dataset_root, image_threshold=0.1), seed=0)


def test_unreadable_items_are_skipped_and_reported(dataset_root, tmp_path):
    items, _ = load_items(data_config(dataset_root), "train")
    broken = [i for i in items if i.source.stem == "broken"]
    ds = TrainingDataset(broken + [i for i in items if i.source.stem == "clip000"], data_config(dataset_root),
                         seed=0)
    errors = [e for i in range(20) for e in ds[i]["errors"]]
    assert errors and all("length mismatch: 12 video frames, 7 DensePose frames" in e for e in errors)
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    unreadable = Item("video", tmp_path / "bad.mp4", tmp_path / "bad.mp4")
    problems = check_items(broken + [unreadable], data_config(dataset_root))
    assert len(problems) == 2 and "length mismatch" in problems[0] and "bad.mp4" in problems[1]
    only_broken = TrainingDataset(broken, data_config(dataset_root, max_retries=2), seed=0)
    with pytest.raises(InputError, match="3 items in a row could not be loaded"):
        only_broken[0]


def test_sampler_partitions_draws():
    def take(rank, start=0, n=6):
        it = iter(DrawSampler(start_micro_batch=start, rank=rank, world_size=2, batch_size=3))
        return [next(it) for _ in range(n)]

    assert take(0) == [0, 1, 2, 6, 7, 8] and take(1) == [3, 4, 5, 9, 10, 11]
    assert take(0, start=1, n=3) == [6, 7, 8]  # resuming at micro-batch 1 continues the same stream


# ---------------------------------------------------------------------------------- config


def test_config_yaml_overrides_and_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("stage: 2\ndata:\n  width: 256\n  num_frames: 16\noptim:\n  learning_rate: 1.0e-4\n")
    cfg = load_config(path, {"data.height": "128", "model.trainable": "unet.*motion_modules.*",
                             "ema.enabled": "true", "time_budget": "1h30m"})
    assert (cfg.stage, cfg.data.width, cfg.data.height, cfg.optim.learning_rate) == (2, 256, 128, 1e-4)
    assert cfg.model.trainable == ["unet.*motion_modules.*"] and cfg.ema.enabled is True
    assert cfg.time_budget_seconds() == 5400 and parse_duration("45s") == 45 and parse_duration(90) == 90
    cfg.check()
    with pytest.raises(InputError, match="did you mean data.width"):
        load_config(None, {"data.widht": 3})
    path.write_text("data:\n  colour: red\n")
    with pytest.raises(InputError, match="unknown config keys"):
        load_config(path)
    with pytest.raises(InputError, match="expected an integer"):
        load_config(None, {"data.width": "wide"})
    with pytest.raises(InputError, match="stage 1 trains on single frames"):
        load_config(None, {"stage": 1, "data.num_frames": 16}).check()


def test_every_field_is_documented_and_configs_parse():
    from conftest import REPO

    rows = describe_fields()
    assert all(help_text for _, _, help_text in rows)
    docs = (REPO / "docs" / "training.md").read_text()
    missing = [name for name, _ in iter_fields() if f"`{name}`" not in docs]
    assert not missing, f"docs/training.md does not document {missing}"
    for stage in (1, 2):
        cfg = load_config(REPO / "configs" / f"stage{stage}.yaml")
        assert cfg.stage == stage
        cfg.check()


def test_cli_flags_map_to_config_fields(tmp_path, capsys):
    from magicanimate.cli.train import FLAG_FIELDS, _check_flag_fields, main

    _check_flag_fields()
    assert set(FLAG_FIELDS) <= {name for name, _ in iter_fields()}
    assert main(["--stage", "2", "--max-steps", "7", "--time-budget", "2h", "--output", str(tmp_path),
                 "--set", "data.width=128", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "max_steps: 7" in out and "time_budget: 2h" in out and "width: 128" in out
    assert main(["--stage", "1", "--set", "data.root=/nonexistent", "--check-data"]) == 1
    assert "dataset folder not found" in capsys.readouterr().err
