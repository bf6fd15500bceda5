"""Aspect-ratio mapping of inputs onto the model's W x H canvas, and back.

Three modes, one plan applied to both the reference image and every motion
frame so the person stays aligned between them:

- ``stretch``: plain resize to W x H (what the release does; distorts
  non-square inputs).
- ``pad``: pad the input to the target aspect (centred), then resize. The
  pipeline returns the whole W x H result, margins included (the output size is
  always the target); `undo_fit` crops a result back to the input's aspect, at the
  generated resolution (no upscaling), for callers who want that.
- ``crop``: centre-crop the input to the target aspect, then resize.

Boxes are (left, top, right, bottom) in pixels, right/bottom exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from magicanimate.errors import InputError
from magicanimate.io.image import resize_image
from magicanimate.options import FIT_MODES, Size, parse_size

__all__ = ["FIT_MODES", "FitPlan", "apply_fit", "parse_size", "plan_fit", "undo_fit"]
Box = tuple[int, int, int, int]
PadValue = tuple[int, int, int] | str


@dataclass(frozen=True)
class FitPlan:
    """How an input of `input_size` (w, h) maps onto `target_size` (W, H) and back.

    Forward: take `source_box` of the input, place it at `paste_box` on a canvas
    of `canvas_size` (the rest is padding), resize the canvas to the target.
    Backward: `result_box` is the part of a W x H result that shows the input.
    """

    mode: str
    input_size: Size
    target_size: Size
    source_box: Box
    canvas_size: Size
    paste_box: Box
    result_box: Box

    @property
    def output_size(self) -> Size:
        """(width, height) of a result after `undo_fit`."""
        left, top, right, bottom = self.result_box
        return right - left, bottom - top


# --------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------


def plan_fit(input_size: Size, target_size: Size, mode: str) -> FitPlan:
    """Plan the stretch / pad / crop mapping of an input (w, h) onto a target (W, H)."""
    _check_size(input_size, "input size")
    _check_size(target_size, "target size")
    input_size = (int(input_size[0]), int(input_size[1]))
    target_size = (int(target_size[0]), int(target_size[1]))
    if mode == "stretch":
        return _plan_stretch(input_size, target_size)
    if mode == "pad":
        return _plan_pad(input_size, target_size)
    if mode == "crop":
        return _plan_crop(input_size, target_size)
    raise InputError(f"unknown fit mode {mode!r}: use one of {', '.join(FIT_MODES)}")


def _check_size(size: Size, what: str) -> None:
    """Require a (width, height) pair of positive integers."""
    valid = (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)
        and all(v > 0 for v in size)
    )
    if not valid:
        raise InputError(f"{what} must be (width, height) with positive integers, got {size!r}")


def _full(size: Size) -> Box:
    """The box covering a whole (w, h) image."""
    return 0, 0, size[0], size[1]


def _plan_stretch(input_size: Size, target_size: Size) -> FitPlan:
    """Plain resize: everything maps onto everything."""
    return FitPlan(
        mode="stretch",
        input_size=input_size,
        target_size=target_size,
        source_box=_full(input_size),
        canvas_size=input_size,
        paste_box=_full(input_size),
        result_box=_full(target_size),
    )


def _plan_pad(input_size: Size, target_size: Size) -> FitPlan:
    """Centre the input on a canvas of the target's aspect; remember where it lands."""
    (w, h), (tw, th) = input_size, target_size
    if w * th < h * tw:  # input narrower than the target: pad left and right
        canvas = (max(w, round(h * tw / th)), h)
        left = (canvas[0] - w) // 2
        paste = (left, 0, left + w, h)
    else:  # input wider (or equal): pad top and bottom
        canvas = (w, max(h, round(w * th / tw)))
        top = (canvas[1] - h) // 2
        paste = (0, top, w, top + h)
    return FitPlan(
        mode="pad",
        input_size=input_size,
        target_size=target_size,
        source_box=_full(input_size),
        canvas_size=canvas,
        paste_box=paste,
        result_box=_scale_box(paste, canvas, target_size),
    )


def _plan_crop(input_size: Size, target_size: Size) -> FitPlan:
    """Centre-crop the input to the target's aspect."""
    (w, h), (tw, th) = input_size, target_size
    if w * th > h * tw:  # input wider than the target: crop left and right
        width = min(w, max(1, round(h * tw / th)))
        left = (w - width) // 2
        source = (left, 0, left + width, h)
    else:  # input taller (or equal): crop top and bottom
        height = min(h, max(1, round(w * th / tw)))
        top = (h - height) // 2
        source = (0, top, w, top + height)
    canvas = (source[2] - source[0], source[3] - source[1])
    return FitPlan(
        mode="crop",
        input_size=input_size,
        target_size=target_size,
        source_box=source,
        canvas_size=canvas,
        paste_box=_full(canvas),
        result_box=_full(target_size),
    )


