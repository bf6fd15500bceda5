"""Speed of the DensePose extractor per frame at the default internal size and smaller opt-in sizes.

A smaller ``detect_size`` (shortest side the network sees; detectron2 uses 800) is faster and
lossy: the label agreement with the default size is reported next to its speed.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from magicanimate.densepose.extractor import DEFAULT_MIN_SCORE, DensePoseExtractor
from magicanimate.densepose.preprocess import DEFAULT_SHORT_EDGE


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def label_agreement(labels: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Pixel agreement of part labels with a reference: all pixels, and IoU of the foreground."""
    union = ((labels > 0) | (reference > 0)).sum()
    return {
        "pixels_equal": float((labels == reference).mean()),
        "foreground_iou": float(((labels > 0) & (reference > 0)).sum() / union) if union else 1.0,
    }


def benchmark_densepose(
    extractor: DensePoseExtractor,
    frames: np.ndarray,
    *,
    detect_sizes: tuple[int, ...] = (DEFAULT_SHORT_EDGE, 512),
    min_score: float = DEFAULT_MIN_SCORE,
    batch_size: int = 1,
    repeats: int = 1,
) -> dict[str, object]:
    """Seconds per frame for each detect size (first = the reference for label agreement), after one warm-up batch."""
    frames = np.asarray(frames)
    frames = frames[None] if frames.ndim == 3 else frames
    results: dict[str, object] = {
        "device": str(extractor.device), "dtype": str(extractor.dtype).replace("torch.", ""),
        "torch_threads": torch.get_num_threads(), "frames": int(len(frames)),
        "frame_size": [int(frames.shape[1]), int(frames.shape[2])], "min_score": min_score,
        "batch_size": batch_size, "sizes": {},
    }
    reference_labels = None
    for size in detect_sizes:
        extractor(frames[:batch_size], min_score, batch_size=batch_size, detect_size=size)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            _synchronize(extractor.device)
            start = time.perf_counter()
            out = extractor(frames, min_score, batch_size=batch_size, detect_size=size)
            _synchronize(extractor.device)
            best = min(best, time.perf_counter() - start)
        entry: dict[str, object] = {
            "network_input": list(extractor.input_size(*frames.shape[1:3], detect_size=size)),
            "seconds_per_frame": best / len(frames),
            "detections_per_frame": float(np.mean([len(b) for b in out.boxes])),
        }
        labels = out.labels if out.labels.ndim == 3 else out.labels[None]
        if reference_labels is None:
            reference_labels = labels
        else:
            entry.update(label_agreement(labels, reference_labels))
        results["sizes"][str(size)] = entry
    return results
