"""What studio mode costs a job (not a test: run it by hand), and prints a table.

    .venv/bin/python tests/benchmarks/bench_studio.py [--repeat 5]

A local `limner serve` (loopback, the discovery file's token) and a studio one (`--studio`:
TLS with a self-signed certificate, a user's token), each in its own process, get the same
jobs from a client on this machine: the echo (the layer there and back: the transport
alone), and a background removal of a layer whose matte is cached (a real operation's
layers out, without the model's time, which TLS does not change). The difference is what
the TLS front adds per job.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from bench_backend import Backend, median_time, table
from limner import studio
from limner.client import Client


class StudioBackend(Backend):
    """`limner serve --studio` on loopback in its own process, with one user."""

    def __init__(self):
        self.state = tempfile.mkdtemp(prefix="limner-bench-studio-")
        cert, key = studio.certificate(Path(self.state), ["127.0.0.1"])
        _, fingerprint = studio.tls_context(cert, key)
        token = studio.Users(Path(self.state)).add("bench")
        with socket.create_server(("127.0.0.1", 0)) as probe:
            port = probe.getsockname()[1]
        env = {**os.environ, "LIMNER_STATE_DIR": self.state}
        self.proc = subprocess.Popen([sys.executable, "-m", "limner", "serve", "--studio",
                                      "--port", str(port), "--log-level", "WARNING"], env=env,
                                     stdout=subprocess.DEVNULL)
        deadline = time.time() + 60
        while True:
            try:
                self.client = Client(f"wss://127.0.0.1:{port}", token, name="bench",
                                     fingerprint=fingerprint)
                break
            except Exception:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from skimage import data

    fronts = {"local (ws)": Backend(), "studio (wss, token)": StudioBackend()}
    rows = []
    try:
        for side in (1024, 2048):
            image = cv2.resize(np.dstack([data.astronaut(), np.full((512, 512), 255, np.uint8)]),
                               (side, side), interpolation=cv2.INTER_CUBIC)
            times = {}
            for name, backend in fronts.items():
                backend.run("background.remove", {}, image)         # the matte, cached
                times[name] = (
                    median_time(lambda: backend.run("diagnostics.echo", {}, image),
                                args.repeat),
                    median_time(lambda: backend.run("background.remove", {}, image),
                                args.repeat))
            (echo_local, cut_local), (echo_tls, cut_tls) = times.values()
            mib = image.nbytes / 2**20
            rows.append([f"{side}x{side} RGBA u8 ({mib:.0f} MiB)", "echo",
                         f"{echo_local * 1000:.0f} ms", f"{echo_tls * 1000:.0f} ms",
                         f"{(echo_tls - echo_local) * 1000:+.0f} ms"])
            rows.append(["", "background.remove (matte cached)",
                         f"{cut_local * 1000:.0f} ms", f"{cut_tls * 1000:.0f} ms",
                         f"{(cut_tls - cut_local) * 1000:+.0f} ms"])
    finally:
        for backend in fronts.values():
            backend.close()
    table("Studio front: a job through each (median; the client on the same machine)",
          ["layer", "job", "local", "studio (TLS)", "added by TLS"], rows)
    print(f"\n{os.cpu_count()} CPUs; repeat={args.repeat}")


if __name__ == "__main__":
    main()
