"""Write every style preset, every relight setup and a relight sweep over azimuth for both
real portraits, plus a labelled contact sheet of each, to a folder for looking at (not a
test):

    .venv/bin/python tests/benchmarks/gallery.py --out gallery/ [--only relight]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from limner import imaging
from limner.client import Client
from limner.engines.lights import SETUP_NAMES
from limner.engines.style import PRESETS
from limner.ora import read_image
from limner.server import ServerThread
from matplotlib import cbook
from PIL import Image, ImageDraw
from skimage import data

SWEEP = [(-90, 0), (-60, 20), (-30, 30), (0, 30), (30, 30), (60, 20), (90, 0), (150, 20),
         (180, 20), (0, -45), (0, 70)]
SHEETS = {
    "style": [("style", {"preset": p}, p) for p in PRESETS],
    "setups": [("relight", {"setup": s}, f"relight {s}") for s in SETUP_NAMES],
    "sweep": [("relight", {"azimuth": az, "elevation": el}, f"relight az{az:+d} el{el:+d}")
              for az, el in SWEEP],
}


def run(client: Client, op: str, params: dict, image: np.ndarray) -> np.ndarray:
    spec, buf = imaging.to_bytes(image)
    layer = client.run(op, params, buf, spec.width, spec.height, spec.channels, spec.sample)[0]
    return imaging.from_bytes(layer.data, layer.spec)


def sheet(tiles: dict[str, np.ndarray], columns: int = 4, width: int = 256) -> Image.Image:
    """The tiles side by side, each with its label above it."""
    height = round(width * next(iter(tiles.values())).shape[0] /
                   next(iter(tiles.values())).shape[1])
    rows = -(-len(tiles) // columns)
    out = Image.new("RGB", (columns * width, rows * (height + 16)))
    draw = ImageDraw.Draw(out)
    for i, (label, tile) in enumerate(tiles.items()):
        x, y = (i % columns) * width, (i // columns) * (height + 16)
        small = cv2.resize(tile[:, :, :3], (width, height), interpolation=cv2.INTER_AREA)
        out.paste(Image.fromarray(small), (x, y + 16))
        draw.text((x + 3, y + 2), label, fill=(255, 255, 255))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("gallery"))
    parser.add_argument("--only", choices=("style", "relight"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    portraits = {"astronaut": data.astronaut(),
                 "grace_hopper": read_image(cbook.get_sample_data("grace_hopper.jpg",
                                                                  asfileobj=False))}
    wanted = {name: jobs for name, jobs in SHEETS.items()
              if args.only is None or (name == "style") == (args.only == "style")}
    with ServerThread(port=0, write_discovery=False) as server, \
            Client(server.uri, server.server.token) as client:
        for name, image in portraits.items():
            for sheet_name, jobs in wanted.items():
                tiles = {"original": image}
                for op, params, label in jobs:
                    tiles[label] = run(client, op, params, image)
                    Image.fromarray(tiles[label]).save(
                        args.out / f"{name}-{label.replace(' ', '-')}.png")
                path = args.out / f"{name}-{sheet_name}-sheet.png"
                sheet(tiles).save(path)
                print(path, "—", ", ".join(tiles))


if __name__ == "__main__":
    main()
