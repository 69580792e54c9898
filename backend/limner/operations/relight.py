"""relight: new light on the portrait: the photo's own light taken out, a key, fill and rim
(or a named portrait setup) put in, with the shadows the face and body cast.

Returns the relit layer and, beneath it (hidden), the light itself as a pair of layers in
blend modes both editors have: multiply for the shadows and tint, colour dodge for the
extra light and highlights; together over the original they give the relit layer, and
their opacity dials the effect.
A preview run returns the relit layer alone.
"""

from __future__ import annotations

import cv2
import numpy as np

from .. import cache, engines, imaging
from ..engines.lights import SETUP_NAMES, SETUPS, Settings, rig
from .base import SEED, STEPS, Layer, Operation, Param, Request

#: the parameters only the geometric engine reads (IC-Light takes the key's direction,
#: colour and softness and draws the rest itself)
GEOMETRIC = ("geometric",)


def relight(req: Request) -> list[Layer]:
    box = imaging.selection_box(req.mask, req.image.shape[:2])
    region = req.image[box]
    req.progress(0.02, "loading models")
    name = req.params["engine"]
    engine = engines.get("relight", name)
    key = cache.layer_key(region, None, box, name, engines.default("matting"))

    def memo(what: str, build):
        return cache.LAYERS.get((what, key), req.owner, build)

    settings = Settings.of(req.params)
    lit = engine.render(region, settings, req.progress, memo,
                        matte=lambda: req.subject_matte(box).alpha)
    # where the lights went (a named setup turns with the face): editors draw them
    placed = rig(settings, lit.found.get("face_yaw", 0.0))
    found = {**lit.found, "lights": [light.placed() for light in placed.lights],
             "ambient": round(placed.ambient, 3)}
    sample = imaging.sample_of(req.image)
    relit = imaging.from_linear(lit.relit, sample)
    if region.shape[2] == 4:
        relit = np.concatenate([relit, region[:, :, 3:]], axis=2)
    layers = [Layer(_title(req.params), _blend_samples(req.image, relit, box, req.mask),
                    provenance=found)]
    if req.preview:
        return layers
    h, w = region.shape[:2]

    def light_layer(encoded: np.ndarray) -> np.ndarray:
        """The light (smooth, so worked out small; sRGB-encoded, as editors blend) as
        samples at the region's size."""
        small = imaging.from_float(np.clip(encoded, 0, 1), sample)
        return small if small.shape[:2] == (h, w) else \
            cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)

    # Editors blend encoded values: multiplying an encoded pixel by encode(gain) is (the
    # curve being nearly a power) multiplying its light by the gain, and colour dodge
    # (b / (1 - s)) with s = 1 - 1 / encode(gain) does the same for gains above 1, for
    # every pixel alike.
    gain = imaging.linear_to_srgb(lit.gain)

    shape = req.image.shape[:2] + (3,)
    white = np.full(shape, 1 if sample == "f32" else np.iinfo(req.image.dtype).max,
                    req.image.dtype)
    black = np.zeros(shape, req.image.dtype)
    return layers + [
        Layer("Light highlights",
              _blend_samples(black, light_layer(1 - 1 / np.maximum(gain, 1)), box, req.mask),
              blend="dodge", visible=False),
        Layer("Light shadows", _blend_samples(white, light_layer(np.minimum(gain, 1)), box,
                                              req.mask), blend="multiply", visible=False)]


def _blend_samples(base: np.ndarray, edited: np.ndarray, box, mask) -> np.ndarray:
    """`edited` (samples, box-sized) put into `base` through the selection."""
    if mask is None and edited.shape == base.shape:
        return edited
    return imaging.blend_into(base, imaging.to_float(edited), box, mask)


def _title(p: dict) -> str:
    if p["setup"] != "custom":
        return f"Relit {p['setup']} {p['temperature']:.0f} K"
    return f"Relit {p['azimuth']:+.0f}°/{p['elevation']:+.0f}° {p['temperature']:.0f} K"


