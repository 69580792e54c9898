"""Hair-level mattes of whole subjects on a CPU: a matting engine's alpha, refined by
closed-form matting (Levin et al. 2008; pymatting's Laplacian and solver) in a band round
its edge that reaches far out where the edge looks like hair and stays narrow along clean
contours, with the parts the engine left out or half in decided as a whole
(engines/subject.py), the retoucher's keep and remove hints as sure subject and sure
background, and holes, dips and stray specks cleaned.

Never worse than the engine: its own matte at the layer's full size is the start and
stays wherever the refinement changed nothing; what it was sure was subject (alpha above
SURE, more than the narrow band inside its edge) stays subject whatever a rule says (only
a remove hint takes it out); the clean-up rules only ever add to the subject, except the
haze rule (over background the engine was sure of) and the island rule (specks the engine
was unsure of, or tiny).

The solve runs at a working size (REFINE_SIDE for "normal", twice that for "fine") on
tiles of the band, so its cost follows the edge's length, not the layer's area. A weak
pull towards the engine's alpha, strong where the engine was sure, keeps closed-form
matting from fogging busy backgrounds. What changed comes back to the layer's size
through a colour guided filter (alpha locally a linear function of colour: the model
closed-form matting itself assumes), so strands finer than the working size keep their
shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.sparse
from scipy.ndimage import distance_transform_edt

from . import subject

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
#: alpha the engine is sure of: above it subject, below 1 - SURE background
SURE = 0.95
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
#: the picture's size from it are dropped, if the engine was unsure of them or they are
#: smaller than TINY_ISLAND of the picture
SMALLEST_ISLAND, FAR_ISLAND, TINY_ISLAND = 0.02, 0.05, 0.001
#: what changed by less than this at the working size keeps the engine's full-size alpha
CHANGED = 0.02


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
    the hairiness there says, and in by the narrow band only (inside, the engine's sure
    subject stays); and each pixel's hairiness (that of the nearest point of the edge)."""
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
    reach = np.where(inside, narrow, narrow + (wide - narrow) * hair)
    out = inside.astype(np.float32)
    out[seeds | (distance <= reach)] = 0.5
    return out, hair


def solve(rgb: np.ndarray, known: np.ndarray, coarse: np.ndarray,
          laplacians: dict | None = None) -> np.ndarray:
    """Alpha for the trimap's unknown pixels: closed-form matting plus the pull towards
    `coarse`. Large pictures are solved in overlapping tiles (memory follows the tile),
    their overlaps cross-faded so no seam shows. `laplacians` keeps each tile's matting
    Laplacian for a second solve whose unknown pixels are among the first's (it depends
    on the colours and on which pixels are unknown only)."""
    h, w = known.shape
    laplacians = {} if laplacians is None else laplacians
    total = np.zeros((h, w), np.float64)
    weights = np.zeros((h, w), np.float64)
    step = TILE - 2 * MARGIN
    for y in range(0, max(1, h - 2 * MARGIN), step):
        for x in range(0, max(1, w - 2 * MARGIN), step):
            read = (slice(y, y + TILE), slice(x, x + TILE))
            tri = known[read]
            alpha = tri.astype(np.float64)
            if (tri == 0.5).any():
                if (y, x) not in laplacians:
                    laplacians[y, x] = _laplacian(rgb[read], tri)
                alpha = _solve_tile(laplacians[y, x], tri, coarse[read])
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


def _laplacian(rgb: np.ndarray, tri: np.ndarray):
    from pymatting.laplacian.cf_laplacian import cf_laplacian

    return cf_laplacian(rgb.astype(np.float64), epsilon=EPSILON, radius=1,
                        is_known=(tri != 0.5).ravel())


