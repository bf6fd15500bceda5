"""The noise scheduler exactly as the release configures it."""

from __future__ import annotations

from diffusers import DDIMScheduler, DDPMScheduler

from magicanimate.options import SCHEDULERS
from magicanimate.weights.layout import PREDICTION_TYPES

# The release builds DDIM from the betas alone, then its pipeline forces the legacy fixes
# (steps_offset=1, clip_sample=False); everything else is the library default of the time.
RELEASE_DDIM_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="linear",
    clip_sample=False,
    set_alpha_to_one=True,
    steps_offset=1,
    prediction_type="epsilon",
    timestep_spacing="leading",
    thresholding=False,
    rescale_betas_zero_snr=False,
)


def release_ddim(prediction_type: str = "epsilon") -> DDIMScheduler:
    """DDIM with the release's effective configuration (eta = 0 at every step) for a ``prediction_type`` denoiser."""
    return DDIMScheduler(**{**RELEASE_DDIM_CONFIG, "prediction_type": prediction_type})


def make_scheduler(name: str = "ddim", *, prediction_type: str = "epsilon"):
    """The release's DDIM (faithful), or a faster multistep solver (lossy: opt-in, fewer steps).

    The solvers use the same betas and "leading" timestep spacing as the release's DDIM.
    ``prediction_type`` is what the weights' denoiser predicts ("epsilon" for the release's).
    """
    from diffusers import DPMSolverMultistepScheduler, UniPCMultistepScheduler

    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"unknown prediction type {prediction_type!r}: use one of {', '.join(PREDICTION_TYPES)}")
    common = {k: RELEASE_DDIM_CONFIG[k] for k in (
        "num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "steps_offset", "timestep_spacing")}
    common["prediction_type"] = prediction_type
    if name == "ddim":
        return release_ddim(prediction_type)
    if name == "dpmsolver++":
        return DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2)
    if name == "unipc":
        return UniPCMultistepScheduler(**common, solver_order=2)
    raise ValueError(f"unknown scheduler {name!r}: use one of {', '.join(SCHEDULERS)}")


def training_noise_scheduler(prediction_type: str = "epsilon") -> DDPMScheduler:
    """The noising process of SD 1.5 and the release for training: DDPM with the same betas."""
    return DDPMScheduler(**{k: RELEASE_DDIM_CONFIG[k] for k in (
        "num_train_timesteps", "beta_start", "beta_end", "beta_schedule")}, prediction_type=prediction_type)


def step_kwargs(scheduler) -> dict:
    """Extra arguments of ``scheduler.step``: eta = 0 for DDIM (deterministic), none otherwise."""
    return {"eta": 0.0} if isinstance(scheduler, DDIMScheduler) else {}
