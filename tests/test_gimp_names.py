"""The GIMP plug-in's GIMP-free helpers (names.py) against the real backend schema, and its
installer; no GIMP needed (tests/test_gimp.py runs the plug-in inside GIMP 3)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from limner.schema import Capabilities, Kind
from limner.server import Server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "gimp_plugin" / "limner_gimp"))
import names  # noqa: E402

#: what GIMP 3 accepts as a procedure or argument name
GIMP_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


@pytest.fixture(scope="module")
def described():
    """The capabilities as the welcome carries them (JSON)."""
    return Server(write_discovery=False).capabilities()


@pytest.fixture(scope="module")
def capabilities(described):
    return Capabilities.from_json(described)


def test_names_follow_gimps_rules():
    assert names.argument_name("hair_detail") == "hair-detail"
    assert names.argument_name("image") == "limner-image"      # the procedure's own argument
    assert names.argument_name("drawables") == "limner-drawables"
    assert names.choice_nick("Rembrandt (45°) Key") == "rembrandt-45-key"
    assert names.choice_nick(3) == "3"
    assert names.procedure_name("background.remove") == "plug-in-limner-background-remove"


def test_every_operation_maps_to_distinct_valid_gimp_names(capabilities):
    """GIMP refuses a plug-in whose names clash or break its rules: the whole schema,
    not a sample, must map cleanly."""
    operations = capabilities.operations
    procedures = [names.procedure_name(op.id) for op in operations]
    assert len(set(procedures)) == len(procedures)
    assert all(GIMP_NAME.match(p) for p in procedures)
    for op in operations:
        arguments = [names.argument_name(name) for name in op.names]
        assert len(set(arguments)) == len(arguments), op.id
        assert not set(arguments) & names.RESERVED, op.id
        assert all(GIMP_NAME.match(a) for a in arguments), (op.id, arguments)
        for param in op.params:
            if param.kind is Kind.CHOICE:
                nicks = [names.choice_nick(c) for c in param.choices]
                assert len(set(nicks)) == len(nicks) and all(nicks), (op.id, param.name)


def test_schema_difference_names_what_changed(described, capabilities):
    assert names.schema_difference(capabilities, Capabilities.from_json(described)) is None
    later = copy.deepcopy(described)
    later["engines"] = {}                                      # engines do not count
    later["operations"].append({"id": "mood.apply", "label": "Mood", "params": []})
    later["operations"][0]["params"] = later["operations"][0]["params"][:-1]
    gone = later["operations"].pop(1)["id"]
    text = names.schema_difference(capabilities, Capabilities.from_json(later))
    assert "new operations: mood.apply" in text
    assert f"removed operations: {gone}" in text
    assert f"changed operations: {described['operations'][0]['id']}" in text


def test_installer_writes_the_plug_in_and_replaces_an_old_one(tmp_path, capabilities):
    plug_ins = tmp_path / "plug-ins"
    old = plug_ins / "limner"
    old.mkdir(parents=True)
    (old / "limner.py").write_text("# the plug-in under its old name\n")
    (plug_ins / "other").mkdir()
    subprocess.run([sys.executable, str(ROOT / "install" / "gimp.py"), "--plug-ins-dir",
                    str(plug_ins)], check=True, capture_output=True)
    target = plug_ins / "limner_gimp"
    assert not old.exists() and (plug_ins / "other").exists()
    assert (target / "limner_gimp.py").stat().st_mode & 0o111
    assert (target / "names.py").exists()
    assert (target / "vendor" / "limner" / "client.py").exists()
    installed = json.loads((target / "capabilities.json").read_text())
    assert names.schema_difference(Capabilities.from_json(installed), capabilities) is None
    for module in ("arguments.py", "dialogs.py", "gimpio.py", "vendor/limner/schema.py"):
        assert (target / module).exists(), module


@pytest.mark.parametrize("profiles, on_path, expected", [
    (["3.0", "3.2"], [], ["3.0", "3.2"]),         # both generations a user has started
    (["3.0"], ["gimp-3.2"], ["3.0"]),             # 3.2 will copy 3.0's profile, plug-in too
    ([], ["gimp-console-3.0"], ["3.0"]),          # none started yet: the installed GIMP's
    ([], [], ["3.2"]),                            # nothing known: the newest tested
])
def test_installer_goes_into_every_gimp_3_profile(tmp_path, profiles, on_path, expected):
    config = tmp_path / "config"
    for version in profiles:
        (config / "GIMP" / version).mkdir(parents=True)
    (config / "GIMP" / "2.10").mkdir(parents=True)              # GIMP 2 profiles are not ours
    binaries = tmp_path / "bin"
    binaries.mkdir()
    for name in on_path:
        (binaries / name).write_text("")
    env = {"PATH": f"{binaries}:/usr/bin:/bin", "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(config)}
    done = subprocess.run([sys.executable, str(ROOT / "install" / "gimp.py")], env=env,
                          check=True, capture_output=True, text=True)
    installed = sorted(p.parent.parent.name for p in config.glob("GIMP/*/plug-ins/limner_gimp"))
    assert installed == expected
    for version in expected:
        assert f"GIMP/{version}/plug-ins/limner_gimp" in done.stdout


def test_gimp_previews_collapse_into_the_newest_against_the_real_backend(client, portraits):
    """The GIMP dialog's preview queue, without GIMP: 40 quick changes of the light give
    a few real preview runs, one at a time, the last with the newest settings."""
    import threading
    import time

    import cv2
    from limner import imaging
    from previews import LatestOnly

    layer = imaging.to_pixels(cv2.resize(portraits["grace_hopper"], (256, 320)))
    running, overlapped, delivered = [0], [], []
    done = threading.Event()

    def run(azimuth):
        running[0] += 1
        overlapped.append(running[0] > 1)
        try:
            return azimuth, client.run("relight", {"azimuth": azimuth}, layer,
                                       preview_side=512)
        finally:
            running[0] -= 1

    def deliver(result, error):
        delivered.append((result, error))
        done.set()

    queue = LatestOnly(run, deliver)
    for step in range(40):
        queue.ask(-90.0 + 4 * step)
        time.sleep(0.005)
    deadline = time.time() + 60
    while not queue.idle() and time.time() < deadline:
        time.sleep(0.01)
    assert queue.idle() and queue.asked == 40 and 2 <= queue.ran <= 20
    assert not any(overlapped) and all(error is None for _, error in delivered)
    assert len(delivered) == queue.ran and delivered[-1][0][0] == -90.0 + 4 * 39
    layer_back, pixels = delivered[-1][0][1][0]
    assert (pixels.width, pixels.height) == (256, 320)


def test_the_plug_in_is_split_by_concern():
    """Procedures, arguments, dialogs and GIMP I/O each in a module of its own, each
    short enough to read."""
    modules = sorted((ROOT / "gimp_plugin" / "limner_gimp").glob("*.py"))
    assert {m.name for m in modules} >= {"limner_gimp.py", "arguments.py", "dialogs.py",
                                         "gimpio.py"}
    for module in modules:
        assert len(module.read_text().splitlines()) < 300, module.name
    assert "Limner." not in (ROOT / "gimp_plugin/limner_gimp/dialogs.py").read_text()


def test_the_gimp_light_sphere_is_lit_by_its_key_and_hands_back_the_angles_dragged_to():
    """sphere.py (GIMP-free): the sphere is brightest towards the key, markers sit where
    their angles put them (hollow behind the subject), a press near a marker takes it,
    elsewhere on the sphere the key, off it nothing; a point gives back its angles."""
    import numpy as np
    import sphere

    size = 180
    for azimuth, brighter in ((-60.0, "left"), (60.0, "right")):
        picture = np.frombuffer(sphere.render(size, {"": (azimuth, 0.0)}), np.uint8
                                ).reshape(size, size, 4).astype(float)
        left, right = picture[80:100, 30:60, :3].mean(), picture[80:100, 120:150, :3].mean()
        assert (left > right + 40) if brighter == "left" else (right > left + 40)
        assert picture[0, 0, 3] == 0 and picture[90, 90, 3] == 255    # round, on clear
    markers = {"": (-45.0, 30.0), "fill_": (45.0, 0.0), "rim_": (150.0, 25.0),
               "rim_mirror": (-150.0, 25.0)}
    picture = np.frombuffer(sphere.render(size, markers), np.uint8).reshape(size, size, 4)
    for prefix, where in markers.items():
        x, y = (round(v) for v in sphere.marker_position(size, *where))
        front = sphere.sphere_point(*where)[2]
        filled = tuple(picture[y, x, :3]) == sphere.COLOURS[prefix]
        assert filled == front, prefix                                  # hollow behind
        ring = picture[y, x + sphere.MARKER - 1, :3]
        assert tuple(ring) == sphere.COLOURS[prefix], prefix           # its edge, either way
    key = sphere.marker_position(size, *markers[""])
    assert sphere.grab(size, markers, key[0] + 5, key[1] - 5) == ""
    fill = sphere.marker_position(size, *markers["fill_"])
    assert sphere.grab(size, markers, *fill) == "fill_"
    mirror = sphere.marker_position(size, *markers["rim_mirror"])
    assert sphere.grab(size, markers, *mirror) != "rim_mirror"        # it follows the rim
    assert sphere.grab(size, markers, 90, 150) == ""                   # the sphere: the key
    assert sphere.grab(size, markers, 2, 2) is None                    # off it
    for azimuth, elevation in ((-45.0, 30.0), (70.0, -20.0), (160.0, 10.0)):
        x, y = sphere.marker_position(size, azimuth, elevation)
        front = sphere.sphere_point(azimuth, elevation)[2]
        assert sphere.angles_at(size, x, y, front) == pytest.approx((azimuth, elevation),
                                                                      abs=0.11)
