"""Files that parameters and the command line name (a LUT, a reference to match, a
backdrop, the picture `limner run` reads): a FIFO, a device, a folder, a file too large or
one that is missing all get the same answer at once, naming the file and never what is
in it; a job never blocks on one, and the backend stays up. One picture limit for every
way a picture comes in."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from conftest import run_array
from limner import cli
from limner.client import BackendError
from PIL import Image

#: (operation, parameters) naming a file, with the file's path put in for {}
NAMING = {"lut": ("grade", {"look": "LUT file", "lut": "{}"}),
          "match": ("grade", {"look": "none", "match": "{}"}),
          "backdrop": ("background.replace", {"backdrop": "{}"})}


def _unreadable(tmp_path, kind: str):
    """A path of `kind` that no file parameter may read."""
    path = tmp_path / f"{kind}.cube"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    elif kind == "huge":                        # sparse: large without taking the disk
        with open(path, "wb") as file:
            file.truncate(2 << 30)
    return path


def _unblock_later(path, after: float = 20.0) -> threading.Timer:
    """Should a reader block on the FIFO at `path` (the defect), open and close its
    writing end after a while, so the test fails instead of hanging."""
    def release():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass
    timer = threading.Timer(after, release)
    timer.daemon = True
    timer.start()
    return timer


@pytest.mark.parametrize("name", NAMING)
@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "huge", "missing"])
def test_a_file_parameter_that_is_no_regular_file_is_refused_at_once(client, portraits,
                                                                     tmp_path, name, kind):
    path = _unreadable(tmp_path, kind)
    timer = _unblock_later(path) if kind == "fifo" else None
    op, params = NAMING[name]
    params = {key: value.format(path) for key, value in params.items()}
    started = time.monotonic()
    try:
        with pytest.raises(BackendError) as refused:
            run_array(client, op, params, portraits["astronaut"][:64, :64])
    finally:
        if timer:
            timer.cancel()
    assert time.monotonic() - started < 10
    # the same words whatever the path is: nothing tells a missing file from a FIFO (for
    # a picture, nor from a file that is no picture)
    assert refused.value.code == "bad_parameter"
    assert refused.value.message.replace(repr(str(path)), "PATH") == (
        "lut: cannot read PATH: it is missing, not a regular file, not readable, or larger "
        "than 16 MB" if name == "lut" else f"{name}: cannot read PATH as an image")
    assert run_array(client, "grade", {"look": "warm"}, portraits["astronaut"][:32, :32])


def test_a_lut_declaring_a_huge_table_is_refused_before_it_is_read(client, portraits,
                                                                   tmp_path):
    """A valid header for a 256-point cube (what held the worker a minute at 7.9 GB):
    refused from its first lines."""
    path = tmp_path / "big.cube"
    path.write_text("LUT_3D_SIZE 256\n" + "0.5 0.5 0.5\n" * 1000)
    started = time.monotonic()
    with pytest.raises(BackendError, match="LUT_3D_SIZE is not a whole number from 2 to 65"):
        run_array(client, "grade", {"look": "LUT file", "lut": str(path)},
                  portraits["astronaut"][:32, :32])
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("size", [(9200, 9200), (14000, 13000)], ids=["81 MP", "182 MP"])
def test_limner_run_has_the_same_picture_limit_as_everything_else(tmp_path, capsys, size):
    """Over 64 megapixels (and past Pillow's own bomb limit, which it raised as an
    uncaught error): one message, exit 2, nothing decoded."""
    path = tmp_path / "huge.png"
    Image.new("1", size).save(path)
    assert cli.main(["run", str(path), "--op", "grade", "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "larger than the 64 megapixels a picture may have" in error, error
    assert "Traceback" not in error
    assert not (tmp_path / "out").exists()


def test_limner_run_names_a_fifo_without_blocking(tmp_path, capsys):
    path = _unreadable(tmp_path, "fifo")
    timer = _unblock_later(path)
    try:
        assert cli.main(["run", str(path), "--op", "grade", "--out", str(tmp_path)]) == 2
    finally:
        timer.cancel()
    assert "image: cannot read" in capsys.readouterr().err


def test_a_float_picture_file_with_nan_is_refused(client, portraits, tmp_path):
    import cv2

    reference = np.full((16, 16, 3), 0.5, np.float32)
    reference[3, 4, 1] = np.nan
    path = tmp_path / "reference.tiff"
    assert cv2.imwrite(str(path), reference)
    with pytest.raises(BackendError, match=r"match: 1 samples are not numbers") as refused:
        run_array(client, "grade", {"look": "none", "match": str(path)},
                  portraits["astronaut"][:32, :32])
    assert refused.value.code == "bad_buffer"
