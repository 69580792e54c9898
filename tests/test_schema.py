"""The shared parameter vocabulary (backend/limner/schema.py): its kinds, the rules the
editors rely on, the capabilities parsed from a real backend's welcome, and a scan that
keeps the plug-ins from going back to comparing kind names or walking the JSON."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from limner import operations
from limner.schema import Capabilities, Kind, OperationSpec, Param
from limner.server import Server

ROOT = Path(__file__).resolve().parent.parent
PLUG_INS = sorted([*(ROOT / "krita_plugin" / "limner_krita").glob("*.py"),
                   *(ROOT / "gimp_plugin" / "limner_gimp").glob("*.py")])
#: keys of the capabilities' JSON that only schema.py may read
SCHEMA_KEYS = {"kind", "params", "operations", "engines", "models", "presets", "choices",
               "over_layer", "engine_kind", "hidden", "implies", "extensions"}
KIND_NAMES = {kind.value for kind in Kind}


def schema_walks(source: str) -> list[str]:
    """Where `source` indexes the capabilities' JSON or compares a kind with a string."""
    found = []
    for node in ast.walk(ast.parse(source)):
        key = None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr == "get" and node.args and isinstance(node.args[0], ast.Constant):
            key = node.args[0].value
        if key in SCHEMA_KEYS:
            found.append(f"line {node.lineno}: [{key!r}]")
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            strings = {side.value for side in sides if isinstance(side, ast.Constant)}
            strings |= {element.value for side in sides if isinstance(side, (ast.Tuple, ast.Set))
                        for element in side.elts if isinstance(element, ast.Constant)}
            if strings & KIND_NAMES and "kind" in ast.unparse(node):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_scan_finds_what_it_forbids():
    assert schema_walks('if schema["kind"] == "float":\n    pass\n')
    assert schema_walks('if self.kind in ("file", "image"):\n    pass\n')
    assert schema_walks('ops = capabilities["operations"]\n')
    assert schema_walks('models = caps.get("models", [])\n')
    assert not schema_walks("if param.kind is Kind.COLOR:\n    pass\n")


@pytest.mark.parametrize("path", PLUG_INS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_plug_in_module_walks_the_schema(path):
    assert schema_walks(path.read_text()) == []


def test_every_kind_has_a_control_in_each_editor():
    """Adding a kind is one member and one Rule in schema.py, one control class for Krita
    and one row for GIMP: each editor's table names every kind."""
    krita = (ROOT / "krita_plugin/limner_krita/controls.py").read_text()
    gimp = (ROOT / "gimp_plugin/limner_gimp/arguments.py").read_text()
    for kind in Kind:
        assert f"Kind.{kind.name}:" in krita and f"Kind.{kind.name}:" in gimp, kind


@pytest.fixture(scope="module")
def capabilities():
    return Capabilities.from_json(Server(write_discovery=False).capabilities())


def test_capabilities_parse_every_operation_and_round_trip(capabilities):
    described = Server(write_discovery=False).capabilities()
    assert [op.id for op in capabilities.operations] == \
        [op["id"] for op in described["operations"]]
    for op, raw in zip(capabilities.operations, described["operations"]):
        assert op.to_json() == raw                 # nothing lost in parsing
        assert OperationSpec.from_json(op.to_json()) == op
    assert "diagnostics.echo" not in [op.id for op in capabilities.offered]
    assert {e.name for e in capabilities.engines["matting"]} >= {"rvm", "mediapipe"}


def test_what_the_engine_reads(capabilities):
    relight = capabilities.operation("relight")
    geometric = {p.name for p in relight.shown_for("geometric")}
    iclight = {p.name for p in relight.shown_for("ic-light")}
    assert "sheen" in geometric and "steps" not in geometric
    assert {"steps", "seed"} <= iclight and "sheen" not in iclight
    assert [light.prefix for light in relight.lights()] == ["", "fill_", "rim_"]
    assert relight.lights()[0].intensity is None and relight.has_light
    assert not capabilities.operation("background.blur").has_light
    assert [p.name for p in capabilities.operation("background.remove").layers()] == \
        ["keep", "remove"]


def test_presets_and_implied_choices_fill_what_was_left_out(capabilities):
    """A mood's recipe when only the mood is named; a value given runs as given; a LUT
    file picked makes the look 'LUT file' unless a look is named too."""
    from limner.operations.mood import MOODS

    mood = capabilities.operation("mood")
    assert mood.implied("mood", "film noir") == MOODS["film noir"]
    completed = mood.completed({"mood": "film noir", "vignette": 0.1})
    assert completed["vignette"] == 0.1 and completed["setup"] == "split"
    assert completed["look"] == "noir" and completed["strength"] == 1.0
    grade = capabilities.operation("grade")
    assert grade.implied("lut", "/looks/teal.cube") == {"look": "LUT file"}
    assert grade.implied("lut", "") == {}
    assert grade.completed({"lut": "/looks/teal.cube"})["look"] == "LUT file"
    assert grade.completed({})["look"] == "warm"
    with pytest.raises(ValueError, match="applies only with look 'LUT file'"):
        grade.check({"lut": "/looks/teal.cube", "look": "warm"})


def test_a_mood_named_alone_runs_and_records_its_own_recipe(client, portraits):
    """The provenance of film noir is film noir's recipe (it once recorded golden
    hour's), and an edited value is what runs."""
    from conftest import run_array
    from limner.operations.mood import MOODS

    small = portraits["grace_hopper"][::4, ::4]
    layers = run_array(client, "mood", {"mood": "film noir", "temperature": 3000.0}, small)
    ran = layers[0][0].provenance["params"]
    assert {k: v for k, v in ran.items() if k in MOODS["film noir"]} == \
        {**MOODS["film noir"], "temperature": 3000.0}
    assert "(split, 3000 K)" in layers[1][0].name


def test_ranges_checks_and_clamping():
    steps = Param("steps", Kind.INT, 25, "Steps", min=1, max=100)
    assert steps.clamp(250.4) == 100 and steps.clamp(-3) == 1 and steps.clamp(7.6) == 8
    assert Param("x", "float", 0.5, "X").clamp(1e12) == 2 ** 31 - 1
    assert steps.parse_text("12") == 12
    with pytest.raises(ValueError, match="an integer"):
        steps.check(2.5)
    with pytest.raises(ValueError, match="between 1 and 100"):
        steps.check(101)
    with pytest.raises(ValueError, match="must be true or false"):
        Param("b", "bool", False, "B").parse_text("maybe")
    assert Param("c", "color", "#ffffff", "C").check("#AABBCC") == "#aabbcc"
    with pytest.raises(ValueError, match="unknown parameter"):
        operations.get("relight").spec().check({"azimut": 3})


def test_a_reference_picture_alone_copies_its_style(capabilities):
    """The same rule as the LUT file's: a parameter that applies only under one choice
    makes that choice when it is given, and is an error beside another."""
    style = capabilities.operation("style")
    assert style.completed({"reference": "/pictures/starry.jpg"})["preset"] == "reference"
    with pytest.raises(ValueError, match="applies only with preset 'reference'"):
        style.check({"reference": "/pictures/starry.jpg", "preset": "oil painting"})
