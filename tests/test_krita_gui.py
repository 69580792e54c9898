"""The Limner docker in the real Krita GUI under Xvfb, in every Krita the tests run (5.1 on
the host; 5.2, 5.3 and 6.0 in chroots): Krita loads the installed plug-in, the docker
connects to the backend (on the host it starts the backend itself, by the installer's
record), its Run button relights a selection of a portrait, the light is dragged, and
screenshots are kept for a person to look at (tests/output/krita-docker.png, …,
krita6-light.png)."""

from __future__ import annotations

import contextlib
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
from conftest import KRITA_CHROOTS, krita_present, start_xvfb
from limner import discovery, launcher, models
from limner.server import ServerThread

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "tests" / "output"
#: the screenshots' names start with the Krita they show
SHOT_PREFIX = {"host-5.1": "krita", "chroot-5.2": "krita52", "chroot-5.3": "krita53",
               "chroot-6.0": "krita6"}


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


def kill_group(process):
    """Kill a process started in its own session, and all it started."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@pytest.mark.parametrize("version", list(KRITA_CHROOTS))
def test_docker_runs_relight_in_the_krita_gui(version, tmp_path, portraits):
    if not (krita_present(version, "krita") and shutil.which("Xvfb")):
        if os.environ.get("LIMNER_REQUIRE_EDITORS"):
            pytest.fail(f"no {version} Krita or no Xvfb here")
        pytest.skip(f"no {version} Krita or no Xvfb here (.ci/run installs them)")
    chroot = KRITA_CHROOTS[version]
    if chroot is None:
        inside, prefix = tmp_path / "home", []
        home = inside
    else:       # the chroot shares the network and the process table, not the files
        inside = Path("/home/limner-krita-gui")
        home = chroot / inside.relative_to("/")
        if home.exists():
            shutil.rmtree(home)
        prefix = ["chroot", str(chroot)]
    resources, kritarc = home / ".local/share/krita", home / ".config/kritarc"
    subprocess.run([sys.executable, str(ROOT / "install" / "krita.py"), "--resource-dir",
                    str(resources), "--kritarc", str(kritarc)], check=True, capture_output=True)
    install_selftest(resources / "pykrita", kritarc)
    (home / "work").mkdir(parents=True)
    cv2.imwrite(str(home / "work" / "grace_hopper.png"),
                cv2.cvtColor(portraits["grace_hopper"], cv2.COLOR_RGB2BGR))
    OUTPUT.mkdir(exist_ok=True)
    shots = {key: f"{SHOT_PREFIX[version]}-{key}.png"
             for key in ("docker", "light", "models", "canvas-preview")}
    spec = {"image": str(inside / "work" / "grace_hopper.png"),
            "selection": [120, 100, 260, 260], "op": "relight",
            "params": {"azimuth": -90.0, "elevation": 10.0},
            "screenshot": str(inside / "work" / shots["docker"]),
            "findings": str(inside / "work" / "findings.json"),
            "light": {"docker_shot": str(inside / "work" / shots["light"]),
                      "models_shot": str(inside / "work" / shots["models"])},
            "mood": {"edits": [["mood", "film noir"], ["temperature", 3000.0]],
                     "report": ["setup", "look", "vignette", "temperature"]},
            "canvas": {"shot": str(inside / "work" / shots["canvas-preview"]),
                       "canvas_grab": str(inside / "work" / "canvas-grab.png"),
                       "lights": [[-70.0, 20.0], [70.0, 20.0]]}}
    (home / "work" / "spec.json").write_text(json.dumps(spec))
    xvfb, number = start_xvfb("1600x1000", tcp=chroot is not None)
    display = f":{number}" if chroot is None else f"127.0.0.1:{number}"
    env = ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={inside}", f"DISPLAY={display}",
           f"LIMNER_STATE_DIR={inside}/state",
           f"LIMNER_KRITA_SELFTEST={inside}/work/spec.json"]
    krita = None
    findings_path = home / "work" / "findings.json"
    with contextlib.ExitStack() as stack:
        if chroot is not None:     # a backend on the host, found through the discovery file
            stack.enter_context(ServerThread(port=0, state_dir=home / "state"))
        else:                      # the docker starts it, as install/setup.py recorded
            launcher.write_record([sys.executable, "-m", "limner", "serve", "--port", "0"],
                                  [sys.executable, str(ROOT / "install" / "setup.py")],
                                  home / "state")
        try:
            log = tmp_path / "krita.log"
            with open(log, "wb") as out:
                krita = subprocess.Popen([*prefix, *env, "krita", "--nosplash"],
                                         start_new_session=True, stdout=out,
                                         stderr=subprocess.STDOUT)
            deadline = time.time() + 300
            while (not findings_path.exists() and krita.poll() is None
                   and time.time() < deadline):
                time.sleep(0.5)
            try:   # it quits by itself once the self-test is done
                krita.wait(30)
            except subprocess.TimeoutExpired:
                pass
            assert findings_path.exists(), log.read_text(errors="replace")[-4000:]
            findings = json.loads(findings_path.read_text())
        finally:
            if krita is not None:
                kill_group(krita)
            kill_group(xvfb)
            info = discovery.read(home / "state") if chroot is None else None
            if info:                            # the backend the docker started
                os.kill(info["pid"], signal.SIGTERM)
    for name in shots.values():
        if (home / "work" / name).exists():
            shutil.copy2(home / "work" / name, OUTPUT / name)
    canvas_grab = cv2.imread(str(home / "work" / "canvas-grab.png"))
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
    shot = cv2.imread(str(OUTPUT / shots["docker"]))
    assert shot is not None and shot.shape[0] > 400 and shot.shape[1] > 600
    # the light dragged by hand: the controls follow, previews coalesced and shown
    drag = findings["drag"]
    print("light drag:", json.dumps(drag))
    (az0, el0), _, (az1, el1) = drag["angles"]
    assert az0 < -40 and az1 > 40 and el0 > 10 and el1 > 10, drag
    assert drag["setup"] == "custom"
    assert 2 <= drag["sent"] <= drag["asked"] / 3, drag          # debounced
    # every preview sent was shown or ended (on a loaded machine the backend may have
    # said busy to one; the previewer asks again), none with an error, and what is on
    # screen at the end is the last light asked for
    assert drag["shown"] + sum(drag["ended"].values()) - drag["before_ended"] == drag["sent"], \
        drag
    assert set(drag["ended"]) <= {"busy", "cancelled", "stale"}, drag
    assert drag["last_shown_is_last_sent"] and drag["shown"] >= 2, drag
    assert drag["distinct_pictures"] >= 2, drag
    assert drag["preview_size"] and min(drag["preview_size"]) > 100, drag
    geometric, iclight = findings["controls"]["geometric"], findings["controls"]["ic-light"]
    assert "sheen" in geometric and "steps" not in geometric
    assert "steps" in iclight and "seed" in iclight and "sheen" not in iclight
    assert sorted(findings["models"]) == sorted(models.MODELS)
    for name in (shots["light"], shots["models"]):
        picture = cv2.imread(str(OUTPUT / name))
        assert picture is not None and picture.shape[0] > 200, name
    # film noir picked in the docker fills in its recipe; the warmer light the user then
    # set is what ran, and (where Krita keeps annotations, 5.2 on) the provenance says so
    from limner.operations.mood import MOODS

    noir = MOODS["film noir"]
    assert findings["mood_controls"] == {"setup": noir["setup"], "look": noir["look"],
                                         "vignette": noir["vignette"], "temperature": 3000.0}
    mood = findings["mood"]
    assert mood["group"] == "Limner: Mood"
    assert mood["layers"][0].startswith("Mood film noir: grade noir")
    assert "(split, 3000 K)" in mood["layers"][1], mood["layers"]
    if version != "host-5.1":
        ran = mood["provenance"][1]["provenance"]["params"]
        assert ran["temperature"] == 3000.0 and ran["setup"] == noir["setup"]
    check_canvas_preview(findings["canvas"], canvas_grab)


def check_canvas_preview(canvas: dict, grab) -> None:
    """The preview on the canvas: over the layer where Krita draws it, following the
    light, gone on Cancel leaving the document and its history as they were, and Run with
    it shown the same as a plain Run, in one undo step."""
    print("canvas preview:", json.dumps({k: v for k, v in canvas.items()
                                         if k not in ("applied", "plain")}))
    first, second, cancelled = canvas["first"], canvas["second"], canvas["after_cancel"]
    small = canvas["preview_mask"]
    assert small["bytes"] == small["pixels"] and small["inside_min"] == 255 and \
        small["above_max"] == 0, small
    assert min(first["size"]) > 100, first
    assert second["hash"] != first["hash"], "the preview did not follow the light"
    # where Krita draws the layer (the whole picture here): what differs from the
    # canvas's border colour in a grab without the preview
    assert grab is not None
    differs = (abs(grab.astype(int) - grab[2, 2].astype(int)).sum(axis=2) > 24)
    # rows and columns mostly unlike the border (the brush's outline is a thin circle)
    rows = (differs.mean(axis=1) > 0.3).nonzero()[0]
    cols = (differs.mean(axis=0) > 0.3).nonzero()[0]
    drawn = [cols[0], rows[0], cols[-1] + 1 - cols[0], rows[-1] + 1 - rows[0]]
    x, y, w, h = first["screen_rect"]
    assert max(abs(x - drawn[0]), abs(y - drawn[1]), abs(x + w - drawn[0] - drawn[2]),
               abs(y + h - drawn[1] - drawn[3])) <= 3, (first["screen_rect"], drawn)
    assert not canvas["shown_after_switching_layers"]
    assert not cancelled["shown"] and not cancelled["overlay_visible"]
    assert cancelled["layers_unchanged"]
    assert cancelled["history"] == cancelled["history_before"]
    assert canvas["shown_while_running"]          # the preview stays until the layers come
    applied, plain = canvas["applied"], canvas["plain"]
    assert not applied["shown"]
    assert applied["history"] == applied["history_before"] + ["Add Layer"], applied["history"]
    assert applied["group"] == plain["group"]
    assert applied["layers"] == plain["layers"]
    assert canvas["after_close"] == {"shown": False, "documents": 0}
