"""Shared fixtures: the two real portraits, and a real backend on a real loopback socket."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from limner import imaging, protocol
from limner.client import Client
from limner.ora import read_image
from limner.server import ServerThread
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parent.parent
#: every Krita the tests run: 5.1 from the host's Debian 12 (None), 5.2, 5.3 and 6.0 from
#: the chroots install/editors-chroot.sh builds
KRITA_CHROOTS = {
    "host-5.1": None,
    "chroot-5.2": Path(os.environ.get("LIMNER_EDITORS_CHROOT",
                                      ROOT / ".cache" / "editors-trixie")),
    "chroot-5.3": Path(os.environ.get("LIMNER_EDITORS_SID_CHROOT",
                                      ROOT / ".cache" / "editors-sid")),
    "chroot-6.0": Path(os.environ.get("LIMNER_EDITORS_KRITA6_CHROOT",
                                      ROOT / ".cache" / "editors-krita6"))}


def krita_present(name: str, program: str = "kritarunner") -> bool:
    chroot = KRITA_CHROOTS[name]
    if chroot is None:
        return shutil.which(program) is not None
    return (chroot / "usr" / "bin" / program).exists()


# A point plainly on each portrait's face (row, column), and the face's box (rows, columns)
# as the face mesh finds it.
FACE = {"astronaut": (100, 210), "grace_hopper": (250, 260)}
FACE_BOX = {"astronaut": (slice(72, 176), slice(180, 270)),
            "grace_hopper": (slice(132, 332), slice(172, 356))}


@pytest.fixture(scope="session")
def portraits() -> dict[str, np.ndarray]:
    from matplotlib import cbook
    from skimage import data

    return {"astronaut": data.astronaut(),
            "grace_hopper": read_image(cbook.get_sample_data("grace_hopper.jpg",
                                                             asfileobj=False))}


def use_hub(monkeypatch, cache: Path, endpoint: str | None = None) -> None:
    """huggingface_hub pointed at the cache folder `cache`, and at `endpoint` (a FakeHub)
    or else offline, for one test: set where the library reads them (its constants, read
    once when it is imported) and in the environment (for the processes a test starts)."""
    from huggingface_hub import constants

    offline = endpoint is None
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    if endpoint is not None:
        monkeypatch.setattr(constants, "ENDPOINT", endpoint)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                            endpoint + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setenv("HF_ENDPOINT", endpoint)


@pytest.fixture
def fresh_engines():
    """The model-manager engines forgotten before and after the test, so they look for
    their weights again (they keep what they loaded)."""
    from limner import engines

    def forget():
        for kind in ("style", "relight", "matting"):
            for info in engines.of_kind(kind):
                if info.models:
                    engines.unload(kind, info.name)

    forget()
    yield
    forget()


@pytest.fixture
def lora_hub(tmp_path, monkeypatch, fresh_engines):
    """Mocked edge: a hub on loopback serving a 24 MB file as the LCM-LoRA, with an empty
    models folder and hub cache, for a download from an editor."""
    import os

    from fake_hub import FakeHub
    from limner import models

    repo = tmp_path / "lora-repo"
    repo.mkdir()
    (repo / "pytorch_lora_weights.safetensors").write_bytes(os.urandom(24 << 20))
    with FakeHub({models.MODELS["lcm-lora-sd15"].repo: repo}) as hub:
        use_hub(monkeypatch, tmp_path / "cache", hub.url)
        monkeypatch.setenv("LIMNER_MODELS_DIR", str(tmp_path / "models"))
        yield hub


@pytest.fixture(scope="session")
def tiny_model_folder(tmp_path_factory) -> Path:
    """Tiny random SD 1.5 img2img and inpainting pipelines, a ControlNet, an LCM-LoRA,
    both IC-Light offsets for the tiny UNet and a tiny model in BiRefNet's packaging, one
    folder each, built once for the session."""
    import tiny_birefnet
    from tiny_diffusion import build, build_controlnet, build_iclight_offsets, build_lcm_lora

    folder = tmp_path_factory.mktemp("models")
    build(folder / "sd15")
    build(folder / "sd15-inpaint", inpaint=True)
    build_controlnet(folder / "sd15", folder / "controlnet-lineart")
    build_lcm_lora(folder / "sd15", folder / "lcm-lora-sd15")
    build_iclight_offsets(folder / "sd15", folder / "ic-light-fc")
    build_iclight_offsets(folder / "sd15", folder / "ic-light-fbc", "fbc")
    tiny_birefnet.build(folder / "birefnet-matting")
    return folder


@pytest.fixture
def tiny_models(tiny_model_folder, tmp_path, monkeypatch) -> Path:
    """The tiny models where the engines look (LIMNER_MODELS_DIR), the hub off and its
    cache empty, for this test alone."""
    monkeypatch.setenv("LIMNER_MODELS_DIR", str(tiny_model_folder))
    use_hub(monkeypatch, tmp_path / "hub")
    return tiny_model_folder


@pytest.fixture
def without_models(tmp_path, monkeypatch, fresh_engines):
    """No model anywhere: an empty models folder and hub cache, the hub off, and the
    model engines forgotten so they look for their weights again."""
    monkeypatch.setenv("LIMNER_MODELS_DIR", str(tmp_path / "models"))
    use_hub(monkeypatch, tmp_path / "hub")


@pytest.fixture
def small_portrait(portraits):
    import cv2

    return cv2.resize(portraits["astronaut"], (128, 128), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One backend for the session (models load once); tests that need their own limits
    start their own ServerThread."""
    with ServerThread(port=0, state_dir=tmp_path_factory.mktemp("state")) as running:
        yield running


