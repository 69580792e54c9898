"""Hair-level mattes on a CPU: a matting engine's coarse alpha refined by closed-form
matting (Levin et al. 2008; pymatting's Laplacian and solver) in a band round its edge
that reaches far out where the edge looks like hair and stays narrow along clean
contours, then cleaned of holes, dips and stray islands.

The solve runs at a working size (REFINE_SIDE for "normal", twice that for "fine") on
tiles of the band, so its cost follows the edge's length, not the layer's area. A weak
pull towards the engine's alpha, strong where the engine was sure, keeps closed-form
matting from fogging busy backgrounds. The refined alpha comes back to the layer's size
through a colour guided filter (alpha locally a linear function of colour: the model
closed-form matting itself assumes), so strands finer than the working size keep their
shape.
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.sparse
from scipy.ndimage import distance_transform_edt

DETAILS = ("off", "normal", "fine")
#: the long side the refinement works at for "normal" ("fine": twice this)
REFINE_SIDE = 512
#: the band round the coarse edge, as a fraction of the working side: inwards and along
#: a clean contour, and outwards where hair is
BAND_NARROW, BAND_WIDE = 0.004, 0.03
#: how much the solve is trusted along a clean contour (where hair is: fully)
TRUST = 0.5
#: what the first solve found sure, and the second keeps as known: background below
#: SURE_BACKGROUND, subject above 1 - SURE_SUBJECT
SURE_BACKGROUND, SURE_SUBJECT = 0.01, 0.05
#: how much each sign of hair counts (see hairiness)
SOFT_WEIGHT, IRREGULAR_WEIGHT, BUSY_WEIGHT = 2.5, 4.0, 12.0
#: how far in (as a fraction of the outward reach) the band goes where hair is
INWARD = 0.5
#: tiles the band is solved in (working pixels: one tile at "normal") and their overlap
TILE, MARGIN = 544, 32
#: the closed-form Laplacian's regulariser (smaller: sharper, less stable)
EPSILON = 1e-6
#: the pull towards the engine's alpha: everywhere, and more where it is near 0 or 1
PRIOR, PRIOR_SURE = 1e-4, 1e-2
#: alpha below this over background the engine was sure of is haze
HAZE = 0.2
#: holes up to this fraction of the picture are filled when they look like the subject
LARGEST_HOLE = 0.01
#: islands smaller than this fraction of the subject and farther than this fraction of
#: the picture's size from it are dropped
SMALLEST_ISLAND, FAR_ISLAND = 0.02, 0.05


def hairiness(rgb: np.ndarray, coarse: np.ndarray, radius: int) -> np.ndarray:
    """0..1 per pixel: how much the coarse edge nearby looks like hair rather than a clean
    contour. Three signs, each averaged over `radius`: the engine's alpha is soft (it was
    unsure), its outline is irregular (strays from a smoothed copy of itself), and the
    subject is busy there (strands are fine texture)."""
    size = (2 * radius + 1, 2 * radius + 1)
    soft = ((coarse > 0.05) & (coarse < 0.95)).astype(np.float32)
    inside = (coarse > 0.5).astype(np.uint8)
    smoothed = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), radius / 2) > 0.5
    irregular = (inside != smoothed).astype(np.float32)
    # texture a few pixels inside the outline (not the outline's own step): hair is
    # busy there, skin and cloth are not
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    within = cv2.erode(inside, np.ones((7, 7), np.uint8)).astype(np.float32)
    busy = np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 1.5)) * within
    score = (cv2.blur(soft, size) * SOFT_WEIGHT + cv2.blur(irregular, size) * IRREGULAR_WEIGHT +
             cv2.blur(busy, size) * BUSY_WEIGHT)
    return np.clip(score - 0.15, 0, 1)


def trimap(rgb: np.ndarray, coarse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(trimap, hair): 0 known background, 1 known subject, 0.5 unknown: where the
    engine's alpha is soft, and round that a band reaching out (to fly-aways) as far as
    the hairiness there says, and in less far; and each pixel's hairiness (that of the
    nearest point of the edge)."""
    side = max(coarse.shape)
    wide, narrow = BAND_WIDE * side, max(1.0, BAND_NARROW * side)
    inside = coarse > 0.5
    edge = (cv2.dilate(inside.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~inside
    if not edge.any():
        return inside.astype(np.float32), np.zeros(coarse.shape, np.float32)
    # soft alpha counts only near the outline: where the engine is unsure over a wide
    # area (a prop, a blurred shoulder) its own verdict stands, or the solve would turn
    # that area into a translucent wash
    soft = (coarse > 0.02) & (coarse < 0.98) & (distance_transform_edt(~edge) <= wide)
    seeds = edge | soft
    distance, nearest = distance_transform_edt(~seeds, return_indices=True)
    hair = hairiness(rgb, coarse, max(2, round(wide / 2)))[tuple(nearest)]
    reach = narrow + (np.where(inside, wide * INWARD, wide) - narrow) * hair
    out = inside.astype(np.float32)
    out[seeds | (distance <= reach)] = 0.5
    return out, hair


def solve(rgb: np.ndarray, known: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """Alpha for the trimap's unknown pixels: closed-form matting plus the pull towards
    `coarse`. Large pictures are solved in overlapping tiles (memory follows the tile),
    their overlaps cross-faded so no seam shows."""
    h, w = known.shape
    total = np.zeros((h, w), np.float64)
    weights = np.zeros((h, w), np.float64)
    step = TILE - 2 * MARGIN
    for y in range(0, max(1, h - 2 * MARGIN), step):
        for x in range(0, max(1, w - 2 * MARGIN), step):
            read = (slice(y, y + TILE), slice(x, x + TILE))
            tri = known[read]
            alpha = tri.astype(np.float64)
            if (tri == 0.5).any():
                alpha = _solve_tile(rgb[read], tri, coarse[read])
            th, tw = tri.shape
            ramp_y = _ramp(th, y > 0, y + TILE < h)
            ramp_x = _ramp(tw, x > 0, x + TILE < w)
            weight = ramp_y[:, None] * ramp_x[None, :]
            total[read] += alpha * weight
            weights[read] += weight
    alpha = total / np.maximum(weights, 1e-9)
    return np.where(known == 0.5, alpha, known).astype(np.float32)


def _ramp(length: int, fade_in: bool, fade_out: bool) -> np.ndarray:
    """Weights along one side of a tile: 1, rising over the first MARGIN pixels where a
    tile overlaps before it and falling over the last where one overlaps after it."""
    ramp = np.ones(length)
    edge = np.linspace(0.01, 1, min(MARGIN * 2, length))
    if fade_in:
        ramp[:len(edge)] = np.minimum(ramp[:len(edge)], edge)
    if fade_out:
        ramp[-len(edge):] = np.minimum(ramp[-len(edge):], edge[::-1])
    return ramp


def _solve_tile(rgb: np.ndarray, tri: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    from pymatting.laplacian.cf_laplacian import cf_laplacian
    from pymatting.preconditioner.jacobi import jacobi
    from pymatting.solver.cg import cg

    is_unknown = (tri == 0.5).ravel()
    prior = coarse.ravel()[is_unknown].astype(np.float64)
    laplacian = cf_laplacian(rgb.astype(np.float64), epsilon=EPSILON, radius=1,
                             is_known=~is_unknown)
    weight = PRIOR + PRIOR_SURE * np.abs(2 * prior - 1) ** 4
    system = laplacian[is_unknown][:, is_unknown] + scipy.sparse.diags(weight, format="csr")
    rhs = weight * prior - laplacian[is_unknown][:, ~is_unknown].dot(
        (tri.ravel() == 1)[~is_unknown].astype(np.float64))
    try:
        found = cg(system, rhs, x0=prior, M=jacobi(system), rtol=1e-4, atol=1e-9,
                   maxiter=2000)
    except ValueError:                          # did not converge: keep the engine's
        found = prior
    alpha = tri.ravel().astype(np.float64)
    alpha[is_unknown] = np.clip(found, 0, 1)
    return alpha.reshape(tri.shape)


def clear_haze(alpha: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """Closed-form matting leaves a faint haze (alpha up to HAZE) over background that the
    engine was sure of; over a new backdrop it shows as a grey veil round the hair. There
    faint alpha is faded out (a strand's core is well above it)."""
    fade = np.clip((alpha - HAZE / 2) / (HAZE / 2), 0, 1)
    return np.where(coarse < 0.05, alpha * fade * fade * (3 - 2 * fade), alpha)


def fill_holes(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Holes inside the subject filled where they look like it: a part below 0.5 that the
    subject encloses (its rim mostly opaque), at most LARGEST_HOLE of the picture, whose
    colour is nearer its rim's than the background's (a gap between an arm and the body
    shows background, and stays)."""
    h, w = alpha.shape
    out = alpha.copy()
    count, labels, stats, _ = cv2.connectedComponentsWithStats((alpha < 0.5).astype(np.uint8),
                                                                connectivity=4)
    background = rgb[alpha < 0.05]
    for label in range(1, count):
        x, y, bw, bh, area = stats[label]
        if x == 0 or y == 0 or x + bw == w or y + bh == h or area > LARGEST_HOLE * h * w:
            continue
        pad = max(3, bw, bh)
        window = (slice(max(0, y - pad), y + bh + pad), slice(max(0, x - pad), x + bw + pad))
        hole = labels[window] == label
        rim = (cv2.dilate(hole.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0) & ~hole
        if alpha[window][rim].mean() < 0.8:
            continue                              # curls enclose loops with thin rims
        near = rgb[window][(alpha[window] < 0.05) & ~hole]
        behind = near if len(near) > 20 else background
        colour = rgb[window][hole].mean(0)
        if len(behind) == 0 or np.linalg.norm(colour - rgb[window][rim].mean(0)) < \
                np.linalg.norm(colour - behind.mean(0)):
            out[window][hole] = 1.0
    return out


def lift_dips(alpha: np.ndarray) -> np.ndarray:
    """Soft dips deep inside the solid subject (a grey smear under a chin) lifted to 1:
    thin hair is never deep inside, so it keeps its alpha."""
    radius = max(2, round(0.01 * max(alpha.shape)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    solid = cv2.morphologyEx((alpha > 0.5).astype(np.uint8), cv2.MORPH_OPEN, disc)
    out = alpha.copy()
    out[cv2.erode(solid, disc) > 0] = 1.0
    return out


def drop_islands(alpha: np.ndarray) -> np.ndarray:
    """Stray specks far from the subject removed: parts (alpha above 0.1) smaller than
    SMALLEST_ISLAND of the largest part, farther than FAR_ISLAND of the picture's size
    from every part that big. Fly-aways near the head stay."""
    present = (alpha > 0.1).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(present, connectivity=8)
    if count <= 2:
        return alpha
    areas = stats[1:, cv2.CC_STAT_AREA]
    big = areas >= SMALLEST_ISLAND * areas.max()
    distance = distance_transform_edt(~np.isin(labels, 1 + np.flatnonzero(big)))
    far = FAR_ISLAND * max(alpha.shape)
    out = alpha.copy()
    for label in 1 + np.flatnonzero(~big):
        part = labels == label
        if distance[part].min() > far:
            out[part] = 0.0
    return out


def upsample(small_rgb: np.ndarray, alpha: np.ndarray, rgb: np.ndarray,
             radius: int = 2, eps: float = 1e-4) -> np.ndarray:
    """`alpha` (worked out on `small_rgb`) at `rgb`'s size: a colour guided filter's local
    linear coefficients fitted small and applied to the full-size colours."""
    size = (2 * radius + 1, 2 * radius + 1)
    mean_i, mean_p = cv2.blur(small_rgb, size), cv2.blur(alpha, size)
    cov = cv2.blur(small_rgb * alpha[..., None], size) - mean_i * mean_p[..., None]
    var = np.empty(alpha.shape + (3, 3), np.float32)
    for i in range(3):
        for j in range(i, 3):
            var[..., i, j] = var[..., j, i] = (
                cv2.blur(small_rgb[..., i] * small_rgb[..., j], size) -
                mean_i[..., i] * mean_i[..., j])
    var += eps * np.eye(3, dtype=np.float32)
    a = np.linalg.solve(var, cov[..., None])[..., 0]
    b = mean_p - (a * mean_i).sum(-1)
    h, w = rgb.shape[:2]
    a = cv2.resize(cv2.blur(a, size), (w, h), interpolation=cv2.INTER_LINEAR)
    b = cv2.resize(cv2.blur(b, size), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(np.einsum("hwc,hwc->hw", a, rgb) + b, 0, 1).astype(np.float32)


def refine(rgb: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """`coarse` (an engine's alpha for `rgb`, same size) refined at the hair and cleaned."""
    rgb = np.ascontiguousarray(np.clip(rgb, 0, 1), np.float32)
    coarse = fill_holes(rgb, coarse)           # the engine's own holes are no guide
    known, hair = trimap(rgb, coarse)
    alpha = solve(rgb, known, coarse)
    # again, with what the first solve found sure as known: the band's strands then hang
    # on their own subject and background, not the engine's (strand error on the test
    # composites: a quarter lower)
    unknown = known == 0.5
    known[unknown & (alpha < SURE_BACKGROUND)] = 0.0
    known[unknown & (alpha > 1 - SURE_SUBJECT)] = 1.0
    alpha = solve(rgb, known, alpha)
    # along clean contours colour alone can be wrong (a dark hat on a dark flag): there
    # the engine's edge keeps a say
    trust = np.clip(TRUST + hair, 0, 1)
    alpha = coarse + trust * (alpha - coarse)
    return drop_islands(lift_dips(fill_holes(rgb, clear_haze(alpha, coarse))))


def refined(engine, rgb: np.ndarray, detail: str = "normal", progress=None) -> np.ndarray:
    """The subject's alpha (H x W, float32) for an RGB float image: the engine's own at
    full size ("off", the fast mode, and engines whose matte is already at hair level),
    or its alpha at the working size refined and brought back to full size ("normal",
    "fine")."""
    if detail not in DETAILS:
        raise ValueError(f"hair detail must be one of {', '.join(DETAILS)}, got {detail!r}")
    rgb = np.clip(rgb, 0, 1).astype(np.float32)
    if detail == "off" or engine.HAIR_LEVEL:
        return np.clip(engine.matte(rgb), 0, 1).astype(np.float32)
    h, w = rgb.shape[:2]
    scale = min(1.0, REFINE_SIDE * (2 if detail == "fine" else 1) / max(h, w))
    small = rgb if scale == 1 else cv2.resize(
        rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    coarse = np.clip(engine.matte(small), 0, 1).astype(np.float32)
    if progress:
        progress("refining the hair")
    alpha = refine(small, coarse)
    return alpha if scale == 1 else upsample(small, alpha, rgb)
