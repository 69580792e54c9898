"""Benchmark the backend and print tables (not a test: run it by hand).

    .venv/bin/python tests/benchmarks/bench_backend.py [--repeat 5] [--relight-only]
                                      [--matting-only] [--grade-only] [--operations-only]

1. Pixel transfer: a layer's round trip through a real `limner serve` process (echo),
   beside a raw loopback TCP socket moving the same bytes both ways (the physical limit
   here) and PNG encode + decode of the same buffer (what a PNG-based protocol pays, once
   per direction).
2. Operations (background, relight, grade, mood, every style preset): latency on a real
   portrait scaled to each size, and the backend process's peak resident memory during
   those runs (Linux: VmHWM, reset to the current size before each row, so the models
   already loaded count in), and the peak over them all.
   Every run gets a layer that differs by one pixel, so no cached matte is reused.
3. Background removal at each hair detail level (off: the engine's own matte; normal and
   fine: refined at the hair), first run on a layer and again on the same layer (the
   matte cached).
4. Relight as a retoucher moves the light: the first run on a layer (its geometry worked
   out: every repetition gets a layer that differs by one pixel), a re-light of the same
   layer with a new light each time (geometry cached), and a 512 px preview.
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from limner import discovery, imaging
from limner.client import Client
from limner.ora import read_image

#: which pixel the next fresh layer changes: counted over the whole run, so two tables
#: that start from the same picture never send the same layer (the backend would find its
#: matte cached, and a "first run" would be a cached one)
_FRESH = itertools.count(1)


def fresh_layers(image: np.ndarray):
    """Copies of `image` that each differ by one pixel: every run is a first run."""
    while True:
        other = image.copy()
        other.flat[next(_FRESH)] ^= 1
        yield other


def median_time(fn, repeat: int) -> float:
    fn()  # warm-up (model loading, first-touch allocations)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class Backend:
    """`limner serve` in its own process, so its memory is measured alone."""

    def __init__(self, serve_args: list[str] = ()):
        self.state = tempfile.mkdtemp(prefix="limner-bench-")
        env = {**os.environ, "LIMNER_STATE_DIR": self.state}
        self.proc = subprocess.Popen([sys.executable, "-m", "limner", "serve", "--port", "0",
                                      "--log-level", "WARNING", *serve_args], env=env)
        deadline = time.time() + 60
        while discovery.read(Path(self.state)) is None:
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("limner serve did not start")
            time.sleep(0.1)
        self.client = Client.discover(Path(self.state), name="bench")

    def another_client(self) -> Client:
        """One more connection (another retoucher)."""
        return Client.discover(Path(self.state), name="bench")

    def reset_peak(self) -> None:
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")

    def peak_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def run(self, op: str, params: dict, image: np.ndarray, preview_side: int | None = None):
        return self.client.run(op, params, imaging.to_pixels(image),
                               preview_side=preview_side)

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(30)


def raw_socket_round_trip(payload: bytes) -> float:
    """Send the bytes to a loopback peer that sends them straight back."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    size = len(payload)

    def echo():
        conn, _ = server.accept()
        with conn:
            buf = bytearray(size)
            view, got = memoryview(buf), 0
            while got < size:
                got += conn.recv_into(view[got:])
            conn.sendall(buf)

    thread = threading.Thread(target=echo)
    thread.start()
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(payload)
        back = bytearray(size)
        view, got = memoryview(back), 0
        while got < size:
            got += client.recv_into(view[got:])
    elapsed = time.perf_counter() - start
    thread.join()
    server.close()
    return elapsed


