"""The light rig: key, fill and rim lights, their colours, and the named portrait setups.

One place defines what "Rembrandt" or "butterfly" means, as data a photographer would
recognise (key angle and height, fill ratio, rim), so the renderer and the plug-ins' choice
list agree. Angles are in image terms: azimuth 0 is from the camera, -90 from the image's
left, +90 from its right, 180 from behind; elevation +90 is from straight above.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import imaging

#: Rec. 709 / sRGB luminance weights, linear light
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def kelvin_to_rgb(kelvin: float) -> np.ndarray:
    """Linear sRGB of a black body at `kelvin`, relative to the picture's white: 6500 K is
    exactly neutral (a black body there is a shade pinker than sRGB's D65 white, so every
    temperature is balanced to it), lower is warmer; unit luminance."""
    colour = _black_body(kelvin) / _black_body(6500)
    return (colour / (colour @ LUMA)).astype(np.float32)


def _black_body(kelvin: float) -> np.ndarray:
    """Linear sRGB of a black body (Kang et al. 2002 fit of the Planckian locus in CIE xy,
    then XYZ to linear sRGB)."""
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
    return np.clip(to_srgb @ xyz, 1e-4, None)


def gel_rgb(hex_colour: str) -> np.ndarray:
    """Linear RGB of a "#rrggbb" gel (sRGB-encoded, as colour pickers give it)."""
    return imaging.srgb_to_linear(imaging.hex_to_rgb(hex_colour))


def light_direction(azimuth: float, elevation: float) -> np.ndarray:
    """Unit vector towards the light, camera space: x to the image's right, y up, z to the
    viewer."""
    az, el = np.radians(azimuth), np.radians(elevation)
    return np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)], np.float32)


@dataclass(frozen=True)
class Light:
    """One light: where it comes from, how strong, its linear RGB colour (unit luminance)
    and its softness (0: a point, crisp shadows; 1: a broad source that wraps)."""

    azimuth: float
    elevation: float
    intensity: float
    colour: np.ndarray
    softness: float
    role: str = "key"            # key, fill or rim
    #: how far the lamp stands from the face's centre, in face heights: near enough for
    #: its light to fall off across the face (None: far away, the same everywhere)
    distance: float | None = None

    @property
    def direction(self) -> np.ndarray:
        return light_direction(self.azimuth, self.elevation)

    def placed(self) -> dict:
        """Where the light is, for an editor's light widget (the result's provenance)."""
        placed = {"role": self.role, "azimuth": round(self.azimuth, 1),
                  "elevation": round(self.elevation, 1), "intensity": round(self.intensity, 3),
                  "softness": round(self.softness, 3)}
        return placed if self.distance is None else {**placed, "distance": self.distance}


@dataclass(frozen=True)
class Setup:
    """A named portrait lighting pattern. Key and fill angles are relative to where the
    face looks (so a setup follows a turned head), rim angles to the camera; `side`
    "azimuth" puts the key on the side the azimuth parameter points to, broad/short pick
    it from the face's turn, "none" keeps it central. Key, fill and rim intensities are
    fractions of the intensity parameter; ambient is the room's light."""

    key_azimuth: float
    key_elevation: float
    key: float = 1.0
    fill: float = 0.0
    fill_azimuth: float | None = None      # None: mirrored from the key, at eye height
    fill_elevation: float = 0.0
    rim: float = 0.0
    rim_azimuth: float = 135.0
    rim_elevation: float = 25.0
    ambient: float = 0.15
    side: str = "azimuth"                   # "azimuth", "broad", "short" or "none"
    #: exposed for the key side, as a photographer does; the rim setup keeps its dark face
    exposed: bool = True
    #: the key's distance from the face's centre in face heights (Light.distance); None:
    #: far away
    key_distance: float | None = None

    def as_params(self) -> dict:
        """The custom setup's parameters that match this one for a face looking at the
        camera, key on the image's left where the side is free: what an editor shows
        when the setup is picked. The key's strength stays the intensity parameter's; two
        rims are one rim and its mirror (rim_pair). (A turned face's setup is turned with
        it: the provenance's placed lights say where.)"""
        side = _side(self, -1.0, 0.0)
        fill_azimuth = -self.key_azimuth if self.fill_azimuth is None else self.fill_azimuth
        return {"azimuth": side * self.key_azimuth, "elevation": self.key_elevation,
                "fill_intensity": self.fill, "fill_azimuth": side * fill_azimuth,
                "fill_elevation": self.fill_elevation,
                "rim_intensity": min(3.0, self.rim), "rim_azimuth": -self.rim_azimuth,
                "rim_elevation": self.rim_elevation, "rim_pair": bool(self.rim),
                "ambient": self.ambient, "key_distance": self.key_distance or 0.0}


