"""The size limit: an output size whose estimated peak memory exceeds the device's is refused before loading."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_WEIGHTS, require
from goldens import case_a
from magicanimate.cli.main import main
from magicanimate.errors import InputError
from magicanimate.options import SampleOptions
from magicanimate.sampling.memory_limit import GIB, PhaseLine, SizeLimit
from magicanimate.tools.memory_estimate import estimate_peak_memory, meta_model, size_limit
from magicanimate.weights.random import SIZES


def hand_made(**options) -> SizeLimit:
    """Denoise: 1 GiB + 1024 B/pixel; decode: 2 GiB + 512 B/pixel; a 10 GiB device (9 GiB usable)."""
    return SizeLimit(lines=(PhaseLine("denoise", GIB, 1024.0), PhaseLine("VAE decode", 2 * GIB, 512.0)),
                     device_bytes=10 * GIB, device="cuda:0", options=SampleOptions(**options), dtype="float16")


def test_largest_size_by_hand():
    limit = hand_made()
    # denoise allows (9 - 1) GiB / 1024 B = 8 Mi pixels, decode (9 - 2) GiB / 512 B = 14 Mi: denoise binds
    assert limit.peak_bytes((2048, 1024)) == GIB + 1024 * 2048 * 1024
    assert limit.largest_size((100000, 100000)) == (2896, 2896)  # sqrt(8 Mi) = 2896.3
    assert limit.largest_size((30000, 10000)) == (5016, 1672)  # x sqrt(8 Mi / 300 M) = 0.16722
    assert limit.largest_size((512, 512)) == (512, 512)  # never larger than asked
    limit.check("2896")
    with pytest.raises(InputError) as err:
        limit.check("2904")
    assert str(err.value) == (
        "--size 2904x2904 needs about 9.04 GiB of cuda:0 memory (estimated peak, float16), more than the "
        "9 GiB planned for on this device (90% of 10 GiB): the largest size of this aspect that fits is "
        "2896x2896; to lower the memory use --offload, --ff-chunking, --decode-chunk 1 or --vae-tiling")


def test_message_names_only_the_options_not_yet_on():
    all_on = dict(offload=True, ff_chunking=True, decode_chunk=1, vae_tiling=True)
    with pytest.raises(InputError, match=r"fits is 2896x2896$"):
        hand_made(**all_on).check("100000", flag="size")
    cpu32 = SizeLimit(lines=hand_made().lines, device_bytes=10 * GIB, device="cpu",
                      options=SampleOptions(**all_on), dtype="float32")
    with pytest.raises(InputError, match=r"^size 100000x100000 .*; to lower the memory use --dtype bfloat16$"):
        cpu32.check("100000", flag="size")
    weights_too_big = SizeLimit(lines=(PhaseLine("denoise", 20 * GIB, 10.0),), device_bytes=10 * GIB,
                                device="cuda:0", options=SampleOptions(), dtype="float16")
    with pytest.raises(InputError, match="no size fits with these settings; to lower the memory use --offload"):
        weights_too_big.check("64")


@pytest.mark.parametrize("options", [{}, {"offload": True, "ff_chunking": True, "decode_chunk": 1}])
def test_calibrated_lines_predict_the_estimator(options):
    """Two calibration sizes give lines that match a direct estimate at other sizes and aspects."""
    model = meta_model(SIZES["tiny"], torch.float32)
    opts = SampleOptions(**options)
    limit = size_limit(model, options=opts, device=torch.device("cpu"), device_bytes=64 * GIB)
    kw = dict(offload=opts.offload, feed_forward_chunk=1 if opts.ff_chunking else None,
              decode_chunk_size=opts.decode_chunk or 8)
    for width, height in ((384, 192), (512, 512), (1024, 768)):
        direct = estimate_peak_memory(model, frames=16, height=height, width=width, **kw).peak_bytes
        assert limit.peak_bytes((width, height)) == pytest.approx(direct, rel=0.01), (width, height)


# --------------------------------------------------------------------------
# The real command line and the web app
# --------------------------------------------------------------------------


@pytest.fixture
def config_only_weights(tmp_path) -> Path:
    """The tiny model's config and tokenizer files without a single tensor: loading them fails."""
    root = require(TINY_WEIGHTS)
    out = tmp_path / "configs-only"
    for path in root.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".txt"):
            (out / path.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, out / path.relative_to(root))
    return out


@pytest.fixture
def inputs(tmp_path) -> dict[str, Path]:
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray(case_a("source_image")).save(d / "ref.png")
    np.save(d / "motion.npy", case_a("control")[:4])
    return {p.name: p for p in d.iterdir()}


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_cli_refuses_a_huge_size_before_loading_weights(tmp_path, inputs, config_only_weights, capsys):
    before = snapshot(tmp_path)
    code = main(["animate", "--reference", str(inputs["ref.png"]), "--motion", str(inputs["motion.npy"]),
                 "--output", str(tmp_path / "out.mp4"), "--size", "100000", "--device", "cpu",
                 "--weights", str(config_only_weights), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: --size 100000x100000 needs about ") and err.count("\n") == 1, err
    assert "the largest size of this aspect that fits is " in err and "--offload, --ff-chunking" in err, err
    assert snapshot(tmp_path) == before  # no output, no temp file; no weight was needed


def test_cli_largest_size_agrees_with_direct_estimates(tmp_path, inputs, config_only_weights, capsys,
                                                       monkeypatch):
    """With a 0.5 GiB device the message's largest size fits by a direct estimate and the next one does not."""
    monkeypatch.setenv("MAGICANIMATE_DEVICE_MEMORY_GIB", "0.5")
    code = main(["animate", "--reference", str(inputs["ref.png"]), "--motion", str(inputs["motion.npy"]),
                 "--output", str(tmp_path / "out.mp4"), "--size", "512", "--device", "cpu",
                 "--weights", str(config_only_weights), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1, err
    side = int(err.split("fits is ")[1].split("x")[0])
    model = meta_model(SIZES["tiny"], torch.float32)
    budget = 0.9 * 0.5 * GIB

    def peak(s: int) -> int:
        return estimate_peak_memory(model, frames=16, height=s, width=s).peak_bytes

    assert 64 < side < 512 and peak(side) <= budget < peak(side + 8), side


def test_jobs_fail_alone_on_their_size(tmp_path, inputs, config_only_weights, capsys):
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(f"- {{reference: {inputs['ref.png']}, motion: {inputs['motion.npy']}, output: a.mp4, "
                    "size: 100000}\n"
                    f"- {{reference: {inputs['ref.png']}, motion: {inputs['motion.npy']}, output: b.mp4, size: 64}}\n")
    before = snapshot(tmp_path)
    code = main(["animate", "--jobs", str(jobs), "--device", "cpu", "--weights", str(config_only_weights),
                 "--quiet"])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert err[0].startswith("[1/2] error: size 100000x100000 needs about ") and "fits is " in err[0], err
    assert err[1].startswith("[2/2] error: ") and "size" not in err[1].split("error: ")[1][:20], err  # job 2 fit
    assert snapshot(tmp_path) == before


def test_app_refuses_a_huge_size_before_reading_uploads(tmp_path):
    from magicanimate.app.service import Animator

    class NoModel:
        def animate(self, *args, **kwargs):
            raise AssertionError("the model must not run")

    animator = Animator(NoModel(), output_dir=tmp_path, size_limit=hand_made())
    with pytest.raises(InputError, match=r"^size 100000x100000 needs about .* fits is 2896x2896; to lower"):
        animator(tmp_path / "not-read.png", tmp_path / "not-read.mp4", size="100000")
