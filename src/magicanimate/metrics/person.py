"""Ground-truth person metrics without a pretrained network: silhouette IoU and part-colour error.

Both need what a synthetic sample knows exactly (``magicanimate.synthetic``): the scene
without the person (one background frame, the camera is static) and the DensePose part of
every pixel.

Silhouette. A generated frame's person mask is the set of pixels that differ from the
known background by more than ``tolerance`` in at least one channel (0-255 scale):
``max_c |generated - background| > tolerance``. The synthetic generator guarantees that
every true person pixel differs from the background by at least 48 in some channel and
that every other pixel equals the background exactly, so the true video's mask is exactly
the true person mask for any tolerance in [0, 48); the default 24 sits in the middle,
ignoring small colour noise of a model's background while still seeing a person that is
close in colour to the scene. The score of a frame is |A ∩ B| / |A ∪ B| (1 when both
are empty), averaged over frames. ``silhouette_errors`` splits what the IoU loses into the
true person's pixels that were missed (person recall) and the background's pixels taken for
person (background false alarms: a blurred or recoloured background counts here, as does a
blurred halo around the person).

Part colour. For each frame and each DensePose part k (1..24) covering at least
``min_pixels`` pixels of the true labels, the mean colour of the generated frame over
those pixels is compared with the mean colour of the true frame over the same pixels:
the error is the mean over the three channels of |difference| (0-255 scale). A frame's
score is the mean over the parts present in it; the video's is the mean over frames with
at least one part. It measures whether each body part has the right colours where it
should be, forgiving texture misplacements within a part.

Generated videos of another size are resized to the ground truth's frame size first
(bilinear, as the paired metrics do).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from magicanimate.io.densepose_colors import NUM_PARTS, person_mask
from magicanimate.errors import InputError
from magicanimate.metrics.arrays import Video, check_pair, resize_bilinear_uint8, to_uint8

SILHOUETTE_TOLERANCE = 24  # 0-255; half the generator's guaranteed person/background contrast (48)


def _background(background: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The background (H, W, 3) as uint8 at (height, width) = size."""
    bg = to_uint8(np.asarray(background)[None], name="background")
    return resize_bilinear_uint8(bg, size)[0]


def silhouette(video: Video, background: np.ndarray, *, tolerance: float = SILHOUETTE_TOLERANCE) -> np.ndarray:
    """Person mask (F, H, W) bool of frames over a known background: max_c |frame - background| > tolerance."""
    frames = to_uint8(video, name="video")
    bg = _background(background, frames.shape[1:3]).astype(np.int16)
    return np.abs(frames.astype(np.int16) - bg[None]).max(axis=-1) > tolerance


