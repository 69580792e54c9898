"""One seamless surface for the subject: a height field towards the camera, in pixels.

The body, hair and anything without a face is the matte "inflated": the Poisson equation
solved inside the silhouette, then its square root, which gives round cross-sections (a
tube of radius r rises to r, the classic inflation of Johnston's Lumo). Each face is the
face mesh itself, its depth rasterised triangle by triangle (barycentric, no scattered
interpolation across the mouth or past the outline), set onto the body at the level the
body has around it and blended in by HEIGHT, so the surface and its normals stay
continuous where face and head meet. Normals, shadows and the photo's light estimate
all come from this one field.
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from scipy.ndimage import distance_transform_edt

from .face import closed_mesh, face_size

#: long side of the grid the inflation is solved on: smooth, so coarse is enough
INFLATE_SIDE = 160
#: a body's depth over its width (a round profile is 1)
BODY_DEPTH = 0.5
#: how round a head falls away past its face's outline (radius), and how wide the
#: rounding where it meets the body is, as fractions of the face's size
HEAD_RADIUS, HEAD_JOIN = 0.6, 0.25


def solve_membrane(unknown: np.ndarray, fixed: np.ndarray, source: float) -> np.ndarray:
    """u with Δu = -source on the `unknown` pixels (bool grid) and u = `fixed` on the
    others; where the unknown region runs off the grid (a torso cut by the picture's edge)
    it goes on flat (zero gradient). The 5-point Laplacian, solved directly (sparse LU)."""
    ch, cw = unknown.shape
    ys, xs = np.nonzero(unknown)
    u = fixed.astype(np.float64).copy()
    n = ys.size
    if n == 0:
        return u
    index = np.full((ch, cw), -1, np.int64)
    index[ys, xs] = np.arange(n)
    diagonal, rhs = np.zeros(n), np.full(n, float(source))
    rows, cols = [], []
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        ny, nx = ys + dy, xs + dx
        in_grid = (ny >= 0) & (ny < ch) & (nx >= 0) & (nx < cw)
        diagonal += in_grid
        neighbour = np.full(n, -1)
        neighbour[in_grid] = index[ny[in_grid], nx[in_grid]]
        given = in_grid & (neighbour < 0)
        rhs[given] += fixed[ny[given], nx[given]]
        rows.append(np.flatnonzero(neighbour >= 0))
        cols.append(neighbour[neighbour >= 0])
    laplacian = scipy.sparse.csc_matrix(
        (np.concatenate([diagonal] + [np.full(r.size, -1.0) for r in rows]),
         (np.concatenate([np.arange(n)] + rows), np.concatenate([np.arange(n)] + cols))),
        shape=(n, n))
    u[ys, xs] = scipy.sparse.linalg.spsolve(laplacian, rhs)
    return u


def _coarse(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(image.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def inflate(domain: np.ndarray) -> np.ndarray:
    """Heights (same pixels as `domain`) of the silhouette `domain` (bool) inflated: round
    at the outline, its cross-sections half as deep as wide (a chest, an arm)."""
    h, w = domain.shape
    scale = min(1.0, INFLATE_SIDE / max(h, w))
    size = (max(3, round(w * scale)), max(3, round(h * scale)))
    coarse = _coarse(domain, size) > 0.5
    if coarse.all():                  # nothing outside to fall to: the frame's edge is
        coarse[0, :] = coarse[-1, :] = coarse[:, 0] = coarse[:, -1] = False
    u = solve_membrane(coarse, np.zeros(coarse.shape), 1.0)
    height = BODY_DEPTH * np.sqrt(2 * np.maximum(u, 0)).astype(np.float32) / scale
    up = cv2.resize(height, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(up, (0, 0), 0.75 / scale)   # no stair-steps of the coarse grid


def rasterise_face(shape: tuple[int, int], points: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(height, covered): the mesh's depth towards the camera at every pixel its triangles
    (eyes and mouth closed: face.closed_mesh) cover, interpolated inside each triangle."""
    points, tris = closed_mesh(points)
    ids = np.full(shape, -1, np.int32)
    corners = np.round(points[:, :2] * 16).astype(np.int32)        # 4 bits of subpixel
    # farthest first, so where a turned face folds over itself (its far cheek seen edge
    # on) the nearer triangles are drawn last and hide the ones behind: a painter's z-buffer
    for t in np.argsort(-points[tris, 2].mean(1)):
        cv2.fillPoly(ids, [corners[tris[t]]], int(t), lineType=cv2.LINE_8, shift=4)
    ys, xs = np.nonzero(ids >= 0)
    height = np.zeros(shape, np.float32)
    if ys.size:
        tri = tris[ids[ys, xs]]
        a, b, c = (points[tri[:, k]] for k in range(3))
        v0, v1 = b[:, :2] - a[:, :2], c[:, :2] - a[:, :2]
        v2 = np.stack([xs, ys], 1).astype(np.float32) - a[:, :2]
        d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
        d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
        denom = np.where(np.abs(d00 * d11 - d01 ** 2) < 1e-9, 1e-9, d00 * d11 - d01 ** 2)
        bv = (d11 * d20 - d01 * d21) / denom
        bw = (d00 * d21 - d01 * d20) / denom
        depth = (1 - bv - bw) * a[:, 2] + bv * b[:, 2] + bw * c[:, 2]
        # a pixel the raster gave a triangle it only touches: the nearest point of the
        # triangle's edges instead (a sliver's barycentrics run wild a pixel outside it)
        off = np.minimum(np.minimum(1 - bv - bw, bv), bw) < -1e-3
        if off.any():
            pixel = np.stack([xs[off], ys[off]], 1).astype(np.float32)
            best, best_depth = np.full(pixel.shape[0], np.inf), depth[off]
            for p, q in ((a[off], b[off]), (b[off], c[off]), (c[off], a[off])):
                edge = q[:, :2] - p[:, :2]
                t = np.clip(((pixel - p[:, :2]) * edge).sum(1) /
                            np.maximum((edge * edge).sum(1), 1e-9), 0, 1)
                gap = ((p[:, :2] + t[:, None] * edge - pixel) ** 2).sum(1)
                nearer = gap < best
                best[nearer] = gap[nearer]
                best_depth[nearer] = (p[:, 2] + t * (q[:, 2] - p[:, 2]))[nearer]
            depth[off] = best_depth
        height[ys, xs] = -depth
    covered = (ids >= 0).astype(np.float32)
    return height, covered


def _laplacian(shape: tuple[int, int]) -> scipy.sparse.csr_matrix:
    """The 5-point Laplacian over a whole grid, zero gradient at its edges."""
    h, w = shape
    index = np.arange(h * w).reshape(h, w)
    rows, cols, vals = [], [], []
    degree = np.zeros((h, w))
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        src = index[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
        dst = index[max(0, dy):h - max(0, -dy) or None, max(0, dx):w - max(0, -dx) or None]
        rows.append(src.ravel())
        cols.append(dst.ravel())
        vals.append(np.ones(src.size))
        degree[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)] += 1
    rows.append(index.ravel())
    cols.append(index.ravel())
    vals.append(-degree.ravel())
    return scipy.sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                           np.concatenate(cols))),
                                   shape=(h * w, h * w))


