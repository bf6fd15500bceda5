"""Rasterise a posed identity into DensePose part labels and an appearance video, together.

Every body part is a primitive swept along a projected segment (capsules for limbs, a
rounded tapered box for the torso, ellipses for the head). For each pixel a primitive gives
its position along the segment ``t``, across it ``u`` in [-1, 1] and its depth; a z-buffer
keeps the nearest surface. ``u`` is read as a point on a cylinder seen by an orthographic
camera: its angle around the part in the body frame is ``alpha = asin(u) - yaw``, which
decides the front/back DensePose label (and left/right on the head) and the clothing
pattern's ``around`` coordinate. So labels and colours come from the same pixels: the
person's mask is exactly ``labels > 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from magicanimate.io.densepose_colors import (
    HEAD as HEAD_PARTS,
)
from magicanimate.io.densepose_colors import (
    LEFT_FOOT,
    LEFT_HAND,
    LOWER_ARM_LEFT,
    LOWER_ARM_RIGHT,
    LOWER_LEG_LEFT,
    LOWER_LEG_RIGHT,
    RIGHT_FOOT,
    RIGHT_HAND,
    TORSO,
    UPPER_ARM_LEFT,
    UPPER_ARM_RIGHT,
    UPPER_LEG_LEFT,
    UPPER_LEG_RIGHT,
)
from magicanimate.synthetic import body as B
from magicanimate.synthetic.appearance import Identity, paint_garment

# Where the front chart of a limb is centred, turned from straight ahead towards the body's
# midline (radians), and how far past its edge the back chart starts (cosine threshold).
# Chosen to match the detectron2 renders of the release: a frontal torso is all front (2)
# with thin back (1) strips at its sides; a frontal thigh is front (9/10) except a thin outer
# strip; a frontal arm is split along its length, the inner side front (17/18).
ARM_TWIST, LEG_TWIST = 1.05, 0.45
TORSO_EDGE = 0.25
MIN_CONTRAST = 48  # person pixels differ from the background by at least this (max over channels)
SKIN_SHADE = (0.72, 0.28)  # brightness = a + b * cos(angle to the camera)


@dataclass
class Patch:
    """Pixels of one primitive in a box of the canvas, for all frames: (F, h, w) arrays."""

    box: tuple[slice, slice]
    inside: np.ndarray
    t: np.ndarray  # along the segment, 0..1
    u: np.ndarray  # across, -1..1 (+1 = image right for a segment pointing down)
    depth: np.ndarray  # pixels, larger = nearer


class Canvas:
    """Z-buffered label and colour frames (F, H, W)."""

    def __init__(self, num_frames: int, size: tuple[int, int]):
        width, height = size
        self.labels = np.zeros((num_frames, height, width), dtype=np.uint8)
        self.colour = np.zeros((num_frames, height, width, 3), dtype=np.float32)
        self.depth = np.full((num_frames, height, width), -np.inf, dtype=np.float32)

    def grid(self, low: np.ndarray, high: np.ndarray) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
        """Pixel-centre coordinates xs (1, 1, w), ys (1, h, 1) of the box [low, high] (x, y), clipped."""
        height, width = self.labels.shape[1:]
        x0, y0 = max(0, int(np.floor(low[0]))), max(0, int(np.floor(low[1])))
        x1, y1 = min(width, int(np.ceil(high[0])) + 1), min(height, int(np.ceil(high[1])) + 1)
        if x0 >= x1 or y0 >= y1:
            return None
        xs = (np.arange(x0, x1, dtype=np.float32) + 0.5)[None, None, :]
        ys = (np.arange(y0, y1, dtype=np.float32) + 0.5)[None, :, None]
        return (slice(y0, y1), slice(x0, x1)), xs, ys

    def draw(self, patch: Patch, labels: np.ndarray, colour: np.ndarray) -> None:
        """Write labels (F, h, w) and colours (F, h, w, 3) where the patch is nearer than what is there."""
        box = (slice(None),) + patch.box
        visible = patch.inside & (patch.depth > self.depth[box])
        self.labels[box] = np.where(visible, labels, self.labels[box])
        self.colour[box] = np.where(visible[..., None], colour, self.colour[box])
        self.depth[box] = np.where(visible, patch.depth, self.depth[box])


# ---------------------------------------------------------------------------------------
# Primitives
# ---------------------------------------------------------------------------------------


def _col(a: np.ndarray) -> np.ndarray:
    """(F,) -> (F, 1, 1) to broadcast against a patch."""
    return np.asarray(a, dtype=np.float32)[:, None, None]


def capsule(canvas: Canvas, ends: tuple[np.ndarray, np.ndarray], *, radii: tuple[np.ndarray, np.ndarray],
            depths: tuple[np.ndarray, np.ndarray], bulge: np.ndarray | None = None) -> Patch | None:
    """A segment ends = (p0, p1), each (F, 2), swept by a radius growing from radii[0] to radii[1] (F,).

    The ends are round. Depth runs from depths[0] to depths[1] along it plus the height of
    the swept sphere's surface (scaled to ``bulge`` (F,) pixels at the axis when given).
    """
    (p0, p1), (r0, r1), (d0, d1) = ends, radii, depths
    reach = np.maximum(r0, r1)[:, None]
    found = canvas.grid((np.minimum(p0, p1) - reach).min(0), (np.maximum(p0, p1) + reach).max(0))
    if found is None:
        return None
    box, xs, ys = found
    ax, ay = _col(p1[:, 0] - p0[:, 0]), _col(p1[:, 1] - p0[:, 1])
    length2 = np.maximum(ax * ax + ay * ay, 1e-6)
    rx, ry = xs - _col(p0[:, 0]), ys - _col(p0[:, 1])  # (F, h, w) after broadcasting
    t = (rx * ax + ry * ay) / length2
    tc = np.clip(t, 0.0, 1.0)
    dx, dy = rx - tc * ax, ry - tc * ay
    dist2 = dx * dx + dy * dy
    radius = _col(r0) + tc * _col(r1 - r0)
    inside = dist2 <= radius * radius
    # The across direction: +image-x for a segment pointing down (ay > 0), turning with it.
    norm = np.sqrt(length2)
    degenerate = norm < 1e-3
    nx = np.where(degenerate, 1.0, ay / norm)
    ny = np.where(degenerate, 0.0, -ax / norm)
    u = np.clip((dx * nx + dy * ny) / np.maximum(radius, 1e-6), -1.0, 1.0)
    height = np.sqrt(np.maximum(radius * radius - dist2, 0.0))
    if bulge is not None:
        height = height / np.maximum(radius, 1e-6) * _col(bulge)
    depth = _col(d0) + tc * _col(d1 - d0) + height
    return Patch(box, inside, t, u, depth)


def ellipse(canvas: Canvas, centre: np.ndarray, *, up: np.ndarray, rx: np.ndarray, ry: np.ndarray,
            depth: np.ndarray, bulge: np.ndarray) -> Patch | None:
    """An ellipse with half-axes rx (across) and ry (along the unit vector ``up`` (F, 2)).

    ``t`` is the position along ``up`` in [-1, 1] (+1 = the end ``up`` points to), ``u``
    the position across within the pixel's row of the ellipse.
    """
    reach = np.maximum(rx, ry)[:, None]
    found = canvas.grid((centre - reach).min(0), (centre + reach).max(0))
    if found is None:
        return None
    box, xs, ys = found
    ux, uy = _col(up[:, 0]), _col(up[:, 1])
    rx_, ry_ = xs - _col(centre[:, 0]), ys - _col(centre[:, 1])
    along = (rx_ * ux + ry_ * uy) / _col(ry)
    across = (rx_ * -uy + ry_ * ux) / _col(rx)  # +image-x when up points up the image
    r2 = along * along + across * across
    inside = r2 <= 1.0
    half = np.sqrt(np.maximum(1.0 - along * along, 1e-6))
    u = np.clip(across / half, -1.0, 1.0)
    return Patch(box, inside, along, u, _col(depth) + _col(bulge) * np.sqrt(np.maximum(1.0 - r2, 0.0)))


# ---------------------------------------------------------------------------------------
# Labels and colours of a patch
# ---------------------------------------------------------------------------------------


def _alpha(patch: Patch, yaw: np.ndarray) -> np.ndarray:
    """Angle (F, h, w) of the seen surface point around the part, in the body frame (0 = front, +pi/2 = left)."""
    return np.arcsin(patch.u) - _col(yaw)


def _front_back(alpha: np.ndarray, parts: tuple[int, int], twist: float, edge: float = 0.0) -> np.ndarray:
    """DensePose label: parts[1] (front chart) where cos(alpha - twist) > edge, else parts[0] (back)."""
    return np.where(np.cos(alpha - twist) > edge, parts[1], parts[0]).astype(np.uint8)


def _left_right(alpha: np.ndarray, right: int, left: int) -> np.ndarray:
    """``left`` where the seen point is on the person's left (sin(alpha) > 0), else ``right``."""
    return np.where(np.sin(alpha) > 0, left, right).astype(np.uint8)