#: The usual photographic definitions (key angle from the nose's line and height, fill
#: ratio). "custom" is absent: it takes every light from the parameters.
SETUPS: dict[str, Setup] = {
    # key 45-60 degrees round and high: the shadow-side cheek keeps a lit triangle
    "rembrandt": Setup(60, 45, fill=0.1, ambient=0.08),
    # key 30-40 degrees round, a little above eye level: the nose shadow loops down
    "loop": Setup(35, 30, fill=0.25, ambient=0.14),
    # key in front, high: a small shadow under the nose, the face symmetric
    "butterfly": Setup(0, 50, fill=0.3, fill_azimuth=0, fill_elevation=-10, ambient=0.15,
                       side="none"),
    # key at 90 degrees, eye level, no fill: one half lit
    "split": Setup(90, 5, ambient=0.04),
    # key on the side of the face turned towards the camera
    "broad": Setup(45, 30, fill=0.2, ambient=0.12, side="broad"),
    # key on the side turned away from the camera: slimming, more modelling
    "short": Setup(45, 30, fill=0.2, ambient=0.12, side="short"),
    # butterfly with a fill from below (a reflector under the chin): soft, even
    "clamshell": Setup(0, 45, fill=0.5, fill_azimuth=0, fill_elevation=-35, ambient=0.15,
                       side="none"),
    # two edge lights from behind outline the head and shoulders; a weak frontal fill
    "rim": Setup(0, 10, key=0.2, rim=2.5, rim_azimuth=125, rim_elevation=20, ambient=0.06,
                 side="none", exposed=False),
    # a lamp held close under the chin: the uncanny "torch" look comes as much from its
    # nearness (the chin far brighter than the forehead) as from its angle
    "under-light": Setup(0, -50, fill=0.1, fill_azimuth=0, fill_elevation=30, ambient=0.08,
                         side="none", key_distance=1.5),
}
SETUP_NAMES = ("custom", *SETUPS)


def _side(setup: Setup, azimuth: float, face_yaw: float) -> float:
    """+1 for a key on the image's right, -1 on its left."""
    if setup.side == "none":
        return 1.0
    if setup.side == "azimuth":
        return 1.0 if azimuth >= 0 else -1.0
    turned_right = face_yaw >= 0      # the nose points to the image's right (or straight on)
    # broad: the key lights the cheek nearer the camera, on the side the nose points away
    # from; short: the far cheek, on the side the nose points to
    broad_side = -1.0 if turned_right else 1.0
    return broad_side if setup.side == "broad" else -broad_side


@dataclass(frozen=True)
class LampSettings:
    """One light as the user sets it (a relight's key, fill or rim parameters)."""

    azimuth: float
    elevation: float
    intensity: float
    temperature: float = 6500.0
    softness: float = 0.4
    gel: str = "#ffffff"

    @property
    def colour(self) -> np.ndarray:
        """Linear RGB, unit luminance: the temperature's white through the gel."""
        colour = kelvin_to_rgb(self.temperature) * gel_rgb(self.gel)
        return colour / max(float(colour @ LUMA), 1e-6)


