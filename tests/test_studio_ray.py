"""Studio mode on Ray Serve: a local Ray head on loopback with two CPU engine replicas
behind the studio's TLS front, driven by real clients: results reach the right client, a
layer's jobs return to the replica holding its cache, a cancel reaches the replica, and a
replica killed mid-job costs only that job."""

from __future__ import annotations

import os
import signal
import threading

import cv2
import numpy as np
import pytest
from limner import protocol, studio
from limner.client import BackendError, Client
from limner.protocol import Pixels
from limner.server import ServerThread

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def ray_studio(tmp_path_factory):
    from limner.replicas import RayEngines

    state = tmp_path_factory.mktemp("state")
    users = studio.Users(state)
    tokens = [users.add(f"retoucher{i}") for i in range(4)]
    tls, fingerprint = studio.tls_context(*studio.certificate(state, ["127.0.0.1"]))
    engines = RayEngines("local", replicas=2)
    try:
        with ServerThread(port=0, studio=studio.Studio(tls, fingerprint, users,
                                                       engines=engines)) as server:
            # the replicas' models loaded before the tests (both: six layers spread)
            with client_of(server, tokens[3]) as client:
                for shade in range(6):
                    small = Pixels(np.full((48, 48, 3), 40 * shade, np.uint8).tobytes(), 48,
                                   48, 3, "u8")
                    client.run("background.remove", {}, small)
            yield server, engines, tokens
    finally:
        engines.close()


def client_of(server, token) -> Client:
    return Client(server.uri, token, fingerprint=server.server.studio.fingerprint, timeout=60)


def layer(portraits, side, shade=0) -> Pixels:
    image = cv2.resize(portraits["astronaut"], (side, side), interpolation=cv2.INTER_AREA)
    image = np.clip(image.astype(np.int16) + shade, 0, 255).astype(np.uint8)
    return Pixels(image.tobytes(), side, side, 3, "u8")


def record_of(engines, job):
    return next(entry for entry in reversed(engines.history) if entry[0] == job)


def test_four_clients_get_their_own_results_from_both_replicas(ray_studio, portraits):
    server, engines, tokens = ray_studio
    results, errors = {}, []

    def retoucher(i):
        try:
            with client_of(server, tokens[i]) as client:
                mine = layer(portraits, 256, shade=8 * i)
                (_, echoed), = client.run("diagnostics.echo", {}, mine, job=f"echo{i}")
                cut = client.run("background.remove", {"output": "matte"}, mine,
                                 job=f"matte{i}")
                results[i] = (echoed.data == mine.data, cut[0][1])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=retoucher, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors
    assert all(results[i][0] for i in range(4))            # each got its own pixels back
    mattes = [np.frombuffer(results[i][1].data, np.uint8) for i in range(4)]
    assert all(m.mean() > 20 for m in mattes)               # a subject in every matte
    replicas = {record_of(engines, f"matte{i}")[1] for i in range(4)}
    assert len(replicas) == 2                               # both replicas worked


def test_a_layers_second_job_reuses_its_replicas_cache(ray_studio, portraits):
    server, engines, tokens = ray_studio
    mine = layer(portraits, 320, shade=-12)
    later = [("background.replace", {"color": "#3060c0"}), ("background.blur", {}),
             ("background.remove", {"output": "matte"})]
    with client_of(server, tokens[0]) as client:
        client.run("background.remove", {}, mine, job="first")
        for i, (op, params) in enumerate(later):
            client.run(op, params, mine, job=f"again{i}")
    first = record_of(engines, "first")
    assert first[2]["cache_builds"] >= 1 and first[2]["cache_hits"] == 0
    for i in range(len(later)):
        again = record_of(engines, f"again{i}")
        assert again[1] == first[1]                         # the same replica every time
        assert again[2]["cache_hits"] >= 1 and again[2]["cache_builds"] == 0


def _run_until(client, stage_reached, pixels, job, params):
    """Run a job; `stage_reached(job)` is called once, when the replica reports
    matting."""
    called = []

    def progress(job_id, fraction, stage):
        if stage == "matting" and not called:
            called.append(stage)
            stage_reached(job_id)

    return client.run("background.remove", params, pixels, job=job, on_progress=progress)


def test_a_cancel_reaches_the_replica(ray_studio, portraits):
    server, engines, tokens = ray_studio
    mine = layer(portraits, 768, shade=20)
    with client_of(server, tokens[1]) as client:
        with pytest.raises(BackendError) as stopped:
            _run_until(client, client.cancel, mine, "long", {"hair_detail": "fine"})
        assert stopped.value.code == protocol.E_CANCELLED
        # the same layer goes back to that replica, which counted the cancel
        client.run("diagnostics.echo", {}, mine, job="after")
    replica = record_of(engines, "long")[1]
    after = record_of(engines, "after")
    assert after[1] == replica and after[2]["cancelled"] >= 1


def test_a_replica_killed_mid_job_fails_that_job_clearly_and_the_next_runs(ray_studio,
                                                                           portraits):
    server, engines, tokens = ray_studio
    mine = layer(portraits, 768, shade=-30)
    killed = []

    def kill(job):               # the replica this job is running on, whichever it is
        killed.append(engines.running[job])
        os.kill(int(killed[0].rsplit(":", 1)[1]), signal.SIGKILL)

    with client_of(server, tokens[2]) as client:
        with pytest.raises(BackendError) as failed:
            _run_until(client, kill, mine, "killed", {"hair_detail": "fine"})
        assert failed.value.code == protocol.E_OPERATION_FAILED
        assert "engine replica" in failed.value.message and "run it again" in failed.value.message
        (_, echoed), = client.run("diagnostics.echo", {}, mine, job="next")
        assert echoed.data == mine.data
    assert record_of(engines, "killed")[1] == killed[0]
    assert record_of(engines, "next")[1] != killed[0]