def _shade(colour: np.ndarray, patch: Patch) -> np.ndarray:
    """Dim colours (F, h, w, 3) towards the silhouette (a surface turning away from the light)."""
    light = SKIN_SHADE[0] + SKIN_SHADE[1] * np.sqrt(1.0 - patch.u * patch.u)
    return (colour * light[..., None]).astype(np.float32)


def _flat(rgb: tuple[float, float, float], patch: Patch) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, dtype=np.float32), patch.inside.shape + (3,))


# ---------------------------------------------------------------------------------------
# The person
# ---------------------------------------------------------------------------------------


def draw_person(canvas: Canvas, identity: Identity, *, proj: B.Projected) -> None:
    """Draw every body part of the identity in the projected pose onto the canvas."""
    body, yaw, unit = identity.body, proj.yaw, proj.unit
    xy, dz = proj.xy, proj.depth
    cos_y, sin_y = np.abs(np.cos(yaw)), np.abs(np.sin(yaw))

    # Limbs: (joints, radii in body units, DensePose (back, front), twist sign, segment name).
    limbs = []
    for side, sign in (("l", 1.0), ("r", -1.0)):
        left = side == "l"
        s, e, w, h = ((B.SHOULDER_L, B.ELBOW_L, B.WRIST_L, B.HAND_L) if left
                      else (B.SHOULDER_R, B.ELBOW_R, B.WRIST_R, B.HAND_R))
        hp, k, a, toe = (B.HIP_L, B.KNEE_L, B.ANKLE_L, B.TOE_L) if left else (B.HIP_R, B.KNEE_R, B.ANKLE_R, B.TOE_R)
        ar, lr = body.arm_radius, body.leg_radius
        limbs += [
            (s, e, ar * 1.08, ar, UPPER_ARM_LEFT if left else UPPER_ARM_RIGHT, -sign * ARM_TWIST, "upper_arm", 0.0),
            (e, w, ar, ar * 0.8, LOWER_ARM_LEFT if left else LOWER_ARM_RIGHT, -sign * ARM_TWIST, "lower_arm",
             body.upper_arm),
            (hp, k, lr * 1.15, lr * 0.85, UPPER_LEG_LEFT if left else UPPER_LEG_RIGHT, -sign * LEG_TWIST,
             "upper_leg", 0.0),
            (k, a, lr * 0.85, lr * 0.65, LOWER_LEG_LEFT if left else LOWER_LEG_RIGHT, -sign * LEG_TWIST,
             "lower_leg", body.upper_leg),
        ]
        # Hands and feet: one label each.
        hand = unit * body.hand_radius
        patch = capsule(canvas, (xy[:, w], xy[:, h]), radii=(0.8 * hand, hand), depths=(dz[:, w], dz[:, h]))
        if patch is not None:
            canvas.draw(patch, np.full(patch.inside.shape, LEFT_HAND if left else RIGHT_HAND, np.uint8),
                        _shade(_flat(identity.skin, patch), patch))
        foot = unit * body.foot_radius
        patch = capsule(canvas, (xy[:, a], xy[:, toe]), radii=(foot, 1.1 * foot), depths=(dz[:, a], dz[:, toe]))
        if patch is not None:
            canvas.draw(patch, np.full(patch.inside.shape, LEFT_FOOT if left else RIGHT_FOOT, np.uint8),
                        _shade(_flat(identity.shoes, patch), patch))

    for j0, j1, r0, r1, parts, twist, name, offset in limbs:
        patch = capsule(canvas, (xy[:, j0], xy[:, j1]), radii=(unit * r0, unit * r1), depths=(dz[:, j0], dz[:, j1]))
        if patch is None:
            continue
        alpha = _alpha(patch, yaw)
        along = offset + np.clip(patch.t, 0, 1) * getattr(body, name)
        around = alpha * (r0 + r1) / 2
        canvas.draw(patch, _front_back(alpha, parts, twist),
                    _shade(_limb_colour(identity, name, patch, along, around), patch))

    # Torso: a rounded box tapering from the hips to the shoulders, elliptic in cross-section.
    pelvis, neck = xy[:, B.PELVIS], xy[:, B.NECK]
    axis = neck - pelvis
    bottom, top = pelvis - 0.12 * axis, neck + 0.05 * axis
    turned = np.sqrt(cos_y**2 + (body.torso_depth * sin_y) ** 2)  # projected width / true width
    hip, shoulder = unit * body.hip_width * turned, unit * body.shoulder_width * turned
    depth_half = unit * body.shoulder_width * np.sqrt(sin_y**2 + (body.torso_depth * cos_y) ** 2)
    patch = capsule(canvas, (bottom, top), radii=(hip, shoulder), depths=(dz[:, B.PELVIS], dz[:, B.NECK]),
                    bulge=depth_half)
    if patch is not None:
        tt = patch.t
        # Square the ends: keep the capsule's sides, cut its round caps, round only the corners.
        patch.inside &= (tt >= -0.02) & (tt <= 1.0)
        corner = np.clip((tt - 0.8) / 0.2, 0.0, 1.0)
        patch.inside &= np.abs(patch.u) <= np.sqrt(1.0 - corner**2 * 0.85)
        alpha = _alpha(patch, yaw)
        along = (1.0 - np.clip(tt, 0, 1)) * body.torso_length * 1.17  # from the neck down
        around = alpha * body.shoulder_width
        colour = _torso_colour(identity, alpha, along, around, np.clip(tt, 0, 1))
        canvas.draw(patch, _front_back(alpha, TORSO, 0.0, TORSO_EDGE), _shade(colour, patch))

    if identity.bottom_kind == "skirt":
        _draw_skirt(canvas, identity, proj=proj, hip=hip, depth_half=depth_half)
    _draw_head(canvas, identity, proj=proj)


