"""relight: a new key light on the portrait, from a direction, colour and softness.

Returns the relit layer and, beneath it (hidden), the light itself as a pair of layers in
blend modes both editors have: multiply for the shadows and tint, screen for the extra
light and highlights, so the effect can be dialled with their opacity over the original.
"""

from __future__ import annotations

import numpy as np

from .. import engines, imaging
from .base import Layer, Operation, Param, Request


def relight(req: Request) -> list[Layer]:
    box = imaging.selection_box(req.mask, req.image.shape[:2])
    image = imaging.to_float(req.image[box])
    req.progress(0.02, "loading models")
    engine = engines.get("relight", req.params["engine"])
    lit = engine.render(image[:, :, :3], req.params, req.progress)
    relit = np.dstack([lit.relit, image[:, :, 3]]) if image.shape[2] == 4 else lit.relit
    sample = imaging.sample_of(req.image)
    shape = req.image.shape[:2] + (3,)
    white = imaging.from_float(np.ones(shape, np.float32), sample)
    black = np.zeros(shape, req.image.dtype)
    p = req.params
    title = f"Relit {p['azimuth']:+.0f}°/{p['elevation']:+.0f}° {p['temperature']:.0f} K"
    return [Layer(title, imaging.blend_into(req.image, relit, box, req.mask)),
            Layer("Light highlights", imaging.blend_into(black, lit.screen, box, req.mask),
                  blend="screen", visible=False),
            Layer("Light shadows", imaging.blend_into(white, lit.multiply, box, req.mask),
                  blend="multiply", visible=False)]


OPERATIONS = [
    Operation("relight", "Relight",
              "Light the portrait from a new direction, with the face's and body's shape.",
              [Param("azimuth", "float", -45.0, "Direction",
                     "Degrees around the subject: 0 from the camera, -90 from the image's "
                     "left, +90 from its right, 180 from behind.", min=-180, max=180, step=5),
               Param("elevation", "float", 30.0, "Height",
                     "Degrees above the horizon; negative lights from below.",
                     min=-90, max=90, step=5),
               Param("intensity", "float", 0.8, "Intensity", "Strength of the new light.",
                     min=0, max=3, step=0.05),
               Param("temperature", "float", 5500.0, "Colour temperature (K)",
                     "Warm below 5000 K, cool above 6500 K.", min=1500, max=12000, step=100),
               Param("color", "color", "#ffffff", "Colour filter",
                     "A gel over the light, multiplied with its temperature."),
               Param("softness", "float", 0.4, "Softness",
                     "0: hard light, crisp shadows; 1: broad, wrapping light.",
                     min=0, max=1, step=0.05),
               Param("ambient", "float", 0.35, "Ambient",
                     "Light that reaches everywhere; 1 with intensity 0 leaves the image as it "
                     "is.", min=0, max=2, step=0.05),
               Param("keep_colors", "bool", False, "Keep original colours",
                     "Change brightness only; ignore the light's colour."),
               Param("steps", "int", 25, "Diffusion steps", "Denoising steps (IC-Light only).",
                     min=1, max=100, step=1),
               Param("seed", "int", 1, "Seed", "Fixes the IC-Light result (IC-Light only).",
                     min=0, max=2**31 - 1, step=1)],
              relight, engine_kind="relight"),
]
