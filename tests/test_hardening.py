"""What a hostile or broken client did to the backend, each kept as a regression test on a
real server over real sockets: junk that leaked memory and made the server unkillable,
declared buffers that allocated a gigabyte, idle sockets that piled up, a second server
that hid the first, file parameters that told whether a path exists, a cancel that could
not reach an upload, a client that took another job's error for its own."""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import next_text, run_array
from limner import discovery, protocol
from limner.client import BackendError, Client
from limner.logs import QuietRepeats
from limner.protocol import BufferSpec, ProtocolError
from limner.server import ServerThread
from limner.transfer import refuse_file_parameters
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

SMALL = np.arange(6 * 5 * 4, dtype=np.uint8).reshape(6, 5, 4)


@contextmanager
def backend_process(state: Path, *args: str):
    """`limner serve` in a process of its own (its memory and its signals are its own)."""
    env = {**os.environ, "LIMNER_STATE_DIR": str(state)}
    log = state / "serve.log"                  # a file: an unread pipe could fill and block
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "limner", "serve", "--port", "0",
                                 "--log-level", "WARNING", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=out)
    try:
        deadline = time.time() + 60
        while (info := discovery.read(state)) is None:
            assert proc.poll() is None, log.read_text()
            assert time.time() < deadline, "limner serve did not start"
            time.sleep(0.1)
        yield proc, info
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def slam(port: int, payload: str) -> None:
    """The peer that never reads: a bare socket does the WebSocket handshake, sends one
    text message, lets the backend start its reply and fill the socket's buffers, then
    resets the connection (RST, no close handshake)."""
    sock = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(4096)
    assert b" 101 " in response.split(b"\r\n")[0], response
    data, mask = payload.encode(), os.urandom(4)
    masked = (np.frombuffer(data, np.uint8) ^
              np.resize(np.frombuffer(mask, np.uint8), len(data))).tobytes()
    sock.sendall(struct.pack("!BBQ", 0x81, 0x80 | 127, len(data)) + mask + masked)
    time.sleep(0.3)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.slow
def test_junk_from_strangers_neither_leaks_nor_makes_the_server_unkillable(tmp_path):
    """Ten 4 MB junk messages from unauthenticated sockets that reset: the 4 MB came back
    tripled in the error, and the drain of a dead socket never ended (SIGTERM hung)."""
    with backend_process(tmp_path) as (proc, info):
        junk = json.dumps({"type": "\\" * 2_000_000})          # escapes grow in replies
        slam(info["port"], junk)                      # first-touch costs out of the way
        time.sleep(1)
        before = rss_mib(proc.pid)
        for _ in range(10):
            slam(info["port"], junk)
        time.sleep(2)
        grown = rss_mib(proc.pid) - before
        assert grown < 150, f"RSS grew by {grown:.0f} MiB"
        with Client(f"ws://127.0.0.1:{info['port']}", info["token"]) as c:   # still serving
            (_, pixels), = run_array(c, "diagnostics.echo", {}, SMALL)
            assert np.array_equal(pixels, SMALL)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        assert time.monotonic() - started < 10
        assert proc.returncode == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.slow
def test_declaring_a_gigabyte_costs_nothing_until_it_is_sent(tmp_path):
    with backend_process(tmp_path) as (proc, info):
        with connect(f"ws://127.0.0.1:{info['port']}", compression=None) as ws:
            ws.send(protocol.Hello(info["token"], "declarer").to_json())
            next_text(ws)
            time.sleep(0.5)
            before = rss_mib(proc.pid)
            huge = BufferSpec(1, 16384, 16384, 4, "u8")             # 1 GiB
            ws.send(protocol.RunRequest("huge", "diagnostics.echo", {}, huge).to_json())
            first = protocol.FRAME_HEADER.pack(protocol.FRAME_MAGIC, 1, 4, 0, 1, 16384,
                                               16384, 0) + bytes(1 << 20)
            ws.send(first)                     # its first megabyte, then nothing more
            time.sleep(1)
            grown = rss_mib(proc.pid) - before
            assert grown < 200, f"RSS grew by {grown:.0f} MiB"


