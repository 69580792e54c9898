"""The Limner docker in the real Krita GUI under Xvfb: Krita loads the installed plug-in,
the docker starts the backend itself (the installer's recorded command), its Run button
relights a selection of a portrait, and a screenshot of the window is kept for a person
to look at (tests/output/krita-docker.png)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from conftest import start_xvfb
from limner import discovery, models

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "tests" / "output"
pytestmark = pytest.mark.skipif(
    (shutil.which("krita") is None or shutil.which("Xvfb") is None)
    and not os.environ.get("LIMNER_REQUIRE_EDITORS"),
    reason="Krita and Xvfb are not installed (.ci/run installs them)")


def install_selftest(pykrita: Path, kritarc: Path) -> None:
    """The test's own Krita plug-in (tests/krita/selftest), which drives the docker."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("install_krita", ROOT / "install" / "krita.py")
    installer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(installer)
    source = ROOT / "tests" / "krita" / "selftest"
    shutil.copy2(source / "limner_selftest.desktop", pykrita / "limner_selftest.desktop")
    shutil.copytree(source / "limner_selftest", pykrita / "limner_selftest")
    installer.enable(kritarc, "limner_selftest")


def _kill(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def test_docker_runs_relight_in_the_krita_gui(tmp_path, portraits):
    home, state = tmp_path / "home", tmp_path / "state"
    resources, kritarc = home / ".local/share/krita", home / ".config/kritarc"
    subprocess.run([sys.executable, str(ROOT / "install" / "krita.py"), "--resource-dir",
                    str(resources), "--kritarc", str(kritarc)], check=True, capture_output=True)
    install_selftest(resources / "pykrita", kritarc)
    image = tmp_path / "grace_hopper.png"
    cv2.imwrite(str(image), cv2.cvtColor(portraits["grace_hopper"], cv2.COLOR_RGB2BGR))
    OUTPUT.mkdir(exist_ok=True)
    spec = {"image": str(image), "selection": [120, 100, 260, 260], "op": "relight",
            "params": {"azimuth": -90.0, "elevation": 10.0},
            "screenshot": str(OUTPUT / "krita-docker.png"),
            "findings": str(tmp_path / "findings.json"),
            "light": {"docker_shot": str(OUTPUT / "krita-light.png"),
                      "models_shot": str(OUTPUT / "krita-models.png")}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    xvfb, number = start_xvfb("1600x1000")
    display = f":{number}"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "DISPLAY": display,
           "LIMNER_STATE_DIR": str(state), "LIMNER_KRITA_SELFTEST": str(tmp_path / "spec.json")}
    krita = None
    try:
        log = tmp_path / "krita.log"
        with open(log, "wb") as out:
            krita = subprocess.Popen(["krita", "--nosplash"], env=env, start_new_session=True,
                                     stdout=out, stderr=subprocess.STDOUT)
        findings_path = Path(spec["findings"])
        deadline = time.time() + 240
        while not findings_path.exists() and krita.poll() is None and time.time() < deadline:
            time.sleep(0.5)
        try:   # it quits by itself once the self-test is done
            krita.wait(30)
        except subprocess.TimeoutExpired:
            pass
        assert findings_path.exists(), log.read_text(errors="replace")[-4000:]
        findings = json.loads(findings_path.read_text())
    finally:
        if krita is not None:
            _kill(krita)
        _kill(xvfb)
        info = discovery.read(state)          # the backend the docker started
        if info:
            os.kill(info["pid"], signal.SIGTERM)
    assert "error" not in findings, findings
    assert findings["operations"] == ["Remove Background", "Replace Background",
                                      "Blur Background", "Generate Background", "Relight",
                                      "Stylize", "Colour Grade", "Mood"]
    assert findings["source_unchanged"]
    assert findings["group"] == "Limner: Relight (geometric)"
    assert [l["blend"] for l in findings["layers"]] == ["normal", "dodge", "multiply"]
    assert findings["layers"][0]["name"].startswith("Relit -90°/+10°")
    assert findings["status"].startswith("Ready: added 3 layer(s)")
    assert findings["progress"] == 100
    shot = cv2.imread(spec["screenshot"])
    assert shot is not None and shot.shape[0] > 400 and shot.shape[1] > 600
    # the light dragged by hand: the controls follow, previews coalesced and shown
    drag = findings["drag"]
    print("light drag:", json.dumps(drag))
    (az0, el0), _, (az1, el1) = drag["angles"]
    assert az0 < -40 and az1 > 40 and el0 > 10 and el1 > 10, drag
    assert drag["setup"] == "custom"
    assert 2 <= drag["sent"] <= drag["asked"] / 3, drag          # debounced
    assert drag["shown"] == drag["sent"] and drag["distinct_pictures"] >= 2, drag
    assert drag["preview_size"] and min(drag["preview_size"]) > 100, drag
    geometric, iclight = findings["controls"]["geometric"], findings["controls"]["ic-light"]
    assert "sheen" in geometric and "steps" not in geometric
    assert "steps" in iclight and "seed" in iclight and "sheen" not in iclight
    assert sorted(findings["models"]) == sorted(models.MODELS)
    for name in ("krita-light.png", "krita-models.png"):
        picture = cv2.imread(str(OUTPUT / name))
        assert picture is not None and picture.shape[0] > 200, name
