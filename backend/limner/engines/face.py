"""Face geometry from mediapipe's face detector and face mesh (weights in the mediapipe
wheel, Apache-2.0): every face's 468 landmarks in pixel units, depth included.

The face mesh alone finds one face in a wide picture and misses the rest, so the
full-range detector finds the faces first and the mesh runs on a crop around each.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import EngineInfo, register
from .matting import package_file

#: mediapipe landmark indices of the face's outline (FACEMESH_FACE_OVAL, in order)
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
             400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54,
             103, 67, 109]


class FaceMesh:
    #: side the detector's crop is scaled to before the mesh runs (the mesh works at 192)
    CROP_SIDE = 384

    def __init__(self):
        from mediapipe.python.solutions import face_detection, face_mesh

        self.detector = face_detection.FaceDetection(model_selection=1,
                                                     min_detection_confidence=0.5)
        self.mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                       refine_landmarks=False, min_detection_confidence=0.3)

    def faces(self, rgb: np.ndarray) -> list[np.ndarray]:
        """(468, 3) arrays of x, y, z in pixels (z: towards the camera is negative),
        one per face found, for an RGB float image in 0..1."""
        u8 = np.ascontiguousarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
        h, w = u8.shape[:2]
        found = []
        for detection in self.detector.process(u8).detections or []:
            box = detection.location_data.relative_bounding_box
            cx, cy = (box.xmin + box.width / 2) * w, (box.ymin + box.height / 2) * h
            half = max(box.width * w, box.height * h) * 0.9
            x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
            x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
            if x1 - x0 < 16 or y1 - y0 < 16:
                continue
            crop = u8[y0:y1, x0:x1]
            scale = self.CROP_SIDE / max(crop.shape[:2])
            crop = np.ascontiguousarray(cv2.resize(crop, None, fx=scale, fy=scale,
                                                   interpolation=cv2.INTER_AREA))
            result = self.mesh.process(crop).multi_face_landmarks
            if not result:
                continue
            ch, cw = crop.shape[:2]
            points = np.array([(p.x * cw, p.y * ch, p.z * cw) for p in result[0].landmark],
                              np.float32)[:468] / scale
            points[:, 0] += x0
            points[:, 1] += y0
            found.append(points)
        return found


def face_mask(shape: tuple[int, int], faces: list[np.ndarray],
              feather: float = 0.08) -> np.ndarray:
    """Soft 0..1 mask of the faces' outlines, feathered by a fraction of each face's size."""
    mask = np.zeros(shape, np.float32)
    for points in faces:
        oval = np.round(points[FACE_OVAL, :2]).astype(np.int32)
        one = np.zeros(shape, np.uint8)
        cv2.fillPoly(one, [oval], 1)
        size = max(np.ptp(points[:, 0]), np.ptp(points[:, 1]))
        sigma = max(1.0, feather * size)
        mask = np.maximum(mask, cv2.GaussianBlur(one.astype(np.float32), (0, 0), sigma))
    return mask


def _weights():
    return package_file("mediapipe", "modules", "face_landmark", "face_landmark.tflite")


register(EngineInfo(
    kind="face", name="mediapipe", label="mediapipe face detection + face mesh",
    licence="Apache-2.0", weights="mediapipe==0.10.21 wheel: face_detection_full_range, "
                                  "face_landmark.tflite",
    load=FaceMesh, find_weights=_weights,
    install_hint="pip install --no-deps mediapipe==0.10.21", is_default=True))
