# Limner for GIMP 3: the light sphere's picture and hit-testing, without GIMP (tested
# without it). Copyright (C) 2026 the Limner authors. GPL-3.0-or-later.
"""The light widget beside the relight and mood dialogs' controls: a shaded sphere seen
from the camera, lit by the key, with a marker where each light is (hollow: behind the
subject) and a line towards where the face looks. Drawn by Python into RGBA bytes that
the dialog shows as a pixbuf: GIMP's Python may lack cairo's GObject bridge (Debian's
GIMP 3.2 does), and a sphere this size takes a few tens of milliseconds."""

import math

from limner.schema import sphere_angles, sphere_point

#: marker colours: key, fill, rim (and the rim's mirror)
COLOURS = {"": (255, 200, 61), "fill_": (111, 168, 255), "rim_": (255, 111, 111),
           "rim_mirror": (255, 111, 111)}
#: markers that follow another light instead of being dragged themselves
FOLLOWERS = {"rim_mirror"}
MARKER = 7                 # a marker's radius, pixels
GRAB = 14                  # how near a press must be to take a marker
LIT, DARK = (244, 230, 212), (36, 29, 24)


def disc(size):
    """Centre and radius of the sphere in a square picture of `size` pixels."""
    return size / 2, size / 2, size / 2 - 6


def marker_position(size, azimuth, elevation):
    cx, cy, r = disc(size)
    x, y, _ = sphere_point(azimuth, elevation)
    return cx + x * r, cy - y * r


def render(size, markers, face_yaw=None):
    """RGBA bytes of the sphere: `markers` prefix -> (azimuth, elevation) or None (off)."""
    cx, cy, r = disc(size)
    key = markers.get("") or (0.0, 0.0)
    lx, ly, front = sphere_point(*key)
    lz = math.sqrt(max(0.0, 1 - lx * lx - ly * ly)) * (1 if front else -1)
    out = bytearray(size * size * 4)
    for row in range(size):
        y = (cy - row - 0.5) / r
        for col in range(size):
            x = (col + 0.5 - cx) / r
            d2 = x * x + y * y
            if d2 > 1:
                continue
            z = math.sqrt(1 - d2)
            shade = 0.15 + 0.85 * max(0.0, x * lx + y * ly + z * lz)
            i = (row * size + col) * 4
            out[i:i + 4] = bytes((*(round(d + (c - d) * shade) for c, d in zip(LIT, DARK)),
                                  255 if d2 < 0.98 else 160))
    if face_yaw is not None:                   # where the face looks: a line of dots
        reach = math.sin(math.radians(face_yaw)) * r * 0.6
        for step in range(0, 21):
            _dot(out, size, cx + reach * step / 20, cy, 1.5, (232, 232, 232), True)
        _dot(out, size, cx + reach, cy, 3, (232, 232, 232), True)
    for prefix in ("rim_mirror", "rim_", "fill_", ""):    # the key on top
        where = markers.get(prefix)
        if where is not None:
            x, y = marker_position(size, *where)
            _dot(out, size, x, y, MARKER, COLOURS[prefix], sphere_point(*where)[2])
    return bytes(out)


def _dot(out, size, x, y, radius, colour, filled):
    """A filled disc, or a ring two pixels wide, into the RGBA bytes."""
    for row in range(max(0, int(y - radius - 1)), min(size, int(y + radius + 2))):
        for col in range(max(0, int(x - radius - 1)), min(size, int(x + radius + 2))):
            d = math.hypot(col + 0.5 - x, row + 0.5 - y)
            if d <= radius and (filled or d >= radius - 2):
                i = (row * size + col) * 4
                out[i:i + 4] = bytes((*colour, 255))


def grab(size, markers, x, y):
    """Which light a press at (x, y) takes: the nearest marker within GRAB pixels, else
    the key when the press is on the sphere, else None."""
    near = [(math.hypot(x - px, y - py), prefix) for prefix, where in markers.items()
            if where is not None and prefix not in FOLLOWERS
            for px, py in [marker_position(size, *where)]]
    if near and min(near)[0] <= GRAB:
        return min(near)[1]
    cx, cy, r = disc(size)
    return "" if math.hypot(x - cx, y - cy) <= r else None


def angles_at(size, x, y, front):
    """The azimuth and elevation (degrees, to a tenth) of the point (x, y), in front of
    the subject or behind it."""
    cx, cy, r = disc(size)
    azimuth, elevation = sphere_angles((x - cx) / r, (cy - y) / r, front)
    return round(azimuth, 1), round(elevation, 1)
