"""Memory options: the live-tensor count, the meta-device estimate, chunking and the residual cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import TINY_WEIGHTS, require
from goldens import case_a
from magicanimate.sampling.denoiser import ControlResidualCache, StepInputs
from magicanimate.tools.memory_estimate import LiveTensorBytes, estimate_peak_memory, meta_model, module_bytes
from magicanimate.sampling.pipeline import MagicAnimate
from magicanimate.weights.random import SIZES, random_components
from magicanimate.sampling.windows import sliding_windows

MB = 2**20


def test_live_bytes_follow_allocations_views_and_frees():
    outside = torch.ones(1000)
    with LiveTensorBytes("cpu") as mem:
        mem.ignore([outside])
        a = torch.zeros(1000)  # 4000 bytes
        view = a[:10]
        also_outside = outside[:500]  # a view of an ignored tensor costs nothing
        assert mem.live == 4000
        b = a * 2  # 4000 more
        assert mem.live == 8000 and mem.peak == 8000
        del b
        assert mem.live == 4000
        del a
        assert mem.live == 4000  # the view keeps the storage alive
        del view
        assert mem.live == 0 and mem.peak == 8000
        mem.set_resident(10_000)
        assert mem.peak == 10_000
    del also_outside


def test_meta_estimate_equals_the_count_of_a_real_run(one_torch_thread):
    """The estimate (meta device, fused attention) counts what a real CPU run allocates.

    In bfloat16, so that the CPU run takes the fused attention kernel everywhere, as a GPU
    does (float32 CPU runs use explicit matmuls for the motion modules' short sequences).
    """
    size, kw = SIZES["tiny"], dict(frames=24, height=64, width=64)
    real = MagicAnimate(random_components(size, device="cpu", dtype=torch.bfloat16), device="cpu",
                        dtype=torch.bfloat16)
    meta = meta_model(size, torch.bfloat16)
    for options in ({}, {"offload": True, "feed_forward_chunk": 1, "decode_chunk_size": 1}):
        counted = estimate_peak_memory(real, **kw, **options)
        estimated = estimate_peak_memory(meta, **kw, **options)
        # the only difference: CPU flash attention also returns a small log-sum-exp
        assert estimated.peak_bytes == pytest.approx(counted.peak_bytes, rel=0.01)
        assert estimated.peak_phase == counted.peak_phase


def test_each_option_lowers_the_full_size_estimate():
    """On the full-size (meta) models at 512x512 in float16: offload and chunking each help."""
    model = meta_model(SIZES["sd15"], torch.float16)
    kw = dict(frames=16, height=512, width=512)
    default = estimate_peak_memory(model, **kw)
    small_decode = estimate_peak_memory(model, decode_chunk_size=1, **kw)
    chunked = estimate_peak_memory(model, decode_chunk_size=1, feed_forward_chunk=1, **kw)
    offload = estimate_peak_memory(model, offload=True, **kw)
    weights = sum(default.weights_bytes.values())
    assert weights == sum(module_bytes(m) for m in (model.components.unet, model.components.vae,
                                                     model.components.text_encoder, model.components.controlnet,
                                                     model.components.appearance_encoder))
    assert default.peak_bytes > small_decode.peak_bytes > chunked.peak_bytes > weights
    # the GEGLU hidden layer of the first up block: 32 rows x 4096 tokens x 2560 x 2 bytes (x2 with GELU/product)
    assert small_decode.peak_bytes - chunked.peak_bytes > 600 * MB
    assert offload.peak_bytes < default.peak_bytes - (weights - default.weights_bytes["unet"]) + 1500 * MB


def test_feed_forward_chunking_keeps_the_output(one_torch_thread):
    weights = require(TINY_WEIGHTS)
    model = MagicAnimate.from_pretrained(weights, device="cpu")
    kw = dict(steps=2, size=64, seed=3)
    plain = model(case_a("source_image"), case_a("control")[:16], **kw).frames
    chunked = model.enable_feed_forward_chunking(2)(case_a("source_image"), case_a("control")[:16], **kw).frames
    model.enable_feed_forward_chunking(None)
    assert np.abs(chunked - plain).max() < 1e-5


def test_feed_forward_chunk_must_be_positive():
    model = meta_model(SIZES["tiny"], torch.float32)
    with pytest.raises(ValueError, match="chunk"):
        model.enable_feed_forward_chunking(0)


def test_residuals_kept_for_later_windows_do_not_pin_the_controlnet_batch():
    """Frames kept for a later window are copies, so each window's ControlNet output is freed."""
    model = meta_model(SIZES["tiny"], torch.float32)
    frames = 40
    windows = sliding_windows(frames)  # the closed loop's last window reuses frames 0..11
    latents = torch.zeros(1, 4, frames, 8, 8, device="meta")
    control = torch.zeros(frames, 64, 64, 3, dtype=torch.uint8)
    text = torch.zeros(1, 77, SIZES["tiny"].cross_attention_dim, device="meta")
    inputs = StepInputs(latents=latents, t=torch.tensor(10), text=text, control=control)
    cache = ControlResidualCache(model.models.controlnet, inputs, windows=dict(enumerate(windows)))
    with torch.no_grad():
        cache.window(0)
    kept = cache.store[0][0][0]  # frame 0, first down residual
    assert kept.untyped_storage().nbytes() == kept.numel() * kept.element_size()
