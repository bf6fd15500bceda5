"""The quality benchmark's scoring and caching (issue 12), without a model."""

import json

import numpy as np
import pytest

from magicanimate.tools import quality_benchmark as qb


def _specs():
    return qb.benchmark_specs(videos=2, frames=18, size=64)


def test_the_true_video_scores_perfectly_and_a_frozen_one_does_not():
    spec = _specs()[0]
    sample = qb.make_sample(spec)
    perfect = qb.score(sample.appearance, sample)
    assert perfect["l1"] == 0 and perfect["silhouette_iou"] == 1 and perfect["part_colour_error"] == 0
    assert perfect["temporal_error"] == 0 and perfect["seam_error"] == 0 and perfect["ssim"] == pytest.approx(1)
    assert perfect["person_recall"] == 1 and perfect["background_false_alarm"] == 0
    frozen = qb.score(np.repeat(sample.appearance[:1], len(sample.appearance), axis=0), sample)
    assert frozen["temporal_error"] > 0 and frozen["silhouette_iou"] < 1


def test_rows_average_over_videos_and_a_rerun_reads_the_cache(tmp_path, monkeypatch):
    row = qb.QualityRow("copy the reference frame", "-")
    first = qb.run_row(row, qb.copy_reference, _specs(), work_dir=tmp_path)
    assert first["videos"] == 2
    assert first["psnr"] == pytest.approx(np.mean([v["psnr"] for v in first["per_video"]]))
    cached = sorted((tmp_path / "copy_the_reference_frame").glob("*.json"))
    assert len(cached) == 2 and json.loads(cached[0].read_text())["video"] == _specs()[0].name

    def must_not_generate(*_):
        raise AssertionError("generated again although cached")

    monkeypatch.setattr(qb, "make_sample", must_not_generate)
    again = qb.run_row(row, must_not_generate, _specs(), work_dir=tmp_path)
    assert again["psnr"] == first["psnr"]


def test_a_cached_result_made_otherwise_is_generated_again(tmp_path):
    row = qb.QualityRow("copy the reference frame", "-")
    specs = _specs()[:1]
    calls = []

    def counting(reference, sample):
        calls.append(1)
        return qb.copy_reference(reference, sample)

    qb.run_row(row, counting, specs, work_dir=tmp_path, made_by={"seed": 1, "weights": "aaaa"})
    qb.run_row(row, counting, specs, work_dir=tmp_path, made_by={"seed": 1, "weights": "aaaa"})
    assert len(calls) == 1  # same key: read back
    qb.run_row(row, counting, specs, work_dir=tmp_path, made_by={"seed": 1, "weights": "bbbb"})
    qb.run_row(row, counting, specs, work_dir=tmp_path, made_by={"seed": 2, "weights": "bbbb"})
    assert len(calls) == 3  # other weights, then another seed: generated again
    cache = tmp_path / "copy_the_reference_frame" / f"{specs[0].name}.json"
    cache.write_text('{"video": "trunc')  # a broken cache file is regenerated, not an error
    qb.run_row(row, counting, specs, work_dir=tmp_path, made_by={"seed": 2, "weights": "bbbb"})
    assert len(calls) == 4 and json.loads(cache.read_text())["key"]["seed"] == 2
    stale = json.loads(cache.read_text())
    del stale["person_recall"]  # a result written before that metric existed is scored again
    cache.write_text(json.dumps(stale))
    qb.run_row(row, counting, specs, work_dir=tmp_path, made_by={"seed": 2, "weights": "bbbb"})
    assert len(calls) == 5 and "person_recall" in json.loads(cache.read_text())
    zoomed = qb.benchmark_specs(videos=1, frames=18, size=64, zoom=1.5)  # the same video name, people drawn larger
    assert zoomed[0].name == specs[0].name and zoomed[0].zoom == 1.5
    qb.run_row(row, counting, zoomed, work_dir=tmp_path, made_by={"seed": 2, "weights": "bbbb"})
    assert len(calls) == 6 and json.loads(cache.read_text())["key"]["zoom"] == 1.5
    assert not list(tmp_path.rglob("*.part"))


