"""The measures relighting is judged by (the relight issue's own), shared by the tests and
the gallery: the face split at the nose tip in linear luminance, how much of a picture's
left/right imbalance survives a relight, the background's brightness, and the seam measure.
"""

from __future__ import annotations

import cv2
import numpy as np
from limner import engines, imaging
from limner.engines.face import FACE_OVAL

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
NOSE_TIP = 1


def luminance(pixels: np.ndarray) -> np.ndarray:
    """Linear-light luminance of sRGB samples (any sample type)."""
    return imaging.to_linear(pixels[:, :, :3]) @ LUMA


def faces(pixels: np.ndarray) -> list[np.ndarray]:
    """The face mesh's landmarks (468, 3) of every face, in pixels."""
    return engines.get("face", "mediapipe").faces(imaging.to_float(pixels[:, :, :3]))


class FaceHalves:
    """A face's left and right halves (image terms), split at the nose tip, inside its
    outline: found once on the original and used on every relit version of it."""

    def __init__(self, points: np.ndarray, shape: tuple[int, int]):
        oval = np.zeros(shape, np.uint8)
        cv2.fillPoly(oval, [np.round(points[FACE_OVAL, :2]).astype(np.int32)], 1)
        columns = np.arange(shape[1])[None, :]
        split = points[NOSE_TIP, 0]
        self.left = (oval > 0) & (columns < split)
        self.right = (oval > 0) & (columns >= split)
        self.points = points

    def balance(self, pixels: np.ndarray) -> float:
        """Mean linear luminance of the left half over the right's."""
        lum = luminance(pixels)
        return float(lum[self.left].mean() / max(lum[self.right].mean(), 1e-6))

    def imbalance(self, pixels: np.ndarray) -> float:
        return abs(float(np.log(self.balance(pixels))))


def main_face(pixels: np.ndarray) -> FaceHalves:
    found = faces(pixels)
    assert found, "no face found"
    points = max(found, key=lambda p: np.ptp(p[:, 0]) * np.ptp(p[:, 1]))
    return FaceHalves(points, pixels.shape[:2])


def subject_matte(pixels: np.ndarray) -> np.ndarray:
    """The matte relight works with: the default engine's, the subject made whole."""
    from limner.engines import refine

    return refine.refined(engines.get("matting", "rvm"),
                          np.clip(imaging.to_float(pixels[:, :, :3]), 0, 1), "normal",
                          opinions=lambda name, rgb: engines.get("matting", name).matte(rgb),
                          name="rvm").alpha


def background_change(original: np.ndarray, relit: np.ndarray, alpha: np.ndarray) -> float:
    """Mean linear luminance of the background (matte under 0.05, kept off the subject's
    edge) relit over original: 1 is unchanged."""
    background = cv2.erode((alpha < 0.05).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    return float(luminance(relit)[background].mean() /
                 max(luminance(original)[background].mean(), 1e-6))


def seam(original: np.ndarray, relit: np.ndarray, alpha: np.ndarray) -> float:
    """The 99.9th percentile, inside the subject, of the gradient of log(relit / original
    luminance) at 512 px: a seam or a crease in the light shows as a high value; smooth
    light stays well under 1.2."""
    def at512(a):
        scale = 512 / max(a.shape[:2])
        return cv2.resize(a, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) \
            if scale != 1 else a

    eps = 1e-3
    log_ratio = np.log((at512(luminance(relit)) + eps) / (at512(luminance(original)) + eps))
    gy, gx = np.gradient(log_ratio)
    inside = cv2.erode((at512(alpha) > 0.95).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    return float(np.percentile(np.hypot(gx, gy)[inside], 99.9))
