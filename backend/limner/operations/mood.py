"""mood: one click sets light, colour and background together. Each mood is a recipe of
the other operations (a relight setup, a grade look, a background treatment), written as
data in MOODS, which is also the `mood` choice's presets: an editor shows the recipe's
values when a mood is picked, and what runs is what it then sends, edits and all; a request
that leaves a value out gets the chosen mood's (schema.OperationSpec.completed), so the
provenance's parameters are the recipe that ran.

Returns the usual stack, named for what each layer did, each one switchable in the editor
(top first): the grade (of everything below), the relit subject (cut out by the matte) with
the light's highlight and shadow layers hidden beneath it as relight gives them, and the
background treated around the original subject.
"""

from __future__ import annotations

import cv2
import numpy as np

from .. import engines, grading, imaging
from . import relight as relight_operation
from .background import lens_blur
from .base import Layer, Operation, Param, Request
from .grade import LOOK, NO_LOOK, PROTECT_SKIN, graded, skin_of

#: The moods, in one place: each names its light (a relight setup, with the key's
#: direction, colour temperature and softness), its look, what happens behind the subject
#: (darken in stops, desaturate 0..1, blur radius in px at 1000 px, a tint) and how much
#: the frame's light falls off away from the subject's head (vignette).
MOODS: dict[str, dict] = {
    "golden hour": dict(setup="custom", azimuth=-65.0, elevation=12.0, temperature=3300.0,
                        softness=0.6, look="golden hour", protect_skin=0.4,
                        background_darken=0.0, background_desaturate=0.0, background_blur=6,
                        background_tint="#ffb060", background_tint_amount=0.1, vignette=0.15),
    "cool and moody": dict(setup="short", azimuth=-45.0, elevation=30.0, temperature=8000.0,
                           softness=0.35, look="cool and moody", protect_skin=0.5,
                           background_darken=1.2, background_desaturate=0.5,
                           background_blur=0, background_tint="#304860",
                           background_tint_amount=0.25, vignette=0.3),
    "film noir": dict(setup="split", azimuth=-90.0, elevation=5.0, temperature=6500.0,
                      softness=0.1, look="noir", protect_skin=0.0, background_darken=1.5,
                      background_desaturate=1.0, background_blur=0, background_tint="#000000",
                      background_tint_amount=0.0, vignette=0.6),
    "high-key studio": dict(setup="clamshell", azimuth=0.0, elevation=45.0,
                            temperature=6500.0, softness=0.9, look="high key",
                            protect_skin=0.5, background_darken=-1.5,
                            background_desaturate=0.6, background_blur=8,
                            background_tint="#ffffff", background_tint_amount=0.6,
                            vignette=0.0),
    "low-key dramatic": dict(setup="rembrandt", azimuth=-60.0, elevation=45.0,
                             temperature=5600.0, softness=0.2, look="low key",
                             protect_skin=0.4, background_darken=2.0,
                             background_desaturate=0.3, background_blur=0,
                             background_tint="#000000", background_tint_amount=0.3,
                             vignette=0.5),
    "soft pastel": dict(setup="butterfly", azimuth=0.0, elevation=50.0, temperature=6000.0,
                        softness=1.0, look="soft pastel", protect_skin=0.5,
                        background_darken=-0.5, background_desaturate=0.4, background_blur=10,
                        background_tint="#f0c8d8", background_tint_amount=0.3, vignette=0.0),
}
#: the recipe's parameters that go to relight
LIGHT = ("setup", "azimuth", "elevation", "temperature", "softness")


