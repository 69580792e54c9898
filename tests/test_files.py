"""Files a retoucher can trust (`limner run` and `batch`): the colour profile, EXIF, IPTC
and XMP rights of the picture go to every result; PNG, TIFF (16-bit for deep pictures) or
JPEG; names that say the operation and every changed parameter, so nothing overwrites
another run's files; a batch resumes only what the same settings made; a LUT file alone
applies that LUT; a mood's provenance is its own; and the small messages."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from colour_profiles import EXIF, adobe_rgb, camera_jpeg
from PIL import Image, ImageCms

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(EXIFTOOL is None and not os.environ.get(
    "LIMNER_REQUIRE_EDITORS"), reason="exiftool is not installed (.ci/run installs it)")


def limner(*args, env, timeout=240):
    return subprocess.run([sys.executable, "-m", "limner", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def env(server, tmp_path):
    """The session's backend, found through its discovery file (models load once)."""
    return {**os.environ, "LIMNER_STATE_DIR": str(server.server.state_dir),
            "LIMNER_CONFIG": str(tmp_path / "no-config.json")}


@pytest.fixture
def small(portraits):
    return cv2.resize(portraits["astronaut"], (256, 256), interpolation=cv2.INTER_AREA)


def tags(path) -> dict:
    out = subprocess.run(["exiftool", "-j", "-G1", "-a", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)[0]


def icc_of(path) -> bytes | None:
    with Image.open(path) as im:
        return im.info.get("icc_profile")


def rgb_of(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[:, :, :3],
                        cv2.COLOR_BGR2RGB)


def inside_face(image: np.ndarray) -> np.ndarray:
    """The middle of the astronaut's face (cheeks, nose), away from its outline."""
    scale = image.shape[0] / 512
    return image[int(100 * scale):int(150 * scale), int(205 * scale):int(250 * scale)]


@needs_exiftool
def test_an_adobe_rgb_camera_jpeg_keeps_its_profile_and_rights(tmp_path, env, small):
    """Through `limner run`: the ICC bytes as they were, camera, date, GPS, creator,
    copyright and usage terms read back by exiftool beside Limner's provenance, and the
    subject's pixels as the picture's (kept untouched, in the picture's own space)."""
    icc = adobe_rgb()
    picture = tmp_path / "shoot.jpg"
    picture.write_bytes(camera_jpeg(small, icc))
    decoded = np.asarray(Image.open(picture).convert("RGB"))
    out = tmp_path / "out"
    done = limner("run", picture, "--op", "background.remove", "--out", out, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    cutout = out / "shoot-background-remove-cut-out-ai-rvm.png"
    assert icc_of(cutout) == icc
    assert b"iCCPICC profile\0" in cutout.read_bytes()   # a named iCCP: libpng warned on
    #                                                       Exiv2's empty name
    found = tags(cutout)
    assert found["ICC_Profile:ProfileDescription"].startswith("Adobe RGB (1998)")
    assert (found["IFD0:Make"], found["IFD0:Model"]) == ("Canon", "Canon EOS R5")
    assert found["IFD0:Copyright"] == "(c) 2024 Jane Doe"
    assert found["ExifIFD:DateTimeOriginal"] == "2024:05:06 07:08:09"
    assert found["GPS:GPSLatitudeRef"] == "North"
    assert found["XMP-dc:Creator"] == "Jane Doe"
    assert found["XMP-dc:Rights"] == "(c) 2024 Jane Doe, all rights reserved"
    assert found["XMP-xmpRights:UsageTerms"] == "Editorial use only"
    assert found["IPTC:By-line"] == "Jane Doe"
    assert found["XMP-iptcExt:DigitalSourceType"].endswith("compositeWithTrainedAlgorithmicMedia")
    # the subject is the picture's own pixels, and a colour-managed viewer shows them as
    # it shows the picture (both through the same profile)
    alpha = cv2.imread(str(cutout), cv2.IMREAD_UNCHANGED)[:, :, 3]
    subject = cv2.erode((alpha == 255).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert subject.mean() > 0.2
    kept = rgb_of(cutout)
    assert np.abs(kept[subject].astype(int) - decoded[subject]).max() <= 1
    to_srgb = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                      ImageCms.createProfile("sRGB"), "RGB", "RGB")
    seen = np.asarray(ImageCms.applyTransform(Image.fromarray(kept), to_srgb))
    reference = np.asarray(ImageCms.applyTransform(Image.fromarray(decoded), to_srgb))
    assert np.abs(seen[subject].astype(int) - reference[subject]).max() <= 1
    record = json.loads((out / "shoot-background-remove.provenance.json").read_text())
    assert record["kept"] == ["colour profile", "EXIF", "IPTC", "XMP rights"]


@needs_exiftool
def test_to_srgb_converts_with_littlecms_and_says_so(tmp_path, env, small):
    """`--to-srgb` (through `batch`, as JPEG): the pixels converted from Adobe RGB
    (relative colorimetric), an sRGB profile embedded, the rights still there."""
    icc = adobe_rgb()
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    picture = shoot / "portrait.jpg"
    picture.write_bytes(camera_jpeg(small, icc))
    decoded = Image.open(picture).convert("RGB")
    out = tmp_path / "out"
    done = limner("batch", shoot, "--op", "background.blur", "--param", "radius=6",
                  "--to-srgb", "--format", "jpeg", "--quality", "100", "--out", out, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    blurred = out / "portrait-background-blur-radius=6-background-blur-6-px-ai-rvm.jpg"
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_of(blurred)))
    assert "sRGB" in ImageCms.getProfileDescription(profile)
    reference = np.asarray(ImageCms.profileToProfile(
        decoded, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"),
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, outputMode="RGB"))
    # the face is kept sharp by the blur: its pixels are the converted picture's (JPEG
    # at quality 100 adds a level or two)
    difference = np.abs(inside_face(rgb_of(blurred)).astype(int) - inside_face(reference))
    assert np.percentile(difference, 99) <= 2, np.percentile(difference, 99)
    assert not np.array_equal(reference, np.asarray(decoded))      # it did convert
    assert tags(blurred)["XMP-dc:Creator"] == "Jane Doe"


def test_a_turned_camera_picture_comes_back_upright(tmp_path, env, small):
    """EXIF orientation 6 (the camera held on its side): the pixels are turned upright
    and the results say orientation 1, so no viewer turns them again."""
    tall = np.ascontiguousarray(small[:, 40:200])                    # 256 x 160, upright
    stored = np.ascontiguousarray(np.rot90(tall, 1))                 # as the sensor saw it
    picture = tmp_path / "side.jpg"
    picture.write_bytes(camera_jpeg(stored, adobe_rgb(), orientation=6))
    out = tmp_path / "out"
    done = limner("run", picture, "--op", "grade", "--param", "look=warm", "--out", out,
                  env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    graded = next(out.glob("side-grade-*warm*.png"))
    assert cv2.imread(str(graded)).shape[:2] == (256, 160)
    import pyexiv2

    with pyexiv2.Image(str(graded)) as written:
        assert written.read_exif()["Exif.Image.Orientation"] == "1"
        assert written.read_exif()["Exif.Image.Make"] == EXIF["Exif.Image.Make"]


def test_a_16_bit_tiff_gives_16_bit_tiffs_with_its_profile(tmp_path, env, small):
    deep = (small.astype(np.float32) / 255 * 65535).astype(np.uint16)
    picture = tmp_path / "deep.tif"
    ok, data = cv2.imencode(".tif", cv2.cvtColor(deep, cv2.COLOR_RGB2BGR))
    import pyexiv2

    tiff = pyexiv2.ImageData(data.tobytes())
    tiff.modify_icc(adobe_rgb())
    picture.write_bytes(tiff.get_bytes())
    tiff.close()
    out = tmp_path / "out"
    done = limner("run", picture, "--op", "background.blur", "--format", "tiff", "--out",
                  out, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    written = sorted(out.glob("*.tif"))
    assert written
    for path in written:
        pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert pixels.dtype == np.uint16, path
        assert icc_of(path) == adobe_rgb(), path


def test_runs_with_other_settings_never_overwrite_each_other(tmp_path, env, small):
    """Two relights with different setups, and two batches with different radii: four
    sets of files; the batch with a changed radius runs again, the same one resumes; a.png
    and a.jpg in one folder are both done."""
    picture = tmp_path / "a.png"
    cv2.imwrite(str(picture), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    for setup in ("rembrandt", "butterfly"):
        done = limner("run", picture, "--op", "relight", "--param", f"setup={setup}",
                      "--out", out, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
    stacks = sorted(p.name for p in out.glob("*.ora"))
    assert stacks == ["a-relight-butterfly.ora", "a-relight-rembrandt.ora"]
    assert len(list(out.glob("*.png"))) == 6                       # 3 layers each
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    cv2.imwrite(str(shoot / "a.png"), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(shoot / "a.jpg"), cv2.cvtColor(small[:, ::-1], cv2.COLOR_RGB2BGR))
    batches = tmp_path / "batches"
    for radius, said in ((10, "2 done, 0 already"), (40, "2 done, 0 already"),
                         (40, "0 done, 2 already")):
        done = limner("batch", shoot, "--op", "background.blur", "--param",
                      f"radius={radius}", "--out", batches, env=env)
        assert done.returncode == 0 and said in done.stderr, done.stderr[-2000:]
    assert sorted(p.name for p in batches.glob("*.ora")) == [
        "a-jpg-background-blur-radius=10.ora", "a-jpg-background-blur-radius=40.ora",
        "a-png-background-blur-radius=10.ora", "a-png-background-blur-radius=40.ora"]
    # a record that says other settings made the file: the run is done again
    record = batches / "a-png-background-blur-radius=40.provenance.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "params": {}}))
    done = limner("batch", shoot, "--op", "background.blur", "--param", "radius=40",
                  "--out", batches, env=env)
    assert "1 done, 1 already" in done.stderr, done.stderr[-2000:]


def _cube(path, swap: bool) -> None:
    lines = ["LUT_3D_SIZE 2"]
    for b in (0, 1):
        for g in (0, 1):
            for r in (0, 1):
                lines.append(f"{b} {g} {r}" if swap else f"{r} {g} {b}")
    path.write_text("\n".join(lines) + "\n")


def test_a_lut_file_alone_applies_that_lut(tmp_path, env, small):
    """`--param lut=…` without a look: the LUT, exactly (an identity leaves the picture,
    a red-blue swap swaps them); with another look named too, an error that says so."""
    picture = tmp_path / "p.png"
    cv2.imwrite(str(picture), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    for name, swap in (("identity", False), ("swap", True)):
        cube = tmp_path / f"{name}.cube"
        _cube(cube, swap)
        out = tmp_path / name
        done = limner("run", picture, "--op", "grade", "--param", f"lut={cube}",
                      "--param", "protect_skin=0", "--out", out, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        graded = rgb_of(out / f"p-grade-lut={name}-protect_skin=0-grade-{name}-cube-100-"
                                  "ai-grade.png")
        expected = small[:, :, ::-1] if swap else small
        assert np.abs(graded.astype(int) - expected).max() <= 1, name
    refused = limner("run", picture, "--op", "grade", "--param", f"lut={cube}", "--param",
                     "look=warm", "--out", tmp_path / "no", env=env)
    assert refused.returncode == 2
    assert "applies only with look 'LUT file', but look is 'warm'" in refused.stderr


def test_each_moods_provenance_names_its_own_look_setup_and_engines(client, small):
    from conftest import run_array
    from limner.operations.mood import MOODS

    for name, recipe in MOODS.items():
        layers = run_array(client, "mood", {"mood": name}, small[::2, ::2])
        for layer, _ in layers:
            made = layer.provenance
            assert made["params"]["mood"] == name
            assert (made["look"], made["setup"]) == (recipe["look"], recipe["setup"]), name
            assert made["engine"] == "geometric" and made["weights_licence"], name
            relight, background, grade = made["steps"]
            assert relight["params"]["temperature"] == recipe["temperature"], name
            assert background["matting"] == "rvm" and grade["look"] == recipe["look"]


def test_the_small_messages(tmp_path, env, small):
    picture = tmp_path / "p.png"
    cv2.imwrite(str(picture), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    missing = limner("run", tmp_path / "nowhere.png", "--op", "grade", "--out",
                     tmp_path / "o", env=env)
    assert missing.returncode == 2 and "nowhere.png does not exist" in missing.stderr
    assert "WARN" not in missing.stderr
    folder = limner("run", tmp_path, "--op", "grade", "--out", tmp_path / "o", env=env)
    assert folder.returncode == 2 and "is a folder" in folder.stderr
    assert f"limner batch {tmp_path} --op grade" in folder.stderr
    spaced = limner("run", picture, "--op", "relight", "--param", "setup", "rembrandt",
                    "--out", tmp_path / "o", env=env)
    assert spaced.returncode == 2 and "usage: limner run" in spaced.stderr
    assert "--param takes NAME=VALUE, e.g. --param setup=rembrandt" in spaced.stderr
    ops = limner("ops", env=env).stdout
    assert '"black and white, red filter"' in ops
    widths = {line.index(" default ") for line in ops.splitlines()
              if line.startswith("    ") and " default " in line}
    assert len(widths) == 1                                # one column, however long a name


def test_a_layers_file_name_does_not_repeat_the_run(tmp_path, env, small):
    from limner.cli import layer_file_stem

    assert layer_file_stem("a-mood-film-noir", "Mood film noir: grade noir") == \
        "a-mood-film-noir-grade-noir"
    assert layer_file_stem("a-relight", "Relit subject") == "a-relight-relit-subject"
    assert layer_file_stem("a-grade", "Grade") == "a-grade-grade"     # nothing left: kept
    picture = tmp_path / "a.png"
    cv2.imwrite(str(picture), cv2.cvtColor(small[::2, ::2], cv2.COLOR_RGB2BGR))
    done = limner("run", picture, "--op", "mood", "--param", "mood=film noir", "--out",
                  tmp_path / "out", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    names = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert names and all(n.startswith("a-mood-film-noir-") and "noir-mood-film" not in n
                         for n in names), names
