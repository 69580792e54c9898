"""Colour grading: 3D LUT looks (users' .cube files, read by colour-science, and built-in
looks made here from a few parametric steps), colour matching to a reference (Reinhard's
Lab mean and deviation, or the full-covariance Monge–Kantorovich transfer), and skin
protection (a mask from the face model and a skin-colour model that limits how far a
grade moves skin's hue and chroma).

Values are sRGB-encoded floats in 0..1, as editors grade. LUTs apply with Pillow's
Color3DLUT on 8-bit layers and SciPy's trilinear map_coordinates on deeper ones.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import cv2
import numpy as np

from . import imaging, protocol
from .protocol import ProtocolError

#: the grid the built-in looks are sampled on (as .cube files commonly are)
LOOK_SIZE = 33
#: the largest .cube accepted: 65 points a side (fine grading; what Resolve and most
#: editors export), and 16 MB of text (a 65-point cube is about 7 MB). colour-science
#: holds a file's text about 20 times over while it parses it: a 129-point cube (55 MB)
#: took 5.7 s and 1.1 GB
MAX_CUBE_SIZE = 65
MAX_CUBE_BYTES = 16 << 20
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
MATCH_METHODS = ("reinhard", "covariance")
MATCH_PASSES = 2


# ---- the steps looks are made of (each maps RGB 0..1 to RGB) ----

def _luma(rgb: np.ndarray) -> np.ndarray:
    return (rgb @ LUMA)[..., None]


def saturation(rgb, amount: float):
    grey = _luma(rgb)
    return grey + (rgb - grey) * amount


def contrast(rgb, amount: float):
    """An S-curve around mid grey (amount 1: none; above 1 steeper; below 1 flatter)."""
    x = np.clip(rgb, 0, 1)
    s = x * x * (3 - 2 * x)                       # smoothstep: the S
    return x + (amount - 1) * (s - x) * 2 if amount >= 1 else 0.5 + (x - 0.5) * amount


def levels(rgb, black: float, white: float):
    """Output black and white points (a lift above 0 fades the blacks)."""
    return black + rgb * (white - black)


def balance(rgb, red: float, green: float, blue: float):
    """A white balance: channel gains in linear light."""
    linear = imaging.srgb_to_linear(np.clip(rgb, 0, 1)) * np.array([red, green, blue],
                                                                    np.float32)
    return imaging.linear_to_srgb(linear)


def exposure(rgb, stops: float):
    return imaging.linear_to_srgb(imaging.srgb_to_linear(np.clip(rgb, 0, 1)) * 2 ** stops)


def split_tone(rgb, shadows, highlights, amount: float):
    """Shadows toward one colour, highlights toward another, luminance kept."""
    grey = _luma(rgb)
    low, high = (1 - grey) ** 2, grey ** 2
    tint = low * (np.asarray(shadows, np.float32) - 0.5) + \
        high * (np.asarray(highlights, np.float32) - 0.5)
    return rgb + amount * (tint - _luma(tint))


def mono(rgb, weights=(0.2126, 0.7152, 0.0722)):
    """Black and white through a colour filter (the channel weights)."""
    w = np.asarray(weights, np.float32) / sum(weights)
    return np.repeat((rgb @ w)[..., None], 3, axis=-1)


def bleach(rgb, amount: float):
    """Bleach bypass: a silver layer (the luminance) overlaid on the colour."""
    grey = np.clip(_luma(rgb), 0, 1)
    overlay = np.where(grey < 0.5, 2 * rgb * grey, 1 - 2 * (1 - rgb) * (1 - grey))
    return rgb + amount * (overlay - rgb)


def _chain(*steps: Callable) -> Callable:
    def look(rgb):
        for step in steps:
            rgb = step(rgb)
        return rgb
    return look


#: The built-in looks, in the order editors list them.
LOOKS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "warm": _chain(lambda x: balance(x, 1.10, 1.0, 0.86), lambda x: saturation(x, 1.05)),
    "cool": _chain(lambda x: balance(x, 0.88, 1.0, 1.12), lambda x: saturation(x, 0.95)),
    "teal and orange": _chain(lambda x: split_tone(x, (0.15, 0.55, 0.6), (1.0, 0.62, 0.3),
                                                   0.45),
                              lambda x: saturation(x, 1.15), lambda x: contrast(x, 1.1)),
    "faded film": _chain(lambda x: contrast(x, 1.1), lambda x: saturation(x, 0.78),
                         lambda x: split_tone(x, (0.35, 0.5, 0.55), (0.62, 0.52, 0.4), 0.25),
                         lambda x: levels(x, 0.07, 0.94)),
    "bleach bypass": _chain(lambda x: bleach(x, 0.7), lambda x: saturation(x, 0.5),
                            lambda x: contrast(x, 1.15)),
    "black and white": _chain(mono, lambda x: contrast(x, 1.15)),
    "black and white, red filter": _chain(lambda x: mono(x, (0.65, 0.3, 0.05)),
                                          lambda x: contrast(x, 1.15)),
    "golden hour": _chain(lambda x: balance(x, 1.12, 1.0, 0.8),
                          lambda x: split_tone(x, (0.45, 0.42, 0.5), (1.0, 0.78, 0.4), 0.3),
                          lambda x: saturation(x, 1.12), lambda x: contrast(x, 1.08),
                          lambda x: levels(x, 0.02, 1.0)),
    "cool and moody": _chain(lambda x: balance(x, 0.9, 1.0, 1.1), lambda x: saturation(x, 0.7),
                             lambda x: split_tone(x, (0.2, 0.45, 0.55), (0.5, 0.5, 0.5), 0.4),
                             lambda x: contrast(x, 1.2), lambda x: levels(x, 0.02, 0.9)),
    "noir": _chain(lambda x: mono(x, (0.5, 0.4, 0.1)), lambda x: contrast(x, 1.45),
                   lambda x: levels(x, -0.04, 1.0)),
    "high key": _chain(lambda x: exposure(x, 0.7), lambda x: contrast(x, 0.8),
                       lambda x: saturation(x, 0.88), lambda x: levels(x, 0.06, 1.0)),
    "low key": _chain(lambda x: exposure(x, -0.9), lambda x: contrast(x, 1.35),
                      lambda x: saturation(x, 0.9)),
    "soft pastel": _chain(lambda x: saturation(x, 0.72), lambda x: contrast(x, 0.8),
                          lambda x: split_tone(x, (0.55, 0.5, 0.62), (0.62, 0.5, 0.52), 0.3),
                          lambda x: levels(x, 0.12, 0.98)),
}


@functools.cache
def look_table(name: str, size: int = LOOK_SIZE) -> np.ndarray:
    """A built-in look sampled on a size³ grid: table[r, g, b] = RGB (read-only)."""
    axis = np.linspace(0, 1, size, dtype=np.float32)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    table = np.clip(LOOKS[name](grid), 0, 1).astype(np.float32)
    table.flags.writeable = False
    return table


# ---- .cube files ----

def read_cube(path: str) -> tuple[np.ndarray, np.ndarray]:
    """A .cube file's 3D table (size³ x 3, float32) and its domain (2 x 3), read by
    colour-science; a 1D .cube becomes the 3D table it implies. It is opened only if it
    is a regular file of at most MAX_CUBE_BYTES (colour-science holds a file's text
    many times over while it parses), and a declared size over MAX_CUBE_SIZE is refused
    before it is parsed. Every problem gets one clear bad_parameter error naming the
    file, never what is in it."""
    from . import named_files

    shown = protocol.shown(path)

    def refuse(why: str) -> ProtocolError:
        return ProtocolError(protocol.E_BAD_PARAMETER, f"lut: {shown} is not a usable .cube "
                                                       f"file: {why}")

    from colour.io.luts import LUT3D, read_LUT

    with named_files.opened(path, "lut", MAX_CUBE_BYTES) as (file, same_file):
        try:
            head = file.read(1 << 16).decode("utf-8", "replace")
        except OSError:
            raise named_files.cannot_read(path, "lut", MAX_CUBE_BYTES) from None
        declared = re.search(r"^\s*LUT_3D_SIZE\s+(\S+)", head, re.MULTILINE)
        if declared and not (declared.group(1).isdigit()
                             and 2 <= int(declared.group(1)) <= MAX_CUBE_SIZE):
            raise refuse(f"its LUT_3D_SIZE is not a whole number from 2 to {MAX_CUBE_SIZE}")
        try:
            lut = read_LUT(same_file, method="Iridas Cube")
            if isinstance(lut, LUT3D):
                table, domain = np.asarray(lut.table, np.float32), np.asarray(lut.domain,
                                                                              np.float32)
            else:      # 1D, or a shaper and a cube: sampled on a grid over the unit cube
                axis = np.linspace(0, 1, LOOK_SIZE)
                grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
                table, domain = np.asarray(lut.apply(grid), np.float32), None
        except Exception as exc:  # noqa: BLE001 - any parse failure is the file's
            raise refuse(_reason(exc)) from None
    domain = np.array([[0, 0, 0], [1, 1, 1]], np.float32) if domain is None else domain
    if table.ndim != 4 or table.shape[-1] != 3 or not 2 <= table.shape[0] <= MAX_CUBE_SIZE:
        raise refuse(f"its table is not an RGB cube of 2 to {MAX_CUBE_SIZE} points a side")
    if not (np.isfinite(table).all() and np.isfinite(domain).all()):
        raise refuse("its table holds values that are not numbers")
    if domain.shape != (2, 3) or not (domain[1] > domain[0]).all():
        raise refuse("its DOMAIN_MIN is not below its DOMAIN_MAX")
    return table, domain


def _reason(exc: Exception) -> str:
    """What is wrong with a file colour-science could not parse, in our words: its
    messages quote the file's lines."""
    text = str(exc)
    wrong = re.search(r"array of size (\d+) into shape \((\d+),", text)
    if wrong:
        values, side = int(wrong.group(1)), int(wrong.group(2))
        return f"it holds {values // 3} entries where its size {side} needs {side ** 3}"
    if "could not convert string to float" in text or "inhomogeneous" in text:
        return "a table line is not three numbers"
    return "it is not a 1D or 3D table colour-science can read"


