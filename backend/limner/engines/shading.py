"""Light transport on the subject's surface: the photo's own light as spherical harmonics,
new light with wrap-around diffuse, cast shadows by marching the height field, a sheen.

Every function works on arrays at the geometry's resolution and knows nothing of layers
or parameters; the relight engine puts them together.
"""

from __future__ import annotations

import cv2
import numpy as np

from .lights import LUMA

#: a shadow's penumbra, in degrees of the light's angular size, from hard to soft
PENUMBRA_DEGREES = (2.0, 45.0)
#: how much further the terminator wraps round in red than in blue on skin: light
#: scattered under the skin comes out red (a cheap subsurface approximation): a warm
#: edge to a shadow, not a red band down the face
SKIN_WRAP = np.array([0.12, 0.05, 0.02], np.float32)


def sh_basis(normals: np.ndarray) -> np.ndarray:
    """The 9 real second-order spherical harmonics at each normal: (..., 9)."""
    x, y, z = normals[..., 0], normals[..., 1], normals[..., 2]
    return np.stack([np.full_like(x, 0.282095), 0.488603 * y, 0.488603 * z, 0.488603 * x,
                     1.092548 * x * y, 1.092548 * y * z, 0.315392 * (3 * z * z - 1),
                     1.092548 * x * z, 0.546274 * (x * x - y * y)], axis=-1)


def robust_fit(basis: np.ndarray, values: np.ndarray, ridge: np.ndarray | None = None,
               iterations: int = 6, at_least: np.ndarray | None = None
               ) -> tuple[np.ndarray, float]:
    """(coefficients (K, C), error) with values ≈ basis @ coefficients, fitted by
    iteratively reweighted least squares: residuals are taken relative to the prediction
    (so the dark side counts as much as the lit one) with Huber weights (so stubble, a
    mole or a stray hair cannot pull the fit); `ridge` (K) damps terms the data cannot
    pin down. `at_least` (N, bool) marks samples known only to be at least their value (a
    channel clipped at white): they pull the fit up where it falls below them, and leave
    it be where it is above. `error` is the median relative residual: how well the model
    explains it."""
    basis = basis.astype(np.float64)
    mean = np.maximum(values.mean(0), 1e-6).astype(np.float64)
    scaled = values / mean                   # every channel around 1
    ridge = np.zeros(basis.shape[1]) if ridge is None else ridge
    at_least = np.zeros(len(scaled), bool) if at_least is None else at_least
    weights = np.ones(len(scaled))
    for _ in range(iterations):
        wb = basis * weights[:, None]
        coefficients = np.linalg.solve(basis.T @ wb + np.diag(ridge * weights.sum()),
                                       wb.T @ scaled)
        scale = np.maximum(np.abs(basis @ coefficients).mean(1), 0.05)
        residual = (scaled - basis @ coefficients).mean(1) / scale
        satisfied = at_least & (residual <= 0)           # the fit is above a clipped value
        if (~satisfied).sum() < 2 * basis.shape[1]:
            satisfied[:] = False
        residual[satisfied] = 0
        counted = residual[~satisfied]
        spread = 1.4826 * np.median(np.abs(counted - np.median(counted))) + 1e-6
        huber = np.minimum(1.0, 1.345 * spread / np.maximum(np.abs(residual), 1e-12))
        weights = np.where(satisfied, 0.0, huber / scale ** 2)
    return (coefficients * mean).astype(np.float32), float(np.median(np.abs(counted)))


