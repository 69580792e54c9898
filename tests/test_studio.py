"""Studio mode over real TLS on loopback: the certificate and its pin, the users' tokens,
what remote users may not do, their limits and their fair turns; and the plug-ins'
studio server setting."""

from __future__ import annotations

import asyncio
import os
import stat
import time

import numpy as np
import pytest
from limner import cli, discovery, launcher, operations, protocol, studio
from limner.client import BackendError, Client
from limner.jobs import Job, JobQueue
from limner.protocol import BufferSpec, Pixels
from limner.server import ServerThread

ECHO = Pixels(np.arange(16 * 8 * 4, dtype=np.uint8).tobytes(), 16, 8, 4, "u8")


@pytest.fixture
def state(tmp_path, monkeypatch):
    folder = tmp_path / "state"
    monkeypatch.setenv("LIMNER_STATE_DIR", str(folder))
    monkeypatch.setattr(studio, "FAILED_AUTH_SECONDS", 0.3)   # the tests' patience
    return folder


@pytest.fixture
def users(state):
    people = studio.Users(state)
    return people, {"ana": people.add("ana", admin=True), "bo": people.add("bo")}


def studio_server(state, users_, **limits):
    cert, key = studio.certificate(state, ["127.0.0.1"])
    tls, fingerprint = studio.tls_context(cert, key)
    return ServerThread(port=0, studio=studio.Studio(tls, fingerprint, users_, **limits))


def connect(server, token, **kwargs) -> Client:
    """A pinned client; patient, as a loaded CI machine can take seconds over a handshake."""
    return Client(server.uri, token, fingerprint=server.server.studio.fingerprint,
                  timeout=60, **kwargs)


# ------------------------------------------------------------------------ TLS and the pin

def test_a_pinned_client_runs_jobs_over_tls(state, users):
    people, tokens = users
    with studio_server(state, people) as server:
        assert server.uri.startswith("wss://127.0.0.1:")
        with connect(server, tokens["bo"]) as client:
            (layer, pixels), = client.run("diagnostics.echo", {}, ECHO)
            assert pixels.data == ECHO.data
            # the certificate is the one in the state folder, owner-only with its key
            der = client.ws.socket.getpeercert(binary_form=True)
            assert protocol.fingerprint(der) == server.server.studio.fingerprint
    for name in (studio.CERT_FILE, studio.KEY_FILE):
        assert stat.S_IMODE(os.stat(state / name).st_mode) == 0o600


def test_the_wrong_pin_is_refused_before_the_token_is_sent(state, users):
    people, tokens = users
    with studio_server(state, people) as server:
        wrong = "AA:" * 31 + "AA"
        with pytest.raises(BackendError) as refused:
            Client(server.uri, tokens["bo"], fingerprint=wrong)
        assert refused.value.code == protocol.E_CERTIFICATE
        assert "not the one pinned" in refused.value.message
        # no pin: a self-signed certificate is not trusted by the system
        with pytest.raises(BackendError) as untrusted:
            Client(server.uri, tokens["bo"])
        assert untrusted.value.code == protocol.E_CERTIFICATE
        # neither sent a token: the server saw no hello, good or bad
        assert server.server.studio.doorman.failures == {}
        # plain WebSocket to a studio server does not connect at all
        with pytest.raises(BackendError) as plain:
            Client(server.uri.replace("wss://", "ws://"), tokens["bo"])
        assert plain.value.code == protocol.E_UNREACHABLE
        # the pin may be written without colons, in lower case
        with Client(server.uri, tokens["bo"], fingerprint=server.server.studio.fingerprint
                    .replace(":", "").lower()) as client:
            assert client.server.startswith("limner ")


# ------------------------------------------------------------------------------- tokens

