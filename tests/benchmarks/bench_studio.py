"""What studio mode costs a job, and what Ray replicas give (not a test: run it by hand).

    .venv/bin/python tests/benchmarks/bench_studio.py [--repeat 5] [--jobs 12]

1. Latency: a local `limner serve` (loopback, the discovery file's token), a studio one
   (`--studio`: TLS with a self-signed certificate, a user's token) and a studio one on
   Ray (`--ray local`: a Ray head here, two CPU replicas), each in its own process, get
   the same jobs from a client on this machine: the echo (the layer there and back: the
   transport alone), and a background removal of a layer whose matte is cached (a real
   operation's layers out, without the model's time). The differences are what the TLS
   front and the Ray hop add per job.
2. Throughput: four clients at once, each sending its own 512 px layers for background
   removal (every one a first run), through the studio on Ray with one replica and with
   two (one core each), and the local backend (one core: `--threads 1`).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from bench_backend import Backend, fresh_layers, median_time, table
from limner import imaging, studio
from limner.client import Client


class StudioBackend(Backend):
    """`limner serve --studio` on loopback in its own process, with one user."""

    def __init__(self, serve_args: tuple = ()):
        self.state = tempfile.mkdtemp(prefix="limner-bench-studio-")
        cert, key = studio.certificate(Path(self.state), ["127.0.0.1"])
        _, fingerprint = studio.tls_context(cert, key)
        token = studio.Users(Path(self.state)).add("bench")
        with socket.create_server(("127.0.0.1", 0)) as probe:
            port = probe.getsockname()[1]
        env = {**os.environ, "LIMNER_STATE_DIR": self.state}
        self.proc = subprocess.Popen([sys.executable, "-m", "limner", "serve", "--studio",
                                      "--port", str(port), "--log-level", "WARNING", *serve_args],
                                     env=env,
                                     stdout=subprocess.DEVNULL)
        deadline = time.time() + 180
        self.address = (f"wss://127.0.0.1:{port}", token, fingerprint)
        while True:
            try:
                self.client = self.another_client()
                break
            except Exception:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.2)


    def another_client(self) -> Client:
        uri, token, fingerprint = self.address
        return Client(uri, token, name="bench", fingerprint=fingerprint)


def latency_table(repeat: int) -> None:
    from skimage import data

    fronts = {"local (ws)": Backend(), "studio (wss, token)": StudioBackend(),
              "studio on Ray": StudioBackend(("--ray", "local", "--replicas", "2"))}
    rows = []
    try:
        for side in (1024, 2048):
            image = cv2.resize(np.dstack([data.astronaut(), np.full((512, 512), 255, np.uint8)]),
                               (side, side), interpolation=cv2.INTER_CUBIC)
            for job, params in (("diagnostics.echo", {}), ("background.remove", {})):
                times = []
                for backend in fronts.values():
                    backend.run(job, params, image)             # the matte, cached
                    times.append(median_time(lambda: backend.run(job, params, image), repeat))
                local, tls, ray = times
                rows.append([f"{side}x{side} RGBA u8", "echo" if job == "diagnostics.echo"
                             else "background.remove (matte cached)",
                             f"{local * 1000:.0f} ms", f"{tls * 1000:.0f} ms",
                             f"{(tls - local) * 1000:+.0f} ms", f"{ray * 1000:.0f} ms",
                             f"{(ray - tls) * 1000:+.0f} ms"])
    finally:
        for backend in fronts.values():
            backend.close()
    table("Studio front: a job through each (median; the client on the same machine)",
          ["layer", "job", "local", "studio (TLS)", "added by TLS", "studio on Ray",
           "added by the Ray hop"], rows)


def throughput_table(jobs: int) -> None:
    from skimage import data

    portrait = cv2.resize(data.astronaut(), (512, 512), interpolation=cv2.INTER_AREA)
    rows = []
    for name, backend in (("local backend, 1 core", lambda: Backend(["--threads", "1"])),
                          ("studio on Ray, 1 replica", lambda: StudioBackend(
                              ("--ray", "local", "--replicas", "1"))),
                          ("studio on Ray, 2 replicas", lambda: StudioBackend(
                              ("--ray", "local", "--replicas", "2")))):
        front = backend()
        try:
            layers = fresh_layers(portrait)
            front.run("background.remove", {}, next(layers))     # models loaded
            if "2 replicas" in name:                             # in both replicas
                for _ in range(4):
                    front.run("background.remove", {}, next(layers))
            clients = [front.client] + [front.another_client() for _ in range(3)]
            work = [next(layers) for _ in range(jobs)]
            started = time.perf_counter()

            def drive(i):
                for image in work[i::4]:
                    clients[i].run("background.remove", {}, imaging.to_pixels(image))

            threads = [threading.Thread(target=drive, args=(i,)) for i in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.perf_counter() - started
            for client in clients[1:]:
                client.close()
        finally:
            front.close()
        rows.append([name, str(jobs), f"{seconds:.1f} s", f"{jobs / seconds * 60:.0f}"])
    table("Throughput: background removal of 512 px layers, four clients at once",
          ["backend", "jobs", "wall time", "jobs per minute"], rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=12)
    args = parser.parse_args()
    latency_table(args.repeat)
    throughput_table(args.jobs)
    print(f"\n{os.cpu_count()} CPUs; repeat={args.repeat}")


if __name__ == "__main__":
    main()
