"""Hair-level mattes: the refinement against known answers. Composites of a real
portrait's subject with synthetic curly strands (alpha known exactly) over three
backgrounds go through the real server at each hair detail level; planted defects go
through the refinement itself."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import synthetic_hair
from conftest import FACE, run_array
from limner import cache, engines, imaging
from limner.client import BackendError, Client
from limner.engines import refine


def matte_of(client, image: np.ndarray, detail: str) -> np.ndarray:
    (_, matte), = run_array(client, "background.remove",
                            {"output": "matte", "hair_detail": detail}, image)
    return imaging.to_float(matte)[:, :, 0]


@pytest.fixture(scope="module")
def composites(server, portraits):
    """For each portrait and background: (true alpha, strand alpha, engine's own matte,
    refined matte)."""
    out = {}
    with Client(server.uri, server.server.token) as client:
        for name, portrait in portraits.items():
            portrait = portrait[:, :, :3]
            subject = matte_of(client, portrait, "normal")   # the whole subject
            for background, wall in synthetic_hair.backgrounds(portrait.shape[:2]).items():
                image, truth, strands = synthetic_hair.composite(portrait, subject, wall, seed=3)
                out[name, background] = (truth, strands, matte_of(client, image, "off"),
                                         matte_of(client, image, "normal"))
    return out


def test_strands_come_out_with_at_least_40_percent_less_error(composites):
    coarse = refined = 0.0
    for case, (truth, strands, off, normal) in composites.items():
        where = strands > 0.02
        coarse += np.abs(off - truth)[where].sum()
        refined += np.abs(normal - truth)[where].sum()
        # on every portrait and background better too
        assert np.abs(normal - truth)[where].mean() < 0.8 * np.abs(off - truth)[where].mean(), \
            case
    # 0.55 here since the matte starts from the engine's full-size one (0.43 before);
    # held close to it, so a refinement that loses ground fails
    assert refined <= 0.58 * coarse, f"strand error {refined / coarse:.2f} of the coarse one's"


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_a_clean_shoulder_edge_does_not_get_worse(composites, name):
    for (portrait, background), (truth, strands, off, normal) in composites.items():
        if portrait != name:
            continue
        h, w = truth.shape
        solid = (truth > 0.5).astype(np.uint8)
        ring = cv2.dilate(solid, np.ones((7, 7), np.uint8)) > cv2.erode(
            solid, np.ones((7, 7), np.uint8))
        ring &= np.arange(h)[:, None] > 0.6 * h                  # shoulders, not hair
        ring &= cv2.dilate((strands > 0.01).astype(np.uint8), np.ones((31, 31))) == 0
        margin = round(0.05 * max(h, w))                          # not the picture's edge
        ring[:, :margin] = ring[:, -margin:] = ring[-margin:] = False
        assert ring.sum() > 1000
        assert np.abs(normal - truth)[ring].mean() <= np.abs(off - truth)[ring].mean(), \
            background


@pytest.fixture(scope="module")
def astronaut_matte(portraits):
    rgb = imaging.to_float(portraits["astronaut"])
    return rgb, engines.get("matting", "rvm").matte(rgb)


def disc(shape, centre, radius) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    cv2.circle(out, centre[::-1], radius, 1, -1)
    return out > 0


SUIT = (380, 120)            # a point well inside the astronaut's orange suit


def test_a_hole_the_engine_left_in_the_subject_is_filled(astronaut_matte):
    rgb, coarse = astronaut_matte
    hole = disc(coarse.shape, SUIT, 12)
    assert coarse[hole].min() > 0.99
    alpha = refine.refine(rgb, np.where(hole, 0.0, coarse).astype(np.float32))
    assert alpha[hole].min() > 0.95


def test_no_veil_over_background_the_engine_was_sure_of(astronaut_matte):
    """The solve leaves a faint haze over the wall round the hair (a grey veil over a new
    backdrop): where the engine was sure of the background, the refined matte is clear."""
    rgb, coarse = astronaut_matte
    alpha = refine.refine(rgb, coarse)
    away = cv2.distanceTransform((coarse < 0.5).astype(np.uint8), cv2.DIST_L2, 5) > 5
    wall = (coarse < 0.05) & away            # the engine sure, off the subject's edge
    # a strand the engine missed may cross it; a veil covers it (without the haze rule
    # 1.7 % of it is above 0.02, with it 0.4 %)
    assert (alpha[wall] > 0.02).mean() < 0.008


def test_a_soft_dip_inside_the_subject_is_lifted(astronaut_matte):
    """A grey smear deep inside the solid subject (alpha 0.7 in the engine's matte, as
    under a chin) comes out opaque."""
    rgb, coarse = astronaut_matte
    dip = disc(coarse.shape, SUIT, 10)
    assert coarse[disc(coarse.shape, SUIT, 30)].min() > 0.99        # deep inside
    alpha = refine.refine(rgb, np.where(dip, 0.7, coarse).astype(np.float32))
    assert alpha[dip].min() > 0.98


def test_a_gap_that_shows_the_background_stays_open(astronaut_matte):
    rgb, coarse = astronaut_matte
    gap = disc(coarse.shape, SUIT, 12)
    painted = rgb.copy()
    painted[gap] = rgb[:24, :24].reshape(-1, 3).mean(0)         # the wall behind her
    alpha = refine.refine(painted, np.where(gap, 0.0, coarse).astype(np.float32))
    assert alpha[disc(coarse.shape, SUIT, 8)].max() < 0.1
    assert alpha[disc(coarse.shape, SUIT, 40) & ~disc(coarse.shape, SUIT, 18)].min() > 0.95


def test_a_stray_blob_far_from_the_subject_is_dropped_and_a_near_one_kept(astronaut_matte):
    rgb, coarse = astronaut_matte
    row = FACE["astronaut"][0] - 20
    hair_edge = int(np.argmax(coarse[row] > 0.5))                 # left of her head
    far = disc(coarse.shape, (40, 40), 7)
    near = disc(coarse.shape, (row, hair_edge - 12), 4)
    assert coarse[far | near].max() < 0.05
    image, blobs = rgb.copy(), far | near
    image[blobs] = (0.15, 0.1, 0.08)                              # dark: not the wall
    alpha = refine.refine(image, np.where(blobs, 1.0, coarse).astype(np.float32))
    assert alpha[far].max() < 0.05
    assert alpha[near].mean() > 0.5


def test_off_is_the_engines_own_matte_and_fine_refines_at_twice_the_size(client, portraits):
    image = portraits["astronaut"]
    off = matte_of(client, image, "off")
    own = engines.get("matting", "rvm").matte(imaging.to_float(image))
    assert np.abs(off - own).max() <= 0.5 / 255
    large = cv2.resize(image, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    made = {}
    for detail in ("normal", "fine"):
        (layer, matte), = run_array(client, "background.remove",
                                    {"output": "matte", "hair_detail": detail}, large)
        made[detail] = (layer.provenance["matte_refined_at"], imaging.to_float(matte)[:, :, 0])
    (normal_side, normal), (fine_side, fine) = made["normal"], made["fine"]
    assert normal.shape == fine.shape == (1024, 1024)
    assert (normal_side, fine_side) == (refine.REFINE_SIDE, 2 * refine.REFINE_SIDE)
    assert 0 < np.abs(normal - fine).mean() < 0.02            # same subject, finer edge


@pytest.mark.parametrize("sample", ["u16", "f32"])
def test_the_matte_keeps_the_layers_bit_depth(client, portraits, sample):
    image = imaging.from_float(imaging.to_float(portraits["grace_hopper"]), sample)
    (_, pixels), (_, matte) = run_array(client, "background.remove", {}, image)
    assert pixels.dtype == matte.dtype == image.dtype
    alpha = matte[:, :, 0]
    soft = alpha[(alpha > 0) & (alpha < alpha.max())]
    assert len(np.unique(soft)) > 1000                        # not 8-bit steps


def test_relight_uses_the_matte_background_removal_made(server, small_portrait):
    cache.LAYERS.clear()
    with Client(server.uri, server.server.token) as client:
        run_array(client, "background.remove", {}, small_portrait)
        mattes = [key for key in cache.LAYERS.keys() if key[0] == "matte"]
        assert len(mattes) == 1
        run_array(client, "relight", {"azimuth": -60}, small_portrait)
        assert [key for key in cache.LAYERS.keys() if key[0] == "matte"] == mattes
        run_array(client, "background.remove", {"hair_detail": "fine"}, small_portrait)
        assert len([key for key in cache.LAYERS.keys() if key[0] == "matte"]) == 2


def test_an_unknown_hair_detail_is_refused(client, portraits):
    with pytest.raises(BackendError, match="hair_detail must be one of off, normal, fine"):
        run_array(client, "background.remove", {"hair_detail": "extreme"},
                  portraits["astronaut"])