def skirt_length(identity: Identity) -> float:
    """Length of a skirt below the waist, body units."""
    return 0.32 * identity.body.upper_leg / 0.235


def _draw_skirt(canvas: Canvas, identity: Identity, *, proj: B.Projected, hip: np.ndarray,
                depth_half: np.ndarray) -> None:
    """A flared skirt hanging from the waist; its pixels are labelled as the upper legs under it."""
    body, xy, dz, unit, yaw = identity.body, proj.xy, proj.depth, proj.unit, proj.yaw
    waist = xy[:, B.PELVIS] + 0.2 * (xy[:, B.NECK] - xy[:, B.PELVIS])
    hem = waist + np.stack([np.zeros_like(unit), unit * skirt_length(identity)], axis=-1)
    knees = np.abs(xy[:, B.KNEE_L, 0] - xy[:, B.KNEE_R, 0]) / 2 + unit * body.leg_radius * 1.3
    flare = np.maximum(hip * 1.45, knees)
    patch = capsule(canvas, (waist, hem), radii=(hip * 1.06, flare), depths=(dz[:, B.PELVIS], dz[:, B.PELVIS]),
                    bulge=depth_half * 1.1)
    if patch is None:
        return
    patch.inside &= (patch.t >= 0.0) & (patch.t <= 1.0)
    alpha = _alpha(patch, yaw)
    left = np.sin(alpha) > 0
    front = np.cos(alpha) > 0
    labels = np.where(left, np.where(front, UPPER_LEG_LEFT[1], UPPER_LEG_LEFT[0]),
                      np.where(front, UPPER_LEG_RIGHT[1], UPPER_LEG_RIGHT[0])).astype(np.uint8)
    along = np.clip(patch.t, 0, 1) * skirt_length(identity)
    colour = paint_garment(identity.bottom, along=along, around=alpha * body.hip_width * 1.3)
    canvas.draw(patch, labels, _shade(colour.astype(np.float32), patch))