# ---- applying a table ----

def apply_table(samples: np.ndarray, table: np.ndarray,
                domain: np.ndarray | None = None) -> np.ndarray:
    """RGB samples (u8, u16 or f32; alpha not included) through the table, in the same
    sample type. 8-bit over the unit domain goes through Pillow's Color3DLUT (exact on
    the grid); the rest through trilinear interpolation in SciPy."""
    sample = imaging.sample_of(samples)
    unit = domain is None or (np.allclose(domain[0], 0) and np.allclose(domain[1], 1))
    size = table.shape[0]
    if sample == "u8" and unit and size <= 65:
        from PIL import Image, ImageFilter

        flat = np.ascontiguousarray(table.transpose(2, 1, 0, 3)).reshape(-1, 3)  # red fastest
        lut = ImageFilter.Color3DLUT(size, flat, channels=3)
        picture = Image.fromarray(np.ascontiguousarray(samples), "RGB")
        return np.asarray(picture.filter(lut))
    from scipy import ndimage

    values = imaging.to_float(samples)
    low, high = (np.zeros(3), np.ones(3)) if domain is None else domain
    scaled = (np.clip(values, low, high) - low) / (high - low) * (size - 1)
    coords = scaled.reshape(-1, 3).T
    out = np.empty(values.shape, np.float32)
    flat = out.reshape(-1, 3)
    for c in range(3):
        flat[:, c] = ndimage.map_coordinates(table[..., c], coords, order=1, mode="nearest")
    return imaging.from_float(out, sample)


