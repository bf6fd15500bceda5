"""The noise scheduler exactly as the release configures it."""

from __future__ import annotations

from diffusers import DDIMScheduler

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


def release_ddim() -> DDIMScheduler:
    """DDIM with the release's effective configuration (eta = 0 at every step)."""
    return DDIMScheduler(**RELEASE_DDIM_CONFIG)