def _solve_tile(laplacian, tri: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    from pymatting.preconditioner.jacobi import jacobi
    from pymatting.solver.cg import cg

    is_unknown = (tri == 0.5).ravel()
    prior = coarse.ravel()[is_unknown].astype(np.float64)
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


def drop_islands(alpha: np.ndarray, engine: np.ndarray) -> np.ndarray:
    """Stray specks far from the subject removed: parts (alpha above 0.1) smaller than
    SMALLEST_ISLAND of the largest part, farther than FAR_ISLAND of the picture's size
    from every part that big, that the engine (its alpha: `engine`) was unsure of or that
    are tiny (TINY_ISLAND of the picture): a hat the engine was sure of stays. Fly-aways
    near the head stay."""
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
        unsure = engine[part].mean() < 0.5 or part.sum() < TINY_ISLAND * alpha.size
        if unsure and distance[part].min() > far:
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


def protected(engine: np.ndarray, band: int, islands: bool = True) -> np.ndarray:
    """Where the engine was sure of the subject, more than `band` pixels inside its edge,
    but for specks far from it that the island rule drops (`islands`): there the matte
    stays at least the engine's."""
    sure = ((drop_islands(engine, engine) if islands else engine) > SURE).astype(np.uint8)
    return cv2.erode(sure, subject.disc(band)) > 0 if band > 0 else sure > 0


def with_hints(alpha: np.ndarray, keep: np.ndarray | None,
               remove: np.ndarray | None) -> np.ndarray:
    """The retoucher's word last: a keep hint raises alpha towards 1 and a remove hint
    lowers it towards 0, as strongly as they are painted, and nowhere else."""
    if keep is not None:
        alpha = alpha + (1 - alpha) * keep
    if remove is not None:
        alpha = alpha * (1 - remove)
    return alpha.astype(np.float32)


def refine(rgb: np.ndarray, engine: np.ndarray, decisions: subject.Decisions | None = None,
           keep: np.ndarray | None = None, remove: np.ndarray | None = None) -> np.ndarray:
    """`engine` (an engine's alpha for `rgb`, same size) refined at the hair, with the
    parts `decisions` kept or dropped and the hints (0..1, same size) as sure subject and
    sure background, and cleaned; never below the engine where it was sure."""
    rgb = np.ascontiguousarray(np.clip(rgb, 0, 1), np.float32)
    coarse = fill_holes(rgb, engine)           # the engine's own holes are no guide
    sure_subject = np.zeros(coarse.shape, bool)
    sure_background = np.zeros(coarse.shape, bool)
    if decisions is not None:
        sure_subject |= decisions.keep
        sure_background |= decisions.drop
    if keep is not None:
        sure_subject |= keep > 0.5
    if remove is not None:
        sure_background |= remove > 0.5
    sure_subject &= ~sure_background           # a remove hint has the last word
    coarse = np.where(sure_subject, 1.0, np.where(sure_background, 0.0, coarse)).astype(
        np.float32)
    known, hair = trimap(rgb, coarse)
    known[sure_subject], known[sure_background] = 1.0, 0.0
    laplacians: dict = {}
    alpha = solve(rgb, known, coarse, laplacians)
    # again, with what the first solve found sure as known: the band's strands then hang
    # on their own subject and background, not the engine's (strand error on the test
    # composites: a quarter lower)
    unknown = known == 0.5
    known[unknown & (alpha < SURE_BACKGROUND)] = 0.0
    known[unknown & (alpha > 1 - SURE_SUBJECT)] = 1.0
    alpha = solve(rgb, known, alpha, laplacians)
    # along clean contours colour alone can be wrong (a dark hat on a dark flag): there
    # the engine's edge keeps a say
    trust = np.clip(TRUST + hair, 0, 1)
    alpha = coarse + trust * (alpha - coarse)
    alpha = drop_islands(lift_dips(fill_holes(rgb, clear_haze(alpha, coarse))), coarse)
    band = max(1, round(BAND_NARROW * max(alpha.shape)))
    alpha = np.where(protected(engine, band), np.maximum(alpha, engine), alpha)
    return with_hints(alpha, keep, remove)


@dataclass(frozen=True)
class Matte:
    """A subject's alpha (H x W, float32 0..1), the parts decided as a whole on the way
    (subject.Part), for the record, what it was made from (a digest, when a cache holds
    it: what is worked out from it can be cached under it), and the long side its hair
    was refined at (0: the engine's own matte)."""

    alpha: np.ndarray
    parts: tuple = ()
    key: str = ""
    refined_at: int = 0


def refined(engine, rgb: np.ndarray, detail: str = "normal", progress=None,
            opinions: Callable[[str, np.ndarray], np.ndarray] | None = None,
            keep: np.ndarray | None = None, remove: np.ndarray | None = None,
            name: str = "engine") -> Matte:
    """The subject's matte for an RGB float image: the engine's own at full size ("off",
    the fast mode, and engines whose matte is already at hair level), or that refined at
    the working size where the hair, the parts to decide and the hints are, the rest kept
    as the engine had it ("normal", "fine"). `opinions(engine name, rgb)`: another
    engine's alpha, for the parts the engine (`name`) was unsure of. `keep` and `remove`:
    the retoucher's hints (0..1, the image's size), applied in every mode."""
    if detail not in DETAILS:
        raise ValueError(f"hair detail must be one of {', '.join(DETAILS)}, got {detail!r}")
    rgb = np.clip(rgb, 0, 1).astype(np.float32)
    own = np.clip(engine.matte(rgb), 0, 1).astype(np.float32)
    if detail == "off" or engine.HAIR_LEVEL:
        return Matte(with_hints(own, keep, remove))
    h, w = rgb.shape[:2]
    scale = min(1.0, REFINE_SIDE * (2 if detail == "fine" else 1) / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))

    def small(a: np.ndarray | None) -> np.ndarray | None:
        return a if a is None or scale == 1 else cv2.resize(a, size,
                                                             interpolation=cv2.INTER_AREA)

    small_rgb, base = small(rgb), small(own)
    if progress:
        progress("deciding the whole subject")
    decisions = None if opinions is None else subject.decide(
        base, lambda other: np.clip(opinions(other, small_rgb), 0, 1), name)
    if progress:
        progress("refining the hair")
    alpha = refine(small_rgb, base, decisions, small(keep), small(remove))
    parts = tuple(decisions.parts) if decisions is not None else ()
    if scale == 1:
        return Matte(alpha, parts, refined_at=max(h, w))
    # the engine's own full-size alpha wherever nothing changed; the refined one, brought
    # to full size by the colour guided filter, where it did
    changed = (np.abs(alpha - base) > CHANGED).astype(np.uint8)
    weight = cv2.GaussianBlur(cv2.dilate(changed, subject.disc(2)).astype(np.float32),
                              (0, 0), 1.5)
    weight = cv2.resize(np.clip(weight * 2, 0, 1), (w, h), interpolation=cv2.INTER_LINEAR)
    full = own + weight * (upsample(small_rgb, alpha, rgb) - own)
    band = max(1, round(BAND_NARROW * max(h, w)))
    guard = cv2.resize(protected(base, 0).astype(np.uint8), (w, h),
                       interpolation=cv2.INTER_NEAREST) > 0
    full = np.where(guard & protected(own, band, islands=False), np.maximum(full, own), full)
    return Matte(with_hints(np.clip(full, 0, 1), keep, remove), parts, refined_at=max(size))
