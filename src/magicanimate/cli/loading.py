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


_LIMITS: dict[tuple, object] = {}  # SizeLimit by (weights, device, dtype, memory options)


def size_limit_for(weights: str | None, device: str, options: SampleOptions):
    """The ``SizeLimit`` of these weights (their config files only; the release's sizes when they cannot be
    read) on ``device`` with ``options``' dtype and memory options; cached per process."""
    import tempfile

    from magicanimate.runtime.device import resolve_device_dtype
    from magicanimate.runtime.distributed import local_device
    from magicanimate.runtime.memory import device_memory_bytes
    from magicanimate.tools.memory_estimate import meta_model, meta_model_from_weights, size_limit
    from magicanimate.weights.layout import WeightPaths, hub_weight_paths, resolve_weights
    from magicanimate.weights.random import SD15

    if device == "auto" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = str(local_device())
    dev, dt = resolve_device_dtype(device, options.dtype)
    memory = options.replace(size="8", fit="stretch")  # only the memory settings matter
    device_bytes = device_memory_bytes(dev)
    key = (weights, str(dev), str(dt), device_bytes, memory.offload, memory.ff_chunking, memory.vae_tiling,
           memory.decode_chunk)
    if key not in _LIMITS:
        try:
            paths = (WeightPaths.release_layout(resolve_weights(weights)) if weights
                     else hub_weight_paths(local_files_only=True))
            model = meta_model_from_weights(paths, dt)
        except Exception:  # noqa: BLE001 - unreadable configs: the loader says what is wrong; plan with the release
            with tempfile.TemporaryDirectory(prefix="magicanimate-tokenizer-") as folder:
                model = meta_model(SD15, dt, tokenizer_dir=folder)
        _LIMITS[key] = size_limit(model, options=memory, device=dev, device_bytes=device_bytes)
    return _LIMITS[key]


def check_size_fits(options: SampleOptions, *, weights: str | None, device: str, flag: str = "--size") -> None:
    """Raise ``InputError`` when ``options.size`` needs more memory than ``device`` has (estimated, no weights read)."""
    from magicanimate.errors import WeightsError
    from magicanimate.weights.layout import resolve_weights

    try:
        if weights and not resolve_weights(weights).is_dir():
            return  # the loader says so, in its words
    except WeightsError:
        return  # `mini` not installed: the loader says so
    size_limit_for(weights, device, options).check(options.size, flag=flag)


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
