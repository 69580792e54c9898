"""Background: remove (cut-out + matte), replace (colour or image under the cut-out), blur
(portrait bokeh) and generate (a new background painted from a prompt by SD 1.5
inpainting). All share one matte: the engine's soft alpha, with the subject's edge colours
decontaminated (pymatting's multi-level foreground estimation) so no old background fringes
the hair."""

from __future__ import annotations

import cv2
import numpy as np

from .. import engines, imaging, models, protocol
from ..engines import refine
from ..protocol import ProtocolError
from .base import FAST, SEED, STEPS, Layer, Operation, Param, Request

HAIR_DETAIL = Param("hair_detail", "choice", "normal", "Hair detail",
                    "Refine the matte at the hair: normal, fine (slower, for large layers) or "
                    "off (the engine's own matte: fastest). BiRefNet's matte is used as it "
                    "is.", choices=refine.DETAILS)
DECONTAMINATE = Param("decontaminate", "bool", True, "Clean edge colours",
                      "Remove the old background's colour from semi-transparent edges (hair).")
#: the retoucher's hints: sure subject and sure background for the matte (a layer painted
#: over this one, a channel, or a mask file of the layer's size)
KEEP = Param("keep", "image", "", "Keep (hint)",
             "A mask (painted layer, channel or file, the layer's size) of what is subject "
             "for sure: the matte keeps it.", over_layer=True)
REMOVE = Param("remove", "image", "", "Remove (hint)",
               "A mask (painted layer, channel or file, the layer's size) of what is "
               "background for sure: the matte drops it.", over_layer=True)


def _subject(req: Request, box) -> tuple[np.ndarray, np.ndarray, refine.Matte, np.ndarray]:
    """(layer RGB, foreground RGB, the subject's matte, layer alpha), float32 over the box;
    the decontaminated foreground is kept with the matte in the layer cache."""
    from .. import cache

    image = imaging.to_float(req.image[box])
    rgb = image[:, :, :3]
    layer_alpha = image[:, :, 3] if image.shape[2] == 4 else np.ones(rgb.shape[:2], np.float32)
    matte = req.subject_matte(box, req.params["engine"], req.params["hair_detail"], hints=True)
    alpha, foreground = matte.alpha, rgb
    if req.params["decontaminate"]:
        def clean() -> np.ndarray:
            req.progress(0.55, "cleaning edge colours")
            found = decontaminated(rgb, alpha)
            found.flags.writeable = False
            return found

        foreground = cache.LAYERS.get(("foreground", matte.key), req.owner, clean)
    req.progress(0.85, "compositing")
    return rgb, foreground, matte, layer_alpha


#: layers longer than this are decontaminated at half size
DECONTAMINATE_SIDE = 1024


