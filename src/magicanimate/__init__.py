"""MagicAnimate: temporally consistent human image animation (Xu et al., CVPR 2024)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["MINI_WEIGHTS", "AnimationResult", "MagicAnimate", "Progress", "__version__"]


def __getattr__(name: str):
    # Lazy: `import magicanimate` (and the CLI's --help) stays fast; torch loads on first use.
    if name in ("MagicAnimate", "AnimationResult"):
        from magicanimate.sampling import pipeline as pipeline

        return getattr(pipeline, name)
    if name == "MINI_WEIGHTS":  # pathlib.Path of the shipped mini model (docs/mini_model.md)
        from magicanimate.weights.layout import MINI_WEIGHTS

        return MINI_WEIGHTS
    if name == "Progress":
        from magicanimate.sampling.sampler import Progress

        return Progress
    raise AttributeError(f"module 'magicanimate' has no attribute {name!r}")