def fit_sh(normals: np.ndarray, colours: np.ndarray, order: int = 2,
           at_least: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """(lighting coefficients (9, C), error) such that colour ≈ sh_basis(normal) @
    coefficients, fitted robustly; a light ridge keeps the second-order terms from running
    wild where the face's normals do not reach. `order` 1 fits the first four terms only
    (a weaker estimate for no-face pictures). `at_least`: clipped samples (robust_fit)."""
    terms = 4 if order == 1 else 9
    ridge = np.array([0.0, 1e-3, 1e-3, 1e-3, 1e-2, 1e-2, 1e-2, 1e-2, 1e-2])[:terms]
    found, error = robust_fit(sh_basis(normals)[:, :terms], colours, ridge,
                              at_least=at_least)
    coefficients = np.zeros((9, colours.shape[1]), np.float32)
    coefficients[:terms] = found
    return coefficients, error


def fit_key_light(normals: np.ndarray, height: np.ndarray, values: np.ndarray,
                  fit: np.ndarray, direction: np.ndarray, at_least: np.ndarray | None = None
                  ) -> tuple[np.ndarray, float]:
    """(the light at every pixel, error): one light from `direction` with its shadows,
    plus ambient, fitted robustly to `values` (H x W luminance) on the `fit` pixels; of a
    hard, a middling and a soft light, the one that explains them best. Harmonics of
    second order cannot draw a hard light's terminator or any cast shadow (the nose's,
    the brow's); this can, so a photo lit hard from one side is delit far better.
    `at_least` (H x W): clipped pixels (robust_fit)."""
    reach = max(8, int(0.3 * max(height.shape)))
    best: tuple[np.ndarray, float] | None = None
    for softness in (0.0, 0.3, 0.7):
        lit = diffuse(normals, direction, 0.6 * softness) * \
            shadow(height, direction, softness, reach)
        basis = np.stack([np.ones(int(fit.sum()), np.float32), lit[fit]], 1)
        (ambient, key), error = robust_fit(basis, values[fit][:, None], at_least=None
                                           if at_least is None else at_least[fit])
        if key[0] > 0 and (best is None or error < best[1]):
            best = (ambient[0] + key[0] * lit, error)
    return best if best is not None else (np.full(height.shape, float(values[fit].mean()),
                                                  np.float32), np.inf)


def _directions(step: float = 3.0) -> np.ndarray:
    az, el = np.meshgrid(np.radians(np.arange(-180, 180, step)),
                         np.radians(np.arange(-90 + step, 90, step)))
    return np.stack([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)],
                    -1).reshape(-1, 3).astype(np.float32)


