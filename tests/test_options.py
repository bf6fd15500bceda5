"""SampleOptions is the one schema: flags, job fields, app controls and API keywords come from it."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from pathlib import Path

import pytest
import torch

from goldens import case_a, tiny_model
from magicanimate.cli.arguments import add_option_flags, options_from_args
from magicanimate.cli.jobs import Job, job_from_mapping
from magicanimate.errors import InputError
from magicanimate.options import SampleOptions, iter_options, option_defaults, parse_size


def test_every_option_has_a_flag_with_its_default():
    parser = argparse.ArgumentParser()
    add_option_flags(parser)
    flags = {a.dest: a for a in parser._actions if a.option_strings}
    for f in dataclasses.fields(SampleOptions):
        assert f"--{f.name.replace('_', '-')}" in flags[f.name].option_strings
        assert flags[f.name].default == f.default
    assert options_from_args(parser.parse_args([])) == SampleOptions()


def test_flags_parse_and_check_like_the_schema():
    parser = argparse.ArgumentParser()
    add_option_flags(parser)
    args = parser.parse_args(["--steps", "3", "--guidance-scale", "2.5", "--size", "64x48", "--deep-cache", "2",
                              "--offload", "--noise", "per-segment"])
    opts = options_from_args(args)
    assert (opts.steps, opts.guidance_scale, opts.output_size(512), opts.deep_cache, opts.offload, opts.noise) == \
        (3, 2.5, (64, 48), 2, True, "per-segment")
    # no --size: the weights' native size (512 for the release, 128 for the mini model)
    unset = options_from_args(parser.parse_args([]))
    assert unset.size is None and unset.output_size(128) == (128, 128) and unset.output_size(512) == (512, 512)
    for bad, message in ((["--steps", "1001"], "--steps must be at most 1000"),
                         (["--guidance-scale", "nan"], "--guidance-scale must be a finite number"),
                         (["--overlap", "16"], "--overlap must be at most 15"), (["--fps", "0"], "--fps must be above 0"),
                         (["--seed", str(2**64)], "--seed must be at most"), (["--size", "65"], "multiples of 8"),
                         (["--fit", "zoom"], "--fit must be one of")):
        with pytest.raises(InputError, match=message):
            options_from_args(parser.parse_args(bad))


@pytest.mark.parametrize("values,message", [
    (dict(steps=0), "steps must be at least 1"),
    (dict(steps=1001), "steps must be at most 1000"),
    (dict(steps=2.5), "steps must be a whole number"),
    (dict(guidance_scale=float("inf")), "guidance_scale must be a finite number"),
    (dict(overlap=16), "overlap must be at most 15"),
    (dict(fps=-1), "fps must be above 0"),
    (dict(fit="zoom"), "fit must be one of stretch, pad, crop"),
    (dict(seed=None), "seed must be set"),
    (dict(offload="maybe"), "offload must be true or false"),
    (dict(size="12x8"), "multiples of 8"),
])
def test_values_are_checked_on_construction(values, message):
    with pytest.raises(InputError, match=message):
        SampleOptions().replace(**values)


def test_text_values_are_parsed():
    opts = SampleOptions.from_mapping({"steps": "7", "guidance-scale": "3", "ff_chunking": "yes", "max-frames": "5"})
    assert (opts.steps, opts.guidance_scale, opts.ff_chunking, opts.max_frames) == (7, 3.0, True, 5)
    assert parse_size("768x512") == (768, 512) and parse_size(64) == (64, 64)
    with pytest.raises(InputError, match="unknown options"):
        SampleOptions.from_mapping({"stepz": 3})


def test_a_job_may_set_every_option(tmp_path: Path):
    values = {"steps": 3, "noise": "per-segment", "decode_chunk": 2, "dtype": "float32", "offload": "true",
              "vae-tiling": True, "ff_chunking": 1, "overlap": 2}
    defaults = Job(reference="", motion="", output="", options=SampleOptions(steps=9, seed=5))
    job = job_from_mapping({"reference": "r.png", "motion": "m.mp4", "output": "o.mp4", **values},
                           base=tmp_path, defaults=defaults)
    assert job.output == str(tmp_path / "o.mp4")
    assert (job.options.steps, job.options.seed, job.options.noise, job.options.decode_chunk) == (3, 5, "per-segment", 2)
    assert job.options.offload and job.options.vae_tiling and job.options.ff_chunking
    assert {name for name, _ in iter_options()} <= set(dataclasses.asdict(job.options))
    with pytest.raises(InputError, match="steps must be at least 1"):
        job_from_mapping({"reference": "r", "motion": "m", "output": "o", "steps": 0}, base=tmp_path, defaults=defaults)


def test_app_controls_are_the_options_with_an_app_control():
    pytest.importorskip("gradio")
    from magicanimate.app.ui import option_controls

    names = [name for name, _ in iter_options(app=True)]
    assert names == ["steps", "guidance_scale", "seed", "size", "fit"]
    import gradio as gr

    with gr.Blocks():
        controls = option_controls()
    defaults = option_defaults()
    assert [c.elem_id for c in controls] == ["steps", "guidance", "seed", "size", "fit"]
    assert [c.value for c in controls] == [defaults[n] if n != "size" else "" for n in names]  # size: unset
    with gr.Blocks():
        controls = option_controls(values={"size": 128})  # the mini model's native size
    assert controls[3].value == "128"


def test_api_keywords_are_the_call_options():
    model = tiny_model()
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['offload'\\]"):
        model(case_a("source_image"), case_a("control")[:2], offload=True)
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['stepz'\\]"):
        model(case_a("source_image"), case_a("control")[:2], stepz=1)
    assert "options" in inspect.signature(type(model).__call__).parameters


def test_per_segment_noise_differs_between_segments_and_shared_repeats():
    model = tiny_model()
    shared = model.initial_noise(48, 64, 64, seed=3)
    fresh = model.initial_noise(48, 64, 64, seed=3, per_segment=True)
    assert shared.shape == fresh.shape == (1, 4, 48, 8, 8)
    assert torch.equal(shared[:, :, :16], shared[:, :, 16:32]) and torch.equal(shared[:, :, :16], shared[:, :, 32:])
    assert not torch.equal(fresh[:, :, :16], fresh[:, :, 16:32])
    assert torch.equal(fresh, model.initial_noise(48, 64, 64, seed=3, per_segment=True))  # seeded
