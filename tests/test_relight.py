"""Relight on the real portraits through the real server: the photo's own light comes out,
the new light goes where it is asked, the background stays, the selection holds.

The measures are the relight issue's (lightmeasure.py): the face split at the nose tip,
linear luminance, imbalance as |log(left / right)|.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FACE_BOX, deep, run_array
from lightmeasure import background_change, main_face, not_black, seam, subject_matte
from limner import imaging
from limner.engines.lights import Settings, kelvin_to_rgb, light_direction

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
NAMES = ["astronaut", "grace_hopper"]


def _gain(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per-pixel brightening in linear light (so the face's own shading cancels out)."""
    def luminance(a):
        return imaging.srgb_to_linear(imaging.to_float(a)[:, :, :3]) @ LUMA

    return luminance(after) / np.maximum(luminance(before), 1e-3)


def _relit(client, image, **params):
    (_, pixels), *_ = run_array(client, "relight", params, image)
    return pixels


def _halves(gain, box):
    rows, cols = box
    mid = (cols.start + cols.stop) // 2
    return np.median(gain[rows, cols.start:mid]), np.median(gain[rows, mid:cols.stop])


@pytest.fixture(scope="module")
def halves(portraits):
    return {name: main_face(portraits[name]) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_light_from_the_left_then_the_right_swaps_the_bright_half(client, portraits, halves,
                                                                   name):
    """Strength: the face's balance under a light from -90 over that under +90 is >= 2."""
    image, face = portraits[name], halves[name]
    from_left = face.balance(_relit(client, image, azimuth=-90, elevation=0))
    from_right = face.balance(_relit(client, image, azimuth=90, elevation=0))
    assert from_left > 1.4 and from_right < 1 / 1.4, (from_left, from_right)
    assert from_left / from_right >= 2, (from_left, from_right)


@pytest.mark.parametrize("name", NAMES)
def test_a_side_lit_portrait_loses_its_light_before_the_new_one(client, portraits, halves,
                                                                name):
    """Delighting: lit from one side, then relit from the other, the other side wins by 2x;
    relit from the front, at most 35 % of the side light's imbalance survives."""
    image, face = portraits[name], halves[name]
    for first, then, brighter in ((-90, 90, "right"), (90, -90, "left")):
        side_lit = _relit(client, image, azimuth=first, elevation=0)
        relit = _relit(client, side_lit, azimuth=then, elevation=0)
        balance = face.balance(relit)
        assert (balance <= 0.5) if brighter == "right" else (balance >= 2), (first, balance)
        frontal = _relit(client, side_lit, azimuth=0, elevation=30)
        kept = face.imbalance(frontal) / face.imbalance(side_lit)
        assert kept <= 0.35, (first, kept)


@pytest.mark.parametrize("name", NAMES)
def test_a_hard_side_light_with_its_shadows_comes_out_too(client, portraits, halves, name):
    """A harsh key from one side (no softness, hardly any ambient: a hard terminator and
    a cast nose shadow, which harmonics alone cannot draw) is still taken out."""
    image, face = portraits[name], halves[name]
    for azimuth in (-70, 70):
        harsh = _relit(client, image, azimuth=azimuth, elevation=10, intensity=1.5,
                       ambient=0.05, softness=0.0)
        assert face.imbalance(harsh) > np.log(4)
        frontal = _relit(client, harsh, azimuth=0, elevation=30)
        assert face.imbalance(frontal) <= 0.3 * face.imbalance(harsh), azimuth


def overexposed(pixels: np.ndarray, stops: float) -> np.ndarray:
    """`pixels` (u8 sRGB) as a camera exposing `stops` brighter takes them: clipped."""
    linear = np.clip(imaging.to_linear(pixels[:, :, :3]) * 2 ** stops, 0, 1)
    return imaging.from_float(imaging.linear_to_srgb(linear), "u8")


@pytest.mark.parametrize("name", NAMES)
def test_a_side_light_that_clips_the_lit_cheek_comes_out_too(client, portraits, halves,
                                                             name):
    """A window-lit face is often exposed for its shadow side, and its lit cheek clips
    at white. Clipped pixels show only that the light was at least that bright; left out
    of the fit of the photo's light, the lit side hardly counted, and stayed bright when
    delit (65 % of the imbalance kept on the astronaut). Darkened, the blown skin takes
    the colour of the skin round it: as it is, its red clipped first, it turned grey-cyan
    (red over blue 0.4-0.6 of the unclipped side's)."""
    image, face = portraits[name], halves[name]
    for azimuth in (-90, 90):
        clipped = overexposed(_relit(client, image, azimuth=azimuth, elevation=0), 1.6)
        lit, other = (face.left, face.right) if azimuth < 0 else (face.right, face.left)
        assert (clipped[lit].max(-1) == 255).mean() > 0.2          # a fifth of it at white
        frontal = _relit(client, clipped, azimuth=0, elevation=30)
        kept = face.imbalance(frontal) / face.imbalance(clipped)
        print(name, azimuth, "kept", round(kept, 3))
        assert kept <= 0.35, (azimuth, kept)
        linear = imaging.to_linear(frontal[:, :, :3])
        red_over_blue = linear[..., 0] / np.maximum(linear[..., 2], 1e-4)
        middle = np.sort(clipped, axis=-1)[..., 1]          # blown: two channels at white
        blown = np.median(red_over_blue[lit & (middle == 255)])
        seen = np.median(red_over_blue[other & (clipped.max(-1) < 240)])
        assert 0.85 <= blown / seen <= 1.4, (blown, seen)


def test_a_tight_crop_of_a_face_in_hard_light_is_still_found(client, portraits):
    """The full-range detector misses a face that fills the frame (this crop, lit or
    not); the short-range one does not, so the relight still knows where the face is."""
    crop = np.ascontiguousarray(portraits["grace_hopper"][120:360, 160:370])
    harsh = _relit(client, crop, azimuth=75, elevation=10, intensity=1.5, ambient=0.05,
                   softness=0.0)
    (layer, _), *_ = run_array(client, "relight", {}, harsh)
    assert layer.provenance["faces"] == 1


@pytest.mark.parametrize("name", NAMES)
def test_our_own_side_light_is_taken_away_again(client, portraits, halves, name):
    """Relight from -90 and from +90, both from the front: at most 35 % of the difference
    between them survives."""
    image, face = portraits[name], halves[name]
    left = _relit(client, image, azimuth=-90, elevation=0)
    right = _relit(client, image, azimuth=90, elevation=0)
    before = abs(np.log(face.balance(left)) - np.log(face.balance(right)))
    after = abs(np.log(face.balance(_relit(client, left, azimuth=0, elevation=30))) -
                np.log(face.balance(_relit(client, right, azimuth=0, elevation=30))))
    assert after <= 0.35 * before, (after, before)


@pytest.mark.parametrize("name", NAMES)
def test_the_background_keeps_its_brightness_and_the_light_has_no_seam(client, portraits,
                                                                       name):
    image = portraits[name]
    alpha = subject_matte(image)
    change = background_change(image, _relit(client, image), alpha)
    assert 0.85 <= change <= 1.15, change
    soft = _relit(client, image, azimuth=-60, softness=1.0)
    assert seam(image, soft, alpha, where=not_black(image)) <= 1.2


@pytest.mark.parametrize("name", NAMES)
def test_light_from_below_darkens_the_forehead_against_the_chin(client, portraits, name):
    image, (rows, cols) = portraits[name], FACE_BOX[name]
    gain = _gain(image, _relit(client, image, azimuth=0, elevation=-60))
    fifth = (rows.stop - rows.start) // 5
    forehead = np.median(gain[rows.start:rows.start + fifth, cols])
    chin = np.median(gain[rows.stop - fifth:rows.stop, cols])
    assert forehead < 0.85 * chin, (forehead, chin)
    # from above instead: the forehead gains on the chin (by at least 15 %); not an order
    # of the two, which the body's shape under the chin also sets (a held helmet makes
    # the whole subject wider, so its inflated torso deeper)
    gain = _gain(image, _relit(client, image, azimuth=0, elevation=60))
    above = np.median(gain[rows.start:rows.start + fifth, cols]), \
        np.median(gain[rows.stop - fifth:rows.stop, cols])
    assert above[0] / forehead > 1.15 * above[1] / chin, (above, forehead, chin)


@pytest.mark.parametrize("sample", ["u8", "u16", "f32"])
def test_no_new_light_and_no_removal_gives_back_the_input(client, portraits, sample):
    image = deep(portraits["grace_hopper"], sample)
    out = _relit(client, image, intensity=0.0, ambient=1.0, remove_light=0.0, sheen=0.0)
    assert out.dtype == image.dtype
    # to the last bit of its own precision: an 8-bit path inside would be off by 100 u16
    assert np.abs(imaging.to_float(out) - imaging.to_float(image)).max() <= \
        {"u8": 1 / 255, "u16": 1 / 65535, "f32": 1e-5}[sample]


def test_removing_the_light_evens_out_a_side_lit_face(client, portraits, halves):
    """remove_light scales the delighting: none keeps the side light, all takes it out."""
    image, face = portraits["astronaut"], halves["astronaut"]
    side_lit = _relit(client, image, azimuth=-90, elevation=0)
    flat = {amount: face.imbalance(_relit(client, side_lit, intensity=0.0, ambient=1.0,
                                          remove_light=amount, sheen=0.0))
            for amount in (0.0, 0.5, 1.0)}
    assert flat[0.0] > flat[0.5] > flat[1.0], flat
    assert flat[1.0] < 0.35 * face.imbalance(side_lit), flat


def test_without_a_face_the_matte_still_shapes_the_light(client, portraits):
    body = np.ascontiguousarray(portraits["grace_hopper"][340:, :])  # uniform and shoulders
    box = (slice(60, 200), slice(60, 450))
    left, right = _halves(_gain(body, _relit(client, body, azimuth=-90, elevation=0)), box)
    assert left > 1.1 * right, (left, right)


def test_several_faces_are_each_lit(client, portraits):
    one = portraits["astronaut"]
    pair = np.ascontiguousarray(np.concatenate([one, one[:, ::-1]], axis=1))
    gain = _gain(pair, _relit(client, pair, azimuth=-90, elevation=0))
    rows, cols = FACE_BOX["astronaut"]
    mirrored = slice(1024 - cols.stop, 1024 - cols.start)
    for box in ((rows, cols), (rows, mirrored)):
        left, right = _halves(gain, box)
        assert left > 1.15 * right, (box, left, right)


def test_light_colour_warms_or_cools(client, portraits):
    image = portraits["grace_hopper"]
    rows, cols = FACE_BOX["grace_hopper"]

    def red_over_blue(pixels):
        lin = imaging.srgb_to_linear(imaging.to_float(pixels[rows, cols]))
        return lin[..., 0].mean() / lin[..., 2].mean()

    warm = red_over_blue(_relit(client, image, temperature=2500, azimuth=0, elevation=0))
    cool = red_over_blue(_relit(client, image, temperature=10000, azimuth=0, elevation=0))
    assert warm > 1.2 * cool
    kept = _relit(client, image, temperature=2500, keep_colors=True, azimuth=0, elevation=0)
    assert abs(red_over_blue(kept) - red_over_blue(image)) < 0.05 * red_over_blue(image)


def test_light_on_the_background_falls_off_and_the_subject_throws_a_shadow(client,
                                                                          portraits):
    image = portraits["grace_hopper"]
    alpha = subject_matte(image)
    wall = (alpha < 0.02)
    left, right = wall.copy(), wall.copy()
    left[:, 256:] = False
    right[:, :256] = False

    def wall_gain(**params):
        gain = _gain(image, _relit(client, image, azimuth=-40, elevation=20, **params))
        return gain[left].mean(), gain[right].mean()

    assert all(abs(g - 1) < 0.02 for g in wall_gain())      # the default: as it was
    lit_left, lit_right = wall_gain(background_light=1.0)
    assert lit_left > 1.15 * lit_right, (lit_left, lit_right)
    shaded_left, shaded_right = wall_gain(backdrop_shadow=1.0)   # thrown to the right
    assert shaded_right < 0.9 and shaded_left > 0.97, (shaded_left, shaded_right)


@pytest.mark.parametrize("params", [{"azimuth": 60, "elevation": 20, "softness": 0.6},
                                    {"azimuth": 0, "elevation": 0, "intensity": 2.0},
                                    {"setup": "rim"}])
def test_light_layers_rebuild_the_relit_image_over_the_original(client, portraits, params):
    image = portraits["astronaut"]
    (relit_layer, relit), (dodge_layer, dodge), (mult_layer, mult) = run_array(
        client, "relight", params, image)
    assert relit_layer.name.startswith("Relit")
    assert (dodge_layer.blend, mult_layer.blend) == ("dodge", "multiply")
    assert not dodge_layer.visible and not mult_layer.visible and relit_layer.visible
    base, m, d, target = (imaging.to_float(a) for a in (image, mult, dodge, relit))
    rebuilt = np.minimum(base * m / np.maximum(1 - d, 1e-6), 1)   # as editors blend them
    error, unlit = np.abs(rebuilt - target).mean(), np.abs(base - target).mean()
    assert error < 0.3 * unlit and error < 0.012, (error, unlit)    # blank layers: unlit


def test_relight_respects_the_selection(client, portraits):
    image = portraits["grace_hopper"]
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[100:350, 150:380] = 255
    for layer, pixels in run_array(client, "relight", {"azimuth": -90}, image, mask):
        neutral = {"normal": image, "multiply": 255, "dodge": 0}[layer.blend]
        expected = np.broadcast_to(neutral, image.shape)
        assert np.array_equal(pixels[mask == 0], expected[mask == 0]), layer.name


@pytest.mark.parametrize("layer", ["1x1", "a line", "black", "cut-out"])
def test_odd_layers_come_back_whole(client, portraits, layer):
    image = {"1x1": np.full((1, 1, 3), 200, np.uint8),
             "a line": np.ascontiguousarray(portraits["astronaut"][100:102]),
             "black": np.zeros((64, 48, 3), np.uint8),
             "cut-out": imaging.with_alpha(portraits["astronaut"])}[layer]
    if layer == "cut-out":                         # the background removed already
        image[:, :150, 3] = 0
    for pixels in (p for _, p in run_array(client, "relight", {"setup": "loop"}, image)):
        assert pixels.shape[:2] == image.shape[:2] and pixels.dtype == image.dtype
    relit = _relit(client, image)
    if layer == "cut-out":                 # the left-out part is not shaded as subject
        assert np.array_equal(relit[:, :150, 3], image[:, :150, 3])
        assert np.abs(relit[:, :150, :3].astype(int) - image[:, :150, :3]).max() <= 1


def test_a_preview_is_the_relit_layer_alone_at_the_size_asked(client, portraits):
    import cv2

    image = portraits["grace_hopper"]                       # 512 x 600
    (layer, preview), = run_array(client, "relight", {"azimuth": -60}, image,
                                  preview_side=200)
    assert preview.shape == (200, 171, 3) and layer.name.startswith("Relit")
    full = _relit(client, image, azimuth=-60)
    shrunk = cv2.resize(full, (171, 200), interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk.astype(float) - preview).mean() < 6   # the same light, smaller


def test_kelvin_and_direction_conventions():
    warm, daylight, cool = kelvin_to_rgb(2700), kelvin_to_rgb(6500), kelvin_to_rgb(10000)
    assert warm[0] > warm[2] and cool[2] > cool[0]
    assert np.allclose(daylight, 1, atol=1e-6)                # the picture's white
    assert np.allclose(light_direction(90, 0), [1, 0, 0], atol=1e-6)
    assert np.allclose(light_direction(0, 90), [0, 1, 0], atol=1e-6)


def _texture_tie(light: np.ndarray, photo: np.ndarray, where) -> float:
    """How much the fine detail of a light (log of its ratio) follows the photo's own
    (log luminance): the correlation of the two after a 3 px high-pass, over `where`."""
    import cv2

    def fine(a):
        a = a.astype(np.float32)
        return (a - cv2.GaussianBlur(a, (0, 0), 3))[where].ravel()

    return float(np.corrcoef(fine(light), fine(photo))[0, 1])


@pytest.fixture(scope="module")
def large_astronaut(portraits):
    """The astronaut at 1024 px: larger than the geometry, so the light is brought up."""
    import cv2

    return cv2.resize(portraits["astronaut"], (1024, 1024), interpolation=cv2.INTER_CUBIC)


def test_the_light_on_hair_does_not_follow_the_strands(client, large_astronaut):
    """Brought up to the layer's size, the light stays smooth across her hair: its
    detail does not follow the strands' (a guided upsampling made it: 0.24 here). Inside
    the hair: at its outline the light rightly follows the matte (a strand half over the
    background takes half the subject's light)."""
    import cv2
    from lightmeasure import luminance, subject_matte

    relit = _relit(client, large_astronaut, azimuth=-70, elevation=20, softness=0.6,
                   sheen=0.0)
    before = luminance(large_astronaut) + 1e-6
    light = np.log((luminance(relit) + 1e-6) / before)
    inside = cv2.erode((subject_matte(large_astronaut) > 0.95).astype(np.uint8),
                       np.ones((9, 9), np.uint8)) > 0
    hair = np.zeros(inside.shape, bool)
    hair[40:200, 280:590] = True
    assert abs(_texture_tie(light, np.log(before), hair & inside)) < 0.12


def test_the_sheen_brightens_skin_without_its_wrinkles(client, large_astronaut):
    """The sheen adds light to the face, as gain: not by each pixel's own brightness,
    which would fill dark wrinkles and pores far more than the skin round them."""
    from lightmeasure import luminance

    plain = _relit(client, large_astronaut, azimuth=-30, elevation=30, sheen=0.0)
    shiny = _relit(client, large_astronaut, azimuth=-30, elevation=30, sheen=0.6)
    sheen = np.log((luminance(shiny) + 1e-6) / (luminance(plain) + 1e-6))
    face = (slice(200, 300), slice(370, 510))
    assert sheen[face].mean() > 0.01, "the sheen brightens the face"
    assert abs(_texture_tie(sheen, np.log(luminance(large_astronaut) + 1e-6), face)) < 0.03


def test_white_light_leaves_the_colours_of_clothes_alone(portraits):
    """The photo's light is known in colour only on the skin it was fitted on: away from
    it (the helmet she holds) a white light's gain is grey, so no pixel is
    tinted by its own colour's share of the light."""
    from limner import engines
    from limner.operations import get

    params = {p.name: p.default for p in get("relight").all_params()}
    params.update(azimuth=-60, elevation=30)
    lit = engines.get("relight", "geometric").render(portraits["astronaut"],
                                                     Settings.of(params), lambda *_: None)
    suit = lit.gain[400:480, 330:470]              # the helmet she holds
    spread = suit.max(-1) / np.maximum(suit.min(-1), 1e-6)
    assert np.percentile(spread, 99) < 1.02, np.percentile(spread, 99)