@dataclass(frozen=True)
class Settings:
    """A relight's parameters as typed values, made once from a checked request
    (`Settings.of`): what the engines read. `setup`: a name of SETUPS or "custom";
    `remove_light` how much of the photo's own light is taken out; `sheen` skin
    highlights; `background_light` and `backdrop_shadow` the wall behind the subject;
    `steps` and `seed` for the diffusion engine."""

    setup: str
    key: LampSettings
    fill: LampSettings
    rim: LampSettings
    ambient: float
    rim_pair: bool = False
    #: the key's distance from the face's centre in face heights (custom setup); 0: far
    key_distance: float = 0.0
    remove_light: float = 1.0
    sheen: float = 0.3
    background_light: float = 0.0
    backdrop_shadow: float = 0.0
    keep_colors: bool = False
    steps: int = 25
    seed: int = 1

    @classmethod
    def of(cls, params: dict) -> Settings:
        """From the relight operation's checked parameters (operations/relight.py)."""
        def lamp(prefix: str) -> LampSettings:
            return LampSettings(params[f"{prefix}_azimuth"], params[f"{prefix}_elevation"],
                                params[f"{prefix}_intensity"],
                                params[f"{prefix}_temperature"], params[f"{prefix}_softness"])

        key = LampSettings(params["azimuth"], params["elevation"], params["intensity"],
                           params["temperature"], params["softness"], params["color"])
        return cls(params["setup"], key, lamp("fill"), lamp("rim"), params["ambient"],
                   rim_pair=params["rim_pair"], key_distance=params["key_distance"],
                   remove_light=params["remove_light"], sheen=params["sheen"],
                   background_light=params["background_light"],
                   backdrop_shadow=params["backdrop_shadow"],
                   keep_colors=params["keep_colors"], steps=params["steps"],
                   seed=params["seed"])


@dataclass(frozen=True)
class Rig:
    lights: list[Light]
    ambient: float
    exposed: bool = False      # a named setup: exposed for its lit side, as a photographer


def rig(settings: Settings, face_yaw: float = 0.0) -> Rig:
    """The lights and the ambient level of a relight's settings. A named setup takes its
    angles and ratios from SETUPS (turned with the face); the key's intensity, colour,
    temperature and softness still apply. `face_yaw`: degrees the main face is turned, +
    to the right."""
    key = settings.key
    key_colour, softness, intensity = key.colour, key.softness, key.intensity
    if settings.setup == "custom":
        fill, rim = settings.fill, settings.rim
        lights = [Light(key.azimuth, key.elevation, intensity, key_colour, softness,
                        distance=settings.key_distance or None),
                  Light(fill.azimuth, fill.elevation, fill.intensity,
                        kelvin_to_rgb(fill.temperature), fill.softness, "fill"),
                  *[Light(side * rim.azimuth, rim.elevation, rim.intensity,
                          kelvin_to_rgb(rim.temperature), rim.softness, "rim")
                    for side in ((1, -1) if settings.rim_pair else (1,))]]
        return Rig([light for light in lights if light.intensity > 0], settings.ambient)
    setup = SETUPS[settings.setup]
    side = _side(setup, key.azimuth, face_yaw)

    def around(azimuth: float) -> float:      # relative to the face, wrapped to -180..180
        return (face_yaw + azimuth + 180) % 360 - 180

    fill_azimuth = -setup.key_azimuth if setup.fill_azimuth is None else setup.fill_azimuth
    white = np.ones(3, np.float32)
    lights = [Light(around(side * setup.key_azimuth), setup.key_elevation,
                    intensity * setup.key, key_colour, softness,
                    distance=setup.key_distance)]
    if setup.fill:
        lights.append(Light(around(side * fill_azimuth), setup.fill_elevation,
                            intensity * setup.fill, white, min(1.0, softness + 0.4), "fill"))
    if setup.rim:             # edge lights stand behind the subject, whichever way it looks
        for rim_side in (-1, 1):
            lights.append(Light(rim_side * setup.rim_azimuth, setup.rim_elevation,
                                intensity * setup.rim, key_colour, min(softness, 0.3), "rim"))
    return Rig(lights, setup.ambient * intensity, exposed=setup.exposed)
