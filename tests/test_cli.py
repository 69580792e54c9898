"""The command line as a person runs it: `limner ops`, `limner run`, `limner serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile

import cv2
import numpy as np
import pytest
from conftest import FACE
from limner import discovery


def limner(*args, env=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "limner", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.fixture
def isolated_env(tmp_path):
    """No backend to discover: `limner run` must start its own."""
    return {**os.environ, "LIMNER_STATE_DIR": str(tmp_path / "state")}


@pytest.fixture
def astronaut_png(portraits, tmp_path):
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(portraits["astronaut"], cv2.COLOR_RGB2BGR))
    return path


def test_ops_lists_operations_parameters_and_engine_licences():
    out = limner("ops")
    assert out.returncode == 0, out.stderr
    for words in ("background.remove", "background.replace", "background.blur", "radius",
                  "relight", "style", "pencil sketch",
                  "Robust Video Matting (best hair detail) (licence: GPL-3.0)",
                  "mediapipe selfie segmentation (fastest) (licence: Apache-2.0)"):
        assert words in out.stdout
    assert "diagnostics.echo" not in out.stdout
    caps = json.loads(limner("ops", "--json").stdout)
    assert {op["id"] for op in caps["operations"]} >= {"background.remove", "diagnostics.echo"}


def test_run_writes_pngs_and_an_openraster_stack(astronaut_png, tmp_path, isolated_env):
    out_dir = tmp_path / "out"
    result = limner("run", astronaut_png, "--op", "background.remove", "--out", out_dir,
                    env=isolated_env)
    assert result.returncode == 0, result.stderr
    cutout = cv2.imread(str(out_dir / "astronaut-background-remove-cut-out-ai-rvm.png"),
                        cv2.IMREAD_UNCHANGED)
    assert cutout.shape == (512, 512, 4)
    row, col = FACE["astronaut"]
    assert cutout[row, col, 3] == 255 and cutout[0, 0, 3] == 0
    matte = cv2.imread(str(out_dir / "astronaut-background-remove-matte-ai-rvm.png"),
                       cv2.IMREAD_UNCHANGED)
    assert matte.shape == (512, 512) and np.array_equal(matte, cutout[:, :, 3])

    ora = out_dir / "astronaut-background-remove.ora"
    with zipfile.ZipFile(ora) as zf:
        first = zf.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert zf.read("mimetype") == b"image/openraster"
        stack = ET.fromstring(zf.read("stack.xml"))
        layers = stack.findall("./stack/layer")
        names = [layer.get("name") for layer in layers]
        assert names == ["Cut-out [AI rvm]", "Matte [AI rvm]", "astronaut"]
        assert [layer.get("visibility") for layer in layers] == ["visible", "hidden", "hidden"]
        provenance = json.loads(layers[0].get("{urn:limner:1}provenance"))
        assert provenance["operation"] == "background.remove" and provenance["ai_edited"]
        for layer in layers:
            png = np.frombuffer(zf.read(layer.get("src")), np.uint8)
            assert cv2.imdecode(png, cv2.IMREAD_UNCHANGED).shape[:2] == (512, 512)
        merged = cv2.imdecode(np.frombuffer(zf.read("mergedimage.png"), np.uint8),
                              cv2.IMREAD_UNCHANGED)
        assert merged[0, 0, 3] == 0 and merged[row, col, 3] == 255
    sidecar = json.loads((out_dir / "astronaut-background-remove.provenance.json").read_text())
    assert [item["name"] for item in sidecar["layers"]] == names[:2]
    assert sidecar["operation"] == "background.remove" and sidecar["params"] == {}


@pytest.mark.parametrize("sample", ["u16", "f32"])
def test_deep_pictures_give_16_bit_results(portraits, tmp_path, isolated_env, sample):
    """16-bit and float inputs come back as 16-bit PNGs (a change writing 8-bit passed
    every test), with the precision used: more than 256 levels in a smooth result."""
    image = portraits["astronaut"][:160, 140:300].astype(np.float32) / 255
    if sample == "u16":
        path = tmp_path / "deep.png"
        cv2.imwrite(str(path), cv2.cvtColor(np.round(image * 65535).astype(np.uint16),
                                            cv2.COLOR_RGB2BGR))
    else:
        path = tmp_path / "deep.tiff"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    done = limner("run", path, "--op", "background.blur", "--out", out, env=isolated_env)
    assert done.returncode == 0, done.stderr[-2000:]
    for png in out.glob("*.png"):
        result = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        assert result.dtype == np.uint16, png
    blurred = cv2.imread(str(next(out.glob("deep-background-blur-*.png"))),
                         cv2.IMREAD_UNCHANGED)
    assert len(np.unique(blurred[..., 1])) > 256


def test_run_with_a_mask_and_parameters(astronaut_png, tmp_path, isolated_env):
    mask = np.zeros((512, 512), np.uint8)
    mask[:, :256] = 255
    mask_path = tmp_path / "mask.png"
    cv2.imwrite(str(mask_path), mask)
    result = limner("run", astronaut_png, "--op", "background.blur", "--param", "radius=30",
                    "--param", "engine=mediapipe", "--mask", mask_path, "--out", tmp_path / "o",
                    env=isolated_env)
    assert result.returncode == 0, result.stderr
    out = cv2.imread(str(tmp_path / "o" / "astronaut-background-blur-mediapipe-radius=30-"
                                          "background-blur-30-px-ai-mediapipe.png"))
    original = cv2.imread(str(astronaut_png))
    assert np.array_equal(out[:, 256:], original[:, 256:])
    assert not np.array_equal(out[:, :256], original[:, :256])


@pytest.mark.parametrize("args, words", [
    (["--param", "radius=abc"], "radius must be an integer, got 'abc'"),
    (["--param", "sharpness=3"], "no parameter 'sharpness'"),
    (["--param", "radius=900"], "radius must be between 1 and 200"),
    (["--mask", "WRONG_MASK"], "must match"),
])
def test_run_reports_bad_input_clearly(astronaut_png, tmp_path, isolated_env, args, words):
    wrong = tmp_path / "wrong.png"
    cv2.imwrite(str(wrong), np.zeros((10, 10), np.uint8))
    args = [str(wrong) if a == "WRONG_MASK" else a for a in args]
    result = limner("run", astronaut_png, "--op", "background.blur", *args, "--out", tmp_path,
                    env=isolated_env)
    assert result.returncode == 2 and words in result.stderr, result.stderr


def test_serve_writes_discovery_serves_run_and_cleans_up(astronaut_png, tmp_path, isolated_env):
    state = tmp_path / "state"
    log = tmp_path / "serve.log"                 # a file: an unread pipe could fill and block
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "limner", "serve", "--port", "0"],
                                  env=isolated_env, stderr=out)
    try:
        deadline = time.time() + 60
        while (info := discovery.read(state)) is None:
            assert server.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(0.1)
        assert info["pid"] == server.pid
        result = limner("run", astronaut_png, "--op", "background.replace", "--out",
                        tmp_path / "o", env=isolated_env)
        assert result.returncode == 0, result.stderr
        assert "starting one" not in result.stderr   # it used the running server
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    assert server.returncode == 0
    assert not discovery.discovery_path(state).exists()


@pytest.mark.parametrize("cache_mb", [None, 1])
def test_serve_keeps_a_layers_geometry_only_within_its_cache(portraits, tmp_path,
                                                             isolated_env, cache_mb):
    """`--cache-mb` is honoured (ignoring it passed every test): a second relight of the
    same layer reuses its geometry within the default cache (no "finding faces" stage)
    and works it out again within 1 MB (where it does not fit)."""
    from limner import imaging
    from limner.client import Client

    state = tmp_path / "state"
    option = [] if cache_mb is None else ["--cache-mb", str(cache_mb)]
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "limner", "serve", "--port", "0",
                                   *option], env=isolated_env, stderr=out)
    try:
        deadline = time.time() + 60
        while (info := discovery.read(state)) is None:
            assert server.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(0.1)
        stages = []
        with Client.from_info(info) as client:
            for _ in range(2):
                stages.append([])
                client.run("relight", {"azimuth": -40.0}, imaging.to_pixels(
                    portraits["astronaut"]), on_progress=lambda job, f, stage,
                    seen=stages[-1]: seen.append(stage))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    assert "finding faces" in stages[0]
    assert ("finding faces" in stages[1]) == (cache_mb is not None), stages[1]


def test_the_readmes_main_command_writes_every_result_a_person_can_open(tmp_path,
                                                                        isolated_env,
                                                                        portraits):
    """`limner demo`, the README's main job: both portraits through every operation."""
    out = tmp_path / "demo"
    result = limner("demo", "--out", out, env=isolated_env, timeout=280)
    assert result.returncode == 0, result.stderr[-2000:]
    for portrait in ("astronaut", "grace_hopper"):
        for stem in ("background-remove", "background-replace-color=2f6fb0",
                     "background-blur-radius=12",
                     "relight-azimuth=-60-elevation=20-temperature=3800",
                     "style", "style-pencil-sketch", "grade-teal-and-orange", "mood"):
            with zipfile.ZipFile(out / f"{portrait}-{stem}.ora") as ora:
                assert {"mimetype", "stack.xml", "mergedimage.png"} <= set(ora.namelist())
        relit = cv2.imread(str(out / f"{portrait}-relight-rembrandt-softness=0.25-relit-"
                                     "rembrandt-6500-k-ai-geometric.png"))
        assert relit is not None and relit.shape == portraits[portrait].shape
    printed = result.stdout.splitlines()
    assert len(printed) >= 30 and all(os.path.exists(line) for line in printed)