def _draw_head(canvas: Canvas, identity: Identity, *, proj: B.Projected) -> None:
    """Neck, head with hair and a face (eyes, mouth) and long or bob hair behind it."""
    body, xy, dz, unit, yaw = identity.body, proj.xy, proj.depth, proj.unit, proj.yaw
    r = unit * body.head_radius
    centre, neck = xy[:, B.HEAD], xy[:, B.NECK]
    up = centre - neck
    up = up / np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-6)  # (F, 2), points to the crown
    cos_y, sin_y = np.cos(yaw), np.sin(yaw)
    hair = np.asarray(identity.hair, dtype=np.float32)

    ends = (neck - 0.2 * r[:, None] * up, centre - 0.3 * r[:, None] * up)
    patch = capsule(canvas, ends, radii=(0.5 * r, 0.5 * r), depths=(dz[:, B.NECK], dz[:, B.HEAD]))
    if patch is not None:
        alpha = _alpha(patch, yaw)
        canvas.draw(patch, _left_right(alpha, *HEAD_PARTS), _shade(_flat(identity.skin, patch), patch))

    style = identity.hair_style
    if style in ("bob", "long"):  # hair mass behind the head (seen from the back it covers the head)
        back = -0.45 * r * cos_y  # depth of a point behind the head centre, seen turned by the yaw
        if style == "bob":
            patch = ellipse(canvas, centre + 0.08 * r[:, None] * up, up=up, rx=1.12 * r, ry=1.1 * r,
                            depth=dz[:, B.HEAD] + back, bulge=0.9 * r)
        else:
            low = centre - 1.6 * r[:, None] * up
            patch = capsule(canvas, (low, centre + 0.1 * r[:, None] * up), radii=(0.85 * r, 1.08 * r),
                            depths=(dz[:, B.HEAD] + back, dz[:, B.HEAD] + back), bulge=0.9 * r)
        if patch is not None:
            alpha = _alpha(patch, yaw)
            colour = np.broadcast_to(hair, patch.inside.shape + (3,))
            canvas.draw(patch, _left_right(alpha, *HEAD_PARTS), _shade(colour, patch))

    rx = r * np.sqrt((0.86 * cos_y) ** 2 + sin_y**2)
    patch = ellipse(canvas, centre, up=up, rx=rx, ry=1.08 * r, depth=dz[:, B.HEAD], bulge=r)
    if patch is None:
        return
    alpha = _alpha(patch, yaw)
    v = patch.t  # +1 at the crown
    ahead = np.cos(alpha)  # 1 where the face looks at the camera
    hairline = {"buzz": (0.62, -0.35), "short": (0.38, -0.05), "bob": (0.3, 0.35), "long": (0.3, 0.4)}[style]
    is_hair = (v > hairline[0]) | ((ahead < hairline[1]) & (v > -0.55))
    colour = np.where(is_hair[..., None], hair, np.asarray(identity.skin, dtype=np.float32))
    # Eyes and mouth: drawn where their spot on the head faces the camera.
    across = patch.u * np.sqrt(np.maximum(1.0 - v * v, 0.0))  # -1..1 across the whole head
    features = np.zeros(patch.inside.shape, dtype=bool)
    for angle in (-0.42, 0.42):
        beta = _col(angle + yaw)  # the eye's angle seen by the camera
        spot = (across - np.sin(beta)) ** 2 + ((v - 0.02) * 1.2) ** 2 < 0.028
        features |= spot & (np.cos(beta) > 0.2)
    mouth = ((across - np.sin(_col(yaw))) / 0.3) ** 2 + ((v + 0.5) / 0.08) ** 2 < 1.0
    features |= mouth & (np.cos(_col(yaw)) > 0.35)
    colour = np.where((features & ~is_hair)[..., None], np.float32(0.25) * colour, colour)
    canvas.draw(patch, _left_right(alpha, *HEAD_PARTS), _shade(colour.astype(np.float32), patch))


