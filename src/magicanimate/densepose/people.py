"""Which detections of each frame become the motion: everyone, the largest person, or one tracked person.

All functions are pure: they take per-frame boxes (float32 (N, 4) xyxy, detectron2 order) and
return per-frame index lists into them, so the caller composites only the chosen detections.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

People = Literal["all", "largest", "track"]
PEOPLE_MODES: tuple[str, ...] = ("all", "largest", "track")
TRACK_MIN_IOU = 0.3  # below this overlap with the tracked box a detection is someone else


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas (N,) of xyxy boxes (N, 4)."""
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU (N,) of one xyxy box (4,) with boxes (N, 4)."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = box_area(box[None])[0] + box_area(boxes) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def select_largest(boxes: list[np.ndarray]) -> list[list[int]]:
    """Per frame, the index of the detection with the largest box (none where nobody is detected)."""
    return [[int(np.argmax(box_area(b)))] if len(b) else [] for b in boxes]


def track_person(boxes: list[np.ndarray], *, min_iou: float = TRACK_MIN_IOU) -> list[list[int]]:
    """Follow one person: start with the largest box of the first frame with detections, then per frame
    take the detection overlapping the last matched box most (IoU >= ``min_iou``); frames with no such
    detection get none, and the track keeps its last box, so a passer-by never takes over."""
    chosen: list[list[int]] = []
    last: np.ndarray | None = None
    for frame_boxes in boxes:
        if len(frame_boxes) == 0:
            chosen.append([])
            continue
        if last is None:
            index = int(np.argmax(box_area(frame_boxes)))
        else:
            overlaps = box_iou(last, frame_boxes)
            index = int(np.argmax(overlaps))
            if overlaps[index] < min_iou:
                chosen.append([])
                continue
        last = frame_boxes[index]
        chosen.append([index])
    return chosen


def select_people(boxes: list[np.ndarray], people: str) -> list[list[int]]:
    """Indices of the detections to draw in each frame for ``people`` = all | largest | track."""
    if people == "all":
        return [list(range(len(b))) for b in boxes]
    if people == "largest":
        return select_largest(boxes)
    if people == "track":
        return track_person(boxes)
    raise ValueError(f"people must be one of {', '.join(PEOPLE_MODES)}, got {people!r}")
