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


#: the seam measure's floor (linear luminance, added to both sides of the ratio): the
#: measure's one free choice. Under it a pixel's ratio reads as 1 whatever the light, so
#: texture that is nearly black (a black helmet, a black turtleneck) under a smooth gain
#: that is not 1 reads as steps between 1 and the gain: the measure is taken where the
#: photo is brighter than that (see seam)
SEAM_FLOOR = 1e-3


def not_black(original: np.ndarray) -> np.ndarray:
    """Where the photo is brighter than nearly black (linear luminance 0.01, about 25 of
    255 in sRGB), a pixel or two in from anything darker: where the seam measure reads
    the light, not the floor."""
    return cv2.erode((luminance(original) > 0.01).astype(np.uint8),
                     np.ones((5, 5), np.uint8)) > 0


def seam_map(original: np.ndarray, relit: np.ndarray, alpha: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """(the gradient magnitude of log(relit / original linear luminance), the pixels it
    is judged on), exactly as the relight issue defines them: both resized to 512 px on
    the long side (area), OpenCV's 3x3 Sobel in x and y (a ramp of slope s per pixel
    reads 8 s), inside the subject's matte > 0.95 eroded by 9 px."""
    def at512(a):
        scale = 512 / max(a.shape[:2])
        return cv2.resize(a, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) \
            if scale != 1 else a

    log_ratio = np.log((at512(luminance(relit)) + SEAM_FLOOR) /
                       (at512(luminance(original)) + SEAM_FLOOR)).astype(np.float32)
    gradient = np.hypot(cv2.Sobel(log_ratio, cv2.CV_32F, 1, 0, ksize=3),
                        cv2.Sobel(log_ratio, cv2.CV_32F, 0, 1, ksize=3))
    inside = cv2.erode((at512(alpha) > 0.95).astype(np.uint8),
                       cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (19, 19))) > 0
    return gradient, inside


def seam(original: np.ndarray, relit: np.ndarray, alpha: np.ndarray,
         where: np.ndarray | None = None) -> float:
    """The seam measure: the 99.9th percentile of seam_map's gradient on its pixels (and
    in `where`, at the picture's size, if given). A seam or a crease in the light shows as
    a high value; smooth light stays at or under 1.2."""
    gradient, inside = seam_map(original, relit, alpha)
    if where is not None:
        inside &= cv2.resize(where.astype(np.uint8), inside.shape[::-1],
                             interpolation=cv2.INTER_NEAREST) > 0
    return float(np.percentile(gradient[inside], 99.9))
