"""What the geometric relight engine promises beyond the big picture, each checked through
the engine so that breaking it fails here: red wrapping a little further than blue at a
shadow's edge on skin, a penumbra that widens with softness, the key's gel colour, custom
fill lights, and a second relight of a layer reusing its geometry (the builds counted)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_array
from lightmeasure import main_face
from limner import engines, imaging
from limner.engines.lights import LUMA, Settings
from limner.engines.relight import GeometricRelight
from limner.operations import get


def params(**changes) -> dict:
    out = {p.name: p.default for p in get("relight").all_params()}
    out.update(changes)
    return out


def render(image: np.ndarray, **changes):
    return engines.get("relight", "geometric").render(image, Settings.of(params(**changes)),
                                                      lambda *_: None)


@pytest.fixture(scope="module")
def face(portraits):
    return main_face(portraits["astronaut"])


def test_red_wraps_a_little_further_than_blue_at_a_shadow_edge_on_skin(portraits, face):
    """A light from the image's left at eye level: where it fades out across her face
    (the band between full light and the ambient alone), red keeps more of it than blue
    (light scattered under the skin)."""
    gain = render(portraits["astronaut"], azimuth=-90, elevation=0, softness=0.3,
                  remove_light=0.0, sheen=0.0).gain
    level = gain @ LUMA
    where = face.left | face.right
    low, high = level[where].min(), level[where].max()
    edge = where & (level > low + 0.1 * (high - low)) & (level < low + 0.5 * (high - low))
    red, blue = np.median(gain[..., 0][edge]), np.median(gain[..., 2][edge])
    assert red > 1.01 * blue, (red, blue)


def test_a_soft_light_spreads_its_shadows_edges_on_the_face(portraits, face):
    """The same side light hard and soft (the photo's own light left in, so only the new
    light counts): the soft one changes more gently across the face (its shadows'
    penumbrae wider, its terminator wrapped further)."""
    steepness = []
    for softness in (0.0, 1.0):
        gain = render(portraits["astronaut"], azimuth=-60, elevation=20, softness=softness,
                      sheen=0.0, remove_light=0.0).gain @ LUMA
        gy, gx = np.gradient(np.log(np.maximum(gain, 1e-3)))
        steepness.append(np.percentile(np.hypot(gx, gy)[face.left | face.right], 99))
    assert steepness[0] > 1.5 * steepness[1], steepness


def test_the_keys_gel_colours_the_light(portraits, face):
    white = render(portraits["astronaut"], azimuth=-45, color="#ffffff").gain
    amber = render(portraits["astronaut"], azimuth=-45, color="#ffa060").gain

    def warmth(gain):
        return np.median(gain[..., 0][face.left] / np.maximum(gain[..., 2][face.left], 1e-6))

    assert warmth(amber) > 1.3 * warmth(white), (warmth(amber), warmth(white))


def test_a_custom_fill_light_lifts_the_shadow_side(portraits, face):
    """A key from the left and a fill from the right: the right half gains light, the
    key's half far less."""
    without = render(portraits["astronaut"], azimuth=-70, fill_intensity=0.0).gain @ LUMA
    filled = render(portraits["astronaut"], azimuth=-70, fill_intensity=0.6,
                    fill_azimuth=70, fill_elevation=10).gain @ LUMA
    lift = {side: np.median(filled[mask]) / np.median(without[mask])
            for side, mask in (("right", face.right), ("left", face.left))}
    assert lift["right"] > 1.2 and lift["right"] > lift["left"] + 0.1, lift


def test_a_second_relight_of_a_layer_reuses_its_geometry(client, portraits, monkeypatch):
    """The geometry (matte, faces, surface, the photo's light) is worked out once per
    layer: moving the light does not build it again, another layer does."""
    builds = []
    original = GeometricRelight.surface

    def counted(self, *args, **kwargs):
        builds.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GeometricRelight, "surface", counted)
    image = portraits["astronaut"].copy()
    image[0, 0, 0] ^= 1                                 # a layer no test relit before
    for azimuth in (-60, 0, 60):
        run_array(client, "relight", {"azimuth": azimuth}, image)
    assert len(builds) == 1
    image[0, 1, 0] ^= 1
    run_array(client, "relight", {"azimuth": 30}, image)
    assert len(builds) == 2
    relit = imaging.to_float(run_array(client, "relight", {"azimuth": -30}, image)[0][1])
    assert len(builds) == 2 and relit.shape == image.shape
