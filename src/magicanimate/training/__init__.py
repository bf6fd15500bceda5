"""Training MagicAnimate: stage 0 (the VAE, for models trained from scratch), stage 1 (appearance
encoder + DensePose ControlNet), stage 2 (motion modules).

    from magicanimate.training import load_config, train
    summary = train(load_config("configs/stage1.yaml", {"data.root": "data/tiktok"}))

Multi-GPU: ``accelerate launch -m magicanimate train --stage 1 --config configs/stage1.yaml``.
See docs/training.md.
"""

from magicanimate.training.config import TrainConfig, load_config
from magicanimate.training.run import train
from magicanimate.training.trainer import TrainSummary

__all__ = ["TrainConfig", "TrainSummary", "load_config", "train"]