def _limb_colour(identity: Identity, name: str, patch: Patch, along: np.ndarray, around: np.ndarray) -> np.ndarray:
    """Colours (F, h, w, 3) of a limb: sleeve, trouser leg or skin depending on the clothes."""
    skin = np.asarray(identity.skin, dtype=np.float32)
    t = np.clip(patch.t, 0, 1)
    if name in ("upper_arm", "lower_arm"):
        kind, garment = identity.top_kind, identity.top
        covered = {"tank": np.zeros_like(t, dtype=bool),
                   "short_sleeves": (t < 0.55) if name == "upper_arm" else np.zeros_like(t, dtype=bool),
                   "long_sleeves": np.ones_like(t, dtype=bool)}[kind]
        fraction = np.ones_like(t)  # a two-tone top's sleeves take its upper (second) colour
    else:
        kind, garment = identity.bottom_kind, identity.bottom
        covered = {"trousers": np.ones_like(t, dtype=bool),
                   "shorts": (t < 0.5) if name == "upper_leg" else np.zeros_like(t, dtype=bool),
                   "skirt": np.zeros_like(t, dtype=bool)}[kind]
        fraction = np.zeros_like(t)
    cloth = paint_garment(garment, along=along, around=around, fraction=fraction)
    return np.where(covered[..., None], cloth, skin).astype(np.float32)


