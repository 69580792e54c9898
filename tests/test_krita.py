"""The Krita plug-in inside real Krita (kritarunner, headless): the installer puts it into
a temporary profile, Krita's Python imports it, and a portrait document with a selection
goes through the real backend; the new layers are checked pixel by pixel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FACE, KRITA_CHROOTS, krita_present
from limner import imaging
from limner.server import ServerThread

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = bool(os.environ.get("LIMNER_REQUIRE_EDITORS"))
@pytest.fixture(scope="module", params=list(KRITA_CHROOTS))
def krita(request, tmp_path_factory):
    """(home as seen here, home as Krita sees it, command prefix), the plug-in installed
    by the installer, and a backend whose discovery file that Krita can read."""
    if not krita_present(request.param) and not REQUIRED:
        pytest.skip(f"no {request.param} Krita here (.ci/run installs them all)")
    chroot = KRITA_CHROOTS[request.param]
    if chroot is not None:
        inside = "/home/limner-krita"
        home = chroot / inside.lstrip("/")
        if home.exists():
            shutil.rmtree(home)
        prefix = ["chroot", str(chroot)]
    else:
        home = tmp_path_factory.mktemp("krita-home")
        inside, prefix = str(home), []
    subprocess.run([sys.executable, str(ROOT / "install" / "krita.py"), "--resource-dir",
                    str(home / ".local/share/krita"), "--kritarc", str(home / ".config/kritarc")],
                   check=True, capture_output=True)
    (home / "driver").mkdir(parents=True)
    shutil.copy2(ROOT / "tests" / "krita" / "driver.py", home / "driver" / "driver.py")
    with ServerThread(port=0, state_dir=home / "state"):
        yield home, inside, prefix


def run_in_krita(krita, name, image, depth, op, params, selection=None, hints=None,
                 profile=None):
    home, inside, prefix = krita
    run = home / name
    if run.exists():
        shutil.rmtree(run)
    run.mkdir()
    (run / "portrait.raw").write_bytes(imaging.to_pixels(image).data)
    spec = {"pixels": f"{inside}/{name}/portrait.raw", "width": image.shape[1],
            "height": image.shape[0], "depth": depth, "selection": selection, "op": op,
            "params": params, "out": f"{inside}/{name}", "hints": hints, "profile": profile}
    (run / "spec.json").write_text(json.dumps(spec))
    env = ["PATH=/usr/bin:/bin", f"HOME={inside}", "QT_QPA_PLATFORM=offscreen",
           f"LIMNER_STATE_DIR={inside}/state",
           f"PYTHONPATH={inside}/.local/share/krita/pykrita:{inside}/driver"]
    result = subprocess.run([*prefix, "env", "-i", *env, "kritarunner", "-s", "driver", "-f",
                             "main", f"{inside}/{name}/spec.json"], capture_output=True,
                            text=True, timeout=300)
    findings_path = run / "findings.json"
    assert findings_path.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    findings = json.loads(findings_path.read_text())
    assert "error" not in findings, findings.get("trace")
    dtype = imaging.DTYPES[{"U8": "u8", "U16": "u16", "F32": "f32"}[depth]]
    for layer in findings["layers"]:
        layer["array"] = np.fromfile(run / Path(layer["pixels"]).name, dtype).reshape(
            image.shape[0], image.shape[1], 4)
        if layer["mask"]:
            layer["mask_array"] = np.fromfile(run / Path(layer["mask"]).name, np.uint8).reshape(
                image.shape[:2])
    return findings


@pytest.mark.parametrize("depth", ["U8", "U16", "F32"])
def test_background_removal_in_krita(krita, portraits, depth):
    image8 = imaging.with_alpha(portraits["astronaut"])
    image = imaging.from_float(imaging.to_float(image8), depth.lower().replace("f32", "f32"))
    findings = run_in_krita(krita, f"remove-{depth}", image, depth, "background.remove", {})
    assert findings["source_unchanged"] and not findings["sent_mask"]
    assert findings["transfer"] == ("srgb" if depth == "U8" else "linear")
    assert findings["top_level"][-2:] == ["Portrait", "Limner: background.remove"]
    assert findings["group_type"] == "grouplayer"
    cut, matte = findings["layers"][:2]
    assert cut["name"] == "Cut-out [AI rvm]" and cut["visible"] and cut["type"] == "paintlayer"
    alpha = imaging.to_float(cut["array"])[:, :, 3]
    row, col = FACE["astronaut"]
    assert alpha[row - 5:row + 5, col - 5:col + 5].min() > 0.95
    assert alpha[:20, :20].max() < 0.05 and alpha[:20, -20:].max() < 0.05
    if findings["version"].startswith("5.1"):    # no masks from scripts: a hidden grey layer
        assert matte["name"] == "Matte [AI rvm]" and not matte["visible"]
        grey = imaging.to_float(matte["array"])[:, :, 0]
        assert np.abs(grey - alpha).max() < 0.01
    else:                                         # a masked copy of the source
        assert matte["children"] == ["transparencymask"] and not matte["visible"]
        assert matte["name"] == "Portrait (masked) Matte [AI rvm]"
        assert np.abs(matte["mask_array"] / 255 - alpha).max() < 0.02, "the mask is the matte"


#: Elle Stone's Adobe RGB (1998) compatible profile, which Krita ships
CLAY_RGB = "ClayRGB-elle-V2-g22.icc"


@pytest.mark.parametrize("depth", ["U8", "U16"])
def test_an_adobe_rgb_document_comes_back_in_its_own_space(krita, portraits, depth):
    """A layer of an Adobe RGB document goes to the backend as its own numbers and the
    new layers are in the document's space: outside the selection the very same pixels."""
    image = imaging.from_float(imaging.to_float(imaging.with_alpha(portraits["astronaut"])),
                               depth.lower())
    box = [150, 60, 200, 200]
    findings = run_in_krita(krita, f"adobe-{depth}", image, depth, "background.blur",
                            {"radius": 8}, selection=box, profile=CLAY_RGB)
    assert findings["profile"] == CLAY_RGB and findings["source_unchanged"]
    blurred = findings["layers"][0]
    assert blurred["profile"] == CLAY_RGB
    outside = np.ones(image.shape[:2], bool)
    outside[box[1]:box[1] + box[3], box[0]:box[0] + box[2]] = False
    assert np.array_equal(blurred["array"][outside], image[outside])
    assert not np.array_equal(blurred["array"][~outside], image[~outside])


