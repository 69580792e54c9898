"""The geometric relighting engine: a small physically based renderer on one surface.

1. Geometry (once per layer, cached): the subject's matte, every face's mesh, one
   seamless height field (surface.py), its normals, and where the bare skin is.
2. The photo's own light (once per layer, cached): second-order spherical harmonics fitted
   robustly to the skin's linear colour against the normals, evaluated everywhere.
3. Every run: the rig's light on the surface (wrap-around diffuse, red wrapping further
   on skin, shadows cast by the height field, a sheen on skin), divided by the photo's own
   light: the quotient image. The ratio is smooth, worked out at the geometry's size for
   the subject and for the background, each brought up to the layer's size smooth and
   joined there by the subject's full-size matte, then multiplied onto the photo in linear
   light, so pores, hair strands and edges stay and the light carries none of them. The
   background keeps its brightness unless asked to take the light or the subject's
   shadow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from .. import engines, imaging
from . import EngineInfo, register, shading
from .face import face_size, orientation, skin_mask, whites_mask
from .lights import LUMA, Light, Settings, rig
from .surface import normals_of, subject_height

#: the face mesh's nose tip
NOSE_TIP = 1

#: the long side geometry and shading are worked out at: the light is smooth
GEOMETRY_SIDE = 512
#: the photo's light is never taken below this (of its average): deeper shadows are
#: mostly noise, and dividing by them would only amplify it
PHOTO_FLOOR = 0.12
#: a skin pixel with a channel at least this bright (linear) was clipped by the camera
PHOTO_CLIPPED = 0.95
#: skin is blown (its colour lost) from where its middle channel is the first of these
#: (linear) to where it is the second
BLOWN = (0.85, 0.95)
#: how smooth the photo's light is known (fractions of the geometry's side): the normals
#: it is fitted on, and its shading (a hard light's cast shadows included), are blurred by
#: these before it is divided out
PHOTO_SMOOTH = (0.01, 0.004)
#: how far the photo's light is let differ in colour across the subject (see photo_light)
PHOTO_TINT = 0.1
#: where a relit pixel's brightest channel starts to roll off towards white (see
#: highlights_kept)
HIGHLIGHT_KNEE = 0.85
#: ratios beyond this would lift the noise of a black shadow into a grey blotch
MAX_GAIN = 8.0
#: a named setup is exposed for the half of the face its key is on (a key within CENTRAL
#: degrees of the camera: the whole face), within this range of the rig's own level
CENTRAL, EXPOSURE_RANGE = 10.0, (0.5, 3.0)
#: how far (a fraction of the geometry's side, at softness 1) a light's size blurs the
#: surface it shades
SOFT_SPREAD = 0.02
#: how far (a fraction of the geometry's side) the skin map is smoothed: a material
SKIN_SMOOTH = 0.008
#: the skin luminance the sheen is counted against (see shade)
SHEEN_REFERENCE = 0.25
#: a near lamp never lights a pixel more than this many times its light on the face's
#: centre (what it reaches at arm's length, not at the bulb)
NEAR_LAMP_MOST = 3.0
#: added to both lights before dividing (see shade)
RATIO_FLOOR = 0.05
#: the backdrop: how far behind the subject, and how far away the lights stand, in
#: multiples of the picture's long side
WALL_DISTANCE, LIGHT_DISTANCE = 0.5, 1.5
#: the default rig's key (intensity 0.8) plus ambient (0.35), lighting the wall head-on,
#: leaves the backdrop as it is
WALL_REFERENCE = 1.15


@dataclass
class Lighting:
    """A relight's result: the relit layer, and the light alone as what multiplies the
    photo (gain); the light is smooth, so it may be smaller than the layer. All linear
    light, RGB. `found`: what the engine saw (for the layer's provenance)."""

    relit: np.ndarray
    gain: np.ndarray
    found: dict = field(default_factory=dict)


@dataclass
class Surface:
    """Everything about one layer that does not depend on the light, at geometry size."""

    linear: np.ndarray        # the layer's colour, linear light
    alpha: np.ndarray         # the subject's matte, widened to hold every face
    widened: np.ndarray       # what the widening added (faces the matte missed)
    height: np.ndarray        # towards the camera, pixels
    normals: np.ndarray
    skin: np.ndarray          # 0..1: bare skin (sheen, subsurface)
    face_skin: np.ndarray     # the largest face's own skin (the mesh's, not neck or hands)
    bare_skin: np.ndarray     # skin, the faces' eyes and mouths (their whites) left out
    nose_x: float             # where its nose tip is, across (pixels)
    yaw: float                # where the largest face looks, degrees (+: image right)
    photo: np.ndarray         # the photo's own light per channel, 1 on average on skin
    coefficients: np.ndarray  # its spherical harmonics (9, 3)
    faces: int
    photo_light: tuple[float, float]   # where the photo's light mostly came from (az, el)

    def found(self) -> dict:
        azimuth, elevation = self.photo_light
        return {"faces": self.faces, "face_yaw": round(self.yaw, 1),
                "photo_light": {"azimuth": round(azimuth), "elevation": round(elevation)}}


def _skin_colour_weight(linear: np.ndarray, fit: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """How much each pixel's chromaticity looks like the face's skin (neck, hands,
    shoulders are skin too): a Gaussian in log-chroma around the fitted skin's median."""
    chroma = np.log(np.maximum(linear, 1e-4)) - np.log(np.maximum(linear @ LUMA, 1e-4))[
        ..., None]
    centre = np.median(chroma[fit], axis=0)
    spread = np.maximum(1.4826 * np.median(np.abs(chroma[fit] - centre), axis=0), 0.05)
    distance = (((chroma - centre) / spread) ** 2).sum(-1)
    # the chroma of near-black pixels is noise, not a colour
    lit = np.clip((linear @ LUMA - 0.004) / 0.02, 0, 1)
    return (np.exp(-distance / 18) * alpha * lit).astype(np.float32)


def photo_light(linear: np.ndarray, normals: np.ndarray, height: np.ndarray,
                alpha: np.ndarray, fit: np.ndarray, have_faces: bool
                ) -> tuple[np.ndarray, np.ndarray]:
    """(the photo's light per channel at every pixel, normalised to 1 on average over the
    fitted pixels; its SH coefficients). `fit`: the pixels to fit (skin). Without a face
    the whole subject is fitted to first order only and the estimate is halved: clothes
    and hair vary too much in colour to trust it fully.

    Two models of that light are fitted: harmonics (smooth light from everywhere), and
    one light from the harmonics' main direction with the shadows the height field
    casts (shading.fit_key_light: a hard side light, its terminator and nose shadow).
    They are mixed by how well each explains the skin.

    The light's shape is its luminance's; its colour varies across the face by at most
    PHOTO_TINT. Most of the colour that shading takes on across skin is the skin's own
    (light scattered under it comes out red in the shadows): dividing it all out would
    turn every shadow blue, and a channel with little signal (blue, in warm light) would
    make blotches where its fit strays."""
    # the geometry is a few pixels off the photo's true shape (the mesh's lips, nose
    # wings and jaw line): a light fitted to it and divided out sharp would put those
    # errors into the new light as creases, so the photo's light is known as smooth
    normals = shading.smooth_normals(normals, PHOTO_SMOOTH[0] * max(normals.shape[:2]))
    luminance = linear @ LUMA
    # a channel at white was clipped: the light there was at least what it shows (left
    # out, a side lit hard enough to clip would hardly count, and stay bright when delit)
    clipped = fit & (linear.max(-1) >= PHOTO_CLIPPED)
    keep = (fit & (luminance > 0.002) & (luminance < 0.9)) | clipped   # no black noise
    if (keep & ~clipped).sum() < 50:
        return np.ones(linear.shape, np.float32), np.zeros((9, 3), np.float32)
    if keep.sum() > 40000:                                 # plenty for 27 numbers
        ys, xs = np.nonzero(keep)
        pick = np.random.default_rng(0).choice(len(ys), 40000, replace=False)
        keep = np.zeros_like(keep)
        keep[ys[pick], xs[pick]] = True
    coefficients, sh_error = shading.fit_sh(normals[keep], linear[keep],
                                            order=2 if have_faces else 1,
                                            at_least=clipped[keep])
    seen = keep & ~clipped                                 # what the photo shows fully
    photo = shading.sh_basis(normals) @ coefficients
    photo /= np.maximum(photo[seen].mean(0), 1e-6)        # the skin's own colour out
    brightness = photo @ LUMA
    tint = np.clip(photo / np.maximum(brightness, 1e-6)[..., None], 1 - PHOTO_TINT,
                   1 + PHOTO_TINT)
    if have_faces:
        direction = shading.dominant_direction(coefficients, normals[keep])
        key, key_error = shading.fit_key_light(normals, height, luminance, keep, direction,
                                               clipped)
        mix = sh_error ** 2 / max(sh_error ** 2 + key_error ** 2, 1e-12)
        brightness = (1 - mix) * brightness + mix * key
    # the colour is the skin's light's: away from the skin it was fitted on (clothes,
    # hair, what the subject holds) it is not known, and dividing by it would tint each
    # pixel by its own colour's share of the light
    near_skin = cv2.GaussianBlur(fit.astype(np.float32), (0, 0), 0.02 * max(fit.shape))
    near_skin = np.clip(near_skin / max(float(near_skin.max()), 1e-6) * 2, 0, 1)
    tint = 1 + near_skin[..., None] * (tint - 1)
    brightness = cv2.GaussianBlur(brightness.astype(np.float32), (0, 0),
                                  PHOTO_SMOOTH[1] * max(normals.shape[:2]))
    photo = (brightness / max(float(brightness[seen].mean()), 1e-6))[..., None] * tint
    if not have_faces:
        photo = 1 + 0.5 * (photo - 1)
    photo = np.where(alpha[..., None] > 0.01, photo, 1.0)
    return np.clip(photo, PHOTO_FLOOR, 4.0).astype(np.float32), coefficients


class GeometricRelight:
    def surface(self, samples: np.ndarray, progress, matte=None) -> Surface:
        """Work out the geometry and the photo's light of one layer region; `matte()`
        gives the subject's alpha at the region's size (the operation's shared one)."""
        h, w = samples.shape[:2]
        scale = min(1.0, GEOMETRY_SIDE / max(h, w))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        linear = imaging.to_linear(samples[:, :, :3])
        if scale < 1:
            linear = cv2.resize(linear, size, interpolation=cv2.INTER_AREA)
        srgb = np.clip(imaging.linear_to_srgb(linear), 0, 1).astype(np.float32)
        progress(0.1, "finding the subject")
        if matte is None:
            alpha = engines.get("matting", engines.default("matting")).matte(srgb)
        else:
            alpha = np.asarray(matte(), np.float32)
            if scale < 1:
                alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
        if samples.shape[2] == 4:              # a cut-out: what it left out is no subject
            coverage = np.clip(imaging.to_float(samples[:, :, 3]), 0, 1)
            alpha = alpha * (cv2.resize(coverage, size, interpolation=cv2.INTER_AREA)
                             if scale < 1 else coverage)
        progress(0.4, "finding faces")
        faces = engines.get("face", "mediapipe").faces(srgb)
        progress(0.5, "estimating shape")
        matted = alpha
        height, alpha = subject_height(alpha, faces)
        normals = normals_of(height)
        fit = np.zeros(alpha.shape, bool)
        whites = np.zeros(alpha.shape, np.uint8)
        for points in faces:
            fit |= skin_mask(alpha.shape, points) > 0
            whites |= whites_mask(alpha.shape, points)
        skin = np.zeros(alpha.shape, np.float32)
        if faces:
            colour = _skin_colour_weight(linear, fit, alpha)
            fit &= colour > 0.3                   # beard, glasses and hair are not skin
            biggest = max(faces, key=face_size)
            # skin is a material, and the light it changes (the red wrap, the sheen, the
            # softer shadow edge) is smooth across it: taken per pixel, it would follow
            # every strand, seam and badge that is nearly skin-coloured
            skin = np.maximum(cv2.GaussianBlur(colour, (0, 0), SKIN_SMOOTH * max(alpha.shape)),
                              cv2.GaussianBlur(fit.astype(np.float32), (0, 0),
                                               0.03 * face_size(biggest)))
        else:
            fit = cv2.erode((alpha > 0.9).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        progress(0.6, "estimating the photo's light")
        photo, coefficients = photo_light(linear, normals, height, alpha, fit, bool(faces))
        yaw = orientation(max(faces, key=face_size))[0] if faces else 0.0
        x, y, z = shading.dominant_direction(coefficients, normals[fit]) if fit.any() \
            else (0.0, 0.0, 1.0)
        light_from = (float(np.degrees(np.arctan2(x, z))),
                      float(np.degrees(np.arcsin(np.clip(y, -1, 1)))))
        bare_skin = np.clip(skin, 0, 1) * (1 - cv2.GaussianBlur(whites.astype(np.float32),
                                                                 (0, 0), 1.0))
        face_skin = np.zeros(fit.shape, bool)
        nose_x = 0.0
        if faces:
            face_skin = fit & (skin_mask(fit.shape, biggest) > 0)
            nose_x = float(biggest[NOSE_TIP, 0])
        return Surface(linear, alpha, np.clip(alpha - matted, 0, 1), height,
                       normals, skin, face_skin, bare_skin, nose_x, yaw, photo, coefficients,
                       len(faces), light_from)

    def render(self, samples: np.ndarray, settings: Settings, progress,
               memo: Callable[[str, Callable], object] | None = None,
               matte: Callable[[], np.ndarray] | None = None) -> Lighting:
        """Relight a layer region (its samples as they are: u8, u16 or f32, 3 or 4
        channels). `memo(name, build)` keeps what does not depend on the light between
        runs on the same pixels; `matte()`, the subject's alpha at the region's size
        (without it, the default matting engine's own)."""
        memo = memo or (lambda name, build: build())
        surface = memo("relight-surface", lambda: self.surface(samples, progress, matte))
        progress(0.7, "shading")
        light = shade(surface, settings)
        # (HDR layers keep all their light); both worked out once per layer, not per run
        if not memo("relight-hdr", lambda: samples.dtype.kind == "f"
                    and float(samples[:, :, :3].max()) > 1):
            light = highlights_kept(light, memo("relight-blurred", lambda: cv2.GaussianBlur(
                surface.linear, (0, 0), 2.0)))
        gain = light.composite(surface.alpha)
        h, w = samples.shape[:2]
        progress(0.9, "compositing")
        blown_skin = memo("relight-skin-colour", lambda: skin_colour_round(surface))
        if surface.linear.shape[:2] == (h, w):
            return Lighting(recoloured(surface.linear * gain, surface.linear,
                                       surface.bare_skin, blown_skin), gain, surface.found())
        # not kept between runs: the layer's size in floats, and made again in a few tens
        # of milliseconds (2048 px), where the geometry above takes seconds
        full = imaging.to_linear(samples[:, :, :3])
        # the light is smooth across the subject and across the background, and changes
        # where one meets the other: each brought up smooth (no strand or weave of the
        # photo in it) and joined by the matte at full size
        alpha = self.full_alpha(samples, surface, matte)
        relit = light.composite_at(alpha, (w, h))
        np.multiply(relit, full, out=relit)               # in place: large layers
        return Lighting(recoloured(relit, full, surface.bare_skin, blown_skin), gain,
                        surface.found())

    @staticmethod
    def full_alpha(samples: np.ndarray, surface: Surface, matte) -> np.ndarray:
        """The subject at the layer's size: the matte (the operation's, else the one the
        geometry was made from, brought up), with the faces it missed, within the layer's
        own alpha."""
        h, w = samples.shape[:2]
        if matte is not None:
            alpha = np.asarray(matte(), np.float32)
        else:
            alpha = cv2.resize(surface.alpha - surface.widened, (w, h),
                               interpolation=cv2.INTER_LINEAR)
        if surface.widened.any():
            alpha = np.maximum(alpha, cv2.resize(surface.widened, (w, h),
                                                 interpolation=cv2.INTER_LINEAR))
        if samples.shape[2] == 4:
            alpha = alpha * np.clip(imaging.to_float(samples[:, :, 3]), 0, 1)
        return alpha


@dataclass
class Shading:
    """A rig's light on one surface, at geometry size: what multiplies the subject and
    the background (linear RGB gains)."""

    subject: np.ndarray
    backdrop: np.ndarray

    def composite(self, alpha: np.ndarray) -> np.ndarray:
        """The gain, the two joined by `alpha` (the geometry's size)."""
        a = alpha[..., None]
        return (self.subject * a + self.backdrop * (1 - a)).astype(np.float32)

    def composite_at(self, alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The gain at `size`, each side brought up smooth and joined by `alpha` there."""
        gain = cv2.resize(self.subject, size, interpolation=cv2.INTER_LINEAR)
        a = alpha[..., None]
        if np.all(self.backdrop == 1):               # the background as it was
            gain -= 1
            gain *= a
            gain += 1
            return gain
        backdrop = cv2.resize(self.backdrop, size, interpolation=cv2.INTER_LINEAR)
        return gain * a + backdrop * (1 - a)


def skin_colour_round(surface: Surface) -> tuple[np.ndarray, tuple[int, ...]] | None:
    """(the skin's colour (linear RGB over its luminance) round each pixel, from the skin
    that is not clipped; the box (top, bottom, left, right) of the blown skin), at
    geometry size; None when no skin is blown. A blown pixel's colour went with its
    clipped channels (a blown cheek is pale, a little cyan), and darkened by a new light
    it would show as a grey patch."""
    rows, columns = np.nonzero((_middle(surface.linear) >= BLOWN[0] - 0.05) &
                               (surface.bare_skin > 0.5))
    if len(rows) == 0:
        return None
    clipped = surface.linear.max(-1) >= PHOTO_CLIPPED
    luminance = np.maximum(surface.linear @ LUMA, 1e-3)
    chroma = surface.linear / luminance[..., None]
    weight = (surface.skin * ~clipped * (luminance > 0.01)).astype(np.float32)
    if weight.sum() < 1:
        return None
    overall = (chroma * weight[..., None]).sum((0, 1)) / weight.sum()
    sigma = 0.03 * max(weight.shape)
    near = cv2.GaussianBlur(chroma * weight[..., None], (0, 0), sigma)
    share = cv2.GaussianBlur(weight, (0, 0), sigma)[..., None]
    return (((near + 0.01 * overall) / (share + 0.01)).astype(np.float32),
            (int(rows.min()), int(rows.max()) + 1, int(columns.min()), int(columns.max()) + 1))


def recoloured(relit: np.ndarray, before: np.ndarray, skin: np.ndarray,
               found: tuple[np.ndarray, tuple[int, ...]] | None) -> np.ndarray:
    """`relit` (linear RGB) with blown skin that the light darkens given the colour of
    the skin round it (`found`: skin_colour_round's colour and box; `skin`,
    Surface.bare_skin, which leaves out the eyes and the teeth; all at geometry size):
    fully where the photo was blown (its middle channel at BLOWN[1] or more) and the
    light halves it, not at all where its middle channel was below BLOWN[0] or the light
    keeps it bright. `before`: the photo, linear, the size of `relit`. Only the blown
    skin's box is worked on: a re-light stays quick."""
    if found is None:
        return relit
    colour, (top, bottom, left, right) = found
    h, w = relit.shape[:2]
    scale_y, scale_x = skin.shape[0] / h, skin.shape[1] / w
    box = (slice(max(0, int((top - 1) / scale_y)), min(h, int(np.ceil((bottom + 1) / scale_y)))),
           slice(max(0, int((left - 1) / scale_x)), min(w, int(np.ceil((right + 1) / scale_x)))))
    # where the box's pixels fall on the geometry-sized maps (pixel centres)
    map_x, map_y = np.meshgrid(
        (np.arange(box[1].start, box[1].stop, dtype=np.float32) + 0.5) * scale_x - 0.5,
        (np.arange(box[0].start, box[0].stop, dtype=np.float32) + 0.5) * scale_y - 0.5)

    def up(small: np.ndarray) -> np.ndarray:          # the box's part, at full size
        return cv2.remap(small, map_x, map_y, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)

    out, photo = relit[box], before[box]
    lit = out @ LUMA
    # blown: its middle channel near white too (warm skin often has red alone at white,
    # and keeps its colour well enough)
    blown = np.clip((_middle(photo) - BLOWN[0]) / (BLOWN[1] - BLOWN[0]), 0, 1)
    darkened = np.clip(2 * (1 - lit / np.maximum(photo @ LUMA, 1e-6)), 0, 1)
    weight = (blown * darkened * np.clip(up(skin), 0, 1))[..., None]
    out += weight * (lit[..., None] * up(colour) - out)
    return relit


def _middle(rgb: np.ndarray) -> np.ndarray:
    """Each pixel's middle channel."""
    return rgb.sum(-1) - rgb.max(-1) - rgb.min(-1)


def highlights_kept(light: Shading, before: np.ndarray) -> Shading:
    """`light` with what it would push past white rolled off towards it, as part of the
    smooth light (each pixel's channels together, worked out on the photo blurred a
    little so no texture enters): clipped channel by channel, a brightly lit cheek would
    lose its red first and turn pale and cold. A pixel is rolled off from the knee
    (HIGHLIGHT_KNEE) or from its own brightness in the photo, whichever is higher, so
    what the light leaves alone or darkens stays exactly as it was. `before`: the photo
    at geometry size, linear, blurred 2 px."""
    knee = np.maximum(before.max(axis=2), HIGHLIGHT_KNEE)
    factors = []
    for gain in (light.subject, light.backdrop):
        peak = (gain * before).max(axis=2)
        over = (peak > knee) & (knee < 1)
        factor = np.ones(peak.shape, np.float32)
        room = 1 - knee[over]
        rolled = knee[over] + room * (1 - np.exp(-(peak[over] - knee[over]) / room))
        factor[over] = rolled / peak[over]
        factors.append(factor[..., None])
    return Shading(light.subject * factors[0], light.backdrop * factors[1])


def shade(surface: Surface, settings: Settings) -> Shading:
    """The rig's light at geometry size: what multiplies the photo. The sheen (light
    reflected off the skin's surface, which adds to what the skin's colour gives back)
    counts as gain on skin of a typical luminance (SHEEN_REFERENCE): added to each pixel
    by its own luminance instead, it would flicker with every wrinkle, pore and strand
    (a dark one gaining far more than a light one beside it)."""
    lighting = rig(settings, surface.yaw)
    lights, ambient = lighting.lights, lighting.ambient
    h, w = surface.alpha.shape
    reach = max(8, int(0.3 * max(h, w)))
    skin = surface.skin
    light = np.full((h, w, 3), ambient, np.float32)
    sheen = np.zeros((h, w, 3), np.float32)
    for one in lights:
        direction = one.direction
        # light scattered under the skin reddens the edge of what a light reaches; a
        # light from behind reaches only the outline, so there is no edge on the face
        wrap = shading.skin_wrap(0.6 * one.softness, skin if direction[2] > 0 else 0 * skin)
        # a broad source sees the surface from many directions at once: the shading it
        # gives (and its shadows' edges) is the surface's seen through a blur that grows
        # with the light's size (its area: a middling light keeps its shapes)
        spread = one.softness ** 2 * SOFT_SPREAD * max(h, w)
        diffuse = shading.diffuse(shading.smooth_normals(surface.normals, spread), direction,
                                  wrap)
        # a light from behind reaches the outline only: the subject between hides the
        # rest (the side of the nose faces it, but the cheek is in the way)
        visible = shading.shadow(surface.height, direction, one.softness, reach) \
            if direction[2] > 0 else shading.back_light(surface.height, surface.alpha > 0.5,
                                                        direction, one.softness, reach)
        if spread >= 0.5:
            visible = cv2.GaussianBlur(visible, (0, 0), spread)
        # light scattered under the skin softens a shadow's edge, most in red
        soft = np.dstack([cv2.GaussianBlur(visible, (0, 0), s) for s in
                          np.array([3.0, 1.5, 0.8]) * max(h, w) / 640])
        visible = visible[..., None] + skin[..., None] * (soft - visible[..., None])
        if one.distance is not None:
            visible = visible * near_lamp_falloff(surface, one)[..., None]
        light += one.intensity * one.colour * diffuse * visible
        if settings.sheen > 0:
            glint = shading.sheen(surface.normals, direction, one.softness) * skin
            sheen += (settings.sheen * one.intensity * glint)[..., None] * one.colour * \
                visible
    photo = 1 + settings.remove_light * (surface.photo - 1)
    # where both lights are faint (a jaw's underside, a shadowed fold) their ratio is
    # mostly geometry error: the regulariser pulls it towards 1 there and nowhere else
    subject = np.minimum((light + RATIO_FLOOR) / (np.maximum(photo, PHOTO_FLOOR) +
                                                  RATIO_FLOOR) + sheen / SHEEN_REFERENCE,
                         MAX_GAIN)
    if lighting.exposed and surface.face_skin.any():
        # which side the key is on is the face's side: a frontal setup (butterfly,
        # under-light) turns with a turned face and still lights all of it
        subject *= exposure_for_the_key_side(subject, surface,
                                             lights[0].azimuth - surface.yaw)
    backdrop = _backdrop(surface, lights, ambient, settings)
    if settings.keep_colors:             # brightness only: the photo keeps its colours
        subject, backdrop = (np.repeat((a @ LUMA)[..., None], 3, axis=2)
                             for a in (subject, backdrop))
    return Shading(subject.astype(np.float32), backdrop.astype(np.float32))


def near_lamp_falloff(surface: Surface, lamp: Light) -> np.ndarray:
    """How a lamp standing `lamp.distance` face heights from the face's centre falls off
    across the subject (inverse square, 1 at the face's centre, at most NEAR_LAMP_MOST):
    held under the chin, it lights the chin far more than the forehead. Without a face
    there is nothing to measure the distance by: 1 everywhere."""
    h, w = surface.alpha.shape
    rows, columns = np.nonzero(surface.face_skin)
    if len(rows) == 0:
        return np.ones((h, w), np.float32)
    size = float(rows.max() - rows.min() + 1)                 # the face's height, pixels
    cy, cx = float(np.median(rows)), float(np.median(columns))
    depth = float(np.median(surface.height[rows, columns]))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    points = np.dstack([xx - cx, cy - yy, surface.height - depth]) / size
    away = np.linalg.norm(lamp.direction * lamp.distance - points, axis=2)
    return np.minimum((lamp.distance / np.maximum(away, 1e-3)) ** 2,
                      NEAR_LAMP_MOST).astype(np.float32)


def exposure_for_the_key_side(subject: np.ndarray, surface: Surface,
                              key_azimuth: float) -> float:
    """What a photographer exposes a named setup for: the half of the face the key is on
    (split at the nose tip; the whole face for a key in front of the face: `key_azimuth`
    is from where the face looks) as bright as it was in the photo; the setup shapes the
    other half."""
    columns = np.arange(subject.shape[1])[None, :]
    side = surface.face_skin & (columns < surface.nose_x if key_azimuth < -CENTRAL else
                                columns >= surface.nose_x if key_azimuth > CENTRAL else True)
    level = float(np.median((subject @ LUMA)[side])) if side.any() else 1.0
    return float(np.clip(1 / max(level, 1e-3), *EXPOSURE_RANGE))


def _backdrop(surface: Surface, lights: list[Light], ambient: float,
              settings: Settings) -> np.ndarray:
    """The background's gain: 1 (as it was) unless `background_light` lets the rig light
    a wall behind the subject (point lights, so it falls off across it) or
    `backdrop_shadow` throws the subject's shadow onto that wall."""
    h, w = surface.alpha.shape
    on_wall, shadow_amount = settings.background_light, settings.backdrop_shadow
    if not lights or (on_wall == 0 and shadow_amount == 0):
        return np.ones((h, w, 3), np.float32)
    side = max(h, w)
    wall, distance = WALL_DISTANCE * side, LIGHT_DISTANCE * side
    weight = surface.alpha / max(float(surface.alpha.sum()), 1e-6)
    centre = np.array([(weight.sum(0) * np.arange(w)).sum(), (weight.sum(1) *
                                                                np.arange(h)).sum()])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    points = np.dstack([xx - centre[0], centre[1] - yy, np.full_like(xx, -wall)])
    shares, total = [], np.full((h, w), ambient, np.float32)
    for one in lights:
        towards = one.direction * distance - points       # wall point to the lamp
        length = np.linalg.norm(towards, axis=2)
        falloff = np.clip(towards[..., 2] / length, 0, 1) / length ** 2
        irradiance = one.intensity * float(one.colour @ LUMA) * falloff * (distance + wall) ** 2
        shares.append((one, irradiance))
        total = total + irradiance
    gain = np.ones((h, w, 3), np.float32)
    if on_wall > 0:
        lit = np.full((h, w, 3), ambient, np.float32)
        for one, irradiance in shares:
            lit += irradiance[..., None] * one.colour / float(one.colour @ LUMA)
        gain = 1 + on_wall * (lit / WALL_REFERENCE - 1)
    if shadow_amount > 0:
        darkening = np.zeros((h, w), np.float32)
        for one, irradiance in shares:
            d = one.direction
            if d[2] < 0.05:                # from behind: the shadow falls towards us
                continue
            shift = np.clip(np.array([-d[0], d[1]]) * wall / d[2], -0.6 * side, 0.6 * side)
            moved = cv2.warpAffine(surface.alpha, np.float32([[1, 0, shift[0]],
                                                               [0, 1, shift[1]]]), (w, h))
            blur = 1 + 0.08 * wall * one.softness
            moved = cv2.GaussianBlur(moved, (0, 0), blur)
            darkening += moved * irradiance / np.maximum(total, 1e-6)
        gain = gain * (1 - shadow_amount * np.clip(darkening, 0, 1))[..., None]
    return gain.astype(np.float32)


register(EngineInfo(
    kind="relight", name="geometric",
    label="Face mesh + matte surface: the photo's light removed, new light with shadows",
    licence="Apache-2.0 (face mesh) + the matting engine's",
    weights="mediapipe face models and the default matting engine",
    load=GeometricRelight,
    find_weights=lambda: engines.get_info("face", "mediapipe").find_weights(),
    install_hint="python3 install/setup.py", is_default=True))