def test_the_weights_fingerprint_follows_the_files(tmp_path):
    import os

    (tmp_path / "unet").mkdir()
    weights = tmp_path / "unet" / "model.safetensors"
    weights.write_bytes(b"1234")
    first = qb.weights_fingerprint(tmp_path)
    assert qb.weights_fingerprint(tmp_path) == first
    weights.write_bytes(b"12345")  # another size
    second = qb.weights_fingerprint(tmp_path)
    os.utime(weights, ns=(1, 1))  # same size, another modification time
    assert len({first, second, qb.weights_fingerprint(tmp_path)}) == 3


def test_heldout_videos_are_heldout_identities_and_motions():
    from magicanimate.synthetic.dataset import HELDOUT_IDENTITY_START
    from magicanimate.synthetic.motion import HELDOUT_MOTIONS

    specs = qb.benchmark_specs(videos=16, frames=32, size=128)
    assert len(specs) == 16 and all(s.identity >= HELDOUT_IDENTITY_START for s in specs)
    assert {s.motion for s in specs} == set(HELDOUT_MOTIONS) and all(s.num_frames == 32 for s in specs)


def test_train_split_videos_are_clips_the_training_set_holds(tmp_path):
    import csv

    from magicanimate.synthetic.dataset import make_sample, write_dataset

    root = write_dataset(tmp_path, train=3, heldout=1, num_frames=4, size=(32, 32))
    with (root / "index.csv").open() as f:
        trained = {row["video"] for row in csv.DictReader(f) if row["split"] == "train"}
    specs = qb.benchmark_specs(videos=3, frames=4, size=32, split="train")
    assert {f"videos/{s.name}.npy" for s in specs} == trained
    np.testing.assert_array_equal(np.load(root / "videos" / f"{specs[2].name}.npy"), make_sample(specs[2]).appearance)


def test_rows_cover_the_baselines_ablations_and_lossy_modes():
    names = [r.name for r in qb.default_rows(steps=25, stage1_weights=True, stage2_weights=True)]
    for part in ("faithful", "copy the reference", "VAE round trip", "random weights", "stage-1", "stage-2",
                 "overlap 0", "per segment", "DPM-Solver++ 12", "UniPC 12", "DeepCache interval 2", "DeepCache interval 3", "bfloat16"):
        assert any(part in n for n in names), part
    assert all(r.options["steps"] in (25, 12) for r in qb.default_rows(steps=25, stage1_weights=False))


