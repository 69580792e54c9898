"""Write every style preset and a relight sweep over azimuth for both real portraits, plus
contact sheets, to a folder for looking at (not a test):

    .venv/bin/python tests/benchmarks/gallery.py --out gallery/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from limner import imaging
from limner.client import Client
from limner.engines.style import PRESETS
from limner.ora import read_image
from limner.server import ServerThread
from matplotlib import cbook
from PIL import Image
from skimage import data

SWEEP = [(-90, 10), (-45, 30), (0, 0), (45, 30), (90, 10), (180, 20), (0, -60), (0, 70)]


def run(client: Client, op: str, params: dict, image: np.ndarray) -> np.ndarray:
    spec, buf = imaging.to_bytes(image)
    layer = client.run(op, params, buf, spec.width, spec.height, spec.channels, spec.sample)[0]
    return imaging.from_bytes(layer.data, layer.spec)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("gallery"))
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    portraits = {"astronaut": data.astronaut(),
                 "grace_hopper": read_image(cbook.get_sample_data("grace_hopper.jpg",
                                                                  asfileobj=False))}
    jobs = [("style", {"preset": p}, p) for p in PRESETS]
    jobs += [("relight", {"azimuth": az, "elevation": el}, f"relight az{az:+d} el{el:+d}")
             for az, el in SWEEP]
    with ServerThread(port=0, write_discovery=False) as server, \
            Client(server.uri, server.server.token) as client:
        for name, image in portraits.items():
            tiles = {"original": image}
            for op, params, label in jobs:
                tiles[label] = run(client, op, params, image)
                Image.fromarray(tiles[label]).save(out / f"{name}-{label.replace(' ', '-')}.png")
            thumbs = [cv2.resize(t, (256, round(256 * image.shape[0] / image.shape[1])),
                                 interpolation=cv2.INTER_AREA) for t in tiles.values()]
            rows = [np.hstack(thumbs[i:i + 5] + [np.zeros_like(thumbs[0])] *
                              (5 - len(thumbs[i:i + 5]))) for i in range(0, len(thumbs), 5)]
            Image.fromarray(np.vstack(rows)).save(out / f"{name}-sheet.png")
            print(out / f"{name}-sheet.png", "—", ", ".join(tiles))


if __name__ == "__main__":
    main()
