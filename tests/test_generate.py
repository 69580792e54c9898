"""background.generate, offline: tiny random SD 1.5 inpainting and IC-Light (background-
conditioned) models loaded through the real code, driven through the real server on a
real portrait at a small size."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FACE_BOX, assert_asks_to_install, cancel_at_first_step, deep, run_array
from limner import protocol
from limner.client import BackendError

#: the astronaut's face in the 128 px small_portrait (a quarter of the full picture's box)
FACE = tuple(slice(s.start // 4 + 3, s.stop // 4 - 3) for s in FACE_BOX["astronaut"])


def _generate(client, image, mask=None, on_progress=None, **params):
    params = {"prompt": "a red brick wall", "steps": 3, "match_light": False, **params}
    return run_array(client, "background.generate", params, image, mask,
                     on_progress=on_progress)[0]


def test_paints_a_new_background_around_the_subject(tiny_models, client, small_portrait):
    stages = []
    layer, out = _generate(client, small_portrait,
                           on_progress=lambda job, f, stage: stages.append(stage))
    assert out.shape == small_portrait.shape and out.dtype == np.uint8
    assert [s for s in stages if s.startswith("step")] == ["step 1/3", "step 2/3", "step 3/3"]
    diff = np.abs(out.astype(int) - small_portrait).mean(axis=2)
    assert diff[FACE].mean() < 4, "the subject stays as it was"
    assert diff[:20, :20].mean() > 20 and diff[:20, -20:].mean() > 20, "the corners are new"
    assert layer.name == "Generated background [AI rvm]"
    assert layer.provenance["models"] == ["sd15-inpaint"]
    assert layer.provenance["params"]["prompt"] == "a red brick wall"


def test_match_light_relights_the_subject_with_ic_light_fbc(tiny_models, client,
                                                            small_portrait):
    stages = []
    layer, lit = _generate(client, small_portrait, match_light=True,
                           on_progress=lambda job, f, stage: stages.append(stage))
    _, plain = _generate(client, small_portrait)
    assert layer.provenance["models"] == ["sd15-inpaint", "sd15", "ic-light-fbc"]
    assert [s for s in stages if s.startswith("step")] == \
        ["step 1/3", "step 2/3", "step 3/3", "step 1/2", "step 2/2"]
    assert np.abs(lit[FACE].astype(int) - plain[FACE]).mean() > 1
    corner = np.abs(lit[:16, :16].astype(int) - plain[:16, :16]).mean()
    assert corner < 1, "the background itself is not repainted by the relight"


def test_same_seed_same_background_and_selection_bit_exact(tiny_models, client,
                                                           small_portrait):
    mask = np.zeros(small_portrait.shape[:2], np.uint8)
    mask[:, :64] = 255
    _, a = _generate(client, small_portrait, mask, seed=3)
    _, b = _generate(client, small_portrait, mask, seed=3)
    _, c = _generate(client, small_portrait, mask, seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(a[mask == 0], small_portrait[mask == 0])


def test_sixteen_bit_layers_come_back_sixteen_bit(tiny_models, client, small_portrait):
    wide = deep(small_portrait, "u16")
    mask = np.zeros(wide.shape[:2], np.uint8)
    mask[:, 64:] = 255
    _, out = _generate(client, wide, mask=mask)
    assert out.dtype == np.uint16 and out.shape == wide.shape
    assert np.array_equal(out[:, :64], wide[:, :64])       # outside: every bit kept


def test_cancel_stops_within_one_step(tiny_models, client, small_portrait):
    steps, error = cancel_at_first_step(client, lambda progress: _generate(
        client, small_portrait, steps=20, on_progress=progress))
    assert error.code == protocol.E_CANCELLED and len(steps) <= 2, steps


def test_an_empty_prompt_is_refused(tiny_models, client, small_portrait):
    with pytest.raises(BackendError) as err:
        _generate(client, small_portrait, prompt="   ")
    assert err.value.code == protocol.E_BAD_PARAMETER and "prompt" in err.value.message


def test_missing_inpainting_model_names_the_pull_command(without_models, client,
                                                         small_portrait):
    assert_asks_to_install(lambda: _generate(client, small_portrait),
                           "limner models pull sd15-inpaint")