# ---- colour matching ----

def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.clip(rgb, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)


def _stats(lab: np.ndarray, weight: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    values = lab.reshape(-1, 3).astype(np.float64)
    w = np.ones(len(values)) if weight is None else weight.reshape(-1).astype(np.float64)
    if w.sum() < 16:
        raise ProtocolError(protocol.E_BAD_PARAMETER, "match: too few pixels to match "
                                                      "(is there a face in both?)")
    w = w / w.sum()
    mean = w @ values
    centred = values - mean
    return mean, (centred * w[:, None]).T @ centred


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vecs * np.sqrt(np.maximum(vals, 1e-9))) @ vecs.T


def match_colour(rgb: np.ndarray, reference: np.ndarray, method: str = "covariance",
                 weight: np.ndarray | None = None,
                 reference_weight: np.ndarray | None = None) -> np.ndarray:
    """`rgb` with its colour distribution in Lab moved onto the reference's: per channel
    mean and deviation (Reinhard et al. 2001), or mean and full covariance by the linear
    Monge–Kantorovich map (Pitié and Kokaram 2007). `weight`s pick the pixels whose
    statistics count (skin to skin); the map applies to every pixel. A second pass from
    the first's result makes up for what the RGB gamut clipped (covariance off by 13 % after
    one pass, 6 % after two, Grace Hopper onto the astronaut)."""
    if method not in MATCH_METHODS:
        raise ValueError(f"method must be one of {', '.join(MATCH_METHODS)}")
    mean_r, cov_r = _stats(_lab(reference), reference_weight)
    out = rgb
    for _ in range(MATCH_PASSES):
        lab = _lab(out)
        mean_s, cov_s = _stats(lab, weight)
        if method == "reinhard":
            transform = np.diag(np.sqrt(np.diag(cov_r) / np.maximum(np.diag(cov_s), 1e-9)))
        else:
            root = _sqrtm(cov_s)
            inverse = np.linalg.inv(root)
            transform = inverse @ _sqrtm(root @ cov_r @ root) @ inverse
        moved = ((lab.reshape(-1, 3) - mean_s) @ transform.T + mean_r).reshape(lab.shape)
        moved = moved.astype(np.float32)
        moved[..., 0] = np.clip(moved[..., 0], 0, 100)
        out = np.clip(cv2.cvtColor(moved, cv2.COLOR_Lab2RGB), 0, 1)
    return out