def decontaminated(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The subject's own colours where its edge is see-through (the old background taken
    out): pymatting's multi-level foreground estimation, in float32 and one sweep per
    full-size level (half the time of the defaults, and within 2/255 of them where the
    subject shows, alpha-weighted, astronaut 2048 px). Large layers are estimated at half
    size (the estimate is smooth: within another 1.5/255 at 2048 px, in half the time)
    and only their see-through pixels take it; opaque ones keep their own colours."""
    from pymatting import estimate_foreground_ml

    h, w = alpha.shape
    if h * w < 2:            # one pixel has no neighbours to take its colour from
        return np.array(rgb, np.float32)
    if max(h, w) <= DECONTAMINATE_SIDE:
        return estimate_foreground_ml(np.ascontiguousarray(rgb, np.float32),
                                      np.ascontiguousarray(alpha, np.float32),
                                      n_big_iterations=1)
    size = ((w + 1) // 2, (h + 1) // 2)
    small = estimate_foreground_ml(
        np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), np.float32),
        np.ascontiguousarray(cv2.resize(alpha, size, interpolation=cv2.INTER_AREA), np.float32),
        n_big_iterations=1)
    found = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where((alpha < 0.996)[:, :, None], found, rgb).astype(np.float32)


def _decided(matte: refine.Matte) -> dict:
    """How the matte was made, for the layer's provenance: the parts of the subject
    decided as a whole, and the long side its hair was refined at."""
    record = {"subject_parts": [part.describe() for part in matte.parts]} if matte.parts \
        else {}
    if matte.refined_at:
        record["matte_refined_at"] = matte.refined_at
    return record


def remove(req: Request) -> list[Layer]:
    box = imaging.selection_box(req.mask, req.image.shape[:2])
    _, foreground, matte, layer_alpha = _subject(req, box)
    alpha = matte.alpha
    layers = []
    if req.params["output"] in ("cut-out and matte", "cut-out"):
        cutout = np.dstack([foreground, alpha * layer_alpha])
        layers.append(Layer("Cut-out", imaging.blend_into(imaging.with_alpha(req.image), cutout,
                                                          box, req.mask),
                            provenance=_decided(matte)))
    if req.params["output"] in ("cut-out and matte", "matte"):
        opaque = np.full(req.image.shape[:2] + (1,), 1.0, np.float32)
        keep_all = imaging.from_float(opaque, imaging.sample_of(req.image))
        layers.append(Layer("Matte", imaging.blend_into(keep_all, alpha[:, :, None], box,
                                                        req.mask), role="mask",
                            provenance=_decided(matte)))
    return layers


def _composite(req: Request, box, foreground, alpha, layer_alpha, background) -> np.ndarray:
    """The subject over `background` (float RGB, box-sized), as a box-sized float layer."""
    a = (alpha * layer_alpha)[:, :, None]
    rgb = foreground * a + background * (1 - a)
    if req.image.shape[2] == 4:
        return np.dstack([rgb, np.ones(rgb.shape[:2], np.float32)])
    return rgb


def _cover(picture: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale to cover height x width and centre-crop, as a photo backdrop is placed."""
    ph, pw = picture.shape[:2]
    scale = max(height / ph, width / pw)
    size = (max(width, round(pw * scale)), max(height, round(ph * scale)))
    resized = cv2.resize(picture, size, interpolation=cv2.INTER_AREA if scale < 1
                         else cv2.INTER_CUBIC)
    y, x = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
    return resized[y:y + height, x:x + width]


def replace(req: Request) -> list[Layer]:
    from ..ora import read_picture

    box = imaging.selection_box(req.mask, req.image.shape[:2])
    h, w = req.image.shape[:2]
    if req.params["backdrop"]:
        picture = imaging.to_float(read_picture(req.params["backdrop"], "backdrop"))[:, :, :3]
        backdrop = _cover(np.clip(picture, 0, 1), h, w)[box]
        name = "Background image"
    else:
        colour = req.params["color"]
        backdrop = np.broadcast_to(imaging.hex_to_rgb(colour), (h, w, 3))[box]
        name = f"Background {colour}"
    _, foreground, matte, layer_alpha = _subject(req, box)
    edited = _composite(req, box, foreground, matte.alpha, layer_alpha, backdrop)
    return [Layer(name, imaging.blend_into(req.image, edited, box, req.mask),
                  provenance=_decided(matte))]


def blur(req: Request) -> list[Layer]:
    box = imaging.selection_box(req.mask, req.image.shape[:2])
    rgb, foreground, matte, layer_alpha = _subject(req, box)
    alpha = matte.alpha
    radius = req.params["radius"]
    req.progress(0.9, "blurring the background")
    backdrop = lens_blur(rgb, alpha, radius)
    edited = _composite(req, box, foreground, alpha, np.ones_like(layer_alpha), backdrop)
    if req.image.shape[2] == 4:
        edited[:, :, 3] = layer_alpha
    return [Layer(f"Background blur {radius} px", imaging.blend_into(req.image, edited, box,
                                                                     req.mask),
                  provenance=_decided(matte))]


