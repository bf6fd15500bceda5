"""Training MagicAnimate: stage 0 (the VAE, for models trained from scratch), stage 1 (appearance
encoder + DensePose ControlNet), stage 2 (motion modules).

    from magicanimate.training import load_config, train
    summary = train(load_config("configs/stage1.yaml", {"data.root": "data/tiktok"}))

Multi-GPU: ``accelerate launch -m magicanimate train --stage 1 --config configs/stage1.yaml``.
See docs/training.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainConfig", "TrainSummary", "load_config", "train"]


def __getattr__(name: str) -> Any:
    # Lazy: the command line reads the config schema (training.config) without importing torch.
    if name in ("TrainConfig", "load_config"):
        from magicanimate.training import config

        return getattr(config, name)
    if name == "TrainSummary":
        from magicanimate.training import trainer

        return trainer.TrainSummary
    if name == "train":
        from magicanimate.training import run

        return run.train
    raise AttributeError(f"module 'magicanimate.training' has no attribute {name!r}")