def _torso_colour(identity: Identity, alpha: np.ndarray, along: np.ndarray, around: np.ndarray,
                  t: np.ndarray) -> np.ndarray:
    """Colours (F, h, w, 3) of the torso: the bottom garment below the waist, the top above, a neckline."""
    waist = 0.2
    top = paint_garment(identity.top, along=along, around=around, fraction=(t - waist) / (1 - waist))
    bottom = paint_garment(identity.bottom, along=along, around=around)
    colour = np.where((t < waist)[..., None], bottom, top)
    deep = 0.86 if identity.top_kind == "tank" else 0.93
    neckline = (t > deep) & (np.cos(alpha) > 0) & (np.abs(np.sin(alpha)) < 0.35)
    return np.where(neckline[..., None], np.asarray(identity.skin), colour).astype(np.float32)


# ---------------------------------------------------------------------------------------
# Compositing
# ---------------------------------------------------------------------------------------


def composite(canvas: Canvas, background: np.ndarray) -> np.ndarray:
    """Appearance frames (F, H, W, 3) uint8: the person over the background, visibly different from it.

    A person pixel whose colour is within MIN_CONTRAST of the background (max over channels)
    is darkened (on a light background) or brightened (on a dark one) uniformly, keeping its
    hue, until the background's brightest (darkest) channel is exactly MIN_CONTRAST away; so
    every person pixel differs from the background by at least MIN_CONTRAST and the
    silhouette of the true video is exactly ``labels > 0``.
    """
    person = canvas.labels > 0
    out = np.repeat(background[None], len(canvas.labels), axis=0)  # (F, H, W, 3)
    colour = np.clip(np.round(canvas.colour[person]), 0, 255).astype(np.int16)  # (N, 3)
    behind = out[person].astype(np.int16)
    close = np.abs(colour - behind).max(axis=-1) < MIN_CONTRAST
    if close.any():
        c, b = colour[close], behind[close]  # (M, 3)
        light = b.mean(axis=-1) >= 128
        rows = np.arange(len(b))
        k = np.where(light, b.argmax(axis=-1), b.argmin(axis=-1))  # the channel that gets the full contrast
        shift = np.where(light, b[rows, k] - MIN_CONTRAST - c[rows, k], b[rows, k] + MIN_CONTRAST - c[rows, k])
        colour[close] = np.clip(c + shift[:, None], 0, 255)
    out[person] = colour
    return out