def test_a_second_server_for_the_same_folder_says_so_and_exits(tmp_path):
    with backend_process(tmp_path) as (_, info):
        second = subprocess.run([sys.executable, "-m", "limner", "serve", "--port", "0"],
                                env={**os.environ, "LIMNER_STATE_DIR": str(tmp_path)},
                                capture_output=True, text=True, timeout=60, check=False)
        assert second.returncode != 0
        assert "already running" in second.stderr and str(info["pid"]) in second.stderr
        assert discovery.read(tmp_path)["port"] == info["port"]    # the first still found


def test_a_non_ascii_token_is_refused_not_crashed_on(server):
    with connect(server.uri, compression=None) as ws:
        ws.send(protocol.Hello("tökén-ünïcode", "pytest").to_json())
        msg = next_text(ws)
        assert msg["code"] == protocol.E_AUTH and "token" in msg["message"]
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd.code == protocol.CLOSE_POLICY


def test_a_connection_that_never_says_hello_is_closed(tmp_path, monkeypatch):
    from limner import server as server_module

    monkeypatch.setattr(server_module, "HELLO_SECONDS", 0.5)
    with ServerThread(port=0, state_dir=tmp_path) as running:
        with connect(running.uri, compression=None) as ws:
            started = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert time.monotonic() - started < 5
            assert closed.value.rcvd.code == protocol.CLOSE_POLICY


def test_a_crowd_of_silent_connections_cannot_lock_the_plug_ins_out(tmp_path, monkeypatch):
    """Anyone on the machine, without the token, held 32+ idle sockets and no plug-in got
    in (0 of 27 in 28 s): now a new connection closes the silent one that waited longest,
    and a client that says hello at once gets in however many are held."""
    from limner import server as server_module

    monkeypatch.setattr(server_module, "MAX_WAITING_FOR_HELLO", 4)
    with ServerThread(port=0, state_dir=tmp_path) as running, ExitStack() as stack:
        silent = [stack.enter_context(connect(running.uri, compression=None))
                  for _ in range(12)]
        for n in range(5):
            with connect(running.uri, compression=None, open_timeout=10) as ws:
                ws.send(protocol.Hello(running.server.token, f"plug-in {n}").to_json())
                assert next_text(ws)["type"] == protocol.WELCOME
        closed = 0
        for ws in silent[:8]:                     # the ones that waited longest were closed
            with pytest.raises(ConnectionClosed) as gone:
                ws.recv(timeout=10)
            closed += gone.value.rcvd.code == protocol.CLOSE_POLICY
        assert closed == 8
        assert len(running.server.waiting_for_hello) <= 4


def test_two_origin_headers_are_refused_cleanly(server):
    """Two Origin headers gave an HTTP 500 with a traceback: a plain 403."""
    with pytest.raises(InvalidStatus) as refused:
        connect(server.uri, compression=None,
                additional_headers=[("Origin", "http://a.example"),
                                    ("Origin", "http://b.example")])
    assert refused.value.response.status_code == 403


def test_repeated_log_lines_are_counted_not_written():
    quiet = QuietRepeats(per_window=5, window=0.5)

    def record(msg="refused a connection with Origin %s"):
        return logging.LogRecord("limner.server", logging.WARNING, __file__, 1, msg,
                                 ("x",), None)

    passed = sum(quiet.filter(record()) for _ in range(1000))
    assert passed == 5
    assert quiet.filter(record("something else"))
    time.sleep(0.6)
    later = record()
    assert quiet.filter(later) and "995 like it" in later.getMessage()


def test_every_jobs_line_and_every_error_is_written_under_load(server, client,
                                                               small_portrait):
    """The repeat filter took every "job … done/failed" line for the same message: under
    load 51 were written and about 7,600 dropped, failures among them. A job's line is
    its own kind; errors are never dropped."""
    import io

    from limner import logs

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.QuietRepeats())
    jobs_log = logging.getLogger("limner.jobs")
    jobs_log.addHandler(handler)
    level = jobs_log.level
    jobs_log.setLevel(logging.INFO)
    try:
        for _ in range(12):
            run_array(client, "grade", {"look": "warm"}, small_portrait[:16, :16])
        for _ in range(8):                    # refused inside the job: a failure each
            with pytest.raises(BackendError):
                run_array(client, "grade", {"look": "LUT file", "lut": "/nowhere.cube"},
                          small_portrait[:16, :16])
    finally:
        jobs_log.removeHandler(handler)
        jobs_log.setLevel(level)
    lines = stream.getvalue().splitlines()
    assert sum(" grade: done in " in line for line in lines) == 12, lines
    assert sum(" grade: ProtocolError in " in line for line in lines) == 8, lines
    for _ in range(20):                       # and errors are written however many
        assert logs.QuietRepeats.filter(handler.filters[0], logging.LogRecord(
            "limner.jobs", logging.ERROR, __file__, 1, "job %s failed", ("x",), None))