def test_relight_with_a_selection_in_krita(krita, portraits):
    image = imaging.with_alpha(portraits["grace_hopper"])
    box = [120, 100, 260, 260]    # x, y, width, height around the face
    findings = run_in_krita(krita, "relight", image, "U8", "relight",
                            {"azimuth": -90, "elevation": 0}, selection=box)
    assert findings["source_unchanged"] and findings["sent_mask"]
    names = [layer["name"] for layer in findings["layers"]]
    assert names[0].startswith("Relit -90°/+0°") and names[1:] == [
        "Light highlights [AI geometric]", "Light shadows [AI geometric]"]
    assert [l["blend"] for l in findings["layers"]] == ["normal", "dodge", "multiply"]
    assert [l["visible"] for l in findings["layers"]] == [True, False, False]
    relit = findings["layers"][0]["array"]
    outside = np.ones(image.shape[:2], bool)
    outside[box[1]:box[1] + box[3], box[0]:box[0] + box[2]] = False
    assert np.array_equal(relit[outside], image[outside])
    face = relit[150:330, 180:350].astype(float) / image[150:330, 180:350].clip(1)
    left, right = np.median(face[:, :85, :3]), np.median(face[:, 85:, :3])
    assert left > 1.1 * right, (left, right)


def test_keep_and_remove_hints_painted_on_layers_in_krita(krita, portraits):
    """Two strokes on layers of their own (white, bounded by the strokes): one keeps a
    patch of the wall, one removes a patch of her face; the cut-out follows them there."""
    image = imaging.with_alpha(portraits["astronaut"])
    keep, remove = [440, 20, 60, 40], [205, 95, 40, 30]      # x, y, w, h
    findings = run_in_krita(krita, "hints", image, "U8", "background.remove", {},
                            hints={"keep": keep, "remove": remove})
    assert findings["source_unchanged"]
    alpha = imaging.to_float(findings["layers"][0]["array"])[:, :, 3]
    x, y, w, h = keep
    assert alpha[y:y + h, x:x + w].min() >= 0.99
    x, y, w, h = remove
    assert alpha[y:y + h, x:x + w].max() <= 0.01
    row, col = FACE["astronaut"]
    assert alpha[row + 35:row + 42, col - 5:col + 5].min() > 0.95, "the rest of her face stays"
