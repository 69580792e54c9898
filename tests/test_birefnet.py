"""The BiRefNet matting engine, offline: a tiny model in BiRefNet's packaging (remote code
files, config with auto_map, model.safetensors; see tiny_birefnet.py) loaded through the
engine's real loading code and driven through the real server on a real portrait. Its last
output is 20 * (luma - 0.5) as logits, so the matte the engine returns can be checked
against the picture exactly."""

from __future__ import annotations

import numpy as np
from conftest import assert_asks_to_install, deep, run_array
from limner import imaging
from tiny_birefnet import LUMA


def _expected_alpha(rgb_u8: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-20 * ((rgb_u8 / 255) @ np.array(LUMA) - 0.5)))


def test_matte_is_the_models_prediction_at_the_layers_size(tiny_models, client, portraits):
    image = portraits["grace_hopper"]                      # 600 x 512: not square
    (cut, pixels), (matte, mask) = run_array(
        client, "background.remove", {"engine": "birefnet", "decontaminate": False}, image)
    assert pixels.shape == image.shape[:2] + (4,) and mask.shape[:2] == image.shape[:2]
    assert cut.name == "Cut-out [AI birefnet]" and cut.provenance["weights_licence"] == "MIT"
    alpha = imaging.to_float(pixels)[:, :, 3]
    error = np.abs(alpha - _expected_alpha(image))
    assert error.mean() < 0.02 and np.percentile(error, 99) < 0.2, error.mean()
    assert np.array_equal(pixels[:, :, :3], image)


def test_decontamination_changes_only_edge_colours(tiny_models, client, portraits):
    image = portraits["astronaut"]
    (_, clean), _ = run_array(client, "background.remove", {"engine": "birefnet"}, image)
    alpha = imaging.to_float(clean)[:, :, 3]
    diff = np.abs(clean[:, :, :3].astype(int) - image).max(axis=2)
    assert diff[(alpha > 0.05) & (alpha < 0.6)].mean() > 4
    assert np.median(diff[alpha > 0.99]) <= 1


def test_selection_and_sixteen_bit(tiny_models, client, portraits):
    image = deep(portraits["astronaut"], "u16")
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[100:400, 150:350] = 255
    (_, out), = run_array(client, "background.replace", {"engine": "birefnet",
                                                         "color": "#00ff00"}, image, mask)
    assert out.dtype == np.uint16 and out.shape == image.shape
    assert np.array_equal(out[mask == 0], image[mask == 0])
    assert not np.array_equal(out[mask == 255], image[mask == 255])


def test_missing_weights_name_the_pull_command(without_models, client, portraits):
    assert_asks_to_install(
        lambda: run_array(client, "background.remove", {"engine": "birefnet"},
                          portraits["astronaut"]),
        "limner models pull birefnet-matting")