@pytest.mark.parametrize("make", ["missing", "folder", "not an image", "dangling link",
                                  "empty"])
def test_every_unreadable_picture_path_gets_the_same_answer(client, small_portrait, tmp_path,
                                                            make):
    path = tmp_path / "picture.png"
    if make == "folder":
        path.mkdir()
    elif make == "not an image":
        path.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    elif make == "dangling link":
        path.symlink_to(tmp_path / "nowhere.png")
    elif make == "empty":
        path.write_bytes(b"")
    with pytest.raises(BackendError) as err:
        run_array(client, "background.replace", {"backdrop": str(path)}, small_portrait)
    assert err.value.code == protocol.E_BAD_PARAMETER
    assert err.value.message == f"backdrop: cannot read {str(path)!r} as an image"


def test_a_huge_picture_is_refused_from_its_header_before_it_is_decoded(tmp_path):
    from PIL import Image

    path = tmp_path / "huge.png"
    Image.new("L", (9000, 9000)).save(path)             # 81 MP, a few hundred KB on disk
    code = ("import resource, sys\nfrom limner.ora import read_picture\n"
            "from limner.protocol import ProtocolError\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "try:\n    read_picture(sys.argv[1], 'backdrop')\n"
            "except ProtocolError as exc:\n    print(exc.code)\n"
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, timeout=120, check=True)
    code_seen, grown_mib = out.stdout.split()
    assert code_seen == protocol.E_TOO_LARGE and int(grown_mib) < 50, out.stdout


def test_file_parameters_are_for_clients_on_the_backends_machine():
    from limner import operations

    op = operations.get("background.replace")
    with pytest.raises(ProtocolError) as err:
        refuse_file_parameters(op, op.validate({"backdrop": "/home/someone/beach.jpg"}))
    assert err.value.code == protocol.E_BAD_PARAMETER and "run.inputs" in err.value.message
    refuse_file_parameters(op, op.validate({"color": "#123456"}))        # no file: fine


def test_the_discovery_file_is_never_written_through_a_planted_link(tmp_path):
    target = tmp_path / "victim.txt"
    target.write_text("precious")
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    for name in (f"server.{os.getpid()}.tmp", "server.json.tmp"):
        (state / name).symlink_to(target)
    discovery.write({"port": 1, "token": "t", "pid": os.getpid()}, state)
    assert target.read_text() == "precious"
    assert json.loads((state / "server.json").read_text())["token"] == "t"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX owners and modes")
def test_a_state_folder_others_may_write_or_own_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(PermissionError, match="other users"):
        discovery.write({"port": 1, "token": "t", "pid": os.getpid()}, shared)
    if os.getuid() == 0:                         # as root, a folder can be given away
        foreign = tmp_path / "foreign"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, 65534, 65534)
        with pytest.raises(PermissionError, match="another user"):
            discovery.write({"port": 1, "token": "t", "pid": os.getpid()}, foreign)


def test_cancel_reaches_a_job_whose_pixels_are_still_arriving(raw):
    spec = BufferSpec(1, 400, 400, 4, "u8")
    frames = list(protocol.frames(spec, bytes(spec.nbytes), chunk_bytes=64 * 1024))
    raw.send(protocol.RunRequest("uploading", "diagnostics.echo", {}, spec).to_json())
    for frame in frames[:3]:
        raw.send(frame)
    raw.send(protocol.Cancel("uploading").to_json())
    for frame in frames[3:]:                   # the rest of it, still on its way
        raw.send(frame)
    msg = next_text(raw)
    assert msg["type"] == protocol.ERROR and msg["code"] == protocol.E_CANCELLED
    assert msg["job"] == "uploading"
    small = BufferSpec(2, 5, 6, 4, "u8")       # not busy: a new run goes through
    raw.send(protocol.RunRequest("next", "diagnostics.echo", {}, small).to_json())
    for frame in protocol.frames(small, SMALL.tobytes()):
        raw.send(frame)
    while (msg := next_text(raw))["type"] == protocol.PROGRESS:
        pass
    assert msg["type"] == protocol.RESULT and msg["job"] == "next", msg


