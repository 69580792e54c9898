"""Style presets on the real portraits through the real server."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from conftest import FACE_BOX, deep, run_array
from limner import imaging, protocol
from limner.client import BackendError
from limner.engines.style import PRESETS

NAMES = ["astronaut", "grace_hopper"]


@pytest.fixture(scope="module")
def styled(server, portraits):
    """Every preset on both portraits, once for the module."""
    from limner.client import Client

    with Client(server.uri, server.server.token) as c:
        return {(name, preset): run_array(c, "style", {"preset": preset}, portraits[name])[0][1]
                for name in NAMES for preset in PRESETS}


def _edges(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey = cv2.GaussianBlur(grey, (0, 0), 2)
    return cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("name", NAMES)
def test_each_preset_differs_from_the_input_and_from_every_other(styled, portraits, name):
    image = portraits[name].astype(np.float32)
    for preset in PRESETS:
        out = styled[name, preset]
        assert out.shape == image.shape and out.dtype == np.uint8
        assert np.abs(out - image).mean() > 12, preset
    for a, b in itertools.combinations(PRESETS, 2):
        diff = np.abs(styled[name, a].astype(np.float32) - styled[name, b]).mean()
        assert diff > 10, (a, b, diff)


@pytest.mark.parametrize("name", NAMES)
def test_drawing_presets_are_grey_and_painting_presets_keep_colour(styled, name):
    for preset in ("pencil sketch", "charcoal"):
        out = styled[name, preset].astype(int)
        assert np.abs(out[:, :, 0] - out[:, :, 2]).max() <= 1, preset
    for preset in ("oil painting", "watercolour", "pop art"):
        saturation = cv2.cvtColor(styled[name, preset], cv2.COLOR_RGB2HSV)[:, :, 1]
        assert saturation.mean() > 40, preset


@pytest.mark.parametrize("name", NAMES)
def test_the_faces_edges_stay_where_they_were(styled, portraits, name):
    box = FACE_BOX[name]
    before = _edges(portraits[name])[box]
    for preset in PRESETS:
        after = _edges(styled[name, preset])[box]
        assert _correlation(before, after) > 0.45, preset


def test_face_detail_keeps_the_face_closer_to_the_sitter(client, portraits):
    image, box = portraits["astronaut"], FACE_BOX["astronaut"]
    before = _edges(image)[box]
    scores = []
    for detail in (0.0, 1.0):
        (_, out), = run_array(client, "style", {"preset": "impressionist",
                                                "face_detail": detail}, image)
        scores.append(_correlation(before, _edges(out)[box]))
    assert scores[1] > scores[0] + 0.05, scores


@pytest.mark.parametrize("preset", ["pop art", "charcoal", "pencil sketch", "watercolour"])
def test_the_same_seed_gives_the_same_result(client, portraits, preset):
    image = portraits["grace_hopper"]
    runs = [run_array(client, "style", {"preset": preset, "seed": seed}, image)[0][1]
            for seed in (7, 7, 8)]
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_strength_blends_with_the_original(client, portraits):
    image = portraits["astronaut"]
    (_, none), = run_array(client, "style", {"strength": 0.0}, image)
    assert np.abs(none.astype(int) - image).max() <= 1
    (_, half), = run_array(client, "style", {"strength": 0.5}, image)
    (_, full), = run_array(client, "style", {"strength": 1.0}, image)
    expected = (image.astype(np.float32) + full) / 2
    assert np.abs(half - expected).mean() < 1.5


@pytest.mark.parametrize("soft", [False, True])
def test_pixels_outside_the_selection_are_bit_identical(client, portraits, soft):
    image = imaging.with_alpha(portraits["grace_hopper"])
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.circle(mask, (260, 240), 120, 255, -1)
    if soft:
        mask = cv2.GaussianBlur(mask, (0, 0), 10)
    (layer, out), = run_array(client, "style", {"preset": "pop art"}, image, mask)
    assert layer.name == "Pop art 100% [AI classic]"
    assert np.array_equal(out[mask == 0], image[mask == 0])
    assert np.abs(out[mask == 255].astype(int) - image[mask == 255]).mean() > 20


def test_large_layers_come_back_at_full_resolution_and_sharp(client, portraits):
    # 1536 px of real detail: a 3x3 sheet of the portraits at their own resolution
    tiles = [portraits["astronaut"], portraits["grace_hopper"][:512]]
    image = np.vstack([np.hstack([tiles[(r + c) % 2] for c in range(3)]) for r in range(3)])
    (_, out), = run_array(client, "style", {"preset": "oil painting"}, image)
    assert out.shape == image.shape

    def sharpness(a):
        return cv2.Laplacian(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var()

    # detail above the 1024 px working size: more than a plain upscale of it would have
    plain = cv2.resize(cv2.resize(out, (1024, 1024), interpolation=cv2.INTER_AREA),
                       (1536, 1536), interpolation=cv2.INTER_CUBIC)
    assert sharpness(out) > 1.3 * sharpness(plain)


def test_deep_layers_keep_their_sample_type(client, portraits):
    image = deep(portraits["astronaut"], "u16")
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[100:300, 100:300] = 255
    (_, out), = run_array(client, "style", {"preset": "watercolour"}, image, mask)
    assert out.dtype == np.dtype("<u2") and out.shape == image.shape
    assert np.array_equal(out[mask == 0], image[mask == 0])     # outside: every bit kept


def test_style_from_a_reference_layer_or_file(client, portraits, tmp_path):
    image, reference = portraits["astronaut"], portraits["grace_hopper"]
    (layer, from_layer), = run_array(client, "style", {"preset": "reference"}, image,
                                     inputs={"reference": imaging.to_pixels(reference)})
    assert layer.name == "Reference style 100% [AI classic]"
    assert layer.provenance["params"]["reference"] == "layer 512x600"
    path = tmp_path / "reference.png"
    cv2.imwrite(str(path), cv2.cvtColor(reference, cv2.COLOR_RGB2BGR))
    (_, from_file), = run_array(client, "style", {"preset": "reference",
                                                  "reference": str(path)}, image)
    assert np.abs(from_layer.astype(int) - from_file).mean() < 2   # same picture either way
    assert np.abs(from_layer.astype(int) - image).mean() > 12


def test_reference_preset_without_a_reference_is_refused(client, portraits):
    with pytest.raises(BackendError) as err:
        run_array(client, "style", {"preset": "reference"}, portraits["astronaut"])
    assert err.value.code == protocol.E_BAD_PARAMETER and "reference" in err.value.message


def test_extra_layers_only_for_image_parameters(client, portraits):
    with pytest.raises(BackendError) as err:
        run_array(client, "style", {}, portraits["astronaut"],
                  inputs={"strength": imaging.to_pixels(portraits["grace_hopper"])})
    assert err.value.code == protocol.E_BAD_PARAMETER and "not an image parameter" in err.value.message