# ---- skin ----

#: skin is found at most this long side and scaled up: the weight is feathered by a
#: blur of 1/300 of the side, so it is smooth, and a 2048 px layer's full-size colour
#: tests took 220 MB of temporaries
SKIN_SIDE = 1024


def skin_weight(rgb: np.ndarray, faces: list[np.ndarray],
                subject: np.ndarray | None = None) -> np.ndarray:
    """How much each pixel is skin, 0..1: the faces' bare skin (face model), and pixels of
    a skin colour (YCrCb's classic skin box; with a face, near that face's own skin
    chroma) within the subject (its matte: a beige wall is no skin), feathered. Large
    layers are worked out at SKIN_SIDE and the weight scaled up."""
    h, w = rgb.shape[:2]
    if max(h, w) > SKIN_SIDE:
        scale = SKIN_SIDE / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = skin_weight(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA),
                            [points * np.array([size[0] / w, size[1] / h, scale], np.float32)
                             for points in faces],
                            None if subject is None else
                            cv2.resize(subject, size, interpolation=cv2.INTER_AREA))
        return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), 0, 1)
    ycrcb = cv2.cvtColor(np.clip(rgb, 0, 1).astype(np.float32), cv2.COLOR_RGB2YCrCb)
    cr, cb = ycrcb[..., 1] * 255, ycrcb[..., 2] * 255
    coloured = ((cr > 135) & (cr < 180) & (cb > 80) & (cb < 130)).astype(np.float32)
    from .engines.face import skin_mask

    faces_skin = np.zeros((h, w), np.float32)
    for points in faces:
        faces_skin = np.maximum(faces_skin, skin_mask((h, w), points))
    if faces_skin.any():
        chroma = np.stack([cr, cb], -1)
        centre = np.median(chroma[faces_skin > 0], axis=0)
        spread = np.maximum(np.std(chroma[faces_skin > 0], axis=0), 3.0)
        distance = (((chroma - centre) / (2.5 * spread)) ** 2).sum(-1)
        coloured = coloured * np.exp(-distance)
    if subject is not None:
        coloured = coloured * subject
    weight = np.maximum(faces_skin, coloured)
    sigma = max(1.0, max(h, w) / 300)
    return np.clip(cv2.GaussianBlur(weight, (0, 0), sigma), 0, 1)


def protect_skin(original: np.ndarray, graded: np.ndarray, weight: np.ndarray,
                 amount: float) -> np.ndarray:
    """The grade with skin's hue (the direction of Lab a*, b*) held back toward the
    original's by amount x weight. The grade's lightness and chroma stay: a black and white
    look still takes skin's colour away, a warm one does not turn skin orange.

    Worked out on the skin's pixels only (a portrait's skin is a small part of it; the
    whole picture in Lab took ten full-size copies), and written into `graded`."""
    where = amount * weight > 1e-3
    if amount <= 0 or not where.any():
        return graded
    before, after = _lab(original[where][:, None]), _lab(graded[where][:, None])
    ab_before, ab_after = before[..., 1:], after[..., 1:]
    chroma_before = np.linalg.norm(ab_before, axis=-1, keepdims=True)
    chroma_after = np.linalg.norm(ab_after, axis=-1, keepdims=True)
    own_hue = np.where(chroma_before > 1.0, ab_before / np.maximum(chroma_before, 1e-6) *
                       chroma_after, ab_after)
    hold = (amount * weight[where])[:, None, None]
    after[..., 1:] = ab_after + (own_hue - ab_after) * hold
    graded[where] = np.clip(cv2.cvtColor(after, cv2.COLOR_Lab2RGB), 0, 1)[:, 0]
    return graded
