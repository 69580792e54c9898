"""style: painting and drawing techniques as presets, or the style of a reference picture.

The engine works at its working size (strokes keep their scale on any layer); the result
is scaled back to full resolution with the photo's finer detail put back, so a large layer
does not come back blurry. Faces get less abstraction: they are rendered again at twice the scale (finer
strokes of the same technique), with a little of the photo, and blended in through a
feathered face mask.
"""

from __future__ import annotations

import cv2
import numpy as np

from .. import engines, imaging
from ..engines.face import face_mask
from ..engines.style import PRESETS, WORK_SIDE
from ..protocol import E_BAD_PARAMETER, ProtocolError
from .base import Layer, Operation, Param, Request


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    shrink = width * height < rgb.shape[0] * rgb.shape[1]
    return cv2.resize(rgb, (width, height),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def _reference(value) -> np.ndarray:
    """The reference picture: a layer the plug-in sent, or an image file."""
    from ..ora import read_image

    if isinstance(value, np.ndarray):
        picture = value
    elif value:
        picture = read_image(value)
    else:
        raise ProtocolError(E_BAD_PARAMETER, 'style: the "reference" preset needs a reference '
                                             "layer or image file")
    return np.clip(imaging.to_float(picture)[:, :, :3], 0, 1)


def _finer_faces(engine, small: np.ndarray, styled: np.ndarray, preset: str, seed: int,
                 reference, amount: float) -> np.ndarray:
    """Blend a twice-as-fine rendering into each face found."""
    faces = engines.get("face", "mediapipe").faces(small)
    h, w = small.shape[:2]
    for points in faces:
        x0, y0 = points[:, :2].min(0)
        x1, y1 = points[:, :2].max(0)
        pad = 0.3 * max(x1 - x0, y1 - y0)
        x0, y0 = int(max(0, x0 - pad)), int(max(0, y0 - pad))
        x1, y1 = int(min(w, x1 + pad)), int(min(h, y1 + pad))
        crop = small[y0:y1, x0:x1]
        fine = engine.render(_resize(crop, 2 * crop.shape[1], 2 * crop.shape[0]), preset,
                             seed, reference)
        fine = _resize(fine, crop.shape[1], crop.shape[0])
        photo = crop
        if np.ptp(fine, axis=2).max() < 1e-3:   # a drawing: mix in the photo's grey only
            photo = np.repeat(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
        fine = 0.75 * fine + 0.25 * photo          # finer strokes and a little of the photo
        weight = amount * face_mask((h, w), [points], feather=0.1)[y0:y1, x0:x1, None]
        styled[y0:y1, x0:x1] = styled[y0:y1, x0:x1] * (1 - weight) + fine * weight
    return styled


def _upsample(styled: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Scale the result up to the original's size and put back the photo's own detail
    finer than the working size (as luminance, so drawings stay grey): a 4000 px layer
    keeps its 4000 px sharpness under 1024 px strokes."""
    h, w = original.shape[:2]
    up = _resize(styled, w, h)
    if w <= styled.shape[1]:
        return up
    luma = cv2.cvtColor(original, cv2.COLOR_RGB2GRAY)
    coarse = _resize(_resize(luma, styled.shape[1], styled.shape[0]), w, h)
    return up + (luma - coarse)[:, :, None]


def style(req: Request) -> list[Layer]:
    p = req.params
    reference = _reference(p["reference"]) if p["preset"] == "reference" else None
    box = imaging.selection_box(req.mask, req.image.shape[:2])
    image = imaging.to_float(req.image[box])
    rgb = np.clip(image[:, :, :3], 0, 1)
    req.progress(0.05, "loading models")
    engine = engines.get("style", p["engine"])
    h, w = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    small = _resize(rgb, max(32, round(w * scale)), max(32, round(h * scale)))
    req.progress(0.2, "painting")
    styled = engine.render(small, p["preset"], p["seed"], reference)
    if p["face_detail"] > 0:
        req.progress(0.55, "refining faces")
        styled = _finer_faces(engine, small, styled, p["preset"], p["seed"], reference,
                              p["face_detail"])
    req.progress(0.8, "restoring full resolution")
    styled = _upsample(styled, rgb)
    out = rgb * (1 - p["strength"]) + np.clip(styled, 0, 1) * p["strength"]
    if image.shape[2] == 4:
        out = np.dstack([out, image[:, :, 3]])
    label = "Reference style" if p["preset"] == "reference" else PRESETS[p["preset"]].label
    return [Layer(f"{label} {p['strength']:.0%}", imaging.blend_into(req.image, out, box,
                                                                     req.mask))]


OPERATIONS = [
    Operation("style", "Stylize",
              "Repaint the portrait as an oil painting, watercolour, drawing or pop art, "
              "or in the style of a reference picture.",
              [Param("preset", "choice", "oil painting", "Technique",
                     "A painting or drawing technique, or 'reference' to copy the style of "
                     "the reference picture.", choices=(*PRESETS, "reference")),
               Param("strength", "float", 1.0, "Strength",
                     "How much of the style to apply over the original.", min=0, max=1,
                     step=0.05),
               Param("face_detail", "float", 0.6, "Face detail",
                     "How much finer the strokes are on faces, to keep the sitter "
                     "recognisable.", min=0, max=1, step=0.05),
               Param("seed", "int", 1, "Seed",
                     "Varies paper grain and palettes; the same seed gives the same result.",
                     min=0, max=2**31 - 1, step=1),
               Param("reference", "image", "", "Reference",
                     "A layer or an image file whose style to copy (preset 'reference').")],
              style, engine_kind="style"),
]
