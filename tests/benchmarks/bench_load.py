"""Several editors on one backend (not a test): 1, 4 and 8 clients, each running mixed jobs
on pictures of its own through a real `limner serve` on loopback, at once. Prints a table:
jobs, lost (no answer), misrouted (an echo that is not the client's own marked picture,
or a result of another size), errors, wall time, and the backend's peak memory.

    .venv/bin/python tests/benchmarks/bench_load.py [--jobs 15] [--clients 1 4 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from limner import discovery, imaging
from limner.client import BackendError, Client
from skimage import data

#: the mix each client runs, in turn
MIX = [("grade", {"look": "warm"}), ("relight", {"azimuth": -40.0}),
       ("background.blur", {"radius": 8}), ("diagnostics.echo", {}),
       ("relight", {"azimuth": 40.0}), ("style", {"preset": "pencil sketch"})]


def picture(seed: int) -> np.ndarray:
    """The astronaut at 256 px with a mark of the client's own in a corner."""
    image = cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    image[:8, :8] = (seed * 37 % 256, seed * 91 % 256, seed * 53 % 256)
    return np.ascontiguousarray(image)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=15)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp())
    server = subprocess.Popen([sys.executable, "-m", "limner", "serve", "--port", "0"],
                              env={**os.environ, "LIMNER_STATE_DIR": str(state)},
                              stderr=subprocess.DEVNULL)
    try:
        while (info := discovery.read(state)) is None:
            time.sleep(0.1)
        print(f"{'clients':>7} {'jobs':>5} {'lost':>5} {'misrouted':>9} {'errors':>6} "
              f"{'wall s':>7} {'peak MiB':>8}")
        for clients in args.clients:
            tally = {"jobs": 0, "lost": 0, "misrouted": 0, "errors": 0}
            lock = threading.Lock()

            def work(n: int) -> None:
                mine = picture(n)
                with Client.from_info(info, receive_timeout=300) as client:
                    for k in range(args.jobs):
                        op, params = MIX[(n + k) % len(MIX)]
                        try:
                            layers = client.run(op, params, imaging.to_pixels(mine))
                        except BackendError:
                            with lock:
                                tally["errors"] += 1
                            continue
                        with lock:
                            tally["jobs"] += 1
                            if not layers:
                                tally["lost"] += 1
                            elif op == "diagnostics.echo" and not np.array_equal(
                                    imaging.from_pixels(layers[0][1]), mine):
                                tally["misrouted"] += 1
                            elif op != "diagnostics.echo" and \
                                    imaging.from_pixels(layers[0][1]).shape[:2] != mine.shape[:2]:
                                tally["misrouted"] += 1

            started = time.perf_counter()
            threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - started
            expected = clients * args.jobs
            lost = tally["lost"] + expected - tally["jobs"] - tally["errors"]
            print(f"{clients:>7} {expected:>5} {lost:>5} {tally['misrouted']:>9} "
                  f"{tally['errors']:>6} {wall:>7.1f} {peak_rss_mib(server.pid):>8.0f}")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
