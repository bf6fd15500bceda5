"""Articulated 2.5D people: body proportions, joint angles, the 3D skeleton and its projection.

The skeleton lives in a body frame with x = the person's left, y = up, z = forward (towards
the camera when the person faces it); lengths are in "body units" (a standard person is
about 1 tall). The camera is orthographic and can only see the person turned about the
vertical axis by ``yaw`` (0 = facing the camera, pi = showing the back), scaled and moved.
Every function is vectorised over frames: angles are (F,) arrays, joints (F, J, 3).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

# Joint indices of the skeleton array (F, NUM_JOINTS, 3).
PELVIS, NECK, HEAD = 0, 1, 2
SHOULDER_L, ELBOW_L, WRIST_L, HAND_L = 3, 4, 5, 6
SHOULDER_R, ELBOW_R, WRIST_R, HAND_R = 7, 8, 9, 10
HIP_L, KNEE_L, ANKLE_L, TOE_L = 11, 12, 13, 14
HIP_R, KNEE_R, ANKLE_R, TOE_R = 15, 16, 17, 18
NUM_JOINTS = 19


@dataclass(frozen=True)
class BodyShape:
    """Proportions of one person, in body units (a standard person is about 1 tall)."""

    head_radius: float = 0.062
    neck_length: float = 0.025
    torso_length: float = 0.30
    shoulder_width: float = 0.130  # half-width of the torso at the shoulders
    hip_width: float = 0.090  # half-width of the torso at the hips
    torso_depth: float = 0.62  # front-to-back thickness / width
    upper_arm: float = 0.165
    lower_arm: float = 0.150
    arm_radius: float = 0.040
    hand_radius: float = 0.030
    upper_leg: float = 0.235
    lower_leg: float = 0.225
    leg_radius: float = 0.052
    foot_length: float = 0.070
    foot_radius: float = 0.024


def random_body(rng: np.random.Generator) -> BodyShape:
    """Draw proportions: height, width, limb thickness and head size vary independently."""
    base = BodyShape()
    height = rng.uniform(0.86, 1.06)  # scales every length
    width = rng.uniform(0.8, 1.3)  # scales widths of torso
    limbs = rng.uniform(0.75, 1.35)  # scales limb thickness
    head = rng.uniform(0.85, 1.25)
    legs = rng.uniform(0.92, 1.08)  # leg length relative to the rest
    widths = {"shoulder_width", "hip_width"}
    thick = {"arm_radius", "leg_radius", "hand_radius", "foot_radius"}
    values = {}
    for f in fields(base):
        v = getattr(base, f.name)
        if f.name == "torso_depth":
            values[f.name] = v * rng.uniform(0.85, 1.15)
            continue
        v *= height
        if f.name in widths:
            v *= width * (rng.uniform(0.9, 1.1) if f.name == "hip_width" else 1.0)
        elif f.name in thick:
            v *= limbs
        elif f.name == "head_radius":
            v *= head
        elif f.name in ("upper_leg", "lower_leg"):
            v *= legs
        values[f.name] = float(v)
    return BodyShape(**values)


# Joint angles of every frame. Each limb segment's direction is given by two absolute angles:
# abduction (in the frontal plane: 0 = straight down, pi/2 = out to the side, pi = up) and
# flexion (towards the front: pi/2 = pointing forward).
POSE_FIELDS = (
    "arm_l_abd", "arm_l_flex", "forearm_l_abd", "forearm_l_flex",
    "arm_r_abd", "arm_r_flex", "forearm_r_abd", "forearm_r_flex",
    "thigh_l_abd", "thigh_l_flex", "shin_l_abd", "shin_l_flex",
    "thigh_r_abd", "thigh_r_flex", "shin_r_abd", "shin_r_flex",
    "lean", "bend", "head_tilt", "hop",
)
ROOT_FIELDS = ("yaw", "scale", "x", "ground")


@dataclass
class Pose:
    """Joint angles (radians) and root placement of F frames, each an (F,) float array.

    ``lean`` bends the torso to the person's left, ``bend`` forwards; ``hop`` lifts the
    body (body units); ``yaw`` turns the person (pi shows the back); ``scale`` is the body
    height as a fraction of the frame height; ``x`` the pelvis column and ``ground`` the
    row of the feet, both as fractions of the frame width/height.
    """

    values: dict[str, np.ndarray]

    @classmethod
    def neutral(cls, num_frames: int) -> "Pose":
        """A person standing, arms slightly out, facing the camera, centred."""
        v = {name: np.zeros(num_frames) for name in POSE_FIELDS}
        for side in "lr":
            v[f"arm_{side}_abd"] += 0.12
            v[f"forearm_{side}_abd"] += 0.08
            v[f"forearm_{side}_flex"] += 0.15
            v[f"thigh_{side}_abd"] += 0.05
            v[f"shin_{side}_abd"] += 0.02
        v.update(yaw=np.zeros(num_frames), scale=np.full(num_frames, 0.78),
                 x=np.full(num_frames, 0.5), ground=np.full(num_frames, 0.93))
        return cls(v)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[name]

    @property
    def num_frames(self) -> int:
        """Number of frames."""
        return len(self.values["yaw"])


def _direction(abd: np.ndarray, flex: np.ndarray, side: float) -> np.ndarray:
    """Unit vectors (F, 3) of limb segments from abduction/flexion; side +1 = left, -1 = right."""
    return np.stack([side * np.sin(abd) * np.cos(flex), -np.cos(abd) * np.cos(flex), np.sin(flex)], axis=-1)


def skeleton(body: BodyShape, pose: Pose) -> np.ndarray:
    """3D joint positions (F, NUM_JOINTS, 3) in body units, the lowest foot point on y = hop."""
    n = pose.num_frames
    joints = np.zeros((n, NUM_JOINTS, 3))
    lean, bend = pose["lean"], pose["bend"]
    up = np.stack([np.sin(lean) * np.cos(bend), np.cos(lean) * np.cos(bend), np.sin(bend)], axis=-1)  # (F, 3)
    across = np.stack([np.cos(lean), -np.sin(lean), np.zeros(n)], axis=-1)  # the person's left, (F, 3)
    joints[:, NECK] = body.torso_length * up
    tilt = lean + pose["head_tilt"]
    head_up = np.stack([np.sin(tilt) * np.cos(bend), np.cos(tilt) * np.cos(bend), np.sin(bend)], axis=-1)
    joints[:, HEAD] = joints[:, NECK] + (body.neck_length + body.head_radius) * head_up
    shoulder_row = joints[:, NECK] - 0.035 * up
    for side, (s, e, w, h), limb in ((1.0, (SHOULDER_L, ELBOW_L, WRIST_L, HAND_L), "l"),
                                     (-1.0, (SHOULDER_R, ELBOW_R, WRIST_R, HAND_R), "r")):
        joints[:, s] = shoulder_row + side * (body.shoulder_width - 0.6 * body.arm_radius) * across
        upper = _direction(pose[f"arm_{limb}_abd"], pose[f"arm_{limb}_flex"], side)
        lower = _direction(pose[f"forearm_{limb}_abd"], pose[f"forearm_{limb}_flex"], side)
        joints[:, e] = joints[:, s] + body.upper_arm * upper
        joints[:, w] = joints[:, e] + body.lower_arm * lower
        joints[:, h] = joints[:, w] + 0.9 * body.hand_radius * lower
    for side, (hp, k, a, t), limb in ((1.0, (HIP_L, KNEE_L, ANKLE_L, TOE_L), "l"),
                                      (-1.0, (HIP_R, KNEE_R, ANKLE_R, TOE_R), "r")):
        joints[:, hp] = np.array([side * (body.hip_width - 0.8 * body.leg_radius), 0.0, 0.0])
        thigh = _direction(pose[f"thigh_{limb}_abd"], pose[f"thigh_{limb}_flex"], side)
        shin = _direction(pose[f"shin_{limb}_abd"], pose[f"shin_{limb}_flex"], side)
        joints[:, k] = joints[:, hp] + body.upper_leg * thigh
        joints[:, a] = joints[:, k] + body.lower_leg * shin
        joints[:, t] = joints[:, a] + np.array([side * 0.15, -0.35, 1.0]) * body.foot_length
    # Stand on the ground: the lowest ankle/toe (minus the foot's radius) touches y = hop.
    feet = joints[:, [ANKLE_L, TOE_L, ANKLE_R, TOE_R], 1].min(axis=1) - body.foot_radius  # (F,)
    joints[..., 1] += (pose["hop"] - feet)[:, None]
    return joints


@dataclass
class Projected:
    """Joints seen by the camera: image positions (F, J, 2) in pixels (x right, y down),
    depth (F, J) in pixels (larger = nearer the camera), pixels per body unit (F,) and yaw (F,)."""

    xy: np.ndarray
    depth: np.ndarray
    unit: np.ndarray
    yaw: np.ndarray


def project(joints: np.ndarray, pose: Pose, *, size: tuple[int, int]) -> Projected:
    """Turn the skeleton by the yaw, scale it to pixels and place it in a (W, H) frame."""
    width, height = size
    yaw = pose["yaw"][:, None]  # (F, 1)
    x, y, z = joints[..., 0], joints[..., 1], joints[..., 2]
    x_cam = x * np.cos(yaw) + z * np.sin(yaw)
    z_cam = -x * np.sin(yaw) + z * np.cos(yaw)
    unit = pose["scale"] * height  # pixels per body unit, (F,)
    xy = np.stack([pose["x"][:, None] * width + unit[:, None] * x_cam,
                   pose["ground"][:, None] * height - unit[:, None] * y], axis=-1)  # (F, J, 2)
    return Projected(xy=xy, depth=z_cam * unit[:, None], unit=unit, yaw=pose["yaw"].copy())


CROWN_MARGIN = 0.04  # a zoom keeps the top of the head at least this far (frame fraction) below the top edge


def zoom_camera(pose: Pose, factor: float) -> Pose:
    """The pose as a camera ``factor`` times closer sees it: zoomed about the frame's centre.

    Scale grows by ``factor`` and (x, ground) move away from the centre (0.5, 0.5); where that
    would lift the top of the head (about ``ground - 1.02 * scale``) above ``CROWN_MARGIN``, or
    above its own row if it was already higher, the person moves down instead, so that a head
    stays in the frame while legs may leave it at the bottom. A factor of 1 returns an exact
    copy (no rounding), so unzoomed data stays bit for bit what it was.
    """
    if factor <= 0:
        raise ValueError(f"zoom factor must be positive, got {factor}")
    values = {name: value.copy() for name, value in pose.values.items()}
    if factor == 1.0:
        return Pose(values)
    crown = values["ground"] - 1.02 * values["scale"]  # (F,) row of the top of the head
    values["scale"] = factor * values["scale"]
    values["x"] = 0.5 + factor * (values["x"] - 0.5)
    zoomed_crown = 0.5 + factor * (crown - 0.5)
    lowest_allowed = np.minimum(crown, CROWN_MARGIN)  # a head already near the top may stay there
    values["ground"] = np.maximum(zoomed_crown, lowest_allowed) + 1.02 * values["scale"]
    return Pose(values)
