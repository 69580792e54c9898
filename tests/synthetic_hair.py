"""Portraits with hair whose alpha is known: a real portrait's subject (its matte made
binary, so it is known too) with curly strands and fly-aways drawn round the head, thin
and anti-aliased (drawn four times larger and averaged down, so a strand's alpha is its
real coverage), composited over a chosen background. For tests and evaluation."""

from __future__ import annotations

import cv2
import numpy as np

SUPER = 4       # drawn at four times the size, then averaged down


def backgrounds(shape: tuple[int, int], seed: int = 0) -> dict[str, np.ndarray]:
    """A plain wall, a soft gradient and a busy texture, RGB float 0..1."""
    h, w = shape
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gradient = np.dstack([0.2 + 0.6 * xx / w, 0.35 + 0.3 * yy / h, 0.7 - 0.4 * xx / w])
    texture = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 3)
    texture = (texture - texture.min()) / np.ptp(texture)
    return {"plain": np.full((h, w, 3), (0.62, 0.64, 0.66), np.float32),
            "gradient": gradient.astype(np.float32),
            "texture": (0.25 + 0.6 * texture).astype(np.float32)}


def strands(subject: np.ndarray, seed: int = 0, count: int = 90,
            curl: float = 0.35) -> np.ndarray:
    """Alpha (H x W, 0..1) of curly strands growing out of the top of the subject's
    outline: each a random walk that keeps turning (curl), 0.7 to 2 px wide."""
    h, w = subject.shape
    rng = np.random.default_rng(seed)
    canvas = np.zeros((h * SUPER, w * SUPER), np.uint8)
    contours, _ = cv2.findContours((subject > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    outline = max(contours, key=len)[:, 0, :]
    top = outline[:, 1].min()
    height = np.ptp(outline[:, 1])
    roots = outline[outline[:, 1] < top + 0.25 * height]        # round the head
    centre = roots.mean(0)
    for _ in range(count):
        x, y = roots[rng.integers(len(roots))].astype(float)
        heading = np.arctan2(y - centre[1] - 0.3 * height, x - centre[0]) + rng.normal(0, 0.4)
        turn = rng.choice([-1, 1]) * curl * rng.uniform(0.5, 1.5)
        points = []
        for _ in range(int(rng.integers(15, 60))):
            points.append((x, y))
            heading += turn + rng.normal(0, 0.15)
            x, y = x + 1.5 * np.cos(heading), y + 1.5 * np.sin(heading)
        width = rng.uniform(0.7, 2.0)
        polyline = np.round(np.array(points) * SUPER * 16).astype(np.int32)
        cv2.polylines(canvas, [polyline], False, 255, max(1, round(width * SUPER)),
                      cv2.LINE_AA, shift=4)
    alpha = cv2.resize(canvas.astype(np.float32) / 255, (w, h), interpolation=cv2.INTER_AREA)
    return np.clip(alpha, 0, 1)


def composite(portrait: np.ndarray, matte: np.ndarray, background: np.ndarray,
              seed: int = 0, hair_colour=(0.32, 0.2, 0.1)) -> tuple[np.ndarray, np.ndarray,
                                                                     np.ndarray]:
    """(image u8, true alpha, strand alpha): the portrait's subject (matte > 0.5 taken two
    pixels in, its outline anti-aliased as the strands are, so its alpha is exactly
    known) with strands over `background`."""
    h, w = matte.shape
    large = (cv2.resize(matte, (w * SUPER, h * SUPER), interpolation=cv2.INTER_LINEAR) > 0.5)
    # two pixels in from the photo's own edge, whose colours hold its old background
    large = cv2.erode(large.astype(np.uint8), np.ones((4 * SUPER + 1,) * 2, np.uint8))
    subject = cv2.resize(large.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    hair = strands(subject, seed) * (1 - subject)      # strands over the background only
    rng = np.random.default_rng(seed + 1)
    shade = np.asarray(hair_colour, np.float32) * rng.uniform(0.8, 1.2, subject.shape + (1,))
    photo = portrait.astype(np.float32) / 255
    image = photo * subject[..., None] + background * (1 - subject[..., None])
    image = shade * hair[..., None] + image * (1 - hair[..., None])
    alpha = subject + hair
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), alpha.astype(np.float32), hair