def mask_iou_per_frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a ∩ b| / |a ∪ b| per frame of two (F, H, W) bool masks; 1 where both are empty."""
    if a.shape != b.shape:
        raise InputError(f"masks of different shapes: {a.shape} and {b.shape}")
    inter = (a & b).sum(axis=(1, 2))
    union = (a | b).sum(axis=(1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def silhouette_iou(generated: Video, true_mask: np.ndarray, *, background: np.ndarray,
                   tolerance: float = SILHOUETTE_TOLERANCE) -> float:
    """Mean over frames of the IoU of the generated person mask (vs the known background) and the true mask.

    ``true_mask`` is (F, H, W) (bool, or part labels where > 0 is the person); the generated
    video is resized to its frame size; ``background`` is the scene (H, W, 3) without the person.
    """
    truth = np.asarray(true_mask) > 0
    frames = to_uint8(generated, name="generated")
    check_pair(frames, truth)
    frames = resize_bilinear_uint8(frames, truth.shape[1:3])
    return float(mask_iou_per_frame(silhouette(frames, background, tolerance=tolerance), truth).mean())


def silhouette_errors(generated: Video, true_mask: np.ndarray, *, background: np.ndarray,
                      tolerance: float = SILHOUETTE_TOLERANCE) -> dict[str, float]:
    """Where a silhouette IoU is lost: the share of the true person found, and of the background taken for person.

    ``person_recall``: mean over frames of |generated mask ∩ true mask| / |true mask| (1 in
    frames without a person); ``background_false_alarm``: mean over frames of the fraction of
    the true background's pixels that the generated mask calls person (0 in frames that are all
    person). Same masks, resizing and tolerance as ``silhouette_iou``.
    """
    truth = np.asarray(true_mask) > 0
    frames = to_uint8(generated, name="generated")
    check_pair(frames, truth)
    frames = resize_bilinear_uint8(frames, truth.shape[1:3])
    mask = silhouette(frames, background, tolerance=tolerance)
    person, scene = truth.sum(axis=(1, 2)), (~truth).sum(axis=(1, 2))
    found = (mask & truth).sum(axis=(1, 2))
    false_alarms = (mask & ~truth).sum(axis=(1, 2))
    recall = np.where(person > 0, found / np.maximum(person, 1), 1.0)
    false_alarm = np.where(scene > 0, false_alarms / np.maximum(scene, 1), 0.0)
    return {"person_recall": float(recall.mean()), "background_false_alarm": float(false_alarm.mean())}


def part_colour_error_per_frame(generated: Video, ground_truth: Video, *, labels: np.ndarray,
                                min_pixels: int = 4) -> np.ndarray:
    """Per frame: mean over present parts of the mean-channel |mean colour difference| (0-255); NaN if none."""
    truth = to_uint8(ground_truth, name="ground truth")
    frames = to_uint8(generated, name="generated")
    labels = np.asarray(labels)
    if labels.shape != truth.shape[:3]:
        raise InputError(f"labels {labels.shape} do not match the ground truth frames {truth.shape[:3]}")
    if labels.dtype.kind not in "iu" or labels.min(initial=0) < 0 or labels.max(initial=0) > NUM_PARTS:
        raise InputError(f"labels must be integers in 0..{NUM_PARTS}")
    check_pair(frames, truth)
    frames = resize_bilinear_uint8(frames, truth.shape[1:3])
    num_frames, bins = truth.shape[0], NUM_PARTS + 1
    index = (np.arange(num_frames)[:, None, None] * bins + labels).ravel()  # (F*H*W,) bin of (frame, part)
    counts = np.bincount(index, minlength=num_frames * bins).reshape(num_frames, bins)
    sums = np.stack([np.bincount(index, weights=v[..., c].ravel().astype(np.float64),
                                 minlength=num_frames * bins).reshape(num_frames, bins)
                     for v in (frames, truth) for c in range(3)], axis=-1)  # (F, 25, 6)
    means = sums / np.maximum(counts, 1)[..., None]
    error = np.abs(means[..., :3] - means[..., 3:]).mean(axis=-1)  # (F, 25)
    present = counts >= min_pixels
    present[:, 0] = False  # the background is not a part
    with np.errstate(invalid="ignore"):
        return np.where(present.any(axis=1), (error * present).sum(axis=1) / present.sum(axis=1), np.nan)


def part_colour_error(generated: Video, ground_truth: Video, *, labels: np.ndarray, min_pixels: int = 4) -> float:
    """Mean colour per body part, generated vs true (0-255 scale): mean over frames of the mean over parts present."""
    per_frame = part_colour_error_per_frame(generated, ground_truth, labels=labels, min_pixels=min_pixels)
    if np.isnan(per_frame).all():
        raise InputError(f"no body part covers {min_pixels} pixels in any frame of the labels")
    return float(np.nanmean(per_frame))


def motion_mask(motion: np.ndarray, *, size: tuple[int, int] | None = None) -> np.ndarray:
    """The person mask (F, H, W) of a motion: part labels (F, H, W) > 0, or dp_segm frames (F, H, W, 3)
    not viridis(0); resized to (height, width) = size by area (a pixel is person if half of it is)."""
    motion = np.asarray(motion)
    if motion.ndim == 4:
        mask = person_mask(motion)
    elif motion.ndim == 3:
        mask = motion > 0
    else:
        raise InputError(f"motion must be labels (F, H, W) or dp_segm frames (F, H, W, 3), got {motion.shape}")
    if size is not None and mask.shape[1:3] != tuple(size):
        x = torch.from_numpy(mask.astype(np.float32))[:, None]  # (F, 1, H, W)
        mask = (F.interpolate(x, size=tuple(size), mode="area")[:, 0] >= 0.5).numpy()
    return mask


def motion_silhouette_iou(generated: Video, motion: np.ndarray, *, background: np.ndarray,
                          tolerance: float = SILHOUETTE_TOLERANCE) -> float:
    """Silhouette IoU of an animation against its driving motion's own person mask, at the generated size.

    For real DensePose motions (no true appearance video): the motion's mask (labels > 0, or
    dp_segm pixels that are not background) is resized to the generated frames; ``background``
    is the reference's scene without the person.
    """
    frames = to_uint8(generated, name="generated")
    truth = motion_mask(motion, size=frames.shape[1:3])
    check_pair(frames, truth)
    return float(mask_iou_per_frame(silhouette(frames, background, tolerance=tolerance), truth).mean())
