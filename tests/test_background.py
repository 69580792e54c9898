"""Background remove / replace / blur on the real portraits, through the real server."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from conftest import FACE, assert_asks_to_install, deep, run_array
from limner import imaging

PORTRAITS = ["astronaut", "grace_hopper"]
CORNER = 24  # the top corners of both portraits are plainly background


def _alpha(pixels: np.ndarray) -> np.ndarray:
    return imaging.to_float(pixels)[:, :, -1]


def _corners(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a[:CORNER, :CORNER].ravel(), a[:CORNER, -CORNER:].ravel()])


@pytest.mark.parametrize("engine", ["rvm", "mediapipe"])
@pytest.mark.parametrize("name", PORTRAITS)
def test_remove_gives_an_obvious_soft_matte(client, portraits, name, engine):
    image = portraits[name]
    (cut_layer, cutout), (matte_layer, matte) = run_array(
        client, "background.remove", {"engine": engine}, image)
    assert cut_layer.role == "layer" and matte_layer.role == "mask"
    assert cutout.shape == image.shape[:2] + (4,) and cutout.dtype == np.uint8
    assert matte.shape == image.shape[:2] + (1,)
    alpha = _alpha(matte)
    row, col = FACE[name]
    assert alpha[row - 10:row + 10, col - 10:col + 10].min() > 0.95, "the face must be opaque"
    assert _corners(alpha).max() < 0.05, "the top corners must be transparent"
    assert np.array_equal(_alpha(cutout), alpha), "the cut-out's alpha is the matte"
    # soft at the boundary: intermediate values exist, and they sit on the edge between
    # subject and background rather than scattered over either
    soft = (alpha > 0.1) & (alpha < 0.9)
    assert soft.sum() > 300
    near_edge = cv2.dilate(((alpha > 0.5) * 255).astype(np.uint8), np.ones((31, 31))) & \
        cv2.dilate(((alpha <= 0.5) * 255).astype(np.uint8), np.ones((31, 31)))
    assert (near_edge[soft] > 0).mean() > 0.8
    assert cut_layer.name == f"Cut-out [AI {engine}]" and matte_layer.name == f"Matte [AI {engine}]"


def test_layers_carry_provenance(client, portraits):
    (layer, _), _ = run_array(client, "background.remove", {}, portraits["astronaut"])
    p = layer.provenance
    assert p["ai_edited"] is True and p["operation"] == "background.remove"
    assert p["engine"] == "rvm" and p["weights_licence"] == "GPL-3.0"
    assert p["params"] == {"engine": "rvm", "output": "cut-out and matte",
                           "hair_detail": "normal", "decontaminate": True, "keep": "",
                           "remove": ""}
    assert p["backend"].startswith("limner ")


def test_decontamination_changes_only_edge_colours(client, portraits):
    image = portraits["grace_hopper"]
    (_, clean), _ = run_array(client, "background.remove", {}, image)
    (_, raw), _ = run_array(client, "background.remove", {"decontaminate": False}, image)
    alpha = _alpha(clean)
    assert np.array_equal(raw[:, :, :3], image), "without cleaning the colours are the input's"
    diff = np.abs(clean[:, :, :3].astype(int) - image).max(axis=2)
    edge = (alpha > 0.05) & (alpha < 0.6)
    assert diff[edge].mean() > 8, "semi-transparent edge pixels lose the old background colour"
    assert np.median(diff[alpha > 0.99]) <= 1, "opaque subject pixels keep their colour"


@pytest.mark.parametrize("output, roles", [("cut-out", ["layer"]), ("matte", ["mask"])])
def test_remove_output_choice(client, portraits, output, roles):
    layers = run_array(client, "background.remove", {"output": output}, portraits["astronaut"])
    assert [layer.role for layer, _ in layers] == roles


def test_replace_with_a_colour(client, portraits):
    image = portraits["astronaut"]
    (layer, out), = run_array(client, "background.replace", {"color": "#2060c0"}, image)
    assert layer.name == "Background #2060c0 [AI rvm]" and out.shape == image.shape
    corners = np.concatenate([out[:CORNER, :CORNER], out[:CORNER, -CORNER:]]).reshape(-1, 3)
    assert np.abs(corners.astype(int) - [0x20, 0x60, 0xC0]).max() <= 2
    row, col = FACE["astronaut"]
    assert np.abs(out[row, col].astype(int) - image[row, col]).max() <= 2


def test_replace_with_an_image_file(client, portraits, tmp_path):
    backdrop = portraits["grace_hopper"]
    path = tmp_path / "backdrop.png"
    cv2.imwrite(str(path), cv2.cvtColor(backdrop, cv2.COLOR_RGB2BGR))
    image = portraits["astronaut"]
    (layer, out), = run_array(client, "background.replace", {"backdrop": str(path)}, image)
    assert layer.name == "Background image [AI rvm]"
    # the backdrop is scaled to cover 512x512 and centred: its top rows land on our top rows
    covered = cv2.resize(backdrop, (512, 600), interpolation=cv2.INTER_AREA)[44:556]
    corner = (slice(0, CORNER), slice(0, CORNER))
    assert np.abs(out[corner].astype(int) - covered[corner]).mean() < 6


def _sharpness(pixels):
    return cv2.Laplacian(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var()


@pytest.mark.parametrize("name", PORTRAITS)
def test_blur_softens_the_background_and_keeps_the_subject(client, portraits, name):
    image = portraits[name]
    (layer, out), = run_array(client, "background.blur", {"radius": 16}, image)
    assert layer.name == "Background blur 16 px [AI rvm]" and out.shape == image.shape
    top = (slice(0, 60), slice(0, 60))
    assert _sharpness(out[top]) < 0.2 * _sharpness(image[top])
    row, col = FACE[name]
    face = (slice(row - 30, row + 30), slice(col - 30, col + 30))
    assert np.abs(out[face].astype(int) - image[face]).mean() < 3


def _ellipse_mask(shape, soft: bool) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, (shape[1] // 2, shape[0] // 2), (shape[1] // 3, shape[0] // 4), 0, 0, 360,
                255, -1)
    return cv2.GaussianBlur(mask, (0, 0), 8) if soft else mask


@pytest.mark.parametrize("op, params", [("background.remove", {}),
                                        ("background.replace", {"color": "#ff00ff"}),
                                        ("background.blur", {"radius": 20})])
@pytest.mark.parametrize("soft", [False, True])
def test_pixels_outside_the_selection_are_bit_identical(client, portraits, op, params, soft):
    image = portraits["grace_hopper"]
    mask = _ellipse_mask(image.shape[:2], soft)
    outside = mask == 0
    layers = run_array(client, op, params, image, mask)
    for layer, pixels in layers:
        if layer.role == "mask":   # outside the selection the matte keeps everything
            assert (pixels[outside] == 255).all()
        else:
            assert np.array_equal(pixels[outside], imaging.with_alpha(image)[outside]
                                  if pixels.shape[2] == 4 else image[outside])
        inside = (mask == 255)
        assert not np.array_equal(pixels[inside][..., :3], image[inside]) or layer.role == "mask"


def test_selection_result_matches_whole_layer_result_inside(client, portraits):
    """The selection only limits the edit: the cut-out inside it is the same matte."""
    image = portraits["astronaut"]
    mask = np.zeros(image.shape[:2], np.uint8)
    head = (slice(0, 200), slice(130, 300))
    mask[head] = 255
    (_, whole), _ = run_array(client, "background.remove", {}, image)
    (_, part), _ = run_array(client, "background.remove", {}, image, mask)
    assert np.abs(_alpha(whole[head]) - _alpha(part[head])).mean() < 0.03


@pytest.mark.parametrize("sample", ["u16", "f32"])
def test_deep_images_come_back_in_their_own_sample_type(client, portraits, sample):
    image8 = portraits["astronaut"]
    wide = deep(image8, sample)
    (_, cut8), (_, matte8) = run_array(client, "background.remove", {}, image8)
    (_, cut), (_, matte) = run_array(client, "background.remove", {"decontaminate": False},
                                     wide)
    assert cut.dtype == imaging.DTYPES[sample] and matte.dtype == imaging.DTYPES[sample]
    # the same matte (the added sub-8-bit detail moves a soft edge a little at most)
    assert np.abs(imaging.to_float(matte) - imaging.to_float(matte8)).mean() < 0.005
    assert np.array_equal(cut[:, :, :3], wide)       # every bit of the colours kept
    mask = np.zeros(wide.shape[:2], np.uint8)
    mask[:, 256:] = 255
    (layer, blurred), = run_array(client, "background.blur", {}, imaging.with_alpha(wide),
                                  mask)
    assert blurred.dtype == wide.dtype and blurred.shape == wide.shape[:2] + (4,)
    assert np.array_equal(blurred[:, :256, :3], wide[:, :256])       # outside: bit-exact
    assert np.array_equal(blurred[:, :, 3], imaging.with_alpha(wide)[:, :, 3])


def test_transparent_layer_areas_stay_transparent_in_the_cut_out(client, portraits):
    image = imaging.with_alpha(portraits["grace_hopper"]).copy()
    image[:, :100, 3] = 0   # the left strip of the layer is empty
    (_, cutout), _ = run_array(client, "background.remove", {}, image)
    assert (cutout[:, :100, 3] == 0).all()


def test_missing_weights_name_the_install_command(client, portraits):
    """Mocked edge: a user whose model wheel is not installed."""
    from limner import engines

    info = engines.get_info("matting", "mediapipe")
    engines.register(dataclasses.replace(info, find_weights=lambda: None))
    engines.unload("matting", "mediapipe")
    try:
        assert_asks_to_install(
            lambda: run_array(client, "background.remove", {"engine": "mediapipe"},
                              portraits["astronaut"]),
            "python3 install/setup.py")
    finally:
        engines.register(info)
