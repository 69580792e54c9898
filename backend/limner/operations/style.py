"""style: painting and drawing techniques as presets, or the style of a reference picture,
by the classic engine (style networks and OpenCV, any machine) or the diffusion engine
(Stable Diffusion img2img / inpainting, for machines with a GPU). The selection limits the
result exactly as for every operation."""

from __future__ import annotations

import numpy as np

from .. import engines, imaging
from ..engines.style import PRESETS
from ..protocol import E_BAD_PARAMETER, ProtocolError
from .base import FAST, SEED, STEPS, Layer, Operation, Param, Request


def style(req: Request) -> list[Layer]:
    p = req.params
    reference = None
    if p["preset"] == "reference":
        reference = req.picture("reference")
        if reference is None:
            raise ProtocolError(E_BAD_PARAMETER, 'style: the "reference" preset needs a '
                                                 "reference layer or image file")
    box = imaging.selection_box(req.mask, req.image.shape[:2])
    image = imaging.to_float(req.image[box])
    rgb = np.clip(image[:, :, :3], 0, 1)
    req.progress(0.05, "loading models")
    engine = engines.get("style", p["engine"])
    mask = None if req.mask is None else req.mask[box]
    out = engine.stylize(rgb, mask, p, reference, req.progress)
    if image.shape[2] == 4:
        out = np.dstack([out, image[:, :, 3]])
    label = "Reference style" if p["preset"] == "reference" else PRESETS[p["preset"]].label
    used = engine.plan(p, mask is not None)
    return [Layer(f"{label} {p['strength']:.0%}",
                  imaging.blend_into(req.image, out, box, req.mask),
                  provenance={"models": used} if used else {})]


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
               SEED.but(help="Varies paper grain and palettes; the same seed gives the same "
                             "result."),
               Param("reference", "image", "", "Reference",
                     "A layer or an image file whose style to copy (picking one makes the "
                     "technique 'reference').", engines=("classic",),
                     implies={"preset": "reference"}),
               STEPS.but(default=20, engines=("diffusion",)),
               Param("structure", "float", 0.7, "Keep structure",
                     "How closely the painting follows the photo's lines (diffusion engine, "
                     "with the controlnet-lineart model pulled; 0 turns it off).",
                     min=0, max=2, step=0.05, engines=("diffusion",)),
               FAST.but(engines=("diffusion",))],
              style, engine_kind="style"),
]
