"""Face geometry from mediapipe's face detector and face mesh (weights in the mediapipe
wheel, Apache-2.0): every face's 468 landmarks in pixel units, depth included, the mesh's
triangles, where the face looks, and which of it is bare skin.

The face mesh alone finds one face in a wide picture and misses the rest, so the
detectors find the faces first and the mesh runs on a crop around each: the full-range
detector for small and distant faces, the short-range one for a face that fills the frame
(a tight portrait, which the full-range model can miss, above all in hard side light).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from .. import imaging
from . import EngineInfo, package_file, register

#: mediapipe landmark indices of the face's outline (FACEMESH_FACE_OVAL, in order)
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
             400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54,
             103, 67, 109]


class FaceMesh:
    #: side the detector's crop is scaled to before the mesh runs (the mesh works at 192)
    CROP_SIDE = 384

    def __init__(self):
        from mediapipe.python.solutions import face_detection, face_mesh

        self.detectors = [face_detection.FaceDetection(model_selection=model,
                                                       min_detection_confidence=0.5)
                          for model in (1, 0)]          # full range, short range
        self.mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                       refine_landmarks=False, min_detection_confidence=0.3)

    def close(self) -> None:
        for graph in (*self.detectors, self.mesh):
            graph.close()

    def faces(self, rgb: np.ndarray) -> list[np.ndarray]:
        """(468, 3) arrays of x, y, z in pixels (z: towards the camera is negative),
        one per face found, for an RGB float image in 0..1. When none is found (a face
        half in deep shadow), the picture's local contrast is evened out (CLAHE on its
        lightness) and the search made again."""
        u8 = imaging.from_float(rgb, "u8")
        found = self._find(u8)
        if not found and min(u8.shape[:2]) >= 32:
            lab = cv2.cvtColor(u8, cv2.COLOR_RGB2LAB)
            lab[:, :, 0] = cv2.createCLAHE(3.0, (8, 8)).apply(lab[:, :, 0])
            found = self._find(np.ascontiguousarray(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)))
        return found

    def _boxes(self, u8: np.ndarray) -> list[tuple[float, float, float]]:
        """(centre x, centre y, size) in pixels of every face either detector finds, a
        face both find counted once."""
        h, w = u8.shape[:2]
        boxes: list[tuple[float, float, float]] = []
        for detector in self.detectors:
            for detection in detector.process(u8).detections or []:
                box = detection.location_data.relative_bounding_box
                cx, cy = (box.xmin + box.width / 2) * w, (box.ymin + box.height / 2) * h
                size = max(box.width * w, box.height * h)
                if all(np.hypot(cx - x, cy - y) > 0.5 * max(size, s) for x, y, s in boxes):
                    boxes.append((cx, cy, size))
        return boxes

    def _find(self, u8: np.ndarray) -> list[np.ndarray]:
        h, w = u8.shape[:2]
        found = []
        for cx, cy, size in self._boxes(u8):
            half = size * 0.9
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
        sigma = max(1.0, feather * face_size(points))
        mask = np.maximum(mask, cv2.GaussianBlur(one.astype(np.float32), (0, 0), sigma))
    return mask


def closed_mesh(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(vertices, triangles) of a face's mesh with its eyes and mouth closed: the
    landmarks plus one vertex in the middle of each hole (the mean of its rim)."""
    surface, holes = _topology()
    centres = np.array([points[rim].mean(0) for rim in holes], points.dtype)
    return np.concatenate([points[:468], centres]), surface