def dominant_direction(coefficients: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """The unit direction (camera space) of the one light that best explains the fitted
    shading over `normals` (the directions the fit saw): a + b·max(0, n·l) fitted to it,
    l searched on a 3-degree grid. The first-order terms alone mislead: on the half of
    the sphere a camera sees, the harmonics are far from orthogonal."""
    sample = normals[:: max(1, len(normals) // 400)]
    shade = sh_basis(sample) @ (coefficients @ LUMA if coefficients.shape[1] == 3
                                else coefficients[:, 0])
    candidates = _directions()
    lambert = np.clip(sample @ candidates.T, 0, None)
    spread = lambert - lambert.mean(0)
    slope = (spread * (shade - shade.mean())[:, None]).mean(0) / (lambert.var(0) + 1e-9)
    error = ((spread * slope - (shade - shade.mean())[:, None]) ** 2).mean(0)
    error[slope <= 0] = np.inf
    return candidates[int(np.argmin(error))]


def diffuse(normals: np.ndarray, direction: np.ndarray, wrap) -> np.ndarray:
    """Lambert with wrap-around: (n·l + wrap) / (1 + wrap), clipped at 0. `wrap` may be a
    per-pixel, per-channel array (..., C), making a (..., C) result."""
    cosine = normals @ direction
    wrap = np.asarray(wrap, np.float32)
    if wrap.ndim:
        cosine = cosine[..., None]
    return np.clip((cosine + wrap) / (1 + wrap), 0, 1)


def smooth_normals(normals: np.ndarray, sigma: float) -> np.ndarray:
    """Normals blurred over `sigma` pixels and made unit again (a broad light's view)."""
    if sigma < 0.5:
        return normals
    blurred = cv2.GaussianBlur(normals, (0, 0), sigma)
    return blurred / np.maximum(np.linalg.norm(blurred, axis=-1, keepdims=True), 1e-6)


def skin_wrap(base: float, skin: np.ndarray) -> np.ndarray:
    """Per-channel wrap: `base` everywhere, and red wrapping further on skin."""
    return base + skin[..., None] * SKIN_WRAP


def _march(step: tuple[float, float], reach: int):
    """(columns, rows, distance) of each point a ray looks at along `step` (unit, in
    columns and rows), out to `reach` pixels: 40 steps, closer together near its start."""
    for distance in np.unique(np.round(np.geomspace(1.5, reach, 40)).astype(int)):
        ox, oy = round(step[0] * distance), round(step[1] * distance)
        along = float(np.hypot(ox, oy))
        if along:
            yield ox, oy, along


def _visibility(clearance: np.ndarray, softness: float) -> np.ndarray:
    """0..1 from the angle (radians) by which a light clears what lies towards it: the
    penumbra widens with the light's size (PENUMBRA_DEGREES)."""
    low, high = PENUMBRA_DEGREES
    spread = np.radians(low + (high - low) * softness)
    return np.clip(clearance / spread + 0.5, 0, 1).astype(np.float32)


def horizon(height: np.ndarray, step: tuple[float, float], reach: int) -> np.ndarray:
    """The steepest rise (tan of its angle) of the height field seen from each pixel,
    looking along `step` (unit, in columns and rows) up to `reach` pixels away."""
    h, w = height.shape
    pad = reach + 1
    padded = cv2.copyMakeBorder(height, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    best = np.full((h, w), -np.inf, np.float32)
    for ox, oy, along in _march(step, reach):
        ahead = padded[pad + oy:pad + oy + h, pad + ox:pad + ox + w]
        np.maximum(best, (ahead - height) * np.float32(1 / along), out=best)
    return best


def shadow(height: np.ndarray, direction: np.ndarray, softness: float,
           reach: int) -> np.ndarray:
    """Visibility 0..1 of a light from `direction` over the height field: 0 where the
    surface towards the light rises above the light's angle. The penumbra widens with the
    light's size (softness) and with distance from the occluder, as a real one does."""
    across = float(np.hypot(direction[0], direction[1]))
    if across < 1e-3:                       # straight from the camera: shadows fall behind
        return np.ones(height.shape, np.float32)
    step = (direction[0] / across, -direction[1] / across)   # image rows run down
    rise = np.arctan(horizon(height, step, reach))
    elevation = np.arctan2(direction[2], across)             # above the picture plane
    return _visibility(elevation - rise, softness)


def back_light(height: np.ndarray, inside: np.ndarray, direction: np.ndarray,
               softness: float, reach: int) -> np.ndarray:
    """Visibility 0..1 of a light from behind the subject (`direction` points away from
    the camera). The height field has no back, so the subject is taken as a slab as deep
    behind the picture plane as it stands in front (|z| <= height where `inside`): a ray
    from a pixel towards the light, sinking behind the subject as it goes, is blocked
    where it passes through that slab. The outline, where the ray leaves the subject at
    once, keeps the light; the side of a nose or a cheek beside the hair, which face the
    light but lie deep inside the outline, do not. The penumbra follows softness as in
    `shadow`."""
    across = float(np.hypot(direction[0], direction[1]))
    if across < 1e-3:                       # straight from behind: no surface faces it
        return np.ones(height.shape, np.float32)
    step = (direction[0] / across, -direction[1] / across)
    sink = np.float32(max(0.0, -float(direction[2])) / across)   # per pixel travelled
    h, w = height.shape
    pad = reach + 1
    padded = cv2.copyMakeBorder(height, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    solid = cv2.copyMakeBorder(inside.astype(np.uint8), pad, pad, pad, pad,
                               cv2.BORDER_CONSTANT, value=0) > 0
    clearance = np.full((h, w), np.inf, np.float32)
    for ox, oy, along in _march(step, reach):
        window = (slice(pad + oy, pad + oy + h), slice(pad + ox, pad + ox + w))
        margin = np.abs(height - sink * np.float32(along))       # the ray's depth
        margin -= padded[window]
        margin *= np.float32(1 / along)
        np.minimum(clearance, margin, out=clearance, where=solid[window])
    return _visibility(np.arctan(clearance), softness)


def sheen(normals: np.ndarray, direction: np.ndarray, softness: float) -> np.ndarray:
    """Skin's specular highlight towards the camera (Blinn-Phong, energy-normalised so a
    broad soft highlight is dimmer than a tight hard one), 0.15 at its peak for a
    middling light: skin reflects a few per cent, oily skin more."""
    half = direction + np.array([0, 0, 1], np.float32)
    half /= max(float(np.linalg.norm(half)), 1e-6)
    shininess = 8 + 40 * (1 - softness)
    lobe = np.clip(normals @ half, 0, 1) ** shininess * (shininess + 8) / 40
    return (0.15 * lobe * np.clip(normals @ direction, 0, 1)).astype(np.float32)
