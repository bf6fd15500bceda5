"""Loading the model for a command, with short status lines on stderr."""

from __future__ import annotations

import os
import sys
import time

from magicanimate.options import SampleOptions


def say(quiet: bool, message: str) -> None:
    """Print a status line on stderr unless ``quiet``."""
    if not quiet:
        print(message, file=sys.stderr)


def load_model(weights: str | None, device: str, dtype: str, *, quiet: bool):
    """Load MagicAnimate for the command line, with a short status line."""
    from magicanimate.runtime.device import resolve_device_dtype
    from magicanimate.runtime.distributed import local_device
    from magicanimate.sampling.pipeline import MagicAnimate

    if device == "auto" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = str(local_device())  # torchrun: one GPU per rank
    dev, dt = resolve_device_dtype(device, dtype)
    say(quiet, f"loading weights from {weights or 'the Hugging Face Hub'} on {dev} ({str(dt).replace('torch.', '')})")
    start = time.perf_counter()
    model = MagicAnimate.from_pretrained(weights, device=dev, dtype=dt)
    report = model.components.temporal_report
    if report is not None:
        say(quiet, f"temporal_attention.ckpt: {report.path}, {report.loaded} tensors")
    say(quiet, f"loaded in {time.perf_counter() - start:.1f} s")
    return model


class ModelCache:
    """The loaded model, reloaded only when a job asks for another dtype."""

    def __init__(self, weights: str | None, device: str, *, quiet: bool):
        self.weights, self.device, self.quiet = weights, device, quiet
        self.dtype: str | None = None
        self.model = None

    def get(self, options: SampleOptions):
        """The model in ``options.dtype``."""
        if self.model is None or options.dtype != self.dtype:
            self.model = None  # free the old one first
            self.model = load_model(self.weights, self.device, options.dtype, quiet=self.quiet)
            self.dtype = options.dtype
        return self.model