@functools.cache
def _topology() -> tuple[np.ndarray, tuple[list[int], ...]]:
    """(T, 3) vertex indices of triangles covering the whole face, and the rims of its
    holes. mediapipe ships the tessellation as edges; its triangles are the edge graph's
    3-cycles. That surface is open where the eyes and the mouth are: each hole's rim
    (edges of one triangle only, but for the outline's) is fanned from a vertex of its
    own in the middle (468, 469, ...), so depth is interpolated across it like everywhere
    else, without sliver triangles."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    edges = {tuple(sorted(e)) for e in FACEMESH_TESSELATION}
    neighbours: dict[int, set[int]] = {}
    for a, b in edges:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    found = {tuple(sorted((a, b, c))) for a, b in edges for c in neighbours[a] & neighbours[b]}
    uses: dict[tuple[int, int], int] = {}
    for a, b, c in found:
        for edge in ((a, b), (a, c), (b, c)):
            uses[edge] = uses.get(edge, 0) + 1
    # a 3-cycle whose every edge already borders two faces is not a face (two such sit in
    # the nostrils): it would lay a second surface over the real one
    found = {t for t in found
             if not all(uses[e] == 3 for e in ((t[0], t[1]), (t[0], t[2]), (t[1], t[2])))}
    outline = set(FACE_OVAL)
    rims: dict[int, list[int]] = {}
    for (a, b), count in uses.items():
        if count == 1 and not (a in outline and b in outline):
            rims.setdefault(a, []).append(b)
            rims.setdefault(b, []).append(a)
    fans, holes = [], []
    while rims:                                  # walk each hole's rim
        start = next(iter(rims))
        loop, previous, current = [start], None, start
        while True:
            step = next((n for n in rims[current] if n != previous), None)
            if step is None or step == start:
                break
            loop.append(step)
            previous, current = current, step
        for point in loop:
            rims.pop(point, None)
        centre = 468 + len(holes)
        fans += [(centre, a, b) for a, b in zip(loop, loop[1:] + loop[:1])]
        holes.append(loop)
    return np.array(sorted(found) + fans, np.int32), tuple(holes)


@functools.cache
def features() -> list[np.ndarray]:
    """Landmark indices of the eyes, brows and lips: not skin, and not lit like it."""
    from mediapipe.python.solutions import face_mesh_connections as c

    groups = (c.FACEMESH_LEFT_EYE, c.FACEMESH_RIGHT_EYE, c.FACEMESH_LEFT_EYEBROW,
              c.FACEMESH_RIGHT_EYEBROW, c.FACEMESH_LIPS)
    return [np.array(sorted({i for edge in group for i in edge}), np.int32)
            for group in groups]


def face_size(points: np.ndarray) -> float:
    return float(max(np.ptp(points[:, 0]), np.ptp(points[:, 1])))


def look_direction(points: np.ndarray) -> np.ndarray:
    """Unit vector of where the face looks, camera space (x right, y up, z towards the
    viewer): across the eye corners crossed with the line from chin to forehead."""
    camera = points * np.array([1, -1, -1], np.float32)
    across = camera[263] - camera[33]          # the image-left eye's corner to the right's
    up = camera[10] - camera[152]              # chin to forehead
    look = np.cross(across, up)
    return look / max(float(np.linalg.norm(look)), 1e-6)


def orientation(points: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) in degrees of where the face looks: yaw + when the nose points to the
    image's right, pitch + when it points up."""
    look = look_direction(points)
    return (float(np.degrees(np.arctan2(look[0], look[2]))),
            float(np.degrees(np.arcsin(np.clip(look[1], -1, 1)))))


#: the inner edge of the lips: what they open on (the teeth)
INNER_LIPS = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87,
              178, 88, 95]


def whites_mask(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """0/1 (uint8) mask of a face's eyes and open mouth: what is white but not skin (the
    eyes' whites, the teeth)."""
    mask = np.zeros(shape, np.uint8)
    for eye in features()[:2]:
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points[eye, :2]).astype(np.int32)), 1)
    cv2.fillPoly(mask, [np.round(points[INNER_LIPS, :2]).astype(np.int32)], 1)
    return mask


def skin_mask(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """0/1 mask of a face's bare skin: inside its outline (kept off the edge, where hair
    and background begin) without the eyes, brows and lips."""
    size = face_size(points)
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(points[FACE_OVAL, :2]).astype(np.int32)], 1)
    margin = max(1, round(0.04 * size))
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                      (2 * margin + 1, 2 * margin + 1)))
    holes = np.zeros(shape, np.uint8)
    for group in features():
        hull = cv2.convexHull(np.round(points[group, :2]).astype(np.int32))
        cv2.fillConvexPoly(holes, hull, 1)
    grow = max(1, round(0.03 * size))
    holes = cv2.dilate(holes, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                         (2 * grow + 1, 2 * grow + 1)))
    return (mask & (1 - holes)).astype(np.float32)


def _weights():
    return package_file("mediapipe", "modules", "face_landmark", "face_landmark.tflite")


register(EngineInfo(
    kind="face", name="mediapipe", label="mediapipe face detection + face mesh",
    licence="Apache-2.0", weights="mediapipe==0.10.21 wheel: face_detection_full_range, "
                                  "face_landmark.tflite",
    load=FaceMesh, find_weights=_weights,
    install_hint="python3 install/setup.py", is_default=True))