def test_a_cancel_that_crosses_a_result_does_not_break_the_next_run(client):
    """Cancel a job just after it finished (a Cancel click as a job completes): the
    backend answers unknown_job for it, and that error belongs to the old job, not the
    next run."""
    run_array(client, "diagnostics.echo", {}, SMALL, job="done-already")
    client.cancel("done-already")
    (_, pixels), = run_array(client, "diagnostics.echo", {}, SMALL, job="next-one")
    assert np.array_equal(pixels, SMALL)


def test_nothing_the_backend_sends_carries_nan(raw, small_portrait):
    """Strict JSON parsers refuse NaN: every message of a relight must parse without it."""
    def strict(name):
        raise AssertionError(f"{name} in a message")

    with pytest.raises(ValueError):
        protocol.encode("result", value=float("nan"))
    spec = BufferSpec(1, small_portrait.shape[1], small_portrait.shape[0], 3, "u8")
    raw.send(protocol.RunRequest("lit", "relight", {"azimuth": 30}, spec).to_json())
    for frame in protocol.frames(spec, small_portrait.tobytes()):
        raw.send(frame)
    while True:
        message = raw.recv(timeout=60)
        if isinstance(message, str):
            msg = json.loads(message, parse_constant=strict)
            assert msg["type"] != protocol.ERROR, msg
            if msg["type"] == protocol.RESULT:
                break


def _junk(rng: np.random.Generator, depth: int = 0):
    """A random JSON value of any type, huge integers and nesting included."""
    kind = int(rng.integers(0, 9 if depth < 3 else 6))
    if kind == 0:
        return None
    if kind == 1:
        return bool(rng.integers(2))
    if kind == 2:
        return int(rng.integers(-2**40, 2**40))
    if kind == 3:
        return float(rng.normal(0, 1e6))
    if kind == 4:
        return "".join(map(chr, rng.integers(32, 0x2FF, int(rng.integers(0, 40)))))
    if kind == 5:
        return int("9" * int(rng.integers(20, 400)))
    if kind == 6:
        return [_junk(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))]
    if kind == 7:
        return {str(_junk(rng, 3)): _junk(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))}
    return [[[[_junk(rng, 3)]]]]


def _fuzzed(rng: np.random.Generator, round_: int) -> str | bytes:
    """One malformed (or occasionally valid) message: a real message with fields dropped,
    retyped or added, broken JSON, or a binary frame with a mangled header or payload."""
    spec = BufferSpec(int(rng.integers(1, 5)), 5, 6, 4, "u8")
    choice = rng.integers(0, 10)
    if choice < 6:
        base = json.loads([protocol.RunRequest(f"j{round_}", "diagnostics.echo", {}, spec).to_json(),
                           protocol.Cancel(f"j{round_}").to_json(), protocol.Pull(f"p{round_}", "no-such").to_json(),
                           protocol.Hello("x", "fuzz").to_json()][int(rng.integers(0, 4))])
        for _ in range(rng.integers(1, 4)):
            key = [*base, "op", "params", "image", "mask", "inputs", "offset", "transfer",
                   "preview_side", "job", "model", "type", "zzz"][int(rng.integers(0, len(base) + 12))]
            if rng.random() < 0.2:
                base.pop(key, None)
            else:
                base[key] = _junk(rng)
        return json.dumps(base)
    if choice < 8:
        text = protocol.RunRequest(f"j{round_}", "diagnostics.echo", {}, spec).to_json()
        cut = int(rng.integers(0, len(text)))
        return text[:cut] + "".join(map(chr, rng.integers(32, 127, rng.integers(0, 8))))
    header = [protocol.FRAME_MAGIC if rng.random() < 0.8 else os.urandom(4),
              int(rng.integers(0, 5)), int(rng.integers(0, 6)), int(rng.integers(0, 3)),
              int(rng.integers(0, 6)), int(rng.integers(0, 10)), int(rng.integers(0, 10)),
              int(rng.integers(0, 200))]
    frame = protocol.FRAME_HEADER.pack(*header) + os.urandom(int(rng.integers(0, 300)))
    return frame[:int(rng.integers(0, len(frame) + 1))] if rng.random() < 0.1 else frame


