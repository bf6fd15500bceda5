"""Motion from an ordinary video: detect, choose people, smooth, align to the reference; part labels (F, H, W).

Colour the result with ``magicanimate.densepose_render.colorize_parts`` to get the dp_segm frames
MagicAnimate's ControlNet takes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from PIL import Image

from magicanimate.errors import InputError

from magicanimate.densepose.align import align_motion
from magicanimate.densepose.extractor import DEFAULT_MIN_SCORE, DensePoseExtractor, DensePoseOutput
from magicanimate.densepose.people import PEOPLE_MODES, select_people
from magicanimate.densepose.postprocess import PartPatch, box_xywh_int, draw_patches
from magicanimate.densepose.temporal import smooth_boxes, smooth_labels


def _moved_patch(patch: PartPatch, box: np.ndarray) -> PartPatch:
    """The patch's labels resized (nearest) to the truncated box and placed at its corner."""
    x, y, w, h = box_xywh_int(box)
    if w <= 0 or h <= 0 or patch.labels.size == 0:
        return PartPatch(x=x, y=y, labels=np.zeros((0, 0), dtype=np.uint8))
    labels = patch.labels
    if labels.shape != (h, w):
        labels = np.asarray(Image.fromarray(labels).resize((w, h), Image.NEAREST))
    return PartPatch(x=x, y=y, labels=labels)


def compose_motion(output: DensePoseOutput, *, people: str = "all", smooth: int = 0) -> np.ndarray:
    """Label maps (F, H, W) of the chosen people (see ``people.select_people``), smoothed over ``smooth`` frames."""
    if people not in PEOPLE_MODES:
        raise InputError(f"people must be one of {', '.join(PEOPLE_MODES)}, got {people!r}")
    if smooth < 0:
        raise InputError(f"smooth must be >= 0 frames, got {smooth}")
    size = output.labels.shape[-2:]
    chosen = select_people(output.boxes, people)
    patches = [[frame_patches[i] for i in sorted(index)] for frame_patches, index in zip(output.patches, chosen)]
    if smooth > 1 and people != "all":  # one person per frame: steady its box before drawing
        person_boxes = [output.boxes[t][index[0]] if index else None for t, index in enumerate(chosen)]
        steady = smooth_boxes(person_boxes, smooth)
        patches = [[_moved_patch(p[0], box)] if p else [] for p, box in zip(patches, steady)]
    labels = np.stack([draw_patches(p, size) for p in patches])
    return smooth_labels(labels, smooth) if smooth > 1 else labels


def extract_motion(
    frames: np.ndarray | Iterable[np.ndarray],
    *,
    extractor: DensePoseExtractor,
    people: str = "all",
    smooth: int = 0,
    min_score: float = DEFAULT_MIN_SCORE,
    batch_size: int = 4,
    detect_size: int | None = None,
    align_to: np.ndarray | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> np.ndarray:
    """Part labels (F, H, W) uint8 of uint8 RGB frames: an array (F, H, W, 3) or any iterable of (H, W, 3)
    frames (e.g. a video reader; only detections are kept, not the frames). ``progress(done, total)`` after
    each batch (total None for iterables without a length). With ``align_to`` (a uint8 RGB reference photo
    (H', W', 3)) the motion is fitted onto the reference's largest person and returned at (H', W')."""
    if people not in PEOPLE_MODES:
        raise InputError(f"people must be one of {', '.join(PEOPLE_MODES)}, got {people!r}")
    if isinstance(frames, np.ndarray) and frames.ndim == 3:
        frames = frames[None]
    total = len(frames) if hasattr(frames, "__len__") else None
    results = []
    for result in extractor.stream(frames, min_score, batch_size=batch_size, detect_size=detect_size):
        results.append(result)
        if progress is not None and (len(results) % batch_size == 0 or len(results) == total):
            progress(len(results), total)
    if not results:
        raise InputError("no frames to extract motion from")
    if progress is not None and total is None and len(results) % batch_size:
        progress(len(results), total)
    labels = compose_motion(DensePoseOutput.from_frames(results), people=people, smooth=smooth)
    if align_to is None:
        return labels
    reference = extractor(np.asarray(align_to), min_score, detect_size=detect_size)
    reference_labels = compose_motion(
        DensePoseOutput(labels=reference.labels[None], boxes=reference.boxes, scores=reference.scores,
                        patches=reference.patches),
        people="largest",
    )[0]
    return align_motion(labels, reference_labels)


def fit_labels(labels: np.ndarray, size: tuple[int, int], *, fit: str = "pad") -> np.ndarray:
    """Label maps (F, H, W) mapped onto ``size`` (W', H') by the ``io.fit`` plan, nearest-neighbour.

    ``pad`` adds background (label 0) to reach the target aspect; ``crop`` cuts the centre;
    ``stretch`` resizes as is. Nearest-neighbour keeps every pixel a valid part label.
    """
    from magicanimate.io.fit import plan_fit

    height, width = labels.shape[1:]
    plan = plan_fit((width, height), size, fit)
    left, top, right, bottom = plan.source_box
    canvas_w, canvas_h = plan.canvas_size
    canvas = np.zeros((labels.shape[0], canvas_h, canvas_w), dtype=np.uint8)  # background everywhere
    p_left, p_top, p_right, p_bottom = plan.paste_box
    canvas[:, p_top:p_bottom, p_left:p_right] = labels[:, top:bottom, left:right]
    return np.stack([np.asarray(Image.fromarray(frame).resize(size, Image.NEAREST)) for frame in canvas])
