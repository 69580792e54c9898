"""Turned faces for the relight tests, made from the frontal portraits that ship in
packages: the face mesh's 3-D landmarks, and round them the head as an upright cylinder,
turned about the head's vertical axis; the picture follows by a thin-plate spline through
the moves, and beyond the head nothing moves. The face mesh then sees a three-quarter face
with its far side foreshortened, as a turned head shows it."""

from __future__ import annotations

import cv2
import numpy as np
from limner import engines, imaging
from limner.engines.face import face_size
from scipy.interpolate import RBFInterpolator


def _turn(x: np.ndarray, depth: np.ndarray, angle: float) -> np.ndarray:
    """Horizontal positions (from the axis) after a turn about a vertical axis; `depth`
    from the axis, growing away from the camera."""
    return x * np.cos(angle) - depth * np.sin(angle)


def turned(image: np.ndarray, yaw: float) -> np.ndarray:
    """`image` (u8 RGB or RGBA) with its largest face turned by `yaw` degrees (+: the
    nose towards the image's right)."""
    faces = engines.get("face", "mediapipe").faces(imaging.to_float(image[:, :, :3]))
    points = max(faces, key=face_size)[:468].astype(np.float64)
    size = face_size(points)
    centre = points.mean(0)
    angle = np.radians(yaw)
    axis = centre[2] + 0.45 * size              # the head's axis lies behind the face
    moved = np.stack([centre[0] + _turn(points[:, 0] - centre[0], points[:, 2] - axis,
                                        angle), points[:, 1]], 1)
    # round the face: the head's front as a cylinder (radius 0.62 face sizes), turning
    # with it; from 1.6 face sizes out, nothing moves
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    radius = 0.62 * size
    head = np.stack([centre[0] + 0.75 * size * np.cos(t), centre[1] + 0.9 * size * np.sin(t)],
                    1)
    across = np.clip(head[:, 0] - centre[0], -radius, radius)
    depth = -np.sqrt(np.maximum(radius ** 2 - across ** 2, 0))
    head_moved = head.copy()
    head_moved[:, 0] = centre[0] + _turn(across, depth, angle) + (head[:, 0] - centre[0] -
                                                                 across)
    ring = np.stack([centre[0] + 1.6 * size * np.cos(t), centre[1] + 1.6 * size * np.sin(t)], 1)
    inverse = RBFInterpolator(np.concatenate([moved, head_moved, ring]),
                              np.concatenate([points[:, :2], head, ring]),
                              kernel="thin_plate_spline", smoothing=20.0)
    h, w = image.shape[:2]
    step = 4                                    # the map is smooth: worked out coarse
    ys, xs = np.mgrid[0:h:step, 0:w:step]
    grid = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    found = inverse(grid).reshape(ys.shape + (2,))
    far = np.hypot(grid[:, 0] - centre[0], grid[:, 1] - centre[1]).reshape(ys.shape)
    still = np.clip((far - 1.3 * size) / (0.3 * size), 0, 1)[..., None]
    found = found * (1 - still) + np.stack([xs, ys], -1) * still
    maps = cv2.resize(found.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.remap(image, maps[..., 0], maps[..., 1], cv2.INTER_CUBIC,
                     borderMode=cv2.BORDER_REFLECT)