def thin_plate(known: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`values` kept where `known` (bool grid), and carried smoothly beyond, slopes and
    all: the surface of least bending (the discrete biharmonic, min |Δu|²)."""
    bend = _laplacian(known.shape)
    bend = (bend.T @ bend).tocsr()
    fixed = known.ravel()
    free = ~fixed
    u = np.where(known, values, 0).astype(np.float64).ravel()
    if free.any() and fixed.any():
        u[free] = scipy.sparse.linalg.spsolve(bend[free][:, free].tocsc(),
                                              -bend[free][:, fixed] @ u[fixed])
    return u.reshape(known.shape)


def extend_face(face: np.ndarray, covered: np.ndarray, size: float) -> np.ndarray:
    """A head round the face: the face's heights carried past its outline with their
    slope (a thin plate: no crease at the outline, no streaks) and curving further away
    there like the side of a head (a circular fall-off of radius HEAD_RADIUS of the
    face's size): forehead into crown, cheeks into temples, jaw under the chin. Very low
    far from the face."""
    h, w = face.shape
    head = np.full((h, w), -1e6, np.float32)
    ys, xs = np.nonzero(covered)
    margin = int(1.5 * HEAD_RADIUS * size) + 2
    y0, y1 = max(0, ys.min() - margin), min(h, ys.max() + margin + 1)
    x0, x1 = max(0, xs.min() - margin), min(w, xs.max() + margin + 1)
    box = (slice(y0, y1), slice(x0, x1))
    scale = min(1.0, 48 / max(y1 - y0, x1 - x0))
    size_c = (max(3, round((x1 - x0) * scale)), max(3, round((y1 - y0) * scale)))
    inside = covered[box]
    inside_c = cv2.resize(inside, size_c, interpolation=cv2.INTER_AREA)
    face_c = cv2.resize(face[box] * inside, size_c, interpolation=cv2.INTER_AREA) / \
        np.maximum(inside_c, 1e-6)
    carried = thin_plate(inside_c > 0.99, face_c).astype(np.float32)
    carried = cv2.GaussianBlur(cv2.resize(carried, (x1 - x0, y1 - y0),
                                          interpolation=cv2.INTER_LINEAR), (0, 0), 0.7 / scale)
    # distance from a smoothed outline: the raster's stair-steps would streak the fall-off
    outline = cv2.GaussianBlur(inside, (0, 0), 0.02 * size + 1) > 0.5
    outside = cv2.GaussianBlur(distance_transform_edt(~outline).astype(np.float32), (0, 0),
                               0.02 * size + 1)
    radius = HEAD_RADIUS * size
    drop = np.where(outside < radius,
                    radius - np.sqrt(np.maximum(radius ** 2 - outside ** 2, 0)),
                    radius + 4 * (outside - radius))
    weight = cv2.GaussianBlur(inside, (0, 0), 0.03 * size + 1)   # the face, eased in
    head[box] = weight * face[box] + (1 - weight) * (carried - drop)
    return head


def smooth_max(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """max(a, b) with the corner rounded over a difference of `k`: surfaces joined
    without a crease (Quilez's polynomial smooth minimum, mirrored)."""
    h = np.maximum(k - np.abs(a - b), 0) / k
    return np.maximum(a, b) + h * h * k * 0.25


def subject_height(alpha: np.ndarray, faces: list[np.ndarray]) -> tuple[np.ndarray,
                                                                         np.ndarray]:
    """(height, alpha): one height field for the subject, and the matte widened to hold
    every face (a face the matte missed is still the subject).

    Each face is set on top of the inflated body (a face is the nearest thing to the
    camera, whatever the silhouette: merged with long hair, a shoulder or a second
    person, the silhouette would otherwise raise a dome over it), carried past its outline
    falling away like a head, and joined to the body by a smooth maximum, so no crease
    shows where face, head and body meet."""
    alpha = alpha.copy()
    parts = []
    for points in faces:
        face, covered = rasterise_face(alpha.shape, points)
        size = face_size(points)
        sigma = max(1.0, 0.02 * size)            # no facets; normalised, so the
        face = cv2.GaussianBlur(face * covered, (0, 0), sigma) / np.maximum(   # outline
            cv2.GaussianBlur(covered, (0, 0), sigma), 1e-3)                    # stays put
        alpha = np.maximum(alpha, cv2.GaussianBlur(covered, (0, 0), max(1.0, 0.01 * size)))
        parts.append((face, covered, size))
    height = inflate(alpha > 0.5)
    inside = alpha > 0.5
    for face, covered, size in parts:
        rim = (covered > 0) & (cv2.erode(covered, np.ones((5, 5), np.uint8)) == 0)
        level = float(np.percentile((height - face)[rim], 90)) if rim.any() else 0.0
        head = extend_face(face + level, covered, size)
        height = np.where(inside, smooth_max(height, head, HEAD_JOIN * size), height)
    return cv2.GaussianBlur(height, (0, 0), max(1.0, 0.002 * max(alpha.shape))), alpha


def normals_of(height: np.ndarray) -> np.ndarray:
    """Unit normals of a height field (image rows run down, normals' y runs up)."""
    if min(height.shape) < 2:                  # a line of pixels has no slope to speak of
        return np.dstack([np.zeros_like(height), np.zeros_like(height),
                          np.ones_like(height)])
    gy, gx = np.gradient(height)
    n = np.dstack([-gx, gy, np.ones_like(height)])
    return n / np.linalg.norm(n, axis=2, keepdims=True)
