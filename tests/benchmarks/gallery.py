"""Write every style preset, every relight setup, a relight sweep over azimuth, every
mood and every built-in grading look, and the hair of a background replacement at each
hair detail level for both real portraits (and for a composite with curly synthetic hair),
and every matte mode over a bright green backdrop for the three portraits (the
cameraman too) and the curly composite, and every relight setup on both portraits turned
30 degrees each way (tests/turned.py), plus a labelled contact sheet of each, to a
folder for looking at (not a test):

    .venv/bin/python tests/benchmarks/gallery.py --out gallery/ \
        [--only relight|hair|style|mood|matte]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from limner import grading, imaging
from limner.client import Client
from limner.engines.lights import SETUP_NAMES
from limner.engines.style import PRESETS
from limner.operations.mood import MOODS
from limner.ora import read_image
from limner.server import ServerThread
from matplotlib import cbook
from PIL import Image, ImageDraw
from skimage import data

SWEEP = [(-90, 0), (-60, 20), (-30, 30), (0, 30), (30, 30), (60, 20), (90, 0), (150, 20),
         (180, 20), (0, -45), (0, 70)]
HAIR = [("background.replace", {"color": "#e8c840", "hair_detail": d}, f"hair {d}")
        for d in ("off", "normal", "fine")]
MATTE = [("background.replace", {"color": "#00ff00", "hair_detail": d}, f"matte {d}")
         for d in ("off", "normal", "fine")]
SHEETS = {
    "style": [("style", {"preset": p}, p) for p in PRESETS],
    "setups": [("relight", {"setup": s}, f"relight {s}") for s in SETUP_NAMES],
    "sweep": [("relight", {"azimuth": az, "elevation": el}, f"relight az{az:+d} el{el:+d}")
              for az, el in SWEEP],
    "moods": [("mood", {"mood": m}, f"mood {m}") for m in MOODS],
    "looks": [("grade", {"look": look, "protect_skin": 0.6}, f"look {look}")
              for look in grading.LOOKS],
}


def run(client: Client, op: str, params: dict, image: np.ndarray) -> np.ndarray:
    (_, pixels), *_ = client.run(op, params, imaging.to_pixels(image))
    return imaging.from_pixels(pixels)


def curly(client: Client, portrait: np.ndarray) -> np.ndarray:
    """The portrait's subject with curly synthetic strands over a soft gradient."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import synthetic_hair

    matte = run(client, "background.remove", {"output": "matte", "hair_detail": "off"},
                portrait)
    background = synthetic_hair.backgrounds(portrait.shape[:2])["gradient"]
    image, _, _ = synthetic_hair.composite(portrait, imaging.to_float(matte)[:, :, 0],
                                           background, seed=3)
    return image


def head(tile: np.ndarray) -> np.ndarray:
    """The top middle of a portrait (where the hair is), at twice the size."""
    h, w = tile.shape[:2]
    crop = tile[:h * 2 // 5, w // 5:w * 4 // 5]
    return cv2.resize(crop, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)


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
    parser.add_argument("--only", choices=("style", "relight", "hair", "mood", "matte"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    portraits = {"astronaut": data.astronaut(),
                 "grace_hopper": read_image(cbook.get_sample_data("grace_hopper.jpg",
                                                                  asfileobj=False))}
    groups = {"style": "style", "setups": "relight", "sweep": "relight", "hair": "hair",
              "moods": "mood", "looks": "mood", "matte": "matte"}
    wanted = {name: jobs for name, jobs in {**SHEETS, "hair": HAIR, "matte": MATTE}.items()
              if args.only in (None, groups[name])}
    with ServerThread(port=0, write_discovery=False) as server, \
            Client(server.uri, server.server.token) as client:
        if "hair" in wanted or "matte" in wanted:
            portraits["curly"] = curly(client, portraits["astronaut"])
        if "matte" in wanted:
            portraits["camera"] = np.dstack([data.camera()] * 3)
        if "setups" in wanted:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from turned import turned

            for name in ("astronaut", "grace_hopper"):
                for yaw in (30, -30):
                    portraits[f"{name}-turned{yaw:+d}"] = turned(portraits[name], yaw)
        for name, image in portraits.items():
            for sheet_name, jobs in wanted.items():
                if (name == "curly" and sheet_name not in ("hair", "matte")) or \
                        (name == "camera" and sheet_name != "matte") or \
                        ("turned" in name and sheet_name != "setups"):
                    continue
                tiles = {"original": image}
                for op, params, label in jobs:
                    tiles[label] = run(client, op, params, image)
                    Image.fromarray(tiles[label]).save(
                        args.out / f"{name}-{label.replace(' ', '-')}.png")
                path = args.out / f"{name}-{sheet_name}-sheet.png"
                if sheet_name == "matte":
                    sheet(tiles, 4, 320).save(path)
                elif sheet_name == "hair":                # the heads, twice the size
                    tiles = {label: head(tile) for label, tile in tiles.items()}
                    sheet(tiles, 2, tiles["original"].shape[1]).save(path)
                else:
                    sheet(tiles).save(path)
                print(path, "—", ", ".join(tiles))


if __name__ == "__main__":
    main()
