"""Evaluation protocols: DisCo's (what the paper's table used) and a corrected variant."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from magicanimate.errors import InputError
from magicanimate.metrics.units import UNIT_FRAMES

TABLE_METRICS = ("L1", "PSNR", "SSIM", "LPIPS", "FID", "FID-VID", "FVD")


@dataclass(frozen=True)
class Protocol:
    """The choices that differ between protocols; everything else is shared."""

    name: str
    psnr_wraparound: bool  # PSNR column with DisCo's uint8 overflow
    lpips_input: str  # "disco" feeds [0, 1]; "standard" feeds [-1, 1] as LPIPS expects
    unit_stride: int  # 1: every 16-frame window (DisCo); 16: non-overlapping units, last one padded
    unit_frames: int = UNIT_FRAMES

    def as_dict(self) -> dict:
        """Plain dict for the JSON report."""
        return asdict(self)


PROTOCOLS = {
    "disco": Protocol("disco", psnr_wraparound=True, lpips_input="disco", unit_stride=1),
    "standard": Protocol("standard", psnr_wraparound=False, lpips_input="standard", unit_stride=UNIT_FRAMES),
}

# The paper's TikTok table (SPEC.md), printed beside results of the disco protocol.
PAPER_ROWS = {
    "DisCo (paper)": (3.78e-4, 29.03, 0.668, 0.292, 30.75, 59.90, 292.80),
    "MagicAnimate (paper)": (3.13e-4, 29.16, 0.714, 0.239, 32.09, 21.75, 179.07),
}


def get_protocol(name: str, *, unit_stride: int | None = None) -> Protocol:
    """The named protocol, optionally with another unit stride."""
    if name not in PROTOCOLS:
        raise InputError(f"unknown protocol '{name}'; choose one of {', '.join(PROTOCOLS)}")
    base = PROTOCOLS[name]
    if unit_stride is None:
        return base
    if not 1 <= unit_stride <= base.unit_frames:
        raise InputError(f"--unit-stride must be between 1 and {base.unit_frames}, got {unit_stride}")
    return Protocol(base.name, base.psnr_wraparound, base.lpips_input, unit_stride, base.unit_frames)
