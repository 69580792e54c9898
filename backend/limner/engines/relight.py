"""The geometric relighting engine: surface normals from real models, shading in linear light.

Normals come from two sources and are blended: the face mesh's 3-D landmarks (interpolated
into a depth map over each face) and, for hair, body and anything without a face, a smooth
bulge raised from the subject matte (an "inflated silhouette": normals face the camera in
the middle and turn sideways at the outline). The background is a wall facing the camera.
Shading is Lambert with wrap-around (softness) plus a soft Blinn-Phong highlight, in the
light's colour, applied to the image as albedo in linear light.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.interpolate import LinearNDInterpolator
from scipy.ndimage import distance_transform_edt

from .. import engines, imaging
from . import EngineInfo, register
from .face import face_mask

#: the long side the geometry is worked out at; normals are smooth, so this loses nothing
GEOMETRY_SIDE = 768
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)   # Rec. 709 / sRGB, linear light


def kelvin_to_rgb(kelvin: float) -> np.ndarray:
    """Linear sRGB of a black body at `kelvin` (Kang et al. 2002 fit of the Planckian locus
    in CIE xy, then XYZ to linear sRGB), scaled to unit luminance."""
    t = float(kelvin)
    if t <= 4000:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    xyz = np.array([x / y, 1.0, (1 - x - y) / y])
    to_srgb = np.array([[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415],
                        [0.0557, -0.2040, 1.0570]])
    rgb = np.clip(to_srgb @ xyz, 1e-4, None)
    return (rgb / (rgb @ _LUMA)).astype(np.float32)


def light_direction(azimuth: float, elevation: float) -> np.ndarray:
    """Unit vector towards the light, camera space: x to the image's right, y up, z to the
    viewer. Azimuth 0 is from the camera, +90 from the image's right, -90 from its left,
    180 from behind; elevation +90 is from straight above."""
    az, el = np.radians(azimuth), np.radians(elevation)
    return np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)], np.float32)


def _normals_from_height(height: np.ndarray) -> np.ndarray:
    """Unit normals of a height field (image rows run down, normals' y runs up)."""
    gy, gx = np.gradient(height)
    n = np.dstack([-gx, gy, np.ones_like(height)])
    return n / np.linalg.norm(n, axis=2, keepdims=True)


def body_normals(alpha: np.ndarray) -> np.ndarray:
    """Normals of a bulge raised from the matte: a circular profile over the outer band
    (width: the subject's typical half-thickness), flat beyond it, smoothed."""
    inside = (alpha > 0.5).astype(np.uint8)
    distance = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    if distance.max() == 0:
        return np.dstack([np.zeros_like(alpha), np.zeros_like(alpha), np.ones_like(alpha)])
    radius = max(2.0, float(np.percentile(distance[inside > 0], 90)))
    t = np.clip(distance / radius, 0, 1)
    height = radius * np.sqrt(1 - (1 - t) ** 2)
    height = cv2.GaussianBlur(height, (0, 0), max(1.0, radius * 0.12))
    return _normals_from_height(height)


def face_normals(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Normals of one face from its landmarks' depth, interpolated over the mesh."""
    h, w = shape
    x0, y0 = np.floor(points[:, :2].min(0)).astype(int)
    x1, y1 = np.ceil(points[:, :2].max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    normals = np.dstack([np.zeros(shape, np.float32), np.zeros(shape, np.float32),
                         np.ones(shape, np.float32)])
    if x1 - x0 < 4 or y1 - y0 < 4:
        return normals
    interpolate = LinearNDInterpolator(points[:, :2], -points[:, 2])  # height towards camera
    gx, gy = np.meshgrid(np.arange(x0, x1), np.arange(y0, y1))
    height = interpolate(gx, gy).astype(np.float32)
    known = np.isfinite(height)
    if not known.all():   # continue the surface past the mesh's outline, so no seam shows
        nearest = distance_transform_edt(~known, return_distances=False, return_indices=True)
        height = height[tuple(nearest)]
    # The mesh is nearly flat from brow to chin; a head is round that way too: bend it so
    # the forehead turns up towards the crown and the chin turns under.
    centre, half = (points[:, 1].min() + points[:, 1].max()) / 2, (y1 - y0) * 0.6
    u = np.clip((gy - centre) / half, -1, 1)
    height += 0.5 * half * np.sqrt(1 - u ** 2)
    size = max(x1 - x0, y1 - y0)
    height = cv2.GaussianBlur(height, (0, 0), max(1.0, size * 0.025))
    normals[y0:y1, x0:x1] = _normals_from_height(height)
    return normals


@dataclass
class Lighting:
    relit: np.ndarray        # sRGB float, full size
    multiply: np.ndarray     # the light's shadows as a multiply layer (sRGB float)
    screen: np.ndarray       # the light's highlights as a screen layer (sRGB float)


class GeometricRelight:
    def geometry(self, rgb: np.ndarray, progress) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(normals, subject alpha, faces' weight) at GEOMETRY_SIDE resolution."""
        h, w = rgb.shape[:2]
        scale = min(1.0, GEOMETRY_SIDE / max(h, w))
        small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA) if scale < 1 else rgb
        progress(0.1, "finding the subject")
        alpha = engines.get("matting", engines.default("matting")).matte(small)
        progress(0.4, "finding faces")
        faces = engines.get("face", "mediapipe").faces(small)
        progress(0.5, "estimating shape")
        normals = body_normals(alpha)
        skin = np.zeros(alpha.shape, np.float32)
        for points in faces:   # each face's own normals, feathered into the body's
            weight = face_mask(alpha.shape, [points], feather=0.06)
            normals = normals * (1 - weight[:, :, None]) + \
                face_normals(alpha.shape, points) * weight[:, :, None]
            skin = np.maximum(skin, weight)
        flat = np.array([0, 0, 1], np.float32)
        normals = normals * alpha[:, :, None] + flat * (1 - alpha[:, :, None])
        normals /= np.linalg.norm(normals, axis=2, keepdims=True)
        return normals, alpha, skin

    def render(self, rgb: np.ndarray, params: dict, progress) -> Lighting:
        h, w = rgb.shape[:2]
        normals, alpha, skin = self.geometry(np.clip(rgb, 0, 1), progress)
        progress(0.7, "shading")
        light = light_direction(params["azimuth"], params["elevation"])
        softness = params["softness"]
        wrap = 0.8 * softness
        diffuse = np.clip((normals @ light + wrap) / (1 + wrap), 0, 1)
        if softness > 0:   # soft light also blurs where shadows fall
            diffuse = cv2.GaussianBlur(diffuse, (0, 0), max(0.5, softness * 0.02 *
                                                              max(diffuse.shape)))
        half = light + np.array([0, 0, 1], np.float32)
        half /= max(np.linalg.norm(half), 1e-6)
        shininess = 6 + 40 * (1 - softness)
        # a soft sheen on skin only: cloth and hair under a broad light show none to speak of
        specular = 0.12 * (1 - 0.5 * softness) * np.clip(normals @ half, 0, 1) ** shininess
        specular *= skin * (diffuse > 0)
        diffuse = cv2.resize(diffuse, (w, h), interpolation=cv2.INTER_LINEAR)
        specular = cv2.resize(specular, (w, h), interpolation=cv2.INTER_LINEAR)

        colour = kelvin_to_rgb(params["temperature"])
        tint = np.array([int(params["color"][i:i + 2], 16) / 255 for i in (1, 3, 5)], np.float32)
        colour = colour * imaging.srgb_to_linear(tint)
        if params["keep_colors"]:
            colour = np.full(3, colour @ _LUMA, np.float32)
        intensity, ambient = params["intensity"], params["ambient"]
        gain = ambient + intensity * colour * diffuse[:, :, None]          # per channel
        added = intensity * colour * specular[:, :, None]
        albedo = imaging.srgb_to_linear(rgb)
        progress(0.9, "compositing")
        relit = albedo * gain + added
        if params["keep_colors"]:   # change brightness only, keep the photo's colours
            before = np.maximum(albedo @ _LUMA, 1e-5)[:, :, None]
            relit = albedo * ((relit @ _LUMA)[:, :, None] / before)
        multiply = imaging.linear_to_srgb(np.clip(gain, 0, 1))
        screen = imaging.linear_to_srgb(np.clip(gain - 1 + added, 0, 1))
        return Lighting(imaging.linear_to_srgb(relit), multiply, screen)


register(EngineInfo(
    kind="relight", name="geometric", label="Face mesh + matte normals, Lambert shading",
    licence="Apache-2.0 (face mesh) + the matting engine's",
    weights="mediapipe face models and the default matting engine",
    load=GeometricRelight, find_weights=lambda: engines.get_info("face", "mediapipe").find_weights(),
    install_hint="pip install --no-deps mediapipe==0.10.21", is_default=True))
