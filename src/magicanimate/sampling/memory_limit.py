"""The largest output size a device can hold: checked before any weight is loaded.

A ``SizeLimit`` holds, for one model, dtype and set of memory options, the peak device
memory of an animation as a function of its size: per phase (text encoder, VAE encode,
denoise, VAE decode) the resident weights plus a number of bytes per output pixel,
calibrated on ``magicanimate.tools.memory_estimate`` (meta-device models, seconds, no
weights). Activations grow with the pixel count and not with the number of frames
(sliding windows, chunked decoding), so two calibration sizes give the line of each phase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from magicanimate.errors import InputError
from magicanimate.options import SIZE_MULTIPLE, SampleOptions, Size, parse_size

GIB = 2**30
USABLE_SHARE = 0.9  # of the device's memory: workspaces, allocator rounding and fragmentation are not counted


@dataclass(frozen=True)
class PhaseLine:
    """Peak bytes of one phase: ``fixed + per_pixel * width * height``."""

    phase: str
    fixed: float
    per_pixel: float


@dataclass(frozen=True)
class SizeLimit:
    """Estimated peak memory by output size on one device, and the check of a requested size."""

    lines: tuple[PhaseLine, ...]
    device_bytes: int  # the device's total memory
    device: str  # its name, for messages ("cuda:0", "cpu")
    options: SampleOptions  # the dtype and memory options the lines were estimated for
    dtype: str  # the resolved dtype ("float16")
    native_size: int = 512  # the weights' own side: the size when none is given

    @property
    def usable_bytes(self) -> float:
        """The share of the device's memory an animation may plan to use."""
        return USABLE_SHARE * self.device_bytes

    def peak_bytes(self, size: Size) -> float:
        """Estimated peak device bytes of an animation at ``size`` (width, height)."""
        pixels = size[0] * size[1]
        return max(line.fixed + line.per_pixel * pixels for line in self.lines)

    def largest_size(self, size: Size) -> Size | None:
        """The largest size of ``size``'s aspect (multiples of 8) that fits, or None when none does."""
        budget = self.usable_bytes
        pixels = min(((budget - line.fixed) / line.per_pixel if line.per_pixel > 0
                      else (math.inf if line.fixed <= budget else -1.0)) for line in self.lines)
        if pixels <= 0:
            return None
        scale = min(1.0, math.sqrt(pixels / (size[0] * size[1])))
        width, height = (int(v * scale) // SIZE_MULTIPLE * SIZE_MULTIPLE for v in size)
        while width >= SIZE_MULTIPLE and height >= SIZE_MULTIPLE and self.peak_bytes((width, height)) > budget:
            width, height = width - SIZE_MULTIPLE, height - SIZE_MULTIPLE  # rounding at the edge
        if width < SIZE_MULTIPLE or height < SIZE_MULTIPLE:
            return None
        return width, height

    def check(self, size: Size | str | int | None, *, flag: str = "--size") -> None:
        """Raise ``InputError`` (largest size that fits, options that lower memory) when ``size`` (None: the
        weights' native size) does not fit."""
        wh = parse_size(size if size is not None else self.native_size)
        need = self.peak_bytes(wh)
        if need <= self.usable_bytes:
            return
        largest = self.largest_size(wh)
        fits = (f"the largest size of this aspect that fits is {largest[0]}x{largest[1]}" if largest
                else "no size fits with these settings")
        levers = memory_levers(self.options, self.dtype, device=self.device)
        lower = f"; to lower the memory use {_join(levers)}" if levers else ""
        raise InputError(
            f"{flag} {wh[0]}x{wh[1]} needs about {_gib(need)} GiB of {self.device} memory (estimated peak, "
            f"{self.dtype}), more than the {_gib(self.usable_bytes)} GiB planned for on this device "
            f"({int(USABLE_SHARE * 100)}% of {_gib(self.device_bytes)} GiB): {fits}{lower}")


def memory_levers(options: SampleOptions, dtype: str, *, device: str = "cuda") -> list[str]:
    """The memory options not yet on, as flags (``--offload`` ...); a half dtype for float32 runs."""
    levers = []
    if not options.offload:
        levers.append("--offload")
    if not options.ff_chunking:
        levers.append("--ff-chunking")
    if options.decode_chunk != 1:
        levers.append("--decode-chunk 1")
    if not options.vae_tiling:
        levers.append("--vae-tiling")
    if dtype == "float32":
        levers.append("--dtype bfloat16" if device.startswith("cpu") else "--dtype float16")
    return levers


def _join(items: list[str]) -> str:
    """'a, b or c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _gib(value: float) -> str:
    """Bytes as GiB for a message: 3 significant digits, plain notation."""
    gib = value / GIB
    return f"{gib:.3g}" if gib < 1000 else f"{gib:,.0f}"