def treat_background(rgb: np.ndarray, alpha: np.ndarray, recipe: dict,
                     strength: float) -> np.ndarray:
    """The backdrop (RGB float) darkened, desaturated, blurred and tinted by the recipe,
    each by `strength`."""
    back = rgb
    radius = round(recipe["background_blur"] * strength * max(rgb.shape[:2]) / 1000)
    if radius >= 8:              # a wide blur loses nothing at half size, and takes a fifth
        h, w = rgb.shape[:2]
        half = (max(1, w // 2), max(1, h // 2))
        small = lens_blur(cv2.resize(rgb, half, interpolation=cv2.INTER_AREA),
                          cv2.resize(alpha, half, interpolation=cv2.INTER_AREA), radius // 2)
        back = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    elif radius >= 1:
        back = lens_blur(back, alpha, radius)
    if recipe["background_darken"]:
        back = grading.exposure(back, -recipe["background_darken"] * strength)
    if recipe["background_desaturate"]:
        back = grading.saturation(back, 1 - recipe["background_desaturate"] * strength)
    if recipe["background_tint_amount"]:
        tint = imaging.hex_to_rgb(recipe["background_tint"])
        back = back + recipe["background_tint_amount"] * strength * (tint - back)
    return np.clip(back, 0, 1)


def vignette(alpha: np.ndarray, amount: float) -> np.ndarray:
    """A light falloff (H x W multiplier, linear light) around the subject's head: the
    matte's centre across, a third of its height down from its top; nothing within the
    head's reach, down to 1 - amount at the frame's far corners."""
    h, w = alpha.shape
    if amount <= 0 or alpha.max() < 0.5:
        return np.ones((h, w), np.float32)
    inside = alpha > 0.5
    rows = np.flatnonzero(inside.any(axis=1))
    per_column = inside.sum(axis=0)
    cy = float(rows[0] + 0.33 * (rows[-1] - rows[0]))
    cx = float(per_column @ np.arange(w) / per_column.sum())
    # a row and a column broadcast, in float32: the full grid in float64 took 200 MB of
    # temporaries at 2048 px
    yy = np.arange(h, dtype=np.float32)[:, None] - np.float32(cy)
    xx = np.arange(w, dtype=np.float32)[None, :] - np.float32(cx)
    distance = np.hypot(yy, xx)
    distance /= max(h, w)
    near, far = 0.25, float(np.hypot(max(cy, h - cy), max(cx, w - cx)) / max(h, w))
    t = np.clip((distance - near) / np.float32(max(far - near, 1e-3)), 0, 1)
    return 1 - np.float32(amount) * t * t * (3 - 2 * t)


def _describe(recipe: dict) -> str:
    said = [f"{-recipe['background_darken']:+.1f} stops" if recipe["background_darken"] else "",
            "desaturated" if recipe["background_desaturate"] else "",
            "blurred" if recipe["background_blur"] else "",
            f"tinted {recipe['background_tint']}" if recipe["background_tint_amount"] else ""]
    return ", ".join(s for s in said if s) or "as it was"


def mood(req: Request) -> list[Layer]:
    p = req.params
    recipe = {name: p[name] for name in MOODS[p["mood"]]}
    strength = p["strength"]
    title = f"Mood {p['mood']}"
    box = imaging.selection_box(req.mask, req.image.shape[:2])
    region = req.image[box]
    rgb = np.clip(imaging.to_float(region)[:, :, :3], 0, 1)
    layer_alpha = imaging.to_float(region[:, :, 3]) if region.shape[2] == 4 else None
    alpha = req.subject_matte(box).alpha

    def within(start: float, end: float):
        return lambda fraction, stage: req.progress(start + (end - start) * fraction, stage)

    # the light: relight's own run on this layer (its geometry cached for the next mood)
    light_op = relight_operation.OPERATIONS[0]
    light_params = light_op.validate({name: recipe[name] for name in LIGHT})
    lit = light_op.run(Request(req.image, req.mask, light_params, within(0.1, 0.6),
                               req.owner, req.preview))
    relit = np.clip(imaging.to_float(lit[0].pixels[box])[:, :, :3], 0, 1)
    if strength < 1:
        relit = rgb + strength * (relit - rgb)
    req.progress(0.65, "treating the background")
    # full-size float layers are 48 MB each at 2048 px: built in place, one at a time
    behind = treat_background(rgb, alpha, recipe, strength)
    a = alpha[:, :, None]
    behind *= 1 - a                    # the treated backdrop where the subject is not
    background = rgb * a
    background += behind
    composite = relit * a
    composite += behind
    del behind, rgb
    falloff = vignette(alpha, recipe["vignette"] * strength)[:, :, None]
    if falloff.min() < 1:              # the light falls off: in linear light, before grading
        linear = imaging.srgb_to_linear(composite)
        linear *= falloff
        composite = imaging.linear_to_srgb(linear)
        del linear
    del falloff
    req.progress(0.75, "grading")
    grade_params = {"look": recipe["look"], "lut": "", "match": "", "match_method":
                    "covariance", "match_skin": False, "strength": strength,
                    "protect_skin": recipe["protect_skin"]}
    sample = imaging.sample_of(region)
    samples = imaging.from_float(composite, sample)
    final = imaging.to_float(graded(
        Request(samples, None, grade_params, within(0.75, 0.95), req.owner), samples,
        (slice(None), slice(None)), grade_params, lambda: skin_of(req, region, box))[0]) \
        if recipe["look"] != NO_LOOK else composite
    del composite, samples             # the graded copy is what goes on

    def layer(rgb_part: np.ndarray, cover: np.ndarray | None) -> np.ndarray:
        """Box-sized float RGB (and its coverage) put into a full layer through the
        selection, as the layer's samples (a float RGBA copy would be 64 MB at 2048 px)."""
        opacity = np.ones(rgb_part.shape[:2], np.float32) if cover is None else cover
        if layer_alpha is not None:
            opacity = opacity * layer_alpha
        base = imaging.with_alpha(req.image)
        edited = np.dstack([imaging.from_float(rgb_part, sample),
                            imaging.from_float(opacity, sample)])
        return imaging.blend_into(base if cover is None else np.zeros_like(base), edited,
                                  box, req.mask)

    look = recipe["look"] if recipe["look"] != NO_LOOK else "no look"
    falls = ", light falloff" if recipe["vignette"] * strength > 0 else ""
    made = _made(recipe, strength, light_params, lit[0].provenance)
    # each layer made, then its float source let go
    top = Layer(f"{title}: grade {look}{falls}", layer(final, None), provenance=made)
    del final
    if req.preview:
        return [top]
    light_name = recipe["setup"] if recipe["setup"] != "custom" else \
        f"{recipe['azimuth']:+.0f}°/{recipe['elevation']:+.0f}°"
    subject = Layer(f"{title}: relit subject ({light_name}, {recipe['temperature']:.0f} K)",
                    layer(relit, alpha), provenance=made)
    del relit
    behind_layer = Layer(f"{title}: background ({_describe(recipe)})",
                         layer(background, None), provenance=made)
    return [top, subject,
            *[Layer(f"{title}: {extra.name.lower()}", extra.pixels, blend=extra.blend,
                    visible=False, provenance=made) for extra in lit[1:]],
            behind_layer]


def _made(recipe: dict, strength: float, light_params: dict, found: dict) -> dict:
    """What a mood did, step by step, for every layer's provenance: the relight (its
    engine, licence, setup and what it found), the matte the background was treated
    around, and the grade's look."""
    relighter, matting = light_params["engine"], engines.default("matting")
    licences = [engines.get_info("relight", relighter).licence,
                engines.get_info("matting", matting).licence]
    return {"engine": relighter, "weights_licence": "; ".join(licences),
            "models": [matting], "setup": recipe["setup"], "look": recipe["look"],
            "steps": [
                {"operation": "relight", "engine": relighter, "licence": licences[0],
                 "params": {name: light_params[name] for name in LIGHT}, **found},
                {"operation": "background", "matting": matting, "licence": licences[1],
                 "params": {name: recipe[name] for name in recipe
                            if name.startswith("background_") or name == "vignette"}},
                {"operation": "grade", "look": recipe["look"],
                 "protect_skin": recipe["protect_skin"]}],
            "strength": strength}


_FIRST = MOODS["golden hour"]
OPERATIONS = [
    Operation("mood", "Mood",
              "Set light, colour and background together: golden hour, cool and moody, film "
              "noir, high-key, low-key or soft pastel, each as its own layers.",
              [Param("mood", "choice", "golden hour", "Mood",
                     "The recipe; picking one puts its values below, where they can be "
                     "changed.", choices=tuple(MOODS), presets=MOODS),
               Param("strength", "float", 1.0, "Strength",
                     "How far the light, the colour and the background move.", min=0, max=1,
                     step=0.05),
               Param("setup", "choice", _FIRST["setup"], "Lighting setup",
                     "The relight setup of the recipe.",
                     choices=relight_operation.SETUP_NAMES),
               Param("azimuth", "float", _FIRST["azimuth"], "Light direction",
                     "Degrees around the subject (relight's).", min=-180, max=180, step=5),
               Param("elevation", "float", _FIRST["elevation"], "Light height",
                     "Degrees above the horizon.", min=-90, max=90, step=5),
               Param("temperature", "float", _FIRST["temperature"], "Colour temperature (K)",
                     "6500 K is the picture's white.", min=1500, max=12000, step=100),
               Param("softness", "float", _FIRST["softness"], "Softness",
                     "0: hard light; 1: broad light.", min=0, max=1, step=0.05),
               LOOK.but(default=_FIRST["look"], choices=(NO_LOOK, *grading.LOOKS)),
               PROTECT_SKIN.but(default=_FIRST["protect_skin"]),
               Param("background_darken", "float", _FIRST["background_darken"],
                     "Darken background (stops)", "Negative brightens.", min=-3, max=4,
                     step=0.1),
               Param("background_desaturate", "float", _FIRST["background_desaturate"],
                     "Desaturate background", "", min=0, max=1, step=0.05),
               Param("background_blur", "int", _FIRST["background_blur"], "Blur background",
                     "Lens blur radius in px per 1000 px of the layer.", min=0, max=60,
                     step=1),
               Param("background_tint", "color", _FIRST["background_tint"],
                     "Background tint", ""),
               Param("background_tint_amount", "float", _FIRST["background_tint_amount"],
                     "Background tint amount", "", min=0, max=1, step=0.05),
               Param("vignette", "float", _FIRST["vignette"], "Light falloff",
                     "How much the light falls off away from the head (0: none).", min=0,
                     max=1, step=0.05)],
              mood),
]