@pytest.fixture
def client(server):
    """A client of the session's backend; no wait for a message is longer than two
    minutes, so a backend that stops answering fails the test instead of hanging it."""
    with Client(server.uri, server.server.token, name="pytest", receive_timeout=120) as c:
        yield c


@pytest.fixture
def raw(server):
    """An authenticated raw WebSocket, for sending what a well-behaved client never would."""
    with connect(server.uri, compression=None, max_size=None) as ws:
        ws.send(protocol.Hello(server.server.token, "pytest-raw").to_json())
        assert protocol.decode(ws.recv(), protocol.SERVER_TYPES)["type"] == protocol.WELCOME
        yield ws


def deep(image: np.ndarray, sample: str, seed: int = 0) -> np.ndarray:
    """An 8-bit picture in a deeper sample type, with detail finer than an 8-bit step
    added (up to 0.4 of one), so a path that quietly drops to 8 bits shows."""
    noise = np.random.default_rng(seed).uniform(-0.4, 0.4, image.shape) / 255
    return imaging.from_float(np.clip(imaging.to_float(image) + noise, 0, 1).astype(
        np.float32), sample)


def run_array(client: Client, op: str, params: dict, image: np.ndarray,
              mask: np.ndarray | None = None, **kwargs) -> list[tuple[object, np.ndarray]]:
    """Run a job on an array; returns (ResultLayer, pixels as (H, W, C) array) pairs."""
    layers = client.run(op, params, imaging.to_pixels(image),
                        mask=None if mask is None else np.ascontiguousarray(mask, np.uint8).tobytes(),
                        **kwargs)
    return [(layer, imaging.from_pixels(pixels)) for layer, pixels in layers]


def cancel_at_first_step(client: Client, run) -> tuple[list[str], Exception]:
    """Call `run(on_progress)`, cancelling the job at its first denoising step; returns
    the steps reported and the error the run ended with."""
    steps = []

    def progress(job, fraction, stage):
        if stage.startswith("step"):
            steps.append(stage)
            if len(steps) == 1:
                client.cancel(job)

    with pytest.raises(Exception) as err:
        run(progress)
    return steps, err.value


def assert_asks_to_install(run, command: str) -> None:
    """`run()` fails with model_missing, and the message says what to run to fix it."""
    from limner.client import BackendError

    with pytest.raises(BackendError) as err:
        run()
    assert err.value.code == protocol.E_MODEL_MISSING
    assert command in err.value.message, err.value.message


def next_text(ws) -> dict:
    """The next JSON message on a raw connection (skipping result frames)."""
    while True:
        message = ws.recv(timeout=30)
        if isinstance(message, str):
            return protocol.decode(message, protocol.SERVER_TYPES)


#: the modules that run a real editor (GIMP, Krita): marked `editors`
EDITOR_MODULES = {"test_gimp", "test_krita", "test_krita_gui"}
#: the modules whose tests run the models on real portraits or build environments
#: (seconds each): marked `slow`. `pytest -m "not editors and not slow"` is the quick loop
SLOW_MODULES = {"test_background", "test_cli", "test_diffusion", "test_files", "test_generate",
                "test_grade", "test_hair_matte", "test_iclight", "test_provenance",
                "test_idle", "test_pull", "test_relight", "test_relight_setups",
                "test_relight_turned",
                "test_setup", "test_style", "test_whole_subject"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rpartition(".")[2] if item.module else ""
        if module in EDITOR_MODULES:
            item.add_marker(pytest.mark.editors)
        elif module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


def pytest_sessionfinish(session, exitstatus):
    """On CI (LIMNER_REQUIRE_EDITORS), a skipped test is a failed run: every test must
    really run there, the editors' included."""
    import os

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("LIMNER_REQUIRE_EDITORS") and skipped and exitstatus == 0:
        reporter.write_line(f"{len(skipped)} test(s) skipped: CI runs every test",
                            red=True, bold=True)
        session.exitstatus = 1


def start_xvfb(size: str, tcp: bool = False):
    """A virtual display for an editor's GUI: (the Xvfb process, its number), once a
    client has connected to it (its socket file can be there before the server answers,
    and on a busy machine an editor started then failed to open the display). The caller
    kills the process group. `tcp`: also on 127.0.0.1 (for a chroot, which shares the
    network but not /tmp), and it is that address that is tried."""
    import os
    import random
    import subprocess
    import time

    for _ in range(50):              # a number no display had lately (:0 is a desktop's)
        number = random.randint(100, 999)
        if not (Path(f"/tmp/.X{number}-lock").exists()
                or Path(f"/tmp/.X11-unix/X{number}").exists()):
            break
    listen = ["-listen", "tcp", "-ac"] if tcp else ["-nolisten", "tcp"]
    # -noreset: an X server starts afresh when its last client leaves (the check below),
    # and an editor connecting meanwhile finds no display
    process = subprocess.Popen(["Xvfb", f":{number}", "-noreset", "-screen", "0",
                                f"{size}x24", *listen],
                               start_new_session=True, stderr=subprocess.DEVNULL)
    display = f"127.0.0.1:{number}" if tcp else f":{number}"
    deadline = time.monotonic() + 60
    while subprocess.run(["xdpyinfo", "-display", display], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL).returncode != 0:
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                os.killpg(process.pid, 9)
            raise RuntimeError(f"Xvfb {display} did not start")
        time.sleep(0.1)
    return process, number
