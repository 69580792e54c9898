"""The protocol module on its own: stdlib-only import, frames, buffer checks, messages."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from limner import protocol
from limner.protocol import BufferAssembler, BufferSpec, ProtocolError

PACKAGE = Path(protocol.__file__).parent


@pytest.mark.parametrize("module", ["protocol", "discovery"])
def test_imports_with_the_standard_library_alone(module):
    """The editors' Python has no numpy or torch: these modules must import without them."""
    stdlib = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]]
    code = (f"import sys; sys.path[:] = {stdlib!r} + [p for p in sys.path if 'lib-dynload' in p]"
            f" + [{str(PACKAGE)!r}]\n"
            f"import {module}\n"
            "assert not any(n.split('.')[0] in ('numpy', 'torch', 'websockets', 'limner')"
            " for n in sys.modules), sorted(sys.modules)\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_frames_chunk_and_reassemble_exactly():
    spec = BufferSpec(7, 300, 200, 4, "u16")
    data = bytes(range(256)) * (spec.nbytes // 256) + bytes(spec.nbytes % 256)
    frames = list(protocol.frames(spec, data, chunk_bytes=100_000))
    assert len(frames) == -(-spec.nbytes // 100_000)
    assembler = BufferAssembler(spec)
    done = [assembler.add(*protocol.parse_frame(f)) for f in frames]
    assert done == [False] * (len(frames) - 1) + [True]
    assert bytes(assembler.data) == data


def test_frames_refuse_data_of_the_wrong_length():
    with pytest.raises(ValueError, match="header says"):
        list(protocol.frames(BufferSpec(1, 2, 2, 4, "u8"), b"\0" * 15))


def _assemble(spec, frames):
    assembler = BufferAssembler(spec)
    for frame in frames:
        assembler.add(*protocol.parse_frame(frame))
    return assembler


def test_assembler_catches_a_short_buffer_at_its_last_chunk():
    spec = BufferSpec(1, 4, 4, 4, "u8")
    short = protocol.FRAME_HEADER.pack(protocol.FRAME_MAGIC, 1, 4, protocol.FLAG_LAST, 1, 4, 4, 0)
    with pytest.raises(ProtocolError, match="needs 64") as err:
        _assemble(spec, [short + b"\0" * 60])
    assert err.value.code == protocol.E_SIZE_MISMATCH


def test_assembler_catches_too_many_bytes_and_out_of_order_chunks():
    spec = BufferSpec(1, 4, 4, 4, "u8")
    head = protocol.FRAME_HEADER.pack
    with pytest.raises(ProtocolError, match="more than"):
        _assemble(spec, [head(protocol.FRAME_MAGIC, 1, 4, 0, 1, 4, 4, 0) + b"\0" * 65])
    with pytest.raises(ProtocolError, match="expected byte 0"):
        _assemble(spec, [head(protocol.FRAME_MAGIC, 1, 4, 0, 1, 4, 4, 32) + b"\0" * 32])


def test_assembler_catches_geometry_that_disagrees_with_the_run():
    frame = next(protocol.frames(BufferSpec(1, 8, 2, 4, "u8"), b"\0" * 64))
    with pytest.raises(ProtocolError, match="declared 4x4x4 u8"):
        _assemble(BufferSpec(1, 4, 4, 4, "u8"), [frame])


def test_parse_frame_rejects_garbage():
    with pytest.raises(ProtocolError, match="shorter than"):
        protocol.parse_frame(b"LMN1")
    with pytest.raises(ProtocolError, match="does not start"):
        protocol.parse_frame(b"X" * 40)


@pytest.mark.parametrize("declared, message", [
    ({"id": 1, "width": 0, "height": 5, "channels": 4, "sample": "u8"}, "must be positive"),
    ({"id": 1, "width": -3, "height": 5, "channels": 4, "sample": "u8"}, "must be positive"),
    ({"id": 1, "width": 10**9, "height": 5, "channels": 4, "sample": "u8"}, "largest side"),
    ({"id": 1, "width": 30000, "height": 30000, "channels": 4, "sample": "f32"}, "over this"),
    ({"id": 1, "width": 5.5, "height": 5, "channels": 4, "sample": "u8"}, "must be an integer"),
    ({"id": 1, "width": True, "height": 5, "channels": 4, "sample": "u8"}, "must be an integer"),
    ({"id": 1, "width": 5, "height": 5, "channels": 9, "sample": "u8"}, "channels must be"),
    ({"id": 1, "width": 5, "height": 5, "channels": 4, "sample": "f64"}, "sample must be"),
    ("not an object", "expected an object"),
])
def test_buffer_spec_validation(declared, message):
    with pytest.raises(ProtocolError, match=message):
        BufferSpec.from_json(declared, "image")


@pytest.mark.parametrize("text, code", [
    ("{not json", protocol.E_BAD_JSON),
    ("[1, 2]", protocol.E_BAD_MESSAGE),
    ('{"type": 3}', protocol.E_BAD_MESSAGE),
    ('{"type": "launch"}', protocol.E_UNKNOWN_TYPE),
])
def test_decode_errors(text, code):
    with pytest.raises(ProtocolError) as err:
        protocol.decode(text, protocol.CLIENT_TYPES)
    assert err.value.code == code


def test_run_message_round_trips():
    msg = protocol.decode(protocol.RunRequest("j1", "background.remove", {"engine": "rvm"},
                                       BufferSpec(1, 3, 2, 4, "f32"), BufferSpec(2, 3, 2, 1, "u8"),
                                       offset=(10, -4)).to_json(), protocol.CLIENT_TYPES)
    assert msg["op"] == "background.remove" and msg["offset"] == [10, -4]
    assert BufferSpec.from_json(msg["image"], "image").nbytes == 3 * 2 * 4 * 4
    assert BufferSpec.from_json(msg["mask"], "mask") == BufferSpec(2, 3, 2, 1, "u8")