def png_cost(image: np.ndarray) -> float:
    bgra = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    start = time.perf_counter()
    ok, encoded = cv2.imencode(".png", bgra, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    return time.perf_counter() - start


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print(f"\n{title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(x).ljust(w) for x, w in zip(row, widths)) + " |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--relight-only", action="store_true", help="the relight table alone")
    parser.add_argument("--matting-only", action="store_true",
                        help="the hair detail table alone")
    parser.add_argument("--grade-only", action="store_true",
                        help="the grading and mood table alone")
    parser.add_argument("--operations-only", action="store_true",
                        help="the operations table alone (every operation's latency and peak)")
    parser.add_argument("--serve", default="",
                        help="more arguments for limner serve, e.g. '--cache-mb 256'")
    args = parser.parse_args()
    from skimage import data

    backend = Backend(args.serve.split())
    try:
        if args.relight_only:
            relight_table(backend, data.astronaut(), args.repeat)
            return
        if args.matting_only:
            matting_table(backend, data.astronaut(), args.repeat)
            return
        if args.grade_only:
            grade_table(backend, data.astronaut(), args.repeat)
            return
        if args.operations_only:
            operations_table(backend, data.astronaut(), args.repeat)
            return
        rng = np.random.default_rng(0)
        rows = []
        for side, sample in ((1024, "u8"), (4096, "u8"), (4096, "u16")):
            dtype = imaging.DTYPES[sample]
            image = rng.integers(0, np.iinfo(dtype).max, (side, side, 4), dtype=dtype)
            backend.reset_peak()
            server = median_time(lambda: backend.run("diagnostics.echo", {}, image), args.repeat)
            peak = backend.peak_mib()
            raw = median_time(lambda: raw_socket_round_trip(image.tobytes()), args.repeat)
            png = median_time(lambda: png_cost(image), max(1, args.repeat // 2))
            rows.append([f"{side}x{side} RGBA {sample}", f"{image.nbytes / 2**20:.0f} MiB",
                         f"{server * 1000:.0f} ms", f"{raw * 1000:.0f} ms",
                         f"{png * 1000:.0f} ms", f"{2 * png * 1000:.0f} ms", f"{peak:.0f} MiB"])
        table("Pixel transfer (round trip, median)",
              ["layer", "size", "limner echo", "raw TCP socket", "PNG enc+dec (1 way)",
               "PNG both ways", "backend peak RSS"], rows)

        portrait = data.astronaut()
        operations_table(backend, portrait, args.repeat)
        matting_table(backend, portrait, args.repeat)
        relight_table(backend, portrait, args.repeat)
        grade_table(backend, portrait, args.repeat)
    finally:
        backend.close()
    print(f"\n{os.cpu_count()} CPUs; repeat={args.repeat}")


def operations_table(backend: Backend, portrait: np.ndarray, repeat: int) -> None:
    """Every operation at 1024 and 2048 px: latency, the peak during its runs, and at the
    end the highest of those peaks: what the backend needed at most after a run of every
    operation (each row's VmHWM starts from what is resident then, so none is missed)."""
    from limner.engines.style import PRESETS

    jobs = [("background.remove", {"engine": "rvm"}),
            ("background.remove", {"engine": "mediapipe"}),
            ("background.replace", {"color": "#3060c0"}),
            ("background.blur", {"radius": 24}),
            ("relight", {"setup": "rembrandt"}),
            ("grade", {"look": "teal and orange"}),
            ("mood", {"mood": "golden hour"})]
    jobs += [("style", {"preset": preset}) for preset in PRESETS]
    rows, overall = [], 0.0
    for op, params in jobs:
        for side in (1024, 2048):
            layers = fresh_layers(cv2.resize(portrait, (side, side),
                                             interpolation=cv2.INTER_CUBIC))
            backend.reset_peak()
            seconds = median_time(lambda: backend.run(op, params, next(layers)), repeat)
            peak = backend.peak_mib()
            overall = max(overall, peak)
            rows.append([op, params.get("preset", params.get("engine", next(iter(
                params.values())))), f"{side}x{side}", f"{seconds * 1000:.0f} ms",
                f"{peak:.0f} MiB"])
    rows.append(["every operation", "", "", "", f"{overall:.0f} MiB"])
    table("Operations (end to end through the server, median; first runs on a layer)",
          ["operation", "engine / preset", "size", "latency", "backend peak RSS"], rows)


def matting_table(backend: Backend, portrait: np.ndarray, repeat: int) -> None:
    rows = []
    for detail in ("off", "normal", "fine"):
        for side in (1024, 2048):
            image = cv2.resize(portrait, (side, side), interpolation=cv2.INTER_CUBIC)
            layers = fresh_layers(image)
            params = {"hair_detail": detail}
            backend.reset_peak()
            first = median_time(lambda: backend.run("background.remove", params, next(layers)),
                                repeat)
            peak = backend.peak_mib()
            again = median_time(lambda: backend.run("background.remove", params, image), repeat)
            rows.append([detail, f"{side}x{side}", f"{first * 1000:.0f} ms",
                         f"{again * 1000:.0f} ms", f"{peak:.0f} MiB"])
    table("Background removal by hair detail (rvm, end to end through the server, median)",
          ["hair detail", "layer", "first run", "same layer again (matte cached)",
           "backend peak RSS"], rows)


def grade_table(backend: Backend, portrait: np.ndarray, repeat: int) -> None:
    """The grading work alone (in this process) and end to end through the server."""
    from limner import grading
    from matplotlib import cbook

    reference = read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    rows = []
    big = cv2.resize(portrait, (4096, 4096), interpolation=cv2.INTER_CUBIC)
    lut = grading.look_table("teal and orange")
    look = {"look": "teal and orange", "protect_skin": 0.0}
    for sample in ("u8", "u16", "f32"):
        samples = imaging.from_float(imaging.to_float(big), sample)
        alone = median_time(lambda: grading.apply_table(samples[:, :, :3], lut), repeat)
        served = median_time(lambda: backend.run("grade", look, samples), repeat)
        rows.append([f"LUT (teal and orange) 4096x4096 {sample}", f"{alone * 1000:.0f} ms",
                     f"{served * 1000:.0f} ms"])
    side = cv2.resize(portrait, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    source, ref = imaging.to_float(side), imaging.to_float(reference[..., :3])
    for method in grading.MATCH_METHODS:
        alone = median_time(lambda: grading.match_colour(source, ref, method), repeat)
        rows.append([f"match colour ({method}) 2048x2048", f"{alone * 1000:.0f} ms", "—"])
    backend.run("mood", {"mood": "golden hour"}, side)            # geometry and matte cached
    for mood in ("golden hour", "film noir"):
        seconds = median_time(lambda: backend.run("mood", {"mood": mood}, side), repeat)
        rows.append([f"mood {mood} 2048x2048 (geometry cached)", "—",
                     f"{seconds * 1000:.0f} ms"])
    table("Grading and moods (median)", ["work", "the work alone", "end to end"], rows)


def relight_table(backend: Backend, portrait: np.ndarray, repeat: int) -> None:
    rows = []
    lights = iter(range(10**6))

    def moved() -> dict:                     # a new light every run, as a dragged control
        return {"azimuth": -90 + (next(lights) * 37) % 180, "elevation": 20}

    for side in (512, 1024, 2048):
        image = cv2.resize(portrait, (side, side), interpolation=cv2.INTER_CUBIC)
        layers = fresh_layers(image)
        measured = {}
        backend.reset_peak()
        measured["first run on a layer"] = median_time(
            lambda: backend.run("relight", moved(), next(layers)), repeat)
        backend.run("relight", moved(), image)   # its geometry, cached
        measured["re-light (geometry cached)"] = median_time(
            lambda: backend.run("relight", moved(), image), repeat)
        measured["re-light, rim setup (3 lights)"] = median_time(
            lambda: backend.run("relight", {**moved(), "setup": "rim"}, image), repeat)
        if side > 512:
            measured["preview at 512 px (cached)"] = median_time(
                lambda: backend.run("relight", moved(), image, preview_side=512), repeat)
        peak = backend.peak_mib()
        first = measured["first run on a layer"]
        for what, seconds in measured.items():
            rows.append([what, f"{side}x{side}", f"{seconds * 1000:.0f} ms",
                         f"{seconds / first:.2f}", f"{peak:.0f} MiB"])
    table("Relight: moving the light (end to end through the server, median)",
          ["run", "layer", "latency", "of the first run", "backend peak RSS (size)"], rows)


if __name__ == "__main__":
    main()
