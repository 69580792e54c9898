"""grade: colour grading as its own layer, the original untouched. A look (built in, or a
.cube LUT file), a colour match to a reference layer or picture (all of it, or skin to
skin), a strength, and skin protection that holds skin's hue back from the grade. Returns
the graded layer and, hidden beneath it, the protection mask (white: protected)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import cache, engines, grading, imaging
from ..protocol import E_BAD_PARAMETER, ProtocolError
from .base import Layer, Operation, Param, Request

NO_LOOK, LUT_FILE = "none", "LUT file"
#: faces are found on the region scaled to this long side (the mesh is enough at it)
FACE_SIDE = 1024


def faces_of(req: Request, rgb: np.ndarray, key) -> list[np.ndarray]:
    """The face meshes in `rgb` (in its pixels), kept with the layer's other work."""
    def find() -> list[np.ndarray]:
        small = imaging.shrink(rgb, FACE_SIDE)
        scale = rgb.shape[1] / small.shape[1]
        found = engines.get("face", "mediapipe").faces(np.ascontiguousarray(small))
        return [points * np.array([scale, scale, scale], np.float32) for points in found]

    return cache.LAYERS.get(("faces", key), req.owner, find)


def skin_of(req: Request, region: np.ndarray, box) -> np.ndarray:
    """Where the layer region's skin is (0..1): the faces' bare skin and skin colours
    within the subject's matte; kept with the layer's other work."""
    key = cache.layer_key(region, None, box, "grade")

    def find() -> np.ndarray:
        rgb = np.clip(imaging.to_float(region)[:, :, :3], 0, 1)
        return grading.skin_weight(rgb, faces_of(req, rgb, key), req.subject_matte(box).alpha)

    return cache.LAYERS.get(("skin", key), req.owner, find)


def graded(req: Request, region: np.ndarray, box, params: dict,
           skin: Callable[[], np.ndarray]) -> tuple[np.ndarray, np.ndarray, str]:
    """The region (samples) graded by `params` (look, lut, match, match_method,
    match_skin, strength, protect_skin): RGB samples of the region's type, the skin weight
    and a name. `skin()`: where the skin to protect is (skin_of the layer, which a mood
    grades only after relighting it). A look alone at full strength never leaves the
    samples (a 4096 px layer: 0.3 s)."""
    sample = imaging.sample_of(region)
    rgb = np.clip(imaging.to_float(region)[:, :, :3], 0, 1)
    out, names = region[:, :, :3], []
    reference = req.picture("match")
    if reference is not None:
        req.progress(0.2, "matching colour")
        weights = (None, None)
        if params["match_skin"]:
            faces = faces_of(req, rgb, cache.layer_key(region, None, box, "grade"))
            small = imaging.shrink(reference, FACE_SIDE)
            reference_faces = engines.get("face", "mediapipe").faces(
                np.ascontiguousarray(small))
            if not faces or not reference_faces:
                raise ProtocolError(E_BAD_PARAMETER, "grade: skin to skin needs a face in "
                                                     "the layer and in the reference")
            weights = (grading.skin_weight(rgb, faces),
                       grading.skin_weight(small, reference_faces))
            reference = small
        out = imaging.from_float(grading.match_colour(rgb, reference, params["match_method"],
                                                      *weights), sample)
        names.append(f"matched ({params['match_method']})")
    look = params["look"]
    if look != NO_LOOK:
        req.progress(0.5, "applying the look")
        if look == LUT_FILE:
            if not params["lut"]:
                raise ProtocolError(E_BAD_PARAMETER, 'grade: the look "LUT file" needs a '
                                                     ".cube file in lut")
            table, domain = grading.read_cube(params["lut"])
            names.append(params["lut"].replace("\\", "/").rsplit("/", 1)[-1])
        else:
            table, domain = grading.look_table(look), None
            names.append(look)
        out = grading.apply_table(out, table, domain)
    if params["strength"] < 1:
        out = imaging.from_float(rgb + params["strength"] * (imaging.to_float(out) - rgb),
                                 sample)
    weight = np.zeros(rgb.shape[:2], np.float32)
    if params["protect_skin"] > 0:
        req.progress(0.75, "protecting skin")
        weight = skin()
        out = imaging.from_float(grading.protect_skin(rgb, imaging.to_float(out), weight,
                                                      params["protect_skin"]), sample)
    return out, weight, " + ".join(names) or "none"


def grade(req: Request) -> list[Layer]:
    p = req.params
    if p["look"] == NO_LOOK and req.picture("match") is None:
        raise ProtocolError(E_BAD_PARAMETER, "grade: choose a look or a reference to match")
    box = imaging.selection_box(req.mask, req.image.shape[:2])
    region = req.image[box]
    out, weight, name = graded(req, region, box, p, lambda: skin_of(req, region, box))
    if region.shape[2] == 4:
        out = np.dstack([out, region[:, :, 3]])
    layers = [Layer(f"Grade {name} {p['strength']:.0%}",
                    imaging.blend_into(req.image, out, box, req.mask))]
    if req.preview:
        return layers
    grey = np.zeros(req.image.shape[:2] + (3,), req.image.dtype)
    protection = np.repeat(weight[:, :, None], 3, axis=2)
    layers.append(Layer("Skin protection (white: protected)",
                        imaging.blend_into(grey, protection, box, req.mask), visible=False))
    return layers


#: the grade's parameters; mood reuses them as its recipe's
LOOK = Param("look", "choice", "warm", "Look",
             "A built-in look, or 'LUT file' for a .cube file of your own; 'none' to match "
             "colour only.", choices=(NO_LOOK, *grading.LOOKS, LUT_FILE))
STRENGTH = Param("strength", "float", 1.0, "Strength", "How much of the grade to apply.",
                 min=0, max=1, step=0.05)
PROTECT_SKIN = Param("protect_skin", "float", 0.6, "Protect skin",
                     "How much skin keeps its own hue under the grade (0: none).",
                     min=0, max=1, step=0.05)

OPERATIONS = [
    Operation("grade", "Colour Grade",
              "Grade the colours with a look or a .cube LUT, or match them to a reference "
              "picture, with skin protected; the grade comes as its own layer.",
              [LOOK,
               Param("lut", "file", "", "LUT file", "A .cube file (picking one makes the look "
                     "'LUT file').", extensions=(".cube",), implies={"look": LUT_FILE}),
               Param("match", "image", "", "Match colour to",
                     "A layer or picture whose colours to take on (before the look)."),
               Param("match_method", "choice", "covariance", "Match method",
                     "reinhard: each Lab channel's mean and spread; covariance: the whole "
                     "colour distribution (Monge–Kantorovich), truer on mixed light.",
                     choices=grading.MATCH_METHODS),
               Param("match_skin", "bool", False, "Match skin to skin",
                     "Take the colour change that brings this face's skin to the "
                     "reference face's skin, and apply it to everything."),
               STRENGTH, PROTECT_SKIN],
              grade),
]
