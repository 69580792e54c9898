"""A good neighbour on a retoucher's laptop: `limner serve --unload-after S` lets the models
and caches go after S seconds without a job (the welcome's `loaded` and `limner status`
say so) and the next job loads them again; `--threads N` keeps the compute to N cores; a
job no longer leaves its arrays behind once it is done."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from limner import discovery, imaging
from limner.client import Client


@pytest.fixture
def serve(tmp_path):
    """Start `limner serve` with the given options; yields a function that does so and
    returns (the discovery record, its state folder)."""
    started = []

    def start(*options, name="state"):
        state = tmp_path / name
        process = subprocess.Popen([sys.executable, "-m", "limner", "serve", "--port", "0",
                                    *options], env={**os.environ, "LIMNER_STATE_DIR": str(state)},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(process)
        deadline = time.time() + 60
        while (info := discovery.read(state)) is None or info["pid"] != process.pid:
            assert process.poll() is None and time.time() < deadline, "the backend did not start"
            time.sleep(0.1)
        return info, state

    yield start
    for process in started:
        process.terminate()
        process.wait(30)


def welcome(info) -> dict:
    with Client.from_info(info) as client:
        return client.described


def cpu_ticks(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_idle_backend_lets_its_models_go_and_loads_them_again(serve, portraits):
    info, state = serve("--unload-after", "2")
    small = cv2.resize(portraits["astronaut"], (384, 384))
    with Client.from_info(info) as client:
        client.run("relight", {}, imaging.to_pixels(small))
    busy = welcome(info)
    assert {"relight/geometric", "face/mediapipe", "matting/rvm"} <= set(busy["loaded"])
    time.sleep(3.5)
    idle = welcome(info)
    assert idle["loaded"] == [] and idle["cache_mb"] == 0
    assert idle["memory_mb"] < busy["memory_mb"]
    status = subprocess.run([sys.executable, "-m", "limner", "status"], capture_output=True,
                            text=True, env={**os.environ, "LIMNER_STATE_DIR": str(state)})
    assert "models loaded: none" in status.stdout, status.stdout + status.stderr
    stages = []
    with Client.from_info(info) as client:
        (layer, pixels), *_ = client.run(
            "relight", {"azimuth": 40.0}, imaging.to_pixels(small),
            on_progress=lambda job, fraction, stage: stages.append(stage))
    assert any("loading the models again" in stage for stage in stages), stages
    assert imaging.from_pixels(pixels).shape[:2] == small.shape[:2]
    assert "relight/geometric" in welcome(info)["loaded"]


def test_unload_after_zero_keeps_the_models(serve, portraits):
    info, _ = serve("--unload-after", "0")
    with Client.from_info(info) as client:
        client.run("background.blur", {}, imaging.to_pixels(
            cv2.resize(portraits["astronaut"], (256, 256))))
    time.sleep(1.5)
    assert "matting/rvm" in welcome(info)["loaded"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("op, params", [("background.remove", {}),
                                        ("style", {"preset": "oil painting"})])
def test_threads_one_keeps_the_compute_to_one_core(serve, portraits, op, params):
    """CPU time over wall time during a background removal at 1024 px (RVM on ONNX
    Runtime, OpenCV's filters) and an oil painting (the style networks' own sessions
    used every core): with --threads 1 no more than one core's worth (1.33 with two
    threads on this 2-core machine)."""
    info, _ = serve("--threads", "1", "--unload-after", "0")
    image = cv2.resize(portraits["astronaut"], (1024, 1024))
    with Client.from_info(info) as client:
        client.run(op, params, imaging.to_pixels(image))                   # models loaded
        before, started = cpu_ticks(info["pid"]), time.perf_counter()
        client.run(op, params, imaging.to_pixels(np.ascontiguousarray(
            image[:, ::-1])))                                              # nothing cached
        wall = time.perf_counter() - started
    used = (cpu_ticks(info["pid"]) - before) / os.sysconf("SC_CLK_TCK")
    assert used / wall <= 1.15, f"{used:.2f} s of CPU in {wall:.2f} s"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_finished_job_leaves_nothing_of_its_layer_behind(serve, portraits):
    """mediapipe keeps an ImportError whose traceback held every frame of the job that
    first imported it, so a 2048 px relight's arrays stayed for the backend's life: idle,
    with its models released, it still held about 900 MB. Now under 400 MB (the code of
    the libraries it loaded, mostly)."""
    info, _ = serve("--unload-after", "1.5")
    image = cv2.resize(portraits["astronaut"], (2048, 2048))
    with Client.from_info(info) as client:
        client.run("relight", {}, imaging.to_pixels(image))
    time.sleep(3.5)
    idle = welcome(info)
    assert idle["loaded"] == [] and idle["cache_mb"] == 0
    assert idle["memory_mb"] < 420, idle["memory_mb"]     # 377-382 here; the goal is 400


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_style_networks_give_their_memory_back_after_a_job(serve, portraits):
    """ONNX Runtime's arena kept the style network's largest buffers for the backend's
    life and grew on the next run: two oil paintings at 1024 px left it holding 1.35 GB.
    Without the arena, and with what a job freed given back, about 240 MB."""
    info, _ = serve("--unload-after", "0")
    image = cv2.resize(portraits["astronaut"], (1024, 1024))
    with Client.from_info(info) as client:
        for pixels in (image, np.ascontiguousarray(image[:, ::-1])):
            client.run("style", {"preset": "oil painting"}, imaging.to_pixels(pixels))
    assert welcome(info)["memory_mb"] < 600, welcome(info)["memory_mb"]
