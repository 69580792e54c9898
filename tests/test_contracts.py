"""The code's own contracts: each engine offers its kind's methods, the models and engines
name each other from one place, parameters name real engines, and no module reaches into
another's private names."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from limner import engines, imaging, models, operations
from limner.engines import contracts

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["backend", "krita_plugin", "gimp_plugin", "install", "tests"]


def all_engines():
    return [info for kind in contracts.BY_KIND for info in engines.of_kind(kind)]


def test_every_engine_offers_its_kinds_contract():
    """Engines whose weights are here load and pass the check; the others (pulled models)
    are checked on their class."""
    for info in all_engines():
        if info.available():
            engines.get(info.kind, info.name)        # raises TypeError if it lacks a member
        elif isinstance(info.load, type):
            assert contracts.missing(info.load, info.kind) == [], info.name
        else:
            pytest.fail(f"{info.kind}/{info.name}: neither here nor a class to check")


def test_an_engine_without_its_contract_fails_when_it_loads():
    class Broken:                                    # a matting engine without HAIR_LEVEL
        def matte(self, rgb):
            return rgb[:, :, 0]

    original = engines.get_info("matting", "mediapipe")
    engines.register(dataclasses.replace(original, load=Broken))
    engines.unload("matting", "mediapipe")
    try:
        with pytest.raises(TypeError, match="mediapipe matting engine lacks HAIR_LEVEL"):
            engines.get("matting", "mediapipe")
    finally:
        engines.register(original)


def test_models_and_engines_name_each_other_from_one_place():
    used = {name for info in all_engines() for name in info.model_names()}
    assert used <= set(models.MODELS), used - set(models.MODELS)
    assert set(models.MODELS) <= used, "a model no engine uses"
    assert engines.using("ic-light-fbc") == ["relight/ic-light"]
    assert sorted(engines.using("sd15")) == ["relight/ic-light", "style/diffusion"]
    described = {m["name"]: m["engines"] for m in models.describe_all(engines.using)}
    assert described["birefnet-matting"] == ["matting/birefnet"]


def test_availability_follows_the_models_an_engine_needs(tmp_path, monkeypatch, fresh_engines):
    """One of sd15 / sd15-inpaint is enough for the diffusion engine; IC-Light needs both
    its offsets and SD 1.5."""
    monkeypatch.setenv("LIMNER_MODELS_DIR", str(tmp_path))
    diffusion, iclight = engines.get_info("style", "diffusion"), \
        engines.get_info("relight", "ic-light")
    assert not diffusion.available() and not iclight.available()
    for name, weights in (("sd15-inpaint", "unet/x.fp16.safetensors"),
                          ("ic-light-fc", "iclight_sd15_fc.safetensors")):
        (tmp_path / name / weights).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name / weights).write_bytes(b"0")
    assert diffusion.available() and not iclight.available()
    (tmp_path / "sd15" / "unet").mkdir(parents=True)
    (tmp_path / "sd15" / "unet" / "x.fp16.safetensors").write_bytes(b"0")
    assert iclight.available()


def test_parameters_name_engines_of_their_operations_kind():
    for op in operations.OPERATIONS.values():
        names = {e.name for e in engines.of_kind(op.engine_kind)} if op.engine_kind else set()
        for param in op.params:
            assert set(param.engines) <= names, (op.id, param.name, param.engines)
    relight = {p["name"]: p for p in operations.get("relight").schema()["params"]}
    assert relight["steps"]["engines"] == ["ic-light"]
    assert relight["sheen"]["engines"] == ["geometric"]
    assert "engines" not in relight["azimuth"]                   # both engines read it


def test_shared_parameters_are_declared_once():
    from limner.operations.base import SEED

    seeds = [p for op in operations.OPERATIONS.values() for p in op.params if p.name == "seed"]
    assert len(seeds) >= 3
    assert all(dataclasses.replace(p, help=SEED.help, engines=()) == SEED for p in seeds)


def test_unload_makes_the_next_use_load_again():
    first = engines.get("matting", "mediapipe")
    assert engines.get("matting", "mediapipe") is first
    engines.unload("matting", "mediapipe")
    assert engines.get("matting", "mediapipe") is not first


def test_colour_and_sample_helpers():
    assert imaging.hex_to_rgb("#ff8000").tolist() == pytest.approx([1.0, 128 / 255, 0.0])
    import numpy as np

    values = np.array([[-0.2, 0.0, 0.5, 1.0, 3.0]], np.float32)
    assert imaging.from_float(values, "u8").tolist() == [[0, 0, 128, 255, 255]]


def private_reaches(path: Path) -> list[str]:
    """`from x import _name` and `module._name` where module is imported in the file."""
    tree = ast.parse(path.read_text())
    modules = {alias.asname or alias.name.split(".")[0] for node in ast.walk(tree)
               if isinstance(node, ast.Import) for alias in node.names}
    modules |= {alias.asname or alias.name for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) for alias in node.names}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [f"{path}:{node.lineno} imports {a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.value.id in modules and node.attr.startswith("_") and \
                not node.attr.startswith("__"):
            found.append(f"{path}:{node.lineno} uses {node.value.id}.{node.attr}")
    return found


def test_no_module_reaches_into_another_modules_private_names():
    found = [hit for folder in SOURCES for path in sorted((ROOT / folder).rglob("*.py"))
             for hit in private_reaches(path)]
    assert found == []


def test_the_private_names_check_sees_both_forms(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from limner.engines.style import _grey\nimport limner.engines as e\n"
                      "e._LOADED.clear()\nself._x = 1\n")
    assert len(private_reaches(sample)) == 2


def test_setup_presets_are_custom_parameters_that_place_the_same_lights():
    """What an editor puts in its controls when a setup is picked: valid values, with the
    key and fill where the named setup puts them for a face looking at the camera."""
    from limner.engines.lights import SETUPS, Settings, rig

    op = operations.get("relight")
    presets = op.spec().param("setup").presets
    assert set(presets) == set(SETUPS)
    for name, values in presets.items():
        custom, named = (rig(Settings.of(op.validate({**values, "setup": setup}))).lights
                         for setup in ("custom", name))
        assert (custom[0].azimuth, custom[0].elevation) == \
            pytest.approx((named[0].azimuth, named[0].elevation)), name
        if SETUPS[name].fill:
            assert (custom[1].azimuth, custom[1].elevation) == \
                pytest.approx((named[1].azimuth, named[1].elevation)), name
        # the rim setup's two edge lights: a rim and its mirror, as strong as each
        rims = [sorted((light.azimuth, light.elevation, light.intensity) for light in lights
                       if light.role == "rim") for lights in (custom, named)]
        assert np.allclose(rims[0], rims[1]) and len(rims[0]) == len(rims[1]), name


def test_every_preset_names_parameters_of_its_operation_with_valid_values():
    for op in operations.OPERATIONS.values():
        names = {p.name for p in op.all_params()}
        for param in op.params:
            for choice, values in (param.presets or {}).items():
                assert choice in param.choices, (op.id, choice)
                assert set(values) <= names, (op.id, choice, set(values) - names)
                op.validate({**values, param.name: choice})     # raises if a value is bad