def _scale_box(box: Box, size: Size, new_size: Size) -> Box:
    """Map a box on an image of `size` onto the same image resized to `new_size` (rounded)."""
    sx, sy = new_size[0] / size[0], new_size[1] / size[1]
    left, top, right, bottom = box
    return round(left * sx), round(top * sy), round(right * sx), round(bottom * sy)


# --------------------------------------------------------------------------
# Applying and undoing
# --------------------------------------------------------------------------


def apply_fit(frames_or_image: np.ndarray, plan: FitPlan, *, pad_value: PadValue) -> np.ndarray:
    """Map a uint8 image (H, W, 3) or frames (F, H, W, 3) onto the plan's target size.

    pad_value: an RGB tuple (e.g. the DensePose background (68, 1, 84) for motion)
    or "edge" (edge replication, for the reference image). Resizing is PIL bicubic.
    """
    frames, single = _as_frames(frames_or_image, "apply_fit input")
    w, h = plan.input_size
    if frames.shape[1:3] != (h, w):
        raise InputError(
            f"apply_fit: input is {frames.shape[2]}x{frames.shape[1]} but the plan "
            f"was made for {w}x{h}"
        )
    left, top, right, bottom = plan.source_box
    canvas = _pad(frames[:, top:bottom, left:right], plan, pad_value)
    fitted = np.stack([resize_image(frame, plan.target_size) for frame in canvas])
    return fitted[0] if single else fitted


def undo_fit(result_frames: np.ndarray, plan: FitPlan) -> np.ndarray:
    """Crop generated (F, H, W, 3) or (H, W, 3) frames at the target size to the input's aspect.

    For `pad` this removes the padded margins (at the generated resolution);
    for `stretch` and `crop` it is the identity. Keeps the dtype.
    """
    array = np.asarray(result_frames)
    if array.ndim not in (3, 4) or array.shape[-1] != 3:
        raise InputError(f"undo_fit: expected (F, H, W, 3) or (H, W, 3), got {array.shape}")
    tw, th = plan.target_size
    if array.shape[-3:-1] != (th, tw):
        raise InputError(
            f"undo_fit: result is {array.shape[-2]}x{array.shape[-3]} but the plan "
            f"targets {tw}x{th}"
        )
    left, top, right, bottom = plan.result_box
    return np.ascontiguousarray(array[..., top:bottom, left:right, :])


def _as_frames(array: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
    """View a uint8 (H, W, 3) image as (1, H, W, 3) frames; report whether it was single."""
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8:
        dtype = getattr(array, "dtype", type(array).__name__)
        raise InputError(f"{name} must be a uint8 numpy array, got {dtype}")
    if array.ndim == 3 and array.shape[2] == 3:
        return array[None], True  # (H, W, 3) -> (1, H, W, 3)
    if array.ndim == 4 and array.shape[3] == 3 and array.shape[0] > 0:
        return array, False
    raise InputError(f"{name} must have shape (H, W, 3) or (F, H, W, 3), got {array.shape}")


def _pad(frames: np.ndarray, plan: FitPlan, pad_value: PadValue) -> np.ndarray:
    """Place (F, h, w, 3) frames at the plan's paste box on its canvas, filling the rest."""
    cw, ch = plan.canvas_size
    left, top, right, bottom = plan.paste_box
    if (left, top, right, bottom) == (0, 0, cw, ch):
        return frames
    widths = ((0, 0), (top, ch - bottom), (left, cw - right), (0, 0))
    if isinstance(pad_value, str):
        if pad_value != "edge":
            raise InputError(f"pad_value must be an RGB tuple or 'edge', got {pad_value!r}")
        return np.pad(frames, widths, mode="edge")
    colour = _check_colour(pad_value)
    canvas = np.empty((frames.shape[0], ch, cw, 3), dtype=np.uint8)
    canvas[...] = colour
    canvas[:, top:bottom, left:right] = frames
    return canvas


def _check_colour(value: PadValue) -> np.ndarray:
    """An RGB pad colour as a uint8 (3,) array."""
    colour = np.asarray(value)
    if colour.shape != (3,) or not np.all((colour >= 0) & (colour <= 255)):
        raise InputError(f"pad_value must be an RGB tuple of 0..255 or 'edge', got {value!r}")
    return colour.astype(np.uint8)
