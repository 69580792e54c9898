"""How the editor feels while Limner works (not a test: run it by hand).

    .venv/bin/python tests/benchmarks/bench_editor.py [--side 2048]
    .venv/bin/python tests/benchmarks/bench_editor.py --canvas

`--canvas`: the preview on the canvas on a 4000x6000 portrait layer zoomed to fit, in the
host's Krita under Xvfb: pictures per second on the canvas while the light is dragged over
the docker's sphere (200 moves 15 ms apart, as a hand would), how long after the release
the last picture came, and how long the full-resolution Run then takes.

Real Krita (the host's, under Xvfb) with the installed plug-in and the self-test plug-in
(tests/krita/selftest): a 16 ms precise Qt timer ticks in Krita's GUI thread while the
docker relights and then removes the background of a whole portrait layer. How late the
ticks come is what a retoucher feels as stutter (brush strokes, panning). Twice: the
backend on every core (`--threads` the machine's count: what it did before it left one
to the editor) and with its default (all cores but one). A table per run: ticks while
the backend computed, and while the docker put the layers into the document (Krita's
own work, the same in both).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))

from conftest import start_xvfb  # noqa: E402
from limner import discovery, launcher  # noqa: E402
from test_krita_gui import ROOT, install_selftest, kill_group  # noqa: E402

OPS = [["relight", {"azimuth": 60.0}], ["background.remove", {}]]


def portrait(side: int):
    from skimage import data

    return cv2.resize(data.astronaut(), (side, side), interpolation=cv2.INTER_CUBIC)


def large_portrait():
    """Grace Hopper at 4000x6000: scaled to 6000 px high and cropped at the sides."""
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        picture = cv2.cvtColor(cv2.imdecode(np.frombuffer(fh.read(), np.uint8),
                                            cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    big = cv2.resize(picture, (6000 * picture.shape[1] // picture.shape[0], 6000),
                     interpolation=cv2.INTER_CUBIC)
    left = (big.shape[1] - 4000) // 2
    return np.ascontiguousarray(big[:, left:left + 4000])


def run_krita(picture, threads: list[str], extra: dict) -> dict:
    home = Path(tempfile.mkdtemp(prefix="limner-bench-editor-"))
    resources, kritarc = home / ".local/share/krita", home / ".config/kritarc"
    subprocess.run([sys.executable, str(ROOT / "install" / "krita.py"), "--resource-dir",
                    str(resources), "--kritarc", str(kritarc)], check=True,
                   capture_output=True)
    install_selftest(resources / "pykrita", kritarc)
    work = home / "work"
    work.mkdir()
    cv2.imwrite(str(work / "portrait.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    height, width = picture.shape[:2]
    face = [int(width * 0.35), int(height * 0.1), int(width * 0.3), int(height * 0.3)]
    spec = {"image": str(work / "portrait.png"), "selection": face, "op": "relight",
            "params": {}, "screenshot": str(work / "shot.png"),
            "findings": str(work / "findings.json"), **extra}
    if "canvas_rate" in spec:
        spec["canvas_rate"]["shot"] = str(work / "canvas.png")
    (work / "spec.json").write_text(json.dumps(spec))
    launcher.write_record([sys.executable, "-m", "limner", "serve", "--port", "0",
                           "--unload-after", "0", *threads],
                          [sys.executable, str(ROOT / "install" / "setup.py")], home / "state")
    xvfb, number = start_xvfb("1600x1000")
    krita = None
    try:
        with open(home / "krita.log", "wb") as log:
            krita = subprocess.Popen(
                ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={home}", f"DISPLAY=:{number}",
                 f"LIMNER_STATE_DIR={home}/state", f"LIMNER_KRITA_SELFTEST={work}/spec.json",
                 "krita", "--nosplash"], start_new_session=True, stdout=log,
                stderr=subprocess.STDOUT)
        findings = work / "findings.json"
        deadline = time.time() + 400
        while not findings.exists() and krita.poll() is None and time.time() < deadline:
            time.sleep(0.5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            krita.wait(30)
        if not findings.exists():
            raise RuntimeError((home / "krita.log").read_text(errors="replace")[-3000:])
        found = json.loads(findings.read_text())
        if "error" in found:
            raise RuntimeError(found)
        if (work / "canvas.png").exists():
            shutil.copy2(work / "canvas.png", TESTS / "output" / "krita-canvas-6000.png")
        return found
    finally:
        if krita is not None:
            kill_group(krita)
        kill_group(xvfb)
        info = discovery.read(home / "state")
        if info:
            with contextlib.suppress(ProcessLookupError):
                os.kill(info["pid"], signal.SIGTERM)
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", type=int, default=2048)
    parser.add_argument("--canvas", action="store_true",
                        help="the preview on the canvas of a 4000x6000 layer instead")
    parser.add_argument("--docker-only", action="store_true",
                        help="with --canvas: the same drag with the preview in the docker "
                             "only (what drawing on the canvas costs)")
    args = parser.parse_args()
    if not (shutil.which("krita") and shutil.which("Xvfb")):
        sys.exit("needs the host's Krita and Xvfb (.ci/run installs them)")
    if args.canvas:
        rate = run_krita(large_portrait(), [], {"canvas_rate": {
            "moves": 200, "on_canvas": not args.docker_only}})["canvas_rate"]
        print("| document | on screen (px) | preview (px) | drag s | pictures | per second "
              "| last picture after release ms | full-resolution Run s |")
        print("|---|---|---|---|---|---|---|---|")
        print(f"| {rate['document'][0]}x{rate['document'][1]} | {rate['on_screen'][2]}x"
              f"{rate['on_screen'][3]} | {rate['preview_size'][0]}x{rate['preview_size'][1]} "
              f"| {rate['drag_seconds']} | {rate['pictures_during_drag']} | "
              f"{rate['per_second']} | {rate['last_preview_after_release_ms']} | "
              f"{rate['full_run_seconds']} |")
        return
    cores = os.cpu_count() or 1
    print(f"| backend | operation ({args.side} px) | run s | while computing: ticks, "
          "median / p99 / max late ms, > 50 ms | while adding layers: max late ms |")
    print("|---|---|---|---|---|")
    for label, threads in ((f"every core (--threads {cores})", ["--threads", str(cores)]),
                           (f"default ({max(1, cores - 1)} of {cores} cores)", [])):
        for row in run_krita(portrait(args.side), threads,
                             {"responsiveness": {"ops": OPS}})["responsiveness"]:
            busy, adding = row["computing"], row["adding_layers"]
            print(f"| {label} | {row['op']} | {row['seconds']} | {busy['ticks']}: "
                  f"{busy.get('median_ms')} / {busy.get('p99_ms')} / {busy.get('max_ms')}, "
                  f"{busy.get('over_50_ms')} | {adding.get('max_ms')} |")


if __name__ == "__main__":
    main()