def test_fuzzed_frames_always_get_an_answer_and_never_kill_the_server(server):
    """3,000 fuzzed frames (fixed seed) on one authenticated connection: after each, a
    sentinel cancel must get its own unknown_job answer on the same connection, so no
    frame dropped it silently; the server then still serves a new client."""
    rng = np.random.default_rng(20261125)
    with connect(server.uri, compression=None, max_size=None) as ws:
        ws.send(protocol.Hello(server.server.token, "fuzzer").to_json())
        assert next_text(ws)["type"] == protocol.WELCOME
        for round_ in range(3000):
            ws.send(_fuzzed(rng, round_))
            sentinel = f"sentinel-{round_}"
            ws.send(protocol.Cancel(sentinel).to_json())
            while True:                      # every reply until the sentinel's own
                message = ws.recv(timeout=30)
                if isinstance(message, str):
                    msg = json.loads(message)
                    if msg.get("job") == sentinel:
                        assert msg["code"] == protocol.E_UNKNOWN_JOB, msg
                        break
                    if msg["type"] == protocol.PROGRESS and msg["job"].startswith("j"):
                        ws.send(protocol.Cancel(msg["job"]).to_json())   # a fuzzed run that started
    with Client(server.uri, server.server.token) as c:
        (_, pixels), = run_array(c, "diagnostics.echo", {}, SMALL)
        assert np.array_equal(pixels, SMALL)


@pytest.mark.parametrize("op, params", [("relight", {}), ("background.blur", {}),
                                        ("grade", {"look": "warm"}), ("mood", {})])
def test_a_float_layer_with_a_nan_is_refused_not_spread(client, small_portrait, op, params):
    """One NaN sample turned relight's and blur's whole result into NaN, grade's into 1.0
    and mood's into an internal error: refused, saying how many and where."""
    image = np.ascontiguousarray(small_portrait[:48, :48, :3], np.float32) / 255
    image[5, 7, 1] = np.nan
    image[9, 2, 0] = np.inf
    with pytest.raises(BackendError) as refused:
        run_array(client, op, params, image)
    assert refused.value.code == protocol.E_BAD_BUFFER
    assert "the layer: 2 samples are not numbers (NaN or infinite), the first at x=7, y=5" \
        in refused.value.message
    assert run_array(client, op, params, np.nan_to_num(image, posinf=1.0))   # still up


@pytest.mark.parametrize("op", ["background.remove", "background.blur",
                                "background.replace"])
@pytest.mark.parametrize("shape", [(1, 1, 4), (1, 1, 3), (1, 5, 3)])
def test_the_smallest_layers_work(client, op, shape):
    """A 1x1 layer made the background operations fail with ZeroDivisionError."""
    layers = run_array(client, op, {}, np.full(shape, 128, np.uint8))
    assert layers and layers[0][1].shape[:2] == shape[:2]


def test_the_launchers_state_folder_and_logs_are_owner_only(tmp_path, monkeypatch):
    """The launcher made the state folder 0755 and backend.log 0644, where the server's
    own folder is 0700: one rule for both."""
    from limner import launcher

    state = tmp_path / "state"
    monkeypatch.setenv("LIMNER_STATE_DIR", str(state))
    script = tmp_path / "install" / "setup.py"
    script.parent.mkdir()
    script.write_text("print('installing')\n")
    launcher.run_installer([sys.executable, str(script)]).wait(60)   # makes the folder
    assert state.stat().st_mode & 0o777 == 0o700
    assert (state / "installer.log").stat().st_mode & 0o777 == 0o600
    launcher.write_record([sys.executable, "-c", "raise SystemExit(3)"],
                          [sys.executable, str(script)], state)
    (state / "backend.log").write_text("from an older version\n")
    (state / "backend.log").chmod(0o644)
    with pytest.raises(RuntimeError, match="exited with code 3"):
        launcher.ensure_running("krita")
    assert (state / "backend.log").stat().st_mode & 0o777 == 0o600
    state.chmod(0o777)                                 # others could write: refused
    with pytest.raises(PermissionError):
        launcher.ensure_running("krita")
