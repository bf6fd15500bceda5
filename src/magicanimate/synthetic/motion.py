"""Motion families: joint-angle curves of F frames (jumping jacks, walking in place, turning, ...).

Each family is a function ``(pose, t, rng) -> None`` that edits a neutral :class:`Pose` in
place; ``t`` is the frame index as floats. :func:`make_motion` adds the placement every
family shares (where the person stands, how big, which way it faces) and draws the
family's own parameters (period, phase, amplitudes) from the generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from magicanimate.synthetic.body import Pose

Family = Callable[[Pose, np.ndarray, np.random.Generator], None]


def _theta(t: np.ndarray, rng: np.random.Generator, low: float, high: float) -> np.ndarray:
    """Phase angle of a periodic motion with a random period in [low, high] frames."""
    return 2.0 * math.pi * t / rng.uniform(low, high) + rng.uniform(0.0, 2.0 * math.pi)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


# ---------------------------------------------------------------------------------------
# Families seen in training
# ---------------------------------------------------------------------------------------


def jumping_jacks(pose: Pose, t: np.ndarray, rng: np.random.Generator) -> None:
    """Arms sweep from the sides to overhead while the legs open, with a hop."""
    theta = _theta(t, rng, 14, 26)
    opened = (1.0 - np.cos(theta)) / 2.0
    reach, spread = rng.uniform(2.2, 2.9), rng.uniform(0.2, 0.42)
    for side in "lr":
        pose[f"arm_{side}_abd"][:] = 0.12 + reach * opened
        pose[f"forearm_{side}_abd"][:] = 0.1 + (reach + 0.2) * opened
        pose[f"forearm_{side}_flex"][:] = 0.1 * (1.0 - opened)
        pose[f"thigh_{side}_abd"][:] = 0.05 + spread * opened
        pose[f"shin_{side}_abd"][:] = 0.03 + 0.85 * spread * opened
    pose["hop"][:] = rng.uniform(0.02, 0.06) * np.abs(np.sin(theta))


def walk_in_place(pose: Pose, t: np.ndarray, rng: np.random.Generator) -> None:
    """Knees lift in turn, the opposite arm swings forward."""
    theta = _theta(t, rng, 16, 30)
    lift, swing = rng.uniform(0.6, 1.3), rng.uniform(0.3, 0.8)
    for side, sign in (("l", 1.0), ("r", -1.0)):
        up = np.maximum(0.0, sign * np.sin(theta))
        pose[f"thigh_{side}_flex"][:] = lift * up
        pose[f"shin_{side}_flex"][:] = -0.9 * lift * up
        pose[f"arm_{side}_flex"][:] = -sign * swing * np.sin(theta)
        pose[f"forearm_{side}_flex"][:] = -sign * swing * np.sin(theta) + 0.5
    pose["hop"][:] = 0.012 * np.abs(np.sin(theta))
    pose["lean"][:] = 0.03 * np.sin(theta)


def arm_wave(pose: Pose, t: np.ndarray, rng: np.random.Generator) -> None:
    """One or both forearms wave overhead; the other arm rests or waves out of phase."""
    theta = _theta(t, rng, 10, 20)
    mode = rng.integers(3)  # 0: left only, 1: right only, 2: both
    for k, side in enumerate("lr"):
        if mode != 2 and mode != k:
            continue
        base = rng.uniform(1.7, 2.6)
        phase = math.pi * k if mode == 2 and rng.random() < 0.5 else 0.0
        pose[f"arm_{side}_abd"][:] = base + 0.08 * np.sin(theta / 2)
        pose[f"forearm_{side}_abd"][:] = base + 0.35 + rng.uniform(0.3, 0.6) * np.sin(theta + phase)
        pose[f"forearm_{side}_flex"][:] = 0.0
    pose["lean"][:] = rng.uniform(0.0, 0.07) * np.sin(theta / 2)


def squat(pose: Pose, t: np.ndarray, rng: np.random.Generator) -> None:
    """Knees bend deeply and come up again, arms reach forward for balance."""
    theta = _theta(t, rng, 20, 36)
    depth = rng.uniform(0.6, 1.0) * (1.0 - np.cos(theta)) / 2.0
    forward = rng.uniform(0.0, 1.0)
    for side in "lr":
        pose[f"thigh_{side}_flex"][:] = 1.35 * depth
        pose[f"shin_{side}_flex"][:] = -0.45 * depth
        pose[f"thigh_{side}_abd"][:] = 0.06 + 0.3 * depth
        pose[f"shin_{side}_abd"][:] = 0.03 + 0.12 * depth
        pose[f"arm_{side}_flex"][:] = 1.45 * depth * forward
        pose[f"forearm_{side}_flex"][:] = 1.45 * depth * forward + 0.1
        pose[f"arm_{side}_abd"][:] = 0.12 + 0.5 * depth * (1.0 - forward)
    pose["bend"][:] = 0.2 * depth


def side_step(pose: Pose, t: np.ndarray, rng: np.random.Generator) -> None:
    """Steps left and right across the frame, feet opening as the body moves."""
    theta = _theta(t, rng, 20, 36)
    pose["x"][:] = pose["x"] + rng.uniform(0.06, 0.16) * np.sin(theta)
    step = rng.uniform(0.15, 0.3)
    for side, sign in (("l", 1.0), ("r", -1.0)):
        opening = np.maximum(0.0, sign * np.cos(theta))
        pose[f"thigh_{side}_abd"][:] = 0.05 + step * opening
        pose[f"shin_{side}_abd"][:] = 0.03 + step * opening
        pose[f"arm_{side}_abd"][:] = 0.15 + 0.35 * opening
        pose[f"forearm_{side}_abd"][:] = 0.1 + 0.45 * opening
    pose["hop"][:] = 0.01 * np.abs(np.cos(theta))


def turn(pose: Pose, t: np.ndarray, rng: np.random.Generator) -> None:
    """Turns on the spot (half or full turn) so that the back is seen, arms swaying."""
    n = max(len(t) - 1, 1)
    amount = rng.choice([math.pi, 2.0 * math.pi, 1.5 * math.pi]) * rng.choice([-1.0, 1.0])
    start, stop = rng.uniform(0.0, 0.3), rng.uniform(0.7, 1.0)
    pose["yaw"][:] = pose["yaw"] + amount * _smoothstep((t / n - start) / (stop - start))
    theta = _theta(t, rng, 16, 30)
    for side, sign in (("l", 1.0), ("r", -1.0)):
        pose[f"arm_{side}_abd"][:] = 0.15 + 0.1 * np.sin(theta) * sign
        pose[f"arm_{side}_flex"][:] = 0.25 * np.sin(theta) * sign
        pose[f"forearm_{side}_flex"][:] = 0.25 * np.sin(theta) * sign + 0.3


def zoom(pose: Pose, t: np.ndarray, rng: np.random.Generator) -> None:
    """Walks towards or away from the camera and across: size and position change, arms swing."""
    n = max(len(t) - 1, 1)
    s0, s1 = rng.uniform(0.45, 0.7, size=2)
    ramp = _smoothstep(t / n)
    pose["scale"][:] = s0 + (s1 - s0) * ramp
    pose["x"][:] = pose["x"] + rng.uniform(-0.12, 0.12) * (ramp - 0.5)
    pose["ground"][:] = 0.95 - 0.08 * (0.7 - pose["scale"])
    walk_in_place(pose, t, rng)


# ---------------------------------------------------------------------------------------
# Families only in the held-out split
# ---------------------------------------------------------------------------------------


def boxing(pose: Pose, t: np.ndarray, rng: np.random.Generator) -> None:
    """Alternating punches from a guard, fists forward at head height (held out)."""
    theta = _theta(t, rng, 12, 22)
    for side, sign in (("l", 1.0), ("r", -1.0)):
        punch = np.maximum(0.0, sign * np.sin(theta)) ** 2
        pose[f"arm_{side}_abd"][:] = 0.45 + 0.9 * punch
        pose[f"arm_{side}_flex"][:] = 0.5 + 0.5 * punch
        pose[f"forearm_{side}_abd"][:] = 2.5 - 1.1 * punch
        pose[f"forearm_{side}_flex"][:] = 0.6 + 0.4 * punch
        pose[f"thigh_{side}_abd"][:] = 0.14
        pose[f"shin_{side}_abd"][:] = 0.08
    pose["lean"][:] = 0.06 * np.sin(theta)
    pose["hop"][:] = 0.015 * np.abs(np.sin(2 * theta))


def side_stretch(pose: Pose, t: np.ndarray, rng: np.random.Generator) -> None:
    """Wide stance, the torso bends to each side with the opposite arm arched overhead (held out)."""
    theta = _theta(t, rng, 24, 40)
    amount = rng.uniform(0.2, 0.35)
    pose["lean"][:] = amount * np.sin(theta)
    for side, sign in (("l", 1.0), ("r", -1.0)):
        up = np.maximum(0.0, -sign * np.sin(theta))  # the left arm rises while leaning right
        pose[f"arm_{side}_abd"][:] = 0.2 + 2.5 * up
        pose[f"forearm_{side}_abd"][:] = 0.15 + 3.0 * up
        pose[f"thigh_{side}_abd"][:] = 0.28
        pose[f"shin_{side}_abd"][:] = 0.2


MOTION_FAMILIES: dict[str, Family] = {
    "jumping_jacks": jumping_jacks,
    "walk_in_place": walk_in_place,
    "arm_wave": arm_wave,
    "squat": squat,
    "side_step": side_step,
    "turn": turn,
    "zoom": zoom,
    "boxing": boxing,
    "side_stretch": side_stretch,
}
TRAIN_MOTIONS = ("jumping_jacks", "walk_in_place", "arm_wave", "squat", "side_step", "turn", "zoom")
FULL_BODY, MEDIUM_SHOT = 0.6, 0.25  # probabilities of the framings (the rest: close-ups)
HELDOUT_MOTIONS = ("boxing", "side_stretch", "jumping_jacks", "turn")  # the first two are never trained on


def make_motion(family: str, *, num_frames: int, rng: np.random.Generator) -> Pose:
    """Joint angles and placement of ``num_frames`` frames of one motion family."""
    if family not in MOTION_FAMILIES:
        raise ValueError(f"unknown motion family {family!r}; known: {', '.join(MOTION_FAMILIES)}")
    pose = Pose.neutral(num_frames)
    # Where the person stands and which way it faces: mostly the front, sometimes the back or side.
    view = rng.random()
    yaw = rng.normal(0.0, 0.15) + (math.pi if view < 0.15 else rng.choice([-1, 1]) * rng.uniform(0.4, 1.1)
                                    if view < 0.3 else 0.0)
    pose["yaw"][:] = yaw
    # Framing: full body (feet in the frame), or closer, the legs (or more) below the frame's edge
    # with the head near the top, as in most of the release's real motions.
    framing = rng.random()
    if framing < FULL_BODY:
        pose["scale"][:] = rng.uniform(0.6, 0.8)
        pose["ground"][:] = rng.uniform(0.9, 0.97)
    else:
        scale = rng.uniform(0.85, 1.15) if framing < FULL_BODY + MEDIUM_SHOT else rng.uniform(1.15, 1.6)
        pose["scale"][:] = scale
        pose["ground"][:] = rng.uniform(0.04, 0.12) + 1.02 * scale  # the crown's row, plus the body height
    pose["x"][:] = rng.uniform(0.4, 0.6)
    t = np.arange(num_frames, dtype=np.float64)
    MOTION_FAMILIES[family](pose, t, rng)
    return pose
