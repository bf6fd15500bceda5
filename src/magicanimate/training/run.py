"""Running one training job: the stage's trainer, then an orderly shutdown of the process group."""

from __future__ import annotations

from magicanimate.training.autoencoder import AutoencoderTrainer
from magicanimate.training.config import TrainConfig
from magicanimate.training.trainer import Trainer, TrainSummary


def train(cfg: TrainConfig, *, resume: str | None = None) -> TrainSummary:
    """Run one training job (stage 0: the VAE; stages 1 and 2: the denoiser; see ``TrainConfig``)."""
    if cfg.stage == 0:
        trainer: Trainer = AutoencoderTrainer(cfg, resume=resume)
    else:
        trainer = Trainer(cfg, resume=resume)
    summary = trainer.run()
    _shut_down_process_group()  # while the trainer (and its DDP reducer) is still alive
    return summary


def _shut_down_process_group() -> None:
    """Finish pending collectives and shut the process group down explicitly.

    Left to garbage collection, the DDP reducer's Gloo process group is destroyed with the
    GIL held while a Gloo worker thread still needs the GIL to release a finished
    collective's tensors: an intermittent hang at exit of multi-process runs.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()
        dist.destroy_process_group()
