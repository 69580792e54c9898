"""Relight on the real portraits through the real server: the light goes where it is asked."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FACE_BOX, run_array
from limner import imaging
from limner.engines.relight import kelvin_to_rgb, light_direction

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def _gain(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per-pixel brightening in linear light (so the face's own shading cancels out)."""
    def luminance(a):
        return imaging.srgb_to_linear(imaging.to_float(a)[:, :, :3]) @ LUMA

    return luminance(after) / np.maximum(luminance(before), 1e-3)


def _relit(client, image, **params):
    (layer, pixels), *_ = run_array(client, "relight", params, image)
    return pixels


def _halves(gain, box):
    rows, cols = box
    mid = (cols.start + cols.stop) // 2
    return np.median(gain[rows, cols.start:mid]), np.median(gain[rows, mid:cols.stop])


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_light_from_one_side_brightens_that_side_of_the_face(client, portraits, name):
    image, box = portraits[name], FACE_BOX[name]
    left, right = _halves(_gain(image, _relit(client, image, azimuth=-90, elevation=0)), box)
    assert left > 1.15 * right, (left, right)
    left, right = _halves(_gain(image, _relit(client, image, azimuth=90, elevation=0)), box)
    assert right > 1.15 * left, (left, right)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_light_from_below_darkens_the_forehead_against_the_chin(client, portraits, name):
    image, (rows, cols) = portraits[name], FACE_BOX[name]
    gain = _gain(image, _relit(client, image, azimuth=0, elevation=-60))
    fifth = (rows.stop - rows.start) // 5
    forehead = np.median(gain[rows.start:rows.start + fifth, cols])
    chin = np.median(gain[rows.stop - fifth:rows.stop, cols])
    assert forehead < 0.85 * chin, (forehead, chin)
    gain = _gain(image, _relit(client, image, azimuth=0, elevation=60))
    assert np.median(gain[rows.start:rows.start + fifth, cols]) > \
        np.median(gain[rows.stop - fifth:rows.stop, cols])


@pytest.mark.parametrize("sample", ["u8", "u16", "f32"])
def test_no_light_and_full_ambient_gives_back_the_input(client, portraits, sample):
    image = imaging.from_float(imaging.to_float(portraits["grace_hopper"]), sample)
    out = _relit(client, image, intensity=0.0, ambient=1.0)
    assert out.dtype == image.dtype
    step = {"u8": 1, "u16": 1, "f32": 1e-5}[sample]
    assert np.abs(out.astype(np.float64) - image).max() <= step


def test_without_a_face_the_matte_still_shapes_the_light(client, portraits):
    body = np.ascontiguousarray(portraits["grace_hopper"][340:, :])  # uniform and shoulders
    box = (slice(60, 200), slice(60, 450))
    left, right = _halves(_gain(body, _relit(client, body, azimuth=-90, elevation=0)), box)
    assert left > 1.1 * right, (left, right)


def test_several_faces_are_each_lit(client, portraits):
    one = portraits["astronaut"]
    pair = np.ascontiguousarray(np.concatenate([one, one[:, ::-1]], axis=1))
    gain = _gain(pair, _relit(client, pair, azimuth=-90, elevation=0))
    rows, cols = FACE_BOX["astronaut"]
    mirrored = slice(1024 - cols.stop, 1024 - cols.start)
    for box in ((rows, cols), (rows, mirrored)):
        left, right = _halves(gain, box)
        assert left > 1.15 * right, (box, left, right)


def test_light_colour_warms_or_cools(client, portraits):
    image = portraits["grace_hopper"]
    rows, cols = FACE_BOX["grace_hopper"]

    def red_over_blue(pixels):
        lin = imaging.srgb_to_linear(imaging.to_float(pixels[rows, cols]))
        return lin[..., 0].mean() / lin[..., 2].mean()

    warm = red_over_blue(_relit(client, image, temperature=2500, azimuth=0, elevation=0))
    cool = red_over_blue(_relit(client, image, temperature=10000, azimuth=0, elevation=0))
    assert warm > 1.2 * cool
    kept = _relit(client, image, temperature=2500, keep_colors=True, azimuth=0, elevation=0)
    assert abs(red_over_blue(kept) - red_over_blue(image)) < 0.05 * red_over_blue(image)


def test_light_layers_rebuild_the_relit_image_over_the_original(client, portraits):
    image = portraits["astronaut"]
    (relit_layer, relit), (screen_layer, screen), (mult_layer, mult) = run_array(
        client, "relight", {"azimuth": 60, "elevation": 20, "softness": 0.6}, image)
    assert relit_layer.name.startswith("Relit +60°/+20° 5500 K")
    assert (screen_layer.blend, mult_layer.blend) == ("screen", "multiply")
    assert not screen_layer.visible and not mult_layer.visible and relit_layer.visible
    base, m, s = (imaging.to_float(a) for a in (image, mult, screen))
    rebuilt = 1 - (1 - base * m) * (1 - s)            # multiply, then screen, as editors do
    assert np.abs(rebuilt - imaging.to_float(relit)).mean() < 0.04


def test_relight_respects_the_selection(client, portraits):
    image = portraits["grace_hopper"]
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[100:350, 150:380] = 255
    for layer, pixels in run_array(client, "relight", {"azimuth": -90}, image, mask):
        neutral = {"normal": image, "multiply": 255, "screen": 0}[layer.blend]
        expected = np.broadcast_to(neutral, image.shape)
        assert np.array_equal(pixels[mask == 0], expected[mask == 0]), layer.name


def test_kelvin_and_direction_conventions():
    warm, daylight, cool = kelvin_to_rgb(2700), kelvin_to_rgb(6500), kelvin_to_rgb(10000)
    assert warm[0] > warm[2] and cool[2] > cool[0]
    assert np.allclose(daylight / daylight.max(), 1, atol=0.08)   # D65-ish: near white
    assert np.allclose(light_direction(90, 0), [1, 0, 0], atol=1e-6)
    assert np.allclose(light_direction(0, 90), [0, 1, 0], atol=1e-6)