def _light_params(prefix: str, label: str, azimuth: float, elevation: float,
                  intensity: float, softness: float) -> list[Param]:
    params = [Param(f"{prefix}_intensity", "float", intensity, f"{label} intensity",
                    f"Strength of the {label.lower()} light (custom setup); 0 turns it off.",
                    min=0, max=3, step=0.05),
              Param(f"{prefix}_azimuth", "float", azimuth, f"{label} direction",
                    "Degrees around the subject, as for the key.", min=-180, max=180, step=5),
              Param(f"{prefix}_elevation", "float", elevation, f"{label} height",
                    "Degrees above the horizon.", min=-90, max=90, step=5),
              Param(f"{prefix}_temperature", "float", 6500.0, f"{label} temperature (K)",
                    "6500 K is the picture's white; lower is warmer, higher cooler.",
                    min=1500, max=12000, step=100),
              Param(f"{prefix}_softness", "float", softness, f"{label} softness",
                    "0: hard light, crisp shadows; 1: broad, wrapping light.",
                    min=0, max=1, step=0.05)]
    return [param.but(engines=GEOMETRIC) for param in params]


OPERATIONS = [
    Operation("relight", "Relight",
              "Light the portrait anew: its own light taken out, a key, fill and rim or a "
              "classic portrait setup put in, with the shadows the face casts.",
              [Param("setup", "choice", "custom", "Lighting setup",
                     "A classic portrait pattern (it sets the lights' angles, fill and "
                     "ambient; the direction's sign picks the key's side) or custom.",
                     choices=SETUP_NAMES,
                     presets={name: setup.as_params() for name, setup in SETUPS.items()}),
               Param("azimuth", "float", -45.0, "Direction",
                     "Degrees around the subject: 0 from the camera, -90 from the image's "
                     "left, +90 from its right, 180 from behind.", min=-180, max=180, step=5),
               Param("elevation", "float", 30.0, "Height",
                     "Degrees above the horizon; negative lights from below.",
                     min=-90, max=90, step=5),
               Param("intensity", "float", 1.0, "Intensity", "Strength of the key light.",
                     min=0, max=3, step=0.05, engines=GEOMETRIC),
               Param("temperature", "float", 6500.0, "Colour temperature (K)",
                     "6500 K is the picture's white; lower is warmer, higher cooler.",
                  min=1500, max=12000, step=100),
               Param("color", "color", "#ffffff", "Colour filter",
                     "A gel over the key light, multiplied with its temperature."),
               Param("softness", "float", 0.4, "Softness",
                     "0: hard light, crisp shadows; 1: broad, wrapping light.",
                     min=0, max=1, step=0.05),
               Param("key_distance", "float", 0.0, "Key distance",
                     "How far the key stands from the face's centre, in face heights: "
                     "near (1-3), its light falls off across the face as a lamp close by "
                     "does (under-light's is 1.5); 0: far away, the same everywhere.",
                     min=0, max=10, step=0.25, engines=GEOMETRIC),
               *_light_params("fill", "Fill", 45.0, 0.0, 0.0, 0.8),
               *_light_params("rim", "Rim", 150.0, 25.0, 0.0, 0.3),
               Param("rim_pair", "bool", False, "Rim on both sides",
                     "The rim light and its mirror image: two edge lights (custom setup).",
                     engines=GEOMETRIC),
               Param("ambient", "float", 0.25, "Ambient",
                     "Light that reaches everywhere (custom setup).", min=0, max=2, step=0.05,
                     engines=GEOMETRIC),
               Param("remove_light", "float", 1.0, "Remove original light",
                     "How much of the photo's own light to take out first: 1 all of it, "
                     "0 none (the new light goes on top).", min=0, max=1, step=0.05,
                     engines=GEOMETRIC),
               Param("sheen", "float", 0.3, "Skin sheen",
                     "Highlights on skin from each light.", min=0, max=1, step=0.05,
                     engines=GEOMETRIC),
               Param("background_light", "float", 0.0, "Light on background",
                     "0: the background keeps its brightness; 1: the lights fall on a wall "
                     "behind the subject.", min=0, max=1, step=0.05, engines=GEOMETRIC),
               Param("backdrop_shadow", "float", 0.0, "Shadow on backdrop",
                     "How dark the subject's shadow on a wall behind it is.",
                     min=0, max=1, step=0.05, engines=GEOMETRIC),
               Param("keep_colors", "bool", False, "Keep original colours",
                     "Change brightness only; ignore the lights' colours."),
               STEPS.but(help="Denoising steps.", engines=("ic-light",)),
               SEED.but(engines=("ic-light",))],
              relight, engine_kind="relight"),
]
