"""Synthetic human-animation data with exact ground truth (numpy only, deterministic, no downloads).

Articulated 2.5D people (``body``) move through motion families (``motion``), dressed and
placed in scenes (``appearance``), and are rasterised into an appearance video and its
DensePose part labels from the same geometry (``render``); ``dataset`` fixes samples and the
train / held-out splits and writes the training layout. See docs/synthetic_data.md.
``simple_person`` is the older cartoon person of the demos and tests.
"""

from magicanimate.synthetic.dataset import (
    HELDOUT_IDENTITY_START,
    Sample,
    SampleSpec,
    make_reference,
    make_sample,
    materialise,
    reference_pose,
    render,
    scene_for,
    split_specs,
    write_dataset,
)
from magicanimate.synthetic.motion import HELDOUT_MOTIONS, MOTION_FAMILIES, TRAIN_MOTIONS

__all__ = [
    "HELDOUT_IDENTITY_START",
    "HELDOUT_MOTIONS",
    "MOTION_FAMILIES",
    "TRAIN_MOTIONS",
    "Sample",
    "SampleSpec",
    "make_reference",
    "make_sample",
    "materialise",
    "reference_pose",
    "render",
    "scene_for",
    "split_specs",
    "write_dataset",
]
