"""The diffusion style engine and the model manager, offline: tiny random pipelines with
the real architectures are saved into a models folder and loaded through the real code,
then driven through the real server on a real portrait at a small size."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import assert_asks_to_install, cancel_at_first_step, run_array
from limner import models, protocol
from limner.client import BackendError


def _diffuse(client, image, mask=None, on_progress=None, **params):
    params = {"engine": "diffusion", "preset": "oil painting", "steps": 3, "strength": 1.0,
              "face_detail": 0.0, **params}
    return run_array(client, "style", params, image, mask, on_progress=on_progress)[0]


def test_runs_end_to_end_with_one_progress_event_per_step(tiny_models, client, small_portrait):
    stages = []
    layer, out = _diffuse(client, small_portrait, seed=5,
                          on_progress=lambda job, f, stage: stages.append(stage))
    assert out.shape == small_portrait.shape and out.dtype == np.uint8
    assert [s for s in stages if s.startswith("step")] == ["step 1/3", "step 2/3", "step 3/3"]
    assert layer.name == "Oil painting 100% [AI diffusion]"
    assert layer.provenance["engine"] == "diffusion"
    assert layer.provenance["weights_licence"] == "CreativeML OpenRAIL-M (SD 1.5 weights)"


def test_lower_strength_runs_fewer_steps(tiny_models, client, small_portrait):
    stages = []
    _diffuse(client, small_portrait, steps=4, strength=0.5,
             on_progress=lambda job, f, stage: stages.append(stage))
    assert [s for s in stages if s.startswith("step")] == ["step 1/2", "step 2/2"]


def test_the_same_seed_gives_the_same_result(tiny_models, client, small_portrait):
    _, a = _diffuse(client, small_portrait, seed=11)
    _, b = _diffuse(client, small_portrait, seed=11)
    _, c = _diffuse(client, small_portrait, seed=12)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_a_selection_inpaints_and_leaves_the_rest_bit_identical(tiny_models, client,
                                                                small_portrait):
    mask = np.zeros(small_portrait.shape[:2], np.uint8)
    mask[30:90, 40:100] = 255
    _, out = _diffuse(client, small_portrait, mask)
    assert np.array_equal(out[mask == 0], small_portrait[mask == 0])
    assert not np.array_equal(out[mask == 255], small_portrait[mask == 255])


def test_cancel_stops_within_one_step(tiny_models, client, small_portrait):
    steps, error = cancel_at_first_step(client, lambda progress: _diffuse(
        client, small_portrait, steps=20, on_progress=progress))
    assert error.code == protocol.E_CANCELLED and len(steps) <= 2, steps


def test_reference_is_refused_with_a_pointer_to_the_classic_engine(tiny_models, client,
                                                                   small_portrait, tmp_path):
    reference = tmp_path / "reference.png"
    cv2.imwrite(str(reference), small_portrait)
    with pytest.raises(BackendError) as err:
        _diffuse(client, small_portrait, preset="reference", reference=str(reference))
    assert err.value.code == protocol.E_BAD_PARAMETER
    assert "use the classic engine" in err.value.message


def test_missing_weights_name_the_pull_command(without_models, client, small_portrait):
    assert_asks_to_install(lambda: _diffuse(client, small_portrait), "limner models pull sd15")


def test_models_list_shows_every_model_with_size_licence_and_state(tiny_models):
    env = {**os.environ, "HF_HUB_CACHE": str(tiny_models / "empty-hub")}
    out = subprocess.run([sys.executable, "-m", "limner", "models", "list"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines()[1:]}
    assert set(lines) == set(models.MODELS)
    assert "present" in lines["sd15"] and "not present" not in lines["sd15"]
    for name, info in models.MODELS.items():
        assert f"{info.size_mb} MB" in lines[name] and info.licence in lines[name]


def test_verify_reports_complete_and_broken_models(tiny_models, tmp_path, monkeypatch):
    assert models.verify("sd15") == []
    monkeypatch.setenv("LIMNER_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    (tmp_path / "sd15" / "unet").mkdir(parents=True)
    (tmp_path / "sd15" / "unet" / "diffusion_pytorch_model.safetensors").touch()
    assert models.verify("sd15") == ["empty file unet/diffusion_pytorch_model.safetensors"]
    assert models.verify("sd15-inpaint") == ["not downloaded"]


def test_controlnet_keeps_structure_when_its_weights_are_present(tiny_models, client,
                                                                 small_portrait):
    kept, with_lines = _diffuse(client, small_portrait, seed=4, structure=1.0)
    free, without = _diffuse(client, small_portrait, seed=4, structure=0.0)
    assert kept.provenance["models"] == ["sd15", "controlnet-lineart"]
    assert free.provenance["models"] == ["sd15"]
    assert np.abs(with_lines.astype(int) - without).mean() > 1


def test_without_controlnet_weights_it_still_runs(tiny_models, client, small_portrait,
                                                  tmp_path, monkeypatch):
    (tmp_path / "sd15").symlink_to(tiny_models / "sd15")
    monkeypatch.setenv("LIMNER_MODELS_DIR", str(tmp_path))
    layer, out = _diffuse(client, small_portrait, structure=1.0)
    assert layer.provenance["models"] == ["sd15"] and out.shape == small_portrait.shape


def test_fast_mode_runs_lcm_in_a_few_steps(tiny_models, client, small_portrait):
    stages = []
    layer, fast = _diffuse(client, small_portrait, seed=6, fast=True, steps=30, strength=0.5,
                           on_progress=lambda job, f, stage: stages.append(stage))
    assert [s for s in stages if s.startswith("step")] == [f"step {i}/4" for i in (1, 2, 3, 4)]
    assert layer.provenance["models"] == ["sd15", "controlnet-lineart", "lcm-lora-sd15"]
    _, again = _diffuse(client, small_portrait, seed=6, fast=True, steps=30, strength=0.5)
    _, slow = _diffuse(client, small_portrait, seed=6, steps=8, strength=0.5)
    assert np.array_equal(fast, again) and not np.array_equal(fast, slow)


def test_fast_inpainting_with_structure_keeps_the_outside(tiny_models, client, small_portrait):
    mask = np.zeros(small_portrait.shape[:2], np.uint8)
    mask[20:100, 30:90] = 255
    layer, out = _diffuse(client, small_portrait, mask, fast=True, steps=4)
    assert layer.provenance["models"] == ["sd15-inpaint", "controlnet-lineart", "lcm-lora-sd15"]
    assert np.array_equal(out[mask == 0], small_portrait[mask == 0])
    assert not np.array_equal(out[mask == 255], small_portrait[mask == 255])


def test_fast_mode_without_lcm_names_its_pull_command(tiny_models, client, small_portrait,
                                                      tmp_path, monkeypatch):
    (tmp_path / "sd15").symlink_to(tiny_models / "sd15")
    monkeypatch.setenv("LIMNER_MODELS_DIR", str(tmp_path))
    assert_asks_to_install(lambda: _diffuse(client, small_portrait, fast=True),
                           "limner models pull lcm-lora-sd15")


def test_lineart_condition_is_white_lines_on_black(small_portrait):
    from limner.engines.diffusion import lineart

    lines = lineart(small_portrait.astype(np.float32) / 255)
    assert lines.shape == small_portrait.shape and lines.dtype == np.uint8
    assert np.median(lines) < 40 and (lines > 128).mean() > 0.02