def test_the_vae_round_trip_is_the_vae_applied_to_the_true_frames():
    import torch

    from magicanimate.sampling.pipeline import MagicAnimate
    from magicanimate.weights.random import TINY, random_components

    torch.manual_seed(0)
    model = MagicAnimate(random_components(TINY, device="cpu", dtype=torch.float32), device="cpu",
                         dtype=torch.float32)
    sample = qb.make_sample(_specs()[0])
    reference, _ = qb.make_reference(_specs()[0])
    got = qb.vae_round_trip(model)(reference, sample)
    # diffusers' AutoencoderKL directly: posterior mean of each true frame, decoded, [-1, 1] -> [0, 1]
    vae = model.components.vae
    x = torch.from_numpy(sample.appearance).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        expected = vae.decode(vae.encode(x).latent_dist.mean).sample
    expected = ((expected + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    assert got.shape == sample.appearance.shape[:3] + (3,)
    np.testing.assert_allclose(got, expected, atol=1e-4)  # x 0.18215 and back, frame by frame vs batched


def test_real_motion_rows_score_the_motions_own_person_mask(tmp_path):
    from types import SimpleNamespace

    from magicanimate.io.densepose_colors import colorize_parts
    from magicanimate.synthetic.dataset import scene_for

    labels = np.zeros((3, 32, 32), np.uint8)
    labels[:, 8:24, 12:20] = 5  # the motion's person: a 16 x 8 block at 32 px, 8 x 4 at the model's 16 px
    np.save(tmp_path / "motion.npy", colorize_parts(labels))  # dp_segm frames (3, 32, 32, 3)
    motion = tmp_path / "motion.npy"

    class PaintsTheMask:  # a stand-in model: a black person exactly where the motion has one, half a column off
        native_size = 16

        def __init__(self, shift: int):
            self.shift = shift

        def animate(self, reference, motion, *, options):
            frames = np.repeat(scene[None], len(motion), axis=0).copy()
            frames[:, 4:12, 6 + self.shift:10 + self.shift] = 0
            return SimpleNamespace(frames=frames.astype(np.float32) / 255)

    spec = qb.split_specs("heldout", count=1, num_frames=1, size=(16, 16))[0]
    scene = scene_for(spec)
    exact, = qb.real_motion_benchmark(PaintsTheMask(0), [motion], frames=3, steps=1)
    assert exact["motion"] == "motion.npy" and exact["frames"] == 3 and exact["silhouette_iou"] == 1
    assert exact["person_recall"] == 1 and exact["background_false_alarm"] == 0
    shifted, = qb.real_motion_benchmark(PaintsTheMask(2), [motion], frames=3, steps=1)
    # 16 of the 32 true pixels found, 16 of the 224 background pixels painted: IoU 16 / 48
    assert shifted["silhouette_iou"] == pytest.approx(16 / 48)
    assert shifted["person_recall"] == pytest.approx(0.5)
    assert shifted["background_false_alarm"] == pytest.approx(16 / 224)


def test_real_motion_rows_can_frame_the_reference_like_the_motion(tmp_path):
    from types import SimpleNamespace

    from magicanimate.io.densepose_colors import colorize_parts
    from magicanimate.synthetic.dataset import draw, identity_for, reference_pose, scene_for

    pose = reference_pose()  # a close-up: the head twice as large as in the standing reference, legs cut off
    pose["scale"][:], pose["ground"][:] = 1.4, 1.5
    labels = draw(identity_for(3), pose, size=(64, 64)).labels  # (1, 64, 64)
    np.save(tmp_path / "close.npy", colorize_parts(np.repeat(labels, 2, axis=0)))
    seen = []

    class Records:
        native_size = 32

        def animate(self, reference, motion, *, options):
            seen.append(reference)
            return SimpleNamespace(frames=np.zeros((len(motion), 32, 32, 3), np.float32))

    qb.real_motion_benchmark(Records(), [tmp_path / "close.npy"], frames=2, steps=1)
    qb.real_motion_benchmark(Records(), [tmp_path / "close.npy"], frames=2, steps=1, framing="motion")
    standing, framed = seen
    scene = scene_for(qb.split_specs("heldout", count=1, num_frames=1, size=(32, 32))[0])
    person_rows = [np.nonzero(np.abs(image.astype(int) - scene).max(axis=-1) > 0)[0] for image in seen]
    assert person_rows[1].max() == 31 and person_rows[0].max() < 31  # the framed person runs off the bottom
    assert (person_rows[1].max() - person_rows[1].min()) > 1.3 * (person_rows[0].max() - person_rows[0].min())
    assert standing.shape == framed.shape == (32, 32, 3)
    with pytest.raises(ValueError, match="framing"):
        qb.real_motion_benchmark(Records(), [tmp_path / "close.npy"], frames=2, framing="closer")


def test_the_random_row_has_the_benchmarked_weights_widths(tmp_path):
    """The untrained baseline is built at the widths read back from the weights folder under test."""
    import dataclasses

    from magicanimate.weights.random import MINI, size_of_folder, write_random_weights

    wider = dataclasses.replace(MINI, name="folder", unet_channels=(64, 64, 64, 64), latent_channels=8)
    write_random_weights(tmp_path / "folder", wider)
    assert size_of_folder(tmp_path / "folder") == wider
