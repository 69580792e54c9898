"""The GIMP 3 plug-in inside real GIMP 3.0 (Debian 13) and GIMP 3.2 (Debian unstable), in
the chroots that install/editors-chroot.sh builds under .cache/: the installer puts the
plug-in into the chroot's GIMP profile, GIMP
registers it, and a batch script runs its procedures non-interactively on a real portrait
with a selection, against a real backend on the host's loopback; the saved image's new
layers are checked pixel by pixel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FACE, FACE_BOX, start_xvfb
from limner import imaging
from limner.server import ServerThread

ROOT = Path(__file__).resolve().parent.parent
HOME = "/home/limner"
#: GIMP version -> the chroot it runs in
GIMPS = {"3.0": Path(os.environ.get("LIMNER_EDITORS_CHROOT",
                                    ROOT / ".cache" / "editors-trixie")),
         "3.2": Path(os.environ.get("LIMNER_EDITORS_SID_CHROOT",
                                    ROOT / ".cache" / "editors-sid"))}


def console(version: str) -> str:
    return f"gimp-console-{version}"


@pytest.fixture(scope="module", params=list(GIMPS), ids=[f"gimp-{v}" for v in GIMPS])
def gimp_home(request):
    """Per GIMP version, one profile for the module (only GIMP's first start is slow), the
    plug-in installed into it by the installer as a user runs it (it finds the version's
    profile), and a backend whose discovery file the chroot can read."""
    version, chroot = request.param, GIMPS[request.param]
    if not (chroot / "usr" / "bin" / console(version)).exists():
        if os.environ.get("LIMNER_REQUIRE_EDITORS"):
            pytest.fail(f"no GIMP {version} chroot at {chroot}")
        pytest.skip(f"no GIMP {version} chroot at {chroot} (install/editors-chroot.sh)")
    home = chroot / HOME.lstrip("/")
    if home.exists():
        shutil.rmtree(home)
    (home / ".config" / "GIMP" / version).mkdir(parents=True)   # a profile GIMP made
    subprocess.run([sys.executable, str(ROOT / "install" / "gimp.py")], check=True,
                   capture_output=True, env={**os.environ, "HOME": str(home),
                                             "XDG_CONFIG_HOME": str(home / ".config")})
    shutil.copy2(ROOT / "tests" / "gimp" / "driver.py", home / "driver.py")
    with ServerThread(port=0, state_dir=home / "state"):
        yield Gimp(version, chroot, home)


class Gimp:
    def __init__(self, version: str, chroot: Path, home: Path):
        self.version, self.chroot, self.home = version, chroot, home

    def __truediv__(self, name):
        return self.home / name


def run_in_gimp(gimp, name, portrait, procedure, args, selection=None, precision=None,
                layer_offset=(0, 0), export=None, state="state", hints=None, edits=None,
                report=None, profile=None):
    run = gimp / name
    run.mkdir()
    cv2.imwrite(str(run / "portrait.png"), cv2.cvtColor(portrait, cv2.COLOR_RGB2BGR))
    inside = f"{HOME}/{name}"
    if profile is not None:
        (run / "profile.icc").write_bytes(profile)
    spec = {"image": f"{inside}/portrait.png", "precision": precision, "selection": selection,
            "layer_offset": list(layer_offset), "procedure": procedure, "args": args,
            "out": inside, "export": export, "hints": hints, "edits": edits,
            "report": report, "profile": f"{inside}/profile.icc" if profile else None}
    (run / "spec.json").write_text(json.dumps(spec))
    env = ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={HOME}", f"LIMNER_STATE_DIR={HOME}/{state}",
           f"LIMNER_GIMP_SPEC={inside}/spec.json"]
    result = subprocess.run(["chroot", str(gimp.chroot), *env, console(gimp.version), "-i", "-n",
                             "--batch-interpreter", "python-fu-eval", "-b",
                             f"exec(open('{HOME}/driver.py').read())", "--quit"],
                            capture_output=True, text=True, timeout=300)
    findings_path = run / "findings.json"
    assert findings_path.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    findings = json.loads(findings_path.read_text())
    assert "exception" not in findings, findings["exception"] + result.stderr[-2000:]
    dtype = imaging.DTYPES[{"u8": "u8", "u16": "u16"}.get(findings["sample"], "f32")]
    for layer in findings["layers"]:
        w, h = layer["size"]
        layer["array"] = np.fromfile(run / Path(layer["pixels"]).name, dtype).reshape(h, w, 4)
        if layer["mask"]:
            layer["mask_array"] = np.fromfile(run / Path(layer["mask"]).name,
                                              np.uint8).reshape(h, w)
    findings["run"] = run
    findings["console"] = result.stdout + result.stderr
    return findings


@pytest.mark.parametrize("precision", [None, "U16_NON_LINEAR", "FLOAT_LINEAR"])
def test_remove_background_in_gimp(gimp_home, portraits, precision):
    image = portraits["astronaut"]
    name = f"remove-{precision or 'u8'}".lower()
    findings = run_in_gimp(gimp_home, name, image, "plug-in-limner-background-remove", {},
                           precision=precision, layer_offset=(16, 8))
    # GIMP 3.2 gives the menu path back without the slash it was registered with
    assert findings["registered"] and \
        [m.rstrip("/") for m in findings["menu"]] == ["<Image>/Filters/Limner"]
    assert findings["label"] == "Remove Background…"
    assert findings["status"] == "success", findings.get("error")
    assert findings["source_unchanged"] and findings["saved"]
    names = [layer["name"] for layer in findings["layers"]]
    assert names == ["Cut-out [AI rvm]", "Background (masked) Matte [AI rvm]", "Background"]
    cut, masked, source = findings["layers"]
    assert cut["offset"] == [16, 8] == source["offset"] and cut["size"] == [512, 512]
    assert cut["visible"] and not masked["visible"]
    alpha = imaging.to_float(cut["array"])[:, :, 3]
    row, col = FACE["astronaut"]
    assert alpha[row - 5:row + 5, col - 5:col + 5].min() > 0.95
    assert alpha[:20, :20].max() < 0.05 and alpha[:20, -20:].max() < 0.05
    matte = masked["mask_array"] / 255
    assert np.abs(matte - alpha).max() < 0.02, "the layer mask is the matte"


def test_relight_a_selection_in_gimp(gimp_home, portraits):
    image = portraits["grace_hopper"]
    box = [150, 110, 230, 250]            # x, y, w, h in image coordinates
    findings = run_in_gimp(gimp_home, "relight", image, "plug-in-limner-relight",
                           {"azimuth": -90.0, "elevation": 0.0}, selection=box,
                           layer_offset=(10, 20))
    assert findings["status"] == "success", findings.get("error")
    assert findings["source_unchanged"]
    relit, dodge, multiply, source = findings["layers"]
    assert relit["name"].startswith("Relit -90°/+0°") and relit["visible"]
    assert (dodge["mode"], multiply["mode"]) == ("dodge", "multiply")
    assert not dodge["visible"] and not multiply["visible"]
    pixels = relit["array"]
    original = imaging.with_alpha(image)
    # the selection in layer coordinates: shifted by the layer's offset (10, 20)
    inside = np.zeros(image.shape[:2], bool)
    inside[box[1] - 20:box[1] - 20 + box[3], box[0] - 10:box[0] - 10 + box[2]] = True
    assert np.array_equal(pixels[~inside], original[~inside])
    rows, cols = FACE_BOX["grace_hopper"]       # inside the selection
    gain = pixels[rows, cols, :3].astype(float) / original[rows, cols, :3].clip(1)
    half = gain.shape[1] // 2
    left, right = np.median(gain[:, :half]), np.median(gain[:, half:])
    assert left > 1.1 * right, (left, right)


@pytest.mark.parametrize("precision", [None, "U16_NON_LINEAR", "FLOAT_LINEAR"])
def test_an_adobe_rgb_image_comes_back_in_its_own_space(gimp_home, portraits, precision):
    """A layer of an Adobe RGB image (8-bit, 16-bit, float linear) goes to the backend as
    its own numbers and the result comes back in the same space: outside the selection
    the result layer holds the very same pixels (read as sRGB, they were shifted and
    clipped). The image keeps its profile."""
    from colour_profiles import adobe_rgb

    image = portraits["astronaut"]
    box = [150, 60, 200, 200]
    findings = run_in_gimp(gimp_home, f"adobe-{precision}", image,
                           "plug-in-limner-background-blur", {"radius": 8}, selection=box,
                           precision=precision, profile=adobe_rgb())
    assert findings["status"] == "success", findings.get("error")
    assert findings["source_unchanged"]
    assert findings["profile"].startswith("Adobe RGB (1998) compatible")
    blurred, source = findings["layers"][0]["array"], findings["layers"][-1]["array"]
    outside = np.ones(image.shape[:2], bool)
    outside[box[1]:box[1] + box[3], box[0]:box[0] + box[2]] = False
    if precision == "FLOAT_LINEAR":  # to perceptual and back by babl, in float: at most
        assert np.abs(blurred[outside] - source[outside]).max() < 1e-3   # 1/8 of a level
    else:
        assert np.array_equal(blurred[outside], source[outside])
    if precision is None:           # the numbers are the file's, not converted to sRGB
        assert np.array_equal(source[:, :, :3], image)
    inside = ~outside
    assert not np.array_equal(blurred[inside], source[inside])     # it did blur


def test_a_moods_recipe_edited_in_the_dialog_is_what_runs(gimp_home, portraits):
    """As in the mood dialog: picking film noir puts its recipe into the controls (the
    plug-in's own wiring, arguments.follow_implied); the user then warms its light. That
    edit runs (the relit layer says 3000 K) with the rest of film noir's recipe, and each
    layer's provenance, kept in the XCF, records the parameters that ran."""
    from limner.operations.mood import MOODS

    findings = run_in_gimp(gimp_home, "mood", portraits["grace_hopper"],
                           "plug-in-limner-mood", {},
                           edits=[["mood", "film-noir"], ["temperature", 3000.0]],
                           report=["setup", "look", "vignette"])
    assert findings["status"] == "success", findings.get("error")
    noir = MOODS["film noir"]
    assert findings["report"] == {"setup": noir["setup"], "look": noir["look"],
                                  "vignette": str(noir["vignette"])}
    top, relit = findings["layers"][:2]
    assert top["name"].startswith("Mood film noir: grade noir")
    assert "(split, 3000 K)" in relit["name"], relit["name"]
    ran = relit["provenance"]["params"]
    assert ran["mood"] == "film noir" and ran["temperature"] == 3000.0
    assert {name: ran[name] for name in noir if name != "temperature"} == \
        {name: value for name, value in noir.items() if name != "temperature"}


def test_a_selection_off_the_layer_is_refused_before_the_backend_is_asked(gimp_home,
                                                                         portraits):
    findings = run_in_gimp(gimp_home, "empty-selection", portraits["astronaut"],
                           "plug-in-limner-background-blur", {"radius": 12},
                           selection=[0, 0, 4, 4], layer_offset=(600, 600))
    assert findings["status"] == "execution-error"
    assert "selection does not touch this layer" in findings["error"]
    assert [layer["name"] for layer in findings["layers"]] == ["Background"]


def test_backend_errors_reach_gimp_as_a_failed_call(gimp_home, portraits):
    """The backend itself refuses (the backdrop file is no picture; a missing one GIMP's
    file argument refuses before the plug-in runs): its own words come back as GIMP's
    execution error, and the image is left as it was. /etc/os-release is there for GIMP
    (in the chroot) and for the backend (on the host) alike."""
    findings = run_in_gimp(gimp_home, "backend-error", portraits["astronaut"],
                           "plug-in-limner-background-replace",
                           {"backdrop": "/etc/os-release"})
    assert findings["status"] == "execution-error"
    assert "backdrop: cannot read '/etc/os-release' as an image" in findings["error"]
    assert [layer["name"] for layer in findings["layers"]] == ["Background"]


def test_keep_and_remove_hints_from_channels_in_gimp(gimp_home, portraits):
    """Two selections saved as channels (image coordinates; the layer sits 16, 8 in):
    one keeps a patch of the wall, one removes a patch of her face, and the matte follows
    them exactly there."""
    keep, remove = [450, 28, 50, 40], [221, 103, 40, 30]     # within the canvas
    findings = run_in_gimp(gimp_home, "hints", portraits["astronaut"],
                           "plug-in-limner-background-remove", {}, layer_offset=(16, 8),
                           hints={"keep": keep, "remove": remove})
    assert findings["status"] == "success", findings.get("error")
    assert findings["source_unchanged"]
    cut = imaging.to_float(findings["layers"][0]["array"])[:, :, 3]
    for (x, y, w, h), want in ((keep, 1.0), (remove, 0.0)):
        patch = cut[y - 8:y - 8 + h, x - 16:x - 16 + w]          # in layer coordinates
        assert np.abs(patch - want).max() <= 0.01, (x, y, patch.min(), patch.max())


def test_without_a_backend_gimp_says_what_to_run(gimp_home, portraits):
    """No backend answers and the installer never recorded one (a state folder of its
    own): the procedure fails with the command that installs it, and the image is left as
    it was."""
    findings = run_in_gimp(gimp_home, "not-installed", portraits["astronaut"],
                           "plug-in-limner-background-remove", {}, state="empty-state")
    assert findings["status"] == "execution-error"
    assert "The Limner backend is not installed on this computer" in findings["error"]
    assert "python3 install/setup.py --gimp" in findings["error"]
    assert [layer["name"] for layer in findings["layers"]] == ["Background"]


def test_a_stale_install_is_told_to_run_the_installer_again(gimp_home, portraits):
    """The backend gained an operation and changed one since the plug-in was installed:
    the procedure still runs, and GIMP shows what differs and what to do."""
    installed = gimp_home / f".config/GIMP/{gimp_home.version}/plug-ins/limner_gimp" / \
        "capabilities.json"
    original = installed.read_text()
    stale = json.loads(original)
    stale["operations"] = [op for op in stale["operations"] if op["id"] != "relight"]
    blur = next(op for op in stale["operations"] if op["id"] == "background.blur")
    blur["description"] = "an older description"
    installed.write_text(json.dumps(stale))
    try:
        findings = run_in_gimp(gimp_home, "stale", portraits["astronaut"],
                               "plug-in-limner-background-blur", {"radius": 8})
    finally:
        installed.write_text(original)
    assert findings["status"] == "success", findings.get("error")
    console = " ".join(findings["console"].split())
    assert "new operations: relight" in console and \
        "changed operations: background.blur" in console, console[-2000:]
    assert "Re-run the Limner installer" in console


def test_replace_background_with_a_scripted_colour(gimp_home, portraits):
    findings = run_in_gimp(gimp_home, "replace", portraits["astronaut"],
                           "plug-in-limner-background-replace", {"color": "#2060c0"})
    assert findings["status"] == "success", findings.get("error")
    replaced = findings["layers"][0]
    assert replaced["name"] == "Background #2060c0 [AI rvm]"
    corner = replaced["array"][:20, :20, :3].reshape(-1, 3).astype(int)
    assert np.abs(corner - [0x20, 0x60, 0xC0]).max() <= 2


def test_generate_a_background_from_a_typed_prompt(gimp_home, portraits, tiny_models):
    """A text parameter as a GIMP string argument, through to the diffusion inpainting
    (tiny random models, so the new background is noise, but the plumbing is real)."""
    image = cv2.resize(portraits["astronaut"], (128, 128), interpolation=cv2.INTER_AREA)
    findings = run_in_gimp(gimp_home, "generate", image, "plug-in-limner-background-generate",
                           {"prompt": "a red brick wall", "steps": 2, "match-light": False})
    assert findings["status"] == "success", findings.get("error")
    assert findings["label"] == "Generate Background…" and findings["source_unchanged"]
    generated = findings["layers"][0]
    assert generated["name"] == "Generated background [AI rvm]"
    corner = generated["array"][:20, :20, :3].astype(int)
    assert np.abs(corner - image[:20, :20]).mean() > 20
    refused = run_in_gimp(gimp_home, "generate-blank", image,
                          "plug-in-limner-background-generate", {"prompt": "  "})
    assert refused["status"] == "execution-error"
    assert "describe the new background" in refused["error"]


def test_models_are_listed_and_downloaded_from_gimp(gimp_home, portraits, lora_hub):
    """Filters > Limner > Models… as a script calls it: with no model it lists them all;
    with one it has the backend download it (from the local hub)."""
    from limner import models

    listed = run_in_gimp(gimp_home, "models-list", portraits["astronaut"],
                         "plug-in-limner-models", {"model": ""})
    assert listed["status"] == "success", listed.get("error")
    console = " ".join(listed["console"].split())
    assert all(name in console for name in models.MODELS), console[-2000:]
    assert "ic-light-fbc 1720 MB Apache-2.0 relight/ic-light not here" in console
    pulled = run_in_gimp(gimp_home, "models-pull", portraits["astronaut"],
                         "plug-in-limner-models", {"model": "lcm-lora-sd15"})
    assert pulled["status"] == "success", pulled.get("error")
    assert "lcm-lora-sd15 is here" in " ".join(pulled["console"].split())
    assert models.local_path("lcm-lora-sd15") is not None


def test_studio_server_setting_sends_gimps_jobs_to_a_studio_server(gimp_home, portraits,
                                                                   tmp_path):
    """Filters > Limner > Studio Server… as a script calls it, against a real studio
    server on the host (TLS, a user's token): a wrong pin is said and nothing is sent; the
    right one connects; the next Limner procedure runs there; '' is the local backend
    again."""
    from limner import discovery, studio

    users = studio.Users(tmp_path)
    token = users.add("gimp-user")
    tls, fingerprint = studio.tls_context(*studio.certificate(tmp_path, ["127.0.0.1"]))
    state = "studio-state"                      # not the module's: its backend stays local
    with ServerThread(port=0, studio=studio.Studio(tls, fingerprint, users)) as shared:
        def setting(name, **args):
            found = run_in_gimp(gimp_home, name, portraits["astronaut"][:64, :64],
                                "plug-in-limner-studio-server", args, state=state)
            assert found["status"] == "success", found.get("error")
            return " ".join(found["console"].split())

        said = setting("studio-wrong-pin", url=shared.uri, token=token,
                       fingerprint="AB:" * 31 + "AB")
        assert "did not answer" in said and "not the one pinned" in said, said[-2000:]
        assert not shared.server.jobs.finished and not shared.server.studio.doorman.failures
        said = setting("studio-right-pin", url=shared.uri, token="", fingerprint=fingerprint)
        assert f"now uses the studio server at {shared.uri} (limner " in said, said[-2000:]
        assert discovery.studio_setting(gimp_home / state)["token"] == token   # kept
        findings = run_in_gimp(gimp_home, "studio-remove", portraits["astronaut"],
                               "plug-in-limner-background-remove", {}, state=state)
        assert findings["status"] == "success", findings.get("error")
        assert [layer["name"] for layer in findings["layers"]][0] == "Cut-out [AI rvm]"
        assert [outcome for _, outcome in shared.server.jobs.finished] == ["done"]
        said = setting("studio-local", url="", token="", fingerprint="")
        assert "now uses the local backend" in said
        assert discovery.studio_setting(gimp_home / state) is None


def test_the_preview_on_the_canvas_leaves_nothing_behind(gimp_home, portraits):
    """The relight dialog's preview on the canvas, through the plug-in's own CanvasLayer in
    real GIMP with real previews: a layer over the source, at its size and place, that
    follows a change of light; taken away (Cancel), the image's layers, pixels, clean state
    and undo stack are as they were; OK's path (the preview taken away, then the run)
    leaves the same layers as a plain run on a fresh copy of the picture."""
    run = gimp_home / "canvas"
    run.mkdir()
    cv2.imwrite(str(run / "portrait.png"), cv2.cvtColor(portraits["grace_hopper"],
                                                        cv2.COLOR_RGB2BGR))
    shutil.copy2(ROOT / "tests" / "gimp" / "canvas.py", run / "canvas.py")
    spec = {"image": f"{HOME}/canvas/portrait.png", "selection": [120, 100, 260, 260],
            "lights": [[-70.0, 20.0], [70.0, 20.0]], "out": f"{HOME}/canvas"}
    (run / "spec.json").write_text(json.dumps(spec))
    env = ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={HOME}", f"LIMNER_STATE_DIR={HOME}/state",
           f"LIMNER_GIMP_SPEC={HOME}/canvas/spec.json"]
    result = subprocess.run(["chroot", str(gimp_home.chroot), *env, console(gimp_home.version),
                             "-i", "-n", "--batch-interpreter", "python-fu-eval", "-b",
                             f"exec(open('{HOME}/canvas/canvas.py').read())", "--quit"],
                            capture_output=True, text=True, timeout=300)
    assert (run / "findings.json").exists(), result.stdout[-3000:] + result.stderr[-3000:]
    found = json.loads((run / "findings.json").read_text())
    assert "exception" not in found, found["exception"]
    before, shown = found["before"], found["shown"]
    assert not before["dirty"] and before["undo_enabled"]
    for picture in shown:
        assert picture["state"]["layers"] == ["Limner preview", *before["layers"]]
        assert picture["size"] == found["source_size"] and picture["offset"] == [0, 0]
        assert picture["visible"] and picture["above_source"]
        assert picture["state"]["source"] == before["source"]
        assert not picture["state"]["undo_enabled"]     # nothing of it reaches the history
    assert shown[0]["preview"] != shown[1]["preview"], "the preview did not follow the light"
    assert found["after_cancel"] == before
    applied, plain = found["applied"], found["plain"]
    assert applied[0] == plain[0] == "success"
    assert applied[1] == plain[1] and len(applied[1]) > len(before["layers"])


def test_the_relight_dialog_previews_on_the_canvas_under_xvfb(gimp_home, portraits):
    """GIMP's GUI under Xvfb, driven with the mouse and keyboard (xdotool): Filters >
    Limner > Relight… opens its dialog, with the geometric engine's controls only, a light
    sphere, and a preview beside them and on the canvas (the dialog moved aside to show
    it); dragging the key across the sphere changes the canvas; Escape cancels, and the
    image holds what it held before (no preview layer, the same pixels, still clean).
    Screenshots are kept for a person to look at (tests/output/gimp-canvas-preview.png for
    GIMP 3.0, gimp-3.2-canvas-preview.png, and the dialog after the drag,
    gimp-<version>-relight.png)."""
    import signal
    import time

    if shutil.which("xdotool") is None:
        if os.environ.get("LIMNER_REQUIRE_EDITORS"):
            pytest.fail("no xdotool here")
        pytest.skip("no xdotool here (.ci/run installs it)")
    run = gimp_home / "dialog"
    run.mkdir()
    cv2.imwrite(str(run / "portrait.png"), cv2.cvtColor(portraits["grace_hopper"],
                                                        cv2.COLOR_RGB2BGR))
    shutil.copy2(ROOT / "tests" / "gimp" / "dialog.py", run / "dialog.py")
    proc = gimp_home.chroot / "proc"
    mounted = gimp_home.version != "3.0"
    if mounted:   # GIMP 3.2's image loaders (glycin) sandbox themselves with bwrap: /proc
        refused = subprocess.run(["mount", "-t", "proc", "proc", str(proc)],
                                 capture_output=True, text=True)
        if refused.returncode:
            pytest.xfail(f"GIMP {gimp_home.version}'s GUI needs /proc in its chroot, and "
                         f"this machine refused to mount it: {refused.stderr.strip()}")
    xvfb, number = start_xvfb("1400x1000", tcp=True)
    display = f"127.0.0.1:{number}"             # the chroot shares the network, not /tmp
    env = ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={HOME}", f"DISPLAY={display}",
           f"LIMNER_STATE_DIR={HOME}/state", f"LIMNER_IMAGE={HOME}/dialog/portrait.png",
           f"LIMNER_OUT={HOME}/dialog/found.json"]
    output = ROOT / "tests" / "output"
    output.mkdir(exist_ok=True)
    canvas_shot = output / ("gimp-canvas-preview.png" if gimp_home.version == "3.0"
                            else f"gimp-{gimp_home.version}-canvas-preview.png")
    dialog_shot = output / f"gimp-{gimp_home.version}-relight.png"
    x_env = {"DISPLAY": f":{number}", "PATH": "/usr/bin:/bin"}

    def screen():
        path = run / "screen.png"
        subprocess.run(["/usr/bin/python3", "-c",
                        "import sys; from PyQt5 import QtWidgets; "
                        "app = QtWidgets.QApplication(['shot']); "
                        "app.primaryScreen().grabWindow(0).save(sys.argv[1])", str(path)],
                       env=x_env, check=True, capture_output=True, timeout=60)
        return cv2.imread(str(path))

    def xdotool(*args):
        return subprocess.run(["xdotool", *map(str, args)], env=x_env, check=True,
                              capture_output=True, text=True, timeout=30).stdout

    gimp = None
    log = open(run / "gimp.log", "wb")
    try:
        gimp = subprocess.Popen(["chroot", str(gimp_home.chroot), *env,
                                 f"gimp-{gimp_home.version}", "-n", "--no-splash",
                                 "--batch-interpreter", "python-fu-eval",
                                 "-b", f"exec(open('{HOME}/dialog/dialog.py').read())"],
                                start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
        deadline, dialog = time.time() + 120, ""
        while not dialog and time.time() < deadline and gimp.poll() is None:
            time.sleep(1)
            dialog = subprocess.run(["xdotool", "search", "--name", "^Relight$"], env=x_env,
                                    capture_output=True, text=True).stdout.split()
        assert dialog, (run / "gimp.log").read_text(errors="replace")[-3000:]
        dialog = dialog[0]
        time.sleep(8)                           # the first preview works out the geometry
        xdotool("windowmove", dialog, 700, 0)   # no window manager: it covered the canvas
        time.sleep(2)
        first = screen()
        cv2.imwrite(str(canvas_shot), first)
        # the key's marker on the sphere (its yellow), dragged to the image's right
        # (the blob of a marker's size: the preview's photograph has gold in it too)
        marker = (np.abs(first[:, 700:].astype(int) - (61, 200, 255)).sum(axis=2) < 40)
        _, _, stats, centres = cv2.connectedComponentsWithStats(marker.astype(np.uint8))
        blobs = [tuple(centre) for stat, centre in zip(stats[1:], centres[1:])
                 if 60 <= stat[cv2.CC_STAT_AREA] <= 300
                 and 10 <= stat[cv2.CC_STAT_WIDTH] <= 20 and 10 <= stat[cv2.CC_STAT_HEIGHT] <= 20]
        assert len(blobs) == 1, f"no light sphere with the key's marker in the dialog: {blobs}"
        x, y = int(blobs[0][0]) + 700, int(blobs[0][1])
        xdotool("mousemove", x, y, "mousedown", "1")
        for step in range(1, 13):
            xdotool("mousemove", x + 12 * step, y + 4 * step)
            time.sleep(0.05)
        xdotool("mouseup", "1")
        time.sleep(6)                           # the last preview comes
        second = screen()
        cv2.imwrite(str(dialog_shot), second)
        xdotool("windowfocus", "--sync", dialog)
        xdotool("key", "Escape")
        deadline = time.time() + 60
        while not (run / "found.json").exists() and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(2)
        third = screen()
    finally:
        for process in (gimp, xvfb):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        log.close()
        if mounted:
            subprocess.run(["umount", "--lazy", str(proc)], check=False)
    assert (run / "found.json").exists(), (run / "gimp.log").read_text(errors="replace")[-3000:]
    found = json.loads((run / "found.json").read_text())
    assert found["status"] == "cancel"
    assert found["after"] == found["before"]     # no preview layer, same pixels, clean
    assert found["before"]["layers"] == ["Background"] and not found["before"]["dirty"]
    # the canvas (left of the moved dialog): the preview lit the selected face from the
    # left, the drag from the right; after Escape, the picture as it was
    # where GIMP shows the picture: its top left corner found in the last screenshot (the
    # picture as it was); then inside the selection, away from its marching ants
    corner = cv2.cvtColor(portraits["grace_hopper"][:300, :300], cv2.COLOR_RGB2BGR)
    _, _, _, (x0, y0) = cv2.minMaxLoc(-cv2.matchTemplate(third, corner, cv2.TM_SQDIFF))
    assert np.abs(third[y0:y0 + 300, x0:x0 + 300].astype(int) - corner).mean() < 3
    inside = (slice(y0 + 110, y0 + 350), slice(x0 + 130, x0 + 370))
    face = [shot[inside].astype(np.float32) for shot in (first, second, third)]
    print("canvas inside the selection, mean change: first-second",
          np.abs(face[0] - face[1]).mean(), "first-original", np.abs(face[0] - face[2]).mean())
    assert np.abs(face[0] - face[1]).mean() > 4, "the canvas did not follow the light"
    assert np.abs(face[0] - face[2]).mean() > 4, "no preview on the canvas"
    # the preview beside the controls: a photograph where the dialog has no other picture
    beside = second[250:600, 1090:1400].astype(np.float32)
    assert beside.std() > 30, "no preview beside the controls"


@pytest.mark.skipif(shutil.which("exiftool") is None and not os.environ.get(
    "LIMNER_REQUIRE_EDITORS"), reason="exiftool is not installed (.ci/run installs it)")
def test_a_gimp_export_says_it_was_edited_with_ai(gimp_home, portraits):
    """The plug-in puts the IPTC digital source type and the AI system in the image's XMP;
    GIMP's own PNG export writes it when XMP is included (off by default in GIMP's export
    dialog), and exiftool reads it."""
    from limner import provenance

    findings = run_in_gimp(gimp_home, "export", portraits["astronaut"],
                           "plug-in-limner-background-blur", {"radius": 6},
                           export="exported.png")
    assert findings["status"] == "success", findings.get("error")
    assert findings["export"] == "success"
    tags = json.loads(subprocess.run(
        ["exiftool", "-j", "-G1", "-XMP:all", str(findings["run"] / "exported.png")],
        check=True, capture_output=True, text=True).stdout)[0]
    assert tags["XMP-iptcExt:DigitalSourceType"] == provenance.EDITED
    assert tags["XMP-iptcExt:AISystemUsed"] == "Limner (rvm)"
    assert tags["XMP-dc:Description"] == "Edited with AI by Limner: background.blur"
