"""Whole subjects on real portraits, through the real server: no hole in the astronaut's
suit, held things decided as a whole, the cameraman's face and hands kept, `normal` no
worse than `off` against reference masks drawn by hand, the clean-up rules never taking
away what the engine was sure of, and the retoucher's keep and remove hints changing
exactly what they cover (from the protocol and from the command line)."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import run_array
from limner import engines, imaging
from limner.client import Client
from limner.engines import refine

#: each subject drawn by hand as a polygon (x, y) over the portrait, the person and what
#: they wear and hold (the helmet; the camcorder, not the tripod on the ground)
OUTLINES = {
    "astronaut": [(20, 511), (22, 450), (25, 400), (30, 330), (45, 270), (60, 240),
                  (110, 210), (118, 185), (150, 150), (165, 122), (155, 80), (165, 45),
                  (200, 20), (240, 15), (275, 30), (295, 60), (300, 95), (290, 130),
                  (300, 200), (305, 250), (330, 262), (355, 300), (360, 342), (390, 343),
                  (440, 350), (480, 380), (495, 420), (500, 460), (505, 511)],
    "camera": [(0, 511), (0, 250), (15, 215), (50, 178), (85, 145), (130, 118), (152, 105),
               (160, 88), (175, 70), (205, 64), (232, 74), (255, 93), (270, 115),
               (262, 135), (258, 140), (320, 140), (326, 152), (322, 172), (332, 178),
               (332, 195), (322, 215), (308, 228), (303, 250), (305, 275), (295, 285),
               (255, 312), (225, 312), (205, 302), (175, 350), (152, 400), (150, 450),
               (150, 511)],
    "grace_hopper": [(15, 599), (20, 480), (35, 400), (70, 360), (130, 340), (175, 325),
                     (200, 318), (165, 290), (155, 230), (150, 150), (150, 120), (175, 70),
                     (250, 25), (330, 55), (370, 100), (372, 150), (365, 200), (360, 260),
                     (345, 300), (330, 315), (360, 340), (420, 370), (490, 400),
                     (511, 420), (511, 599)],
}
#: the hand-drawn outlines are good to a few pixels: a band this wide round them is not
#: counted
UNCOUNTED = 8
#: held things, which may be kept or dropped (each decided as a whole: tested on its own),
#: are not counted either: the helmet she holds, the camcorder on its tripod (x, y, w, h)
EITHER_WAY = {"astronaut": [(285, 340, 227, 172)], "camera": [(250, 135, 90, 45)],
              "grace_hopper": []}
DETAILS = ("off", "normal", "fine")


@pytest.fixture(scope="module")
def pictures(portraits):
    return {**{k: v[:, :, :3] for k, v in portraits.items()},
            "camera": np.dstack([__import__("skimage").data.camera()] * 3)}


@pytest.fixture(scope="module")
def mattes(server, pictures):
    """Every portrait's matte at every hair detail level, through the server."""
    out = {}
    with Client(server.uri, server.server.token) as client:
        for name, picture in pictures.items():
            for detail in DETAILS:
                (_, matte), = run_array(client, "background.remove",
                                        {"output": "matte", "hair_detail": detail}, picture)
                out[name, detail] = imaging.to_float(matte)[:, :, 0]
    return out


