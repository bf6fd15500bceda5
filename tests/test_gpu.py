"""The CUDA branches, where a GPU exists: float16 by default, real offload moves, torch.compile with
inductor, fused SDPA kernels. Marked `gpu`: skipped with the reason on CPU-only machines (conftest);
scripts/gpu_check.sh runs them together with the full-size benchmark.

Tolerances follow tests/test_precision.py (float16 vs float32 on the tiny weights: mean |diff| ≤ 2e-3,
max ≤ 2e-2), with the CPU float32 run as the reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import TINY_WEIGHTS, require
from goldens import case_a, tiny_model
from magicanimate.runtime.offload import ModelOffload
from magicanimate.sampling.pipeline import MagicAnimate

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")
FRAMES, SIZE, STEPS = 16, 64, 3


def _run(model: MagicAnimate) -> np.ndarray:
    return model(case_a("source_image"), case_a("control")[:FRAMES], steps=STEPS, size=SIZE).frames


@pytest.fixture(scope="module")
def cpu_float32_frames() -> np.ndarray:
    return _run(tiny_model())


@pytest.fixture(scope="module")
def cuda_default() -> MagicAnimate:
    return MagicAnimate.from_pretrained(require(TINY_WEIGHTS), device="cuda")


@pytest.fixture(scope="module")
def cuda_default_frames(cuda_default) -> np.ndarray:
    return _run(cuda_default)


def _close_to_float32(frames: np.ndarray, reference: np.ndarray, *, mean_tol=2e-3, max_tol=2e-2) -> None:
    assert frames.shape == reference.shape and frames.dtype == np.float32
    diff = np.abs(frames - reference)
    assert diff.mean() <= mean_tol and diff.max() <= max_tol, (diff.mean(), diff.max())


def test_float16_is_the_cuda_default(cuda_default, cuda_default_frames, cpu_float32_frames):
    assert cuda_default.dtype == torch.float16
    for name in ("unet", "controlnet", "appearance_encoder", "vae", "text_encoder"):
        param = next(getattr(cuda_default.components, name).parameters())
        assert (param.device.type, param.dtype) == ("cuda", torch.float16), name
    _close_to_float32(cuda_default_frames, cpu_float32_frames)
    assert np.abs(cuda_default_frames - cpu_float32_frames).max() > 0  # really ran in half precision


def test_model_offload_moves_components_between_cpu_and_cuda(cuda_default_frames):
    model = MagicAnimate.from_pretrained(require(TINY_WEIGHTS), device="cuda").enable_model_offload()
    c = model.components
    components = [c.text_encoder, c.appearance_encoder, c.controlnet, c.unet, c.vae]
    assert all(next(m.parameters()).device.type == "cpu" for m in components)  # all in storage to start
    seen = []
    activate = ModelOffload.activate

    def checking_activate(self, component):
        activate(self, component)
        on_cuda = [m for m in components if next(m.parameters()).device.type == "cuda"]
        seen.append(len(on_cuda))
        assert on_cuda == [component]  # exactly the active one

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ModelOffload, "activate", checking_activate)
        torch.cuda.reset_peak_memory_stats()
        frames = _run(model)
    offload_peak = torch.cuda.max_memory_allocated()
    assert seen and set(seen) == {1}
    # the same kernels on the same inputs: moves change where weights live, not the numbers
    assert np.abs(frames - cuda_default_frames).max() <= 1e-3

    plain = MagicAnimate.from_pretrained(require(TINY_WEIGHTS), device="cuda")
    torch.cuda.reset_peak_memory_stats()
    _run(plain)
    assert offload_peak < torch.cuda.max_memory_allocated()


def test_compile_with_inductor_on_cuda():
    """Code generation for CUDA (Triton kernels): same video as eager, float32 to see small differences."""
    eager = MagicAnimate.from_pretrained(require(TINY_WEIGHTS), device="cuda", dtype=torch.float32)
    reference = _run(eager)
    compiled = MagicAnimate.from_pretrained(require(TINY_WEIGHTS), device="cuda", dtype=torch.float32)
    compiled.compile(backend="inductor")
    assert hasattr(compiled.models.unet, "_orig_mod") and hasattr(compiled.models.controlnet, "_orig_mod")
    frames = _run(compiled)
    assert np.abs(frames - reference).max() <= 1e-3


def test_frame_attention_uses_fused_sdpa_kernels_on_cuda():
    """The motion module's attention at SD1.5 shapes (8 heads × 40, 16 frames) runs with fused kernels only.

    With the math backend disabled, an unsupported shape or dtype raises instead of silently falling back.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from magicanimate.models.motion_module import frame_attention

    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(2 * 32 * 32, 8, FRAMES, 40, device=CUDA, dtype=torch.float16, generator=g)
               for _ in range(3))
    expected = torch.softmax(q.float() @ k.float().transpose(-1, -2) / 40**0.5, dim=-1) @ v.float()
    for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION):
        with sdpa_kernel([backend]):
            out = frame_attention(q, k, v)
        assert out.dtype == torch.float16
        assert (out.float() - expected).abs().max() <= 5e-3, backend


def test_full_size_step_runs_with_fused_attention_only():
    """One SD1.5-size step (random weights, float16, 16 frames at 256²) with the math SDPA backend off."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from magicanimate.weights.random import SIZES, random_components

    model = MagicAnimate(random_components(SIZES["sd15"], device=CUDA, dtype=torch.float16), device=CUDA,
                         dtype=torch.float16)
    reference = case_a("source_image")
    motion = case_a("control")[:FRAMES]
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]):
        fused = model(reference, motion, steps=1, size=256).frames
    with sdpa_kernel([SDPBackend.MATH]):
        math = model(reference, motion, steps=1, size=256).frames
    assert np.isfinite(fused).all() and fused.shape == (FRAMES, 256, 256, 3)
    # uncalibrated (first GPU run pending): float16 kernels differ by ~1e-3 per attention
    assert np.abs(fused - math).mean() <= 2e-2


def test_sdpa_math_and_fused_agree_for_reference_attention_shapes():
    """Reference attention concatenates the reference tokens (2× keys): a non-square SDPA, fused vs math."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    g = torch.Generator(device="cuda").manual_seed(1)
    q = torch.randn(2, 8, 32 * 32, 40, device=CUDA, dtype=torch.float16, generator=g)
    k, v = (torch.randn(2, 8, 2 * 32 * 32, 40, device=CUDA, dtype=torch.float16, generator=g) for _ in range(2))
    with sdpa_kernel([SDPBackend.MATH]):
        reference = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]):
        fused = F.scaled_dot_product_attention(q, k, v)
    assert (fused.float() - reference).abs().max() <= 5e-3
