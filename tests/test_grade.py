"""Colour grading and moods through the real server on the real portraits: .cube files the
test writes, the built-in looks at every sample type, colour matching's statistics, skin
protection, every mood's layers, and bad .cube files."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from conftest import FACE_BOX, run_array
from limner import grading, imaging
from limner.client import BackendError
from limner.operations.mood import MOODS

NO_PROTECTION = {"protect_skin": 0.0}


def write_cube(path, size, colour, header=""):
    """A .cube as colour-science and Resolve read it: red changes fastest."""
    lines = [f'TITLE "{path.stem}"', header or f"LUT_3D_SIZE {size}"]
    for b, g, r in itertools.product(range(size), repeat=3):
        rgb = colour(np.array([r, g, b], float) / (size - 1))
        lines.append(" ".join(f"{v:.6f}" for v in rgb))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_1d_and_shaper_cube_files_are_applied(client, portraits, tmp_path):
    """A 1D .cube (a curve per channel) and a Resolve cube with a 1D shaper before its 3D
    table: each applied as it says (none was tested)."""
    image = portraits["astronaut"]
    size = 64
    curve = tmp_path / "curve.cube"           # red inverted, green squared, blue kept
    axis = np.linspace(0, 1, size)
    curve.write_text(f"LUT_1D_SIZE {size}\n" + "".join(
        f"{1 - v:.6f} {v * v:.6f} {v:.6f}\n" for v in axis))
    got = run_array(client, "grade", {"look": "LUT file", "lut": str(curve),
                                      **NO_PROTECTION}, image)[0][1].astype(np.float64)
    want = image.astype(np.float64) / 255
    want = np.stack([1 - want[..., 0], want[..., 1] ** 2, want[..., 2]], -1) * 255
    assert np.abs(got[..., :3] - want).mean() < 3
    shaper = tmp_path / "shaper.cube"          # a shaper halving (0..2 to 0..1), a swap
    lines = ["LUT_1D_SIZE 2", "LUT_1D_INPUT_RANGE 0.0 2.0", "LUT_3D_SIZE 2",
             "LUT_3D_INPUT_RANGE 0.0 1.0", "0 0 0", "1 1 1"]
    for b, g, r in itertools.product(range(2), repeat=3):
        lines.append(f"{b} {g} {r}")
    shaper.write_text("\n".join(lines) + "\n")
    got = run_array(client, "grade", {"look": "LUT file", "lut": str(shaper),
                                      **NO_PROTECTION}, image)[0][1].astype(np.float64)
    halved = image[..., ::-1].astype(np.float64) / 2
    assert np.abs(got[..., :3] - halved).mean() < 3


@pytest.fixture(scope="module")
def cubes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cubes")
    return {"identity": write_cube(folder / "identity.cube", 17, lambda v: v),
            "swap": write_cube(folder / "swap.cube", 17, lambda v: v[::-1])}


def lab(rgb_u8):
    return cv2.cvtColor(imaging.to_float(np.ascontiguousarray(rgb_u8[..., :3])),
                        cv2.COLOR_RGB2Lab).reshape(-1, 3).astype(np.float64)


@pytest.mark.parametrize("sample", ["u8", "u16", "f32"])
def test_cube_files_round_trip_exactly(client, portraits, cubes, sample):
    image = imaging.from_float(imaging.to_float(portraits["astronaut"]), sample)
    for name, expected in (("identity", image), ("swap", image[..., ::-1])):
        layers = run_array(client, "grade", {"look": "LUT file", "lut": str(cubes[name]),
                                             **NO_PROTECTION}, image)
        (graded_layer, graded), (mask_layer, _) = layers
        assert graded.dtype == image.dtype
        assert np.abs(graded.astype(np.float64) - expected).max() <= \
            (0 if sample == "u8" else 1 if sample == "u16" else 1e-5), name
        assert graded_layer.name.startswith(f"Grade {name}.cube 100%")
        assert not mask_layer.visible


def test_looks_agree_across_sample_types(client, portraits):
    image = portraits["grace_hopper"]
    results = {}
    for sample in ("u8", "u16", "f32"):
        samples = imaging.from_float(imaging.to_float(image), sample)
        (_, graded), _ = run_array(client, "grade", {"look": "teal and orange"}, samples)
        results[sample] = imaging.to_float(graded)
    assert np.abs(results["u16"] - results["u8"]).max() <= 2.5 / 255
    assert np.abs(results["f32"] - results["u16"]).max() <= 1 / 255
    assert np.abs(results["u8"] - imaging.to_float(image)).mean() > 0.02   # it did grade


@pytest.mark.parametrize("method", ["covariance", "reinhard"])
def test_matching_moves_lab_statistics_to_the_reference(portraits, method):
    source = imaging.to_float(portraits["grace_hopper"])
    reference = imaging.to_float(cv2.resize(portraits["astronaut"], (400, 400)))
    matched = grading.match_colour(source, reference, method)
    got, want = lab(imaging.from_float(matched, "u8")), lab(imaging.from_float(reference, "u8"))
    before = lab(imaging.from_float(source, "u8"))
    assert np.abs(got.mean(0) - want.mean(0)).max() < 2.5
    assert np.abs(before.mean(0) - want.mean(0)).max() > 8           # it had to move
    if method == "covariance":
        cov_got, cov_want = np.cov(got.T), np.cov(want.T)
        assert np.abs(cov_got - cov_want).max() / np.abs(cov_want).max() < 0.08
    else:
        assert np.abs(got.std(0) / want.std(0) - 1).max() < 0.12


def test_matching_through_the_server_to_a_layer_and_skin_to_skin(client, portraits):
    source, reference = portraits["grace_hopper"], portraits["astronaut"]
    from limner import protocol

    inputs = {"match": imaging.to_pixels(reference)}
    rows, cols = FACE_BOX["grace_hopper"]
    ref_rows, ref_cols = FACE_BOX["astronaut"]
    skin_wanted = lab(reference[ref_rows, ref_cols]).mean(0)[1:]      # a*, b* of her face
    off = {}
    for skin in (False, True):
        layers = client.run("grade", {"look": "none", "match_skin": skin, **NO_PROTECTION},
                            imaging.to_pixels(source), inputs=inputs)
        assert layers[0][0].name.startswith("Grade matched (covariance)")
        graded = imaging.from_pixels(layers[0][1])
        assert np.abs(lab(graded).mean(0) - lab(source).mean(0)).max() > 3
        off[skin] = np.linalg.norm(lab(graded[rows, cols]).mean(0)[1:] - skin_wanted)
    # skin to skin: her face takes the reference face's colour, far closer than when the
    # whole picture (a navy uniform, a flag) is matched to the whole reference
    assert off[True] < 0.6 * off[False], off
    with pytest.raises(BackendError, match="choose a look or a reference") as refused:
        run_array(client, "grade", {"look": "none"}, source)
    assert refused.value.code == protocol.E_BAD_PARAMETER


def test_skin_protection_holds_the_face_and_lets_the_background_go(client, portraits):
    image = portraits["astronaut"]
    plain = run_array(client, "grade", {"look": "cool", **NO_PROTECTION}, image)[0][1]
    held, mask = (p for _, p in run_array(client, "grade", {"look": "cool",
                                                            "protect_skin": 1.0}, image))
    rows, cols = FACE_BOX["astronaut"]
    height, width = rows.stop - rows.start, cols.stop - cols.start
    cheek = (slice(rows.start + height * 2 // 5, rows.start + height * 3 // 5),
             slice(cols.start + width // 4, cols.start + width * 3 // 4))

    def hue_shift(result, where):
        a, b = lab(image[where]), lab(result[where])
        return np.abs(np.degrees(np.arctan2(b[:, 2], b[:, 1]) -
                                 np.arctan2(a[:, 2], a[:, 1]))).mean()

    assert mask[cheek].mean() > 200                                  # the cheek is skin
    assert hue_shift(held, cheek) < 0.3 * hue_shift(plain, cheek)
    assert hue_shift(held, cheek) < 3.0                               # degrees
    wall = (slice(20, 120), slice(380, 500))                         # grey wall, top right
    assert mask[wall].mean() < 10
    assert np.abs(held[wall].astype(int) - plain[wall]).max() <= 2
    # protection holds skin's hue, not its colour: black and white stays black and white
    grey = run_array(client, "grade", {"look": "black and white", "protect_skin": 1.0},
                     image)[0][1]
    assert np.abs(lab(grey[cheek])[:, 1:]).max() < 2.0


def test_a_large_layers_skin_is_found_small_and_matches_the_full_size_one(portraits,
                                                                          monkeypatch):
    """Skin is worked out at SKIN_SIDE and scaled up (memory): on the astronaut at 2048 px
    it is the weight worked out at full size, to within its feathering."""
    from limner import engines

    image = cv2.resize(portraits["astronaut"], (2048, 2048), interpolation=cv2.INTER_CUBIC)
    rgb = imaging.to_float(image)
    faces = [points * 4 for points in engines.get("face", "mediapipe").faces(
        imaging.to_float(portraits["astronaut"]))]
    assert len(faces) == 1
    grey = np.repeat(rgb.mean(-1, keepdims=True), 3, -1)    # no skin colour: the face
    quick = [grading.skin_weight(picture, faces) for picture in (rgb, grey)]  # mask alone
    monkeypatch.setattr(grading, "SKIN_SIDE", 4096)
    full = [grading.skin_weight(picture, faces) for picture in (rgb, grey)]
    for fast, slow in zip(quick, full):
        assert fast.shape == slow.shape == (2048, 2048) and slow.max() > 0.9
        difference = np.abs(fast - slow)
        assert difference.mean() < 0.005 and np.percentile(difference, 99.9) < 0.1


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_every_mood_returns_its_named_layers_and_differs(client, portraits, name):
    image = portraits[name]
    tops = {}
    for mood in MOODS:
        layers = run_array(client, "mood", {"mood": mood}, image)
        names = [layer.name for layer, _ in layers]
        assert [n.split(":")[0] for n in names] == [f"Mood {mood}"] * 5
        assert [n.split(": ")[1].split(" ")[0] for n in names] == \
            ["grade", "relit", "light", "light", "background"]
        assert [layer.visible for layer, _ in layers] == [True, True, False, False, True]
        relit = layers[1][1]
        assert relit.shape[2] == 4 and relit[..., 3].min() == 0 and relit[..., 3].max() == 255
        tops[mood] = layers[0][1][..., :3].astype(np.float64)
    for (a, x), (b, y) in itertools.combinations(tops.items(), 2):
        assert np.abs(x - y).mean() > 6, (a, b)
    for mood, top in tops.items():
        assert np.abs(top - image).mean() > 6, mood


def test_a_mood_at_zero_strength_leaves_the_picture(client, portraits):
    image = portraits["grace_hopper"]
    layers = run_array(client, "mood", {"mood": "film noir", "strength": 0.0}, image)
    assert np.abs(layers[0][1][..., :3].astype(int) - image).max() <= 2


BAD = {
    "wrong size line": ("LUT_3D_SIZE 18", "it holds 4913 entries where its size 18 needs"),
    "absurd size": ("LUT_3D_SIZE 100000", "its LUT_3D_SIZE is not a whole number from 2 to "
                                          "65"),
    "not a size": ("LUT_3D_SIZE seventeen", "its LUT_3D_SIZE is not a whole number"),
}


@pytest.mark.parametrize("case", [*BAD, "missing values", "nan", "not a cube", "no file"])
def test_bad_cube_files_get_a_clear_error_and_nothing_breaks(client, portraits, tmp_path,
                                                            case):
    path = tmp_path / "bad.cube"
    if case in BAD:
        write_cube(path, 17, lambda v: v, header=BAD[case][0])
        expected = BAD[case][1]
    elif case == "missing values":
        write_cube(path, 17, lambda v: v)
        path.write_text("\n".join(path.read_text().splitlines()[:-10]) + "\n")
        expected = "it holds 4903 entries where its size 17 needs 4913"
    elif case == "nan":
        write_cube(path, 5, lambda v: [v[0], float("nan"), v[2]])
        expected = "its table holds values that are not numbers"
    elif case == "not a cube":
        path.write_text("this is a shopping list\nmilk\n")
        expected = "is not a usable .cube file"
    else:
        path = tmp_path / "absent.cube"
        expected = "cannot read"
    with pytest.raises(BackendError) as refused:
        run_array(client, "grade", {"look": "LUT file", "lut": str(path)},
                  portraits["astronaut"])
    assert refused.value.code == "bad_parameter" and expected in refused.value.message
    for word in ("shopping", "milk", "seventeen", "100000", "nan"):  # never what is in it
        assert word not in refused.value.message.replace(str(path), "")
    assert run_array(client, "grade", {"look": "warm"}, portraits["astronaut"])  # still up


#: what each mood must do, on the subject and on the background (Lab: lightness, the
#: yellow-blue axis b*, chroma), as (measure, where, sign, at least): a recipe turned
#: the wrong way (noir brightened, golden hour at 9000 K) fails
MOOD_DIRECTIONS = {
    "golden hour": [("b", "subject", +1, 5), ("b", "background", +1, 5)],
    "cool and moody": [("b", "subject", -1, 5), ("L", "subject", -1, 3),
                       ("L", "background", -1, 10)],
    "film noir": [("chroma", "subject", -1, 10), ("L", "subject", -1, 8),
                  ("L", "background", -1, 15)],
    "high-key studio": [("L", "subject", +1, 8), ("L", "background", +1, 20)],
    "low-key dramatic": [("L", "subject", -1, 8), ("L", "background", -1, 25)],
    "soft pastel": [("L", "subject", +1, 5), ("chroma", "subject", -1, 3)],
}


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_every_mood_goes_the_way_its_name_says(client, portraits, name):
    from lightmeasure import subject_matte

    assert set(MOOD_DIRECTIONS) == set(MOODS)
    image = portraits[name]
    alpha = subject_matte(image)
    where = {"subject": alpha > 0.95, "background": alpha < 0.05}
    before = cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)

    def measure(what, lab_image, part):
        picked = lab_image[where[part]]
        return {"L": picked[:, 0], "b": picked[:, 2],
                "chroma": np.hypot(picked[:, 1], picked[:, 2])}[what].mean()

    for mood, rules in MOOD_DIRECTIONS.items():
        top = run_array(client, "mood", {"mood": mood}, image)[0][1]
        after = cv2.cvtColor(top[..., :3].astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
        for what, part, sign, least in rules:
            change = measure(what, after, part) - measure(what, before, part)
            assert sign * change >= least, (mood, what, part, round(float(change), 1))