def reference(name: str, shape) -> tuple[np.ndarray, np.ndarray]:
    """(the hand-drawn subject, where it counts: all but a band round its outline)."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.array(OUTLINES[name], np.int32)], 1)
    band = cv2.dilate(mask, np.ones((2 * UNCOUNTED + 1,) * 2)) - cv2.erode(
        mask, np.ones((2 * UNCOUNTED + 1,) * 2))
    for x, y, w, h in EITHER_WAY[name]:
        band[y:y + h, x:x + w] = 1
    return mask > 0, band == 0


def iou(alpha: np.ndarray, name: str) -> float:
    truth, counted = reference(name, alpha.shape)
    found = alpha > 0.5
    return (found & truth & counted).sum() / ((found | truth) & counted).sum()


@pytest.mark.parametrize("detail", ["normal", "fine"])
def test_no_hole_in_the_astronauts_suit(mattes, detail):
    """Round the name patch on her chest, and the suit beside the helmet she holds."""
    alpha = mattes["astronaut", detail]
    assert alpha[338:368, 278:332].min() >= 0.95, "the name patch"
    assert alpha[300:340, 300:350].min() >= 0.95, "the suit beside it"
    assert mattes["astronaut", "off"][338:368, 278:332].min() < 0.5, "the engine's own hole"


@pytest.mark.parametrize("detail", ["normal", "fine"])
def test_held_things_are_kept_or_dropped_never_half(mattes, detail):
    helmet = mattes["astronaut", detail][400:480, 330:470].mean()
    camcorder = mattes["camera", detail][142:170, 272:318].mean()
    for what, mean in (("helmet", helmet), ("camcorder", camcorder)):
        assert mean >= 0.9 or mean <= 0.1, f"the {what}: {mean:.2f}"
    assert 0.1 < mattes["astronaut", "off"][400:480, 330:470].mean() < 0.9, \
        "the engine's own: a see-through ghost"


@pytest.mark.parametrize("detail", DETAILS[1:])
def test_the_cameramans_face_and_hands_are_kept(mattes, detail):
    alpha = mattes["camera", detail]
    assert alpha[140:180, 195:235].min() >= 0.9, "his face"
    assert alpha[205:245, 170:235].min() >= 0.9, "the hand under his chin"
    assert alpha[180:205, 308:322].mean() >= 0.8, "the hand on the camcorder"


@pytest.mark.parametrize("name", list(OUTLINES))
def test_normal_is_no_worse_than_off_against_a_hand_drawn_reference(mattes, name):
    off, normal, fine = (iou(mattes[name, d], name) for d in DETAILS)
    print(f"{name}: IoU off {off:.3f}, normal {normal:.3f}, fine {fine:.3f}")
    assert normal >= off - 0.002 and fine >= off - 0.002
    assert normal >= 0.95


def test_what_the_engine_was_sure_of_stays_whatever_a_rule_says(portraits):
    """A hat-sized part the engine was sure of, far from the rest and the colour of the
    wall behind (what the island, hole and haze rules act on), stays; a speck goes."""
    rgb = imaging.to_float(portraits["astronaut"])
    coarse = engines.get("matting", "rvm").matte(rgb)
    wall = rgb[:24, :24].reshape(-1, 3).mean(0)
    image, engine = rgb.copy(), coarse.copy()
    hat = (slice(20, 55), slice(410, 460))            # far right of her, over the rocket
    image[hat] = wall
    engine[hat] = 1.0
    speck = (slice(120, 130), slice(440, 450))       # a speck over the rocket
    engine[speck] = 1.0
    alpha = refine.refine(image, engine)
    assert alpha[hat].min() >= 0.95
    assert alpha[speck].max() < 0.05


def mask_picture(shape, box) -> np.ndarray:
    """A hint as a layer painted over the portrait: opaque white over `box`, transparent
    elsewhere (what a retoucher's two strokes on a new layer send)."""
    out = np.zeros(shape[:2] + (4,), np.uint8)
    out[box] = 255
    return out


KEEP = (slice(20, 60), slice(440, 500))        # the wall behind her: background
REMOVE = (slice(95, 125), slice(205, 245))     # her face: subject


def test_keep_and_remove_hints_change_exactly_the_hinted_regions(client, portraits):
    image = portraits["astronaut"][:, :, :3]

    def matte(**inputs):
        (_, pixels), = run_array(client, "background.remove", {"output": "matte"}, image,
                                 inputs={k: imaging.to_pixels(v) for k, v in inputs.items()})
        return imaging.to_float(pixels)[:, :, 0]

    plain = matte()
    hinted = matte(keep=mask_picture(image.shape, KEEP), remove=mask_picture(image.shape,
                                                                               REMOVE))
    assert plain[KEEP].max() < 0.05 and plain[REMOVE].min() > 0.95
    assert hinted[KEEP].min() >= 0.99 and hinted[REMOVE].max() <= 0.01
    near = np.zeros(image.shape[:2], np.uint8)
    near[KEEP] = near[REMOVE] = 1
    near = cv2.dilate(near, np.ones((41, 41), np.uint8)) > 0      # the solve's band
    assert np.abs(hinted - plain)[~near].max() < 1.5 / 255, "nothing else changed"


def test_a_hint_of_another_size_is_refused(client, portraits):
    from limner.client import BackendError

    with pytest.raises(BackendError, match="keep: the hint is 100x100, the layer 512x512"):
        run_array(client, "background.remove", {}, portraits["astronaut"],
                  inputs={"keep": imaging.to_pixels(np.zeros((100, 100, 4), np.uint8))})


def test_the_command_line_takes_hint_files(tmp_path, portraits):
    image = portraits["astronaut"][:, :, :3]
    source, keep = tmp_path / "astronaut.png", tmp_path / "keep.png"
    cv2.imwrite(str(source), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    grey = np.zeros(image.shape[:2], np.uint8)         # a mask file: white is the hint
    grey[KEEP] = 255
    cv2.imwrite(str(keep), grey)
    out = subprocess.run([sys.executable, "-m", "limner", "run", str(source), "--op",
                          "background.remove", "--param", "output=matte", "--param",
                          f"keep={keep}", "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    matte = cv2.imread(str(next((tmp_path / "out").glob("*matte*.png"))), cv2.IMREAD_UNCHANGED)
    matte = matte if matte.ndim == 2 else matte[:, :, 0]
    assert matte[KEEP].min() >= 250