def test_users_are_stored_as_salted_hashes_and_listed_without_them(state, capsys):
    assert cli.main(["users", "add", "ana", "--admin"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert cli.main(["users", "add", "bo"]) == 0
    other = capsys.readouterr().out.strip().splitlines()[-1]
    path = state / studio.USERS_FILE
    text = path.read_text()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert token.split(".")[1] not in text and other.split(".")[1] not in text
    assert cli.main(["users", "add", "bo"]) == 2                    # no second bo
    assert cli.main(["users", "list"]) == 0
    listed = capsys.readouterr().out
    assert "ana\tadmin" in listed and "bo\tuser" in listed and "hash" not in listed
    people = studio.Users(state)
    assert people.check(token) == studio.User("ana", True)
    assert people.check(other) == studio.User("bo", False)
    assert people.check(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert cli.main(["users", "remove", "bo"]) == 0
    assert people.check(other) is None
    assert cli.main(["users", "remove", "bo"]) == 2


def test_a_wrong_token_gets_one_answer_and_delay_and_repeats_are_slowed(state, users):
    people, tokens = users
    with studio_server(state, people) as server:
        answers = []
        for token in (tokens["bo"].split(".")[0] + ".wrong",        # a real ID
                      "feedfeedfeed." + tokens["bo"].split(".")[1],  # a real secret
                      "nonsense"):
            started = time.monotonic()
            with pytest.raises(BackendError) as refused:
                connect(server, token)
            answers.append((refused.value.code, refused.value.message,
                            time.monotonic() - started))
        assert len({(code, message) for code, message, _ in answers}) == 1
        assert answers[0][0] == protocol.E_AUTH
        waits = [seconds for _, _, seconds in answers]
        # 0.3 s, then doubled for each repeat from this address
        assert 0.3 <= waits[0] < 0.6 and 0.6 <= waits[1] < 0.9 and 1.2 <= waits[2] < 1.6
        # the right token still gets in at once; a removed user's no longer does
        started = time.monotonic()
        with connect(server, tokens["bo"]):
            assert time.monotonic() - started < 0.3
        people.remove("bo")
        with pytest.raises(BackendError) as removed:
            connect(server, tokens["bo"])
        assert removed.value.code == protocol.E_AUTH


# ----------------------------------------------------------------- what remote users may do

def test_studio_users_never_name_server_side_files_and_only_admins_pull(state, users):
    people, tokens = users
    image = Pixels(np.zeros((8, 8, 3), np.uint8).tobytes(), 8, 8, 3, "u8")
    with studio_server(state, people) as server:
        for name in ("ana", "bo"):     # from loopback, admin or not: still remote users
            with connect(server, tokens[name]) as client:
                with pytest.raises(BackendError) as refused:
                    client.run("background.replace", {"backdrop": str(state / "x.png")},
                               image)
                assert refused.value.code == protocol.E_BAD_PARAMETER
                assert "file" in refused.value.message
        with connect(server, tokens["bo"]) as client:
            with pytest.raises(BackendError) as forbidden:
                client.pull("birefnet-matting")
            assert forbidden.value.code == protocol.E_FORBIDDEN
            assert client.run("diagnostics.echo", {}, ECHO)[0][1].data == ECHO.data
        with connect(server, tokens["ana"]) as client:
            with pytest.raises(BackendError) as unknown:
                client.pull("no-such-model")
            assert unknown.value.code != protocol.E_FORBIDDEN


def test_per_user_limits_give_clear_errors(state, users):
    people, tokens = users
    with studio_server(state, people, jobs_per_user=1, bytes_per_user=1 << 20) as server:
        first, second = connect(server, tokens["bo"]), connect(server, tokens["bo"])
        other = connect(server, tokens["ana"])
        try:
            # bo's first run is still uploading (its pixels not sent yet): his one job
            spec = BufferSpec(1, 16, 8, 4, "u8")
            first.ws.send(protocol.RunRequest("j1", "diagnostics.echo", {}, spec).to_json())
            with pytest.raises(BackendError) as over:
                second.run("diagnostics.echo", {}, ECHO)
            assert over.value.code == protocol.E_USER_LIMIT
            assert "1 jobs queued or running" in over.value.message
            # another user is not held back by bo
            assert other.run("diagnostics.echo", {}, ECHO)[0][1].data == ECHO.data
            big = Pixels(bytes(600 * 600 * 4), 600, 600, 4, "u8")     # 1.4 MB
            with pytest.raises(BackendError) as heavy:
                other.run("diagnostics.echo", {}, big)
            assert heavy.value.code == protocol.E_USER_LIMIT
            assert "limit of 1 MB per user" in heavy.value.message
            # once bo's upload is done, his next job is welcome
            for frame in protocol.frames(spec, ECHO.data):
                first.ws.send(frame)
            while not isinstance(msg := protocol.parse(first.ws.recv(10), protocol.SERVER_TYPES),
                                 protocol.Result):
                assert isinstance(msg, protocol.Progress), msg
            first.ws.recv(10)                                        # its pixels
            assert second.run("diagnostics.echo", {}, ECHO)[0][1].data == ECHO.data
        finally:
            for client in (first, second, other):
                client.close()


def test_users_take_turns_whatever_their_connections_and_hear_their_place():
    ran, said = [], {}

    def record(job):
        ran.append(job.id)
        return []

    async def scenario():
        loop = asyncio.get_running_loop()
        queue = JobQueue(record)
        jobs = []
        # ana has three connections and queues four jobs before bo queues two
        for i, connection in enumerate(["ana-1", "ana-2", "ana-3", "ana-1"]):
            jobs.append(_job(loop, connection, "ana", f"a{i}", said))
        jobs += [_job(loop, "bo-1", "bo", "b0", said), _job(loop, "bo-1", "bo", "b1", said)]
        places = [queue.submit(job) for job in jobs]
        worker = asyncio.create_task(queue.worker())
        await asyncio.gather(*(j.done for j in jobs))
        worker.cancel()
        return places

    places = asyncio.run(scenario())
    assert ran == ["a0", "b0", "a1", "b1", "a2", "a3"]
    # bo's first job went ahead of ana's second: its place on submission was 1
    assert places == [0, 1, 2, 3, 1, 3]
    # ana's second job heard that it fell back behind bo's, and then moved up
    assert said["a1"][:2] == ["queued (2 ahead)", "queued (1 ahead)"]
    assert said["a3"][-1] == "queued (1 ahead)"          # only the running one


def _job(loop, connection, user, job_id, said):
    return Job(job_id, connection, operations.get("diagnostics.echo"), {},
               np.zeros((1, 1, 3), np.uint8), None,
               lambda fraction, stage: said.setdefault(job_id, []).append(stage),
               loop.create_future(), user=user)


# ---------------------------------------------------------- the plug-ins' studio setting

def test_the_studio_setting_replaces_the_local_backend_for_the_plugins(state, users,
                                                                       monkeypatch, capsys):
    people, tokens = users
    with studio_server(state, people) as server:
        fingerprint = server.server.studio.fingerprint
        with pytest.raises(ValueError, match="wss://"):
            discovery.set_studio_setting(server.uri.replace("wss", "ws"), tokens["bo"])
        monkeypatch.setattr("sys.stdin", __import__("io").StringIO(tokens["bo"] + "\n"))
        assert cli.main(["studio", "use", server.uri, "--fingerprint", fingerprint]) == 0
        path = state / discovery.STUDIO_SETTING
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        # what the plug-ins call: no local backend is started, the studio is reached
        info = launcher.ensure_running("krita")
        assert info == {"url": server.uri, "token": tokens["bo"], "fingerprint": fingerprint}
        with Client.from_info(info, name="krita") as client:
            assert client.run("diagnostics.echo", {}, ECHO)[0][1].data == ECHO.data
        assert cli.main(["studio", "local"]) == 0
        assert discovery.studio_setting() is None and not path.exists()


def test_a_waiting_users_progress_says_their_place_in_the_line(state, users, portraits):
    """A real run: while ana's job runs, bo's waits and his progress says so."""
    people, tokens = users
    picture = portraits["astronaut"]
    image = Pixels(picture.tobytes(), picture.shape[1], picture.shape[0], 3, "u8")
    with studio_server(state, people) as server:
        ana, bo = connect(server, tokens["ana"]), connect(server, tokens["bo"])
        try:
            spec = image.spec(1)
            ana.ws.send(protocol.RunRequest("long", "background.remove",
                                            {"hair_detail": "fine"}, spec).to_json())
            for frame in protocol.frames(spec, image.data):
                ana.ws.send(frame)
            while not server.server.jobs.running:          # ana's job has started
                time.sleep(0.01)
            stages = []
            bo.run("diagnostics.echo", {}, ECHO,
                   on_progress=lambda job, fraction, stage: stages.append(stage))
            assert stages[0] == "queued (1 ahead)", stages
        finally:
            ana.close()
            bo.close()


def test_a_studio_server_never_moves_to_another_port(state, users):
    people, _ = users
    with studio_server(state, people) as first:
        cert, key = studio.certificate(state, ["127.0.0.1"])
        tls, fingerprint = studio.tls_context(cert, key)
        clash = ServerThread(port=first.server.port,
                             studio=studio.Studio(tls, fingerprint, people))
        with pytest.raises(OSError, match="in use"):
            clash.__enter__()