def lens_blur(rgb: np.ndarray, alpha: np.ndarray, radius: int) -> np.ndarray:
    """The background blurred as by a wide lens: a disc in linear light (bright spots
    bloom as a lens does) with the subject's own pixels weighted out, so the blurred
    background carries no halo of the subject's colours."""
    weight = np.clip(1 - alpha, 0, 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    kernel = kernel.astype(np.float32) / kernel.sum()
    linear = imaging.srgb_to_linear(np.clip(rgb, 0, None))
    spread = cv2.filter2D(linear * weight[:, :, None], -1, kernel, borderType=cv2.BORDER_REFLECT)
    coverage = cv2.filter2D(weight, -1, kernel, borderType=cv2.BORDER_REFLECT)[:, :, None]
    plain = cv2.filter2D(linear, -1, kernel, borderType=cv2.BORDER_REFLECT)
    blurred = np.where(coverage > 1e-3, spread / np.maximum(coverage, 1e-3), plain)
    return imaging.linear_to_srgb(blurred)


def generate(req: Request) -> list[Layer]:
    p = req.params
    if not p["prompt"]:
        raise ProtocolError(protocol.E_BAD_PARAMETER, "background.generate: describe the new "
                                                      "background in the prompt")
    relight = p["match_light"] and models.local_path("ic-light-fbc") is not None
    engines.require_packages("style", "diffusion")
    models.require("sd15-inpaint")
    if relight:
        models.require("sd15")          # IC-Light's offsets apply to SD 1.5's UNet
    box = imaging.selection_box(req.mask, req.image.shape[:2])
    rgb, foreground, matte, layer_alpha = _subject(req, box)
    alpha = matte.alpha
    # Repaint all but the solid subject: the new background reaches under the soft edge,
    # so no old background shows through semi-transparent hair.
    margin = max(1, round(max(alpha.shape) / 200))
    solid = cv2.erode((alpha > 0.5).astype(np.uint8),
                      cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2))
    diffusion = engines.get("style", "diffusion")
    settings = {"steps": p["steps"], "seed": p["seed"], "fast": p["fast"], "structure": 0}
    used = diffusion.plan(settings, inpaint=True)
    backdrop = diffusion.diffuse(rgb, (1 - solid) * 255, p["prompt"], settings, 1.0,
                                 req.progress, (0.2, 0.6 if relight else 0.9),
                                 keep_detail=False)
    backdrop = np.clip(backdrop, 0, 1)
    edited = _composite(req, box, foreground, alpha, layer_alpha, backdrop)
    if relight:
        relit = engines.get("relight", "ic-light").match_background(
            edited[:, :, :3], alpha, backdrop, p, req.progress)
        a = (alpha * layer_alpha)[:, :, None]
        edited[:, :, :3] = relit * a + backdrop * (1 - a)
        used += ["sd15", "ic-light-fbc"]
    req.progress(0.95, "compositing")
    return [Layer("Generated background", imaging.blend_into(req.image, edited, box, req.mask),
                  provenance={"models": used})]


OPERATIONS = [
    Operation("background.remove", "Remove Background",
              "Cut the subject out with a soft, hair-preserving matte.",
              [Param("output", "choice", "cut-out and matte", "Output",
                     "A cut-out layer, the matte as a mask, or both.",
                     choices=("cut-out and matte", "cut-out", "matte")), HAIR_DETAIL,
               DECONTAMINATE, KEEP, REMOVE],
              remove, engine_kind="matting"),
    Operation("background.replace", "Replace Background",
              "Put a solid colour or a picture behind the subject.",
              [Param("color", "color", "#ffffff", "Colour", "Used when no image is given."),
               Param("backdrop", "file", "", "Backdrop image",
                     "A picture to place behind the subject (scaled to cover)."),
               HAIR_DETAIL, DECONTAMINATE, KEEP, REMOVE],
              replace, engine_kind="matting"),
    Operation("background.blur", "Blur Background",
              "Portrait bokeh: the background blurred as by a wide lens, the subject sharp.",
              [Param("radius", "int", 24, "Blur radius", "Lens blur radius in pixels.",
                     min=1, max=200, step=1), HAIR_DETAIL, DECONTAMINATE, KEEP, REMOVE],
              blur, engine_kind="matting"),
    Operation("background.generate", "Generate Background",
              "Paint a new background from a description around the subject, and relight "
              "the subject to match (Stable Diffusion 1.5 inpainting; GPU).",
              [Param("prompt", "text", "a softly lit photo studio, warm grey backdrop, "
                     "shallow depth of field", "Prompt", "What the new background shows."),
               Param("match_light", "bool", True, "Match the light",
                     "Relight the subject to sit in the new background (with the "
                     "ic-light-fbc model pulled)."),
               STEPS, SEED.but(help="The same seed gives the same background."), FAST,
               HAIR_DETAIL, DECONTAMINATE, KEEP, REMOVE],
              generate, engine_kind="matting"),
]
