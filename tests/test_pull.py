"""Model downloads, through huggingface_hub's own code, from a hub on loopback
(fake_hub.FakeHub): byte progress, the pinned revision, cancel and continue, files landing
where the engines' loaders find them, `present` turning true, hub errors, a client that
leaves mid-download, and `limner models pull | list | remove` on the command line."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import run_array, use_hub
from fake_hub import FakeHub
from limner import models, protocol
from limner.client import BackendError, Client

LORA = models.MODELS["lcm-lora-sd15"]


@pytest.fixture
def weights(tmp_path):
    """A 24 MB LCM-LoRA repository (the file name the model asks for; arbitrary bytes)."""
    folder = tmp_path / "repo-lora"
    folder.mkdir()
    (folder / "pytorch_lora_weights.safetensors").write_bytes(os.urandom(24 << 20))
    (folder / "README.md").write_text("not asked for")
    return folder


@pytest.fixture
def hub(weights, tmp_path, monkeypatch, fresh_engines):
    with FakeHub({LORA.repo: weights,
                  models.MODELS["birefnet-matting"].repo: weights}) as running:
        use_hub(monkeypatch, tmp_path / "cache", running.url)
        monkeypatch.setenv("LIMNER_MODELS_DIR", str(tmp_path / "by-hand"))
        yield running


def present(server) -> dict:
    with Client(server.uri, server.server.token) as fresh:
        return {m.name: m.present for m in fresh.capabilities.models}


def test_pull_reports_bytes_and_the_model_is_then_present(server, client, hub):
    assert present(server)["lcm-lora-sd15"] is False
    events = []
    path = client.pull("lcm-lora-sd15", lambda job, f, stage: events.append((f, stage)))
    assert events[0] == (0.0, "downloading lcm-lora-sd15 (135 MB, OpenRAIL++)")
    fractions = [f for f, _ in events[1:]]        # the hub library reads 10 MB at a time
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) >= 3
    assert events[-1][1] == "lcm-lora-sd15: 24 of 24 MB"
    assert os.path.samefile(path, models.local_path("lcm-lora-sd15"))
    assert os.listdir(path) == ["pytorch_lora_weights.safetensors"]    # only what it needs
    assert present(server)["lcm-lora-sd15"] is True


def test_the_revision_of_remote_code_is_pinned(client, hub):
    client.pull("birefnet-matting")
    pinned = models.MODELS["birefnet-matting"].revision
    asked = [r for r in hub.requests if "/resolve/" in r or "/tree/" in r]
    assert asked and all(pinned in r for r in asked), asked


def test_a_cancelled_pull_stops_within_a_megabyte_and_a_later_one_completes(
        client, tmp_path, monkeypatch, small_portrait):
    repo = tmp_path / "repo-sd"                # SD 1.5's layout: small files, one big one
    for name in ("model_index.json", "unet/config.json", "vae/config.json"):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(f'{{"name": "{name}"}}')
    (repo / "unet/diffusion_pytorch_model.fp16.safetensors").write_bytes(os.urandom(24 << 20))
    with FakeHub({models.MODELS["sd15"].repo: repo}) as hub:
        use_hub(monkeypatch, tmp_path / "cache", hub.url)
        hub.delay = 0.01                       # 64 KB per 10 ms: about 4 s for the big one
        cancelled_at = []

        def progress(job, fraction, stage):
            if fraction > 0.3 and not cancelled_at:
                cancelled_at.append(hub.bytes_sent)
                client.cancel(job)

        with pytest.raises(BackendError) as err:
            client.pull("sd15", progress, job="pull-1")
        assert err.value.code == protocol.E_CANCELLED and "continue" in err.value.message
        time.sleep(0.5)
        assert hub.bytes_sent - cancelled_at[0] < 2 << 20    # stopped within a megabyte
        (_, pixels), = run_array(client, "diagnostics.echo", {}, small_portrait)
        assert np.array_equal(pixels, small_portrait)        # the backend carries on
        hub.delay = 0.0
        client.pull("sd15")
        assert (models.local_path("sd15") / "unet/diffusion_pytorch_model.fp16.safetensors"
                ).stat().st_size == 24 << 20
        asked = len(hub.requests)
        client.pull("sd15")                              # complete: nothing fetched again
        assert not [r for r in hub.requests[asked:] if r.startswith("GET /stable")]


def test_a_pulled_model_is_where_its_engine_loads_it(server, tiny_model_folder, tmp_path,
                                                      fresh_engines, monkeypatch,
                                                      small_portrait):
    """The real LCM-LoRA of the tiny pipeline, pulled into the cache, serves the
    diffusion style's fast mode (SD 1.5 itself from a folder filled by hand)."""
    by_hand = tmp_path / "by-hand"
    by_hand.mkdir()
    (by_hand / "sd15").symlink_to(tiny_model_folder / "sd15")
    with FakeHub({LORA.repo: tiny_model_folder / "lcm-lora-sd15"}) as running:
        use_hub(monkeypatch, tmp_path / "cache", running.url)
        monkeypatch.setenv("LIMNER_MODELS_DIR", str(by_hand))
        with Client(server.uri, server.server.token) as c:
            c.pull("lcm-lora-sd15")
            (layer, _), = run_array(c, "style", {"engine": "diffusion", "fast": True,
                                                 "steps": 2}, small_portrait)
    assert layer.provenance["models"] == ["sd15", "lcm-lora-sd15"]


def test_hub_errors_and_unknown_models_are_reported(client, tmp_path, monkeypatch):
    with FakeHub({}) as gone:
        url = gone.url                         # a hub nobody answers at any more
    use_hub(monkeypatch, tmp_path / "cache", url)
    with pytest.raises(BackendError) as err:
        client.pull("sd15")
    assert err.value.code == protocol.E_OPERATION_FAILED
    assert err.value.message.startswith("downloading sd15 failed: ")
    with pytest.raises(BackendError) as err:
        client.pull("sd99")
    assert err.value.code == protocol.E_BAD_PARAMETER and "known: sd15" in err.value.message


def test_a_client_that_leaves_mid_download_stops_it(server, hub):
    hub.delay = 0.02
    with Client(server.uri, server.server.token) as leaving:
        leaving.ws.send(protocol.Pull("going", "lcm-lora-sd15").to_json())
        while hub.bytes_sent < (2 << 20):
            time.sleep(0.05)
    time.sleep(1)
    sent = hub.bytes_sent
    time.sleep(1)
    assert hub.bytes_sent - sent < (1 << 20), "the download went on without its client"
    assert present(server)["lcm-lora-sd15"] is False


def test_the_command_line_pulls_lists_and_removes(hub, tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}

    def limner(*args):
        return subprocess.run([sys.executable, "-m", "limner", "models", *args], env=env,
                              capture_output=True, text=True, timeout=120, check=False)

    assert "not present" in next(line for line in limner("list").stdout.splitlines()
                                 if line.startswith("lcm-lora-sd15"))
    pulled = limner("pull", "lcm-lora-sd15")
    assert pulled.returncode == 0, pulled.stderr
    listed = next(line for line in limner("list").stdout.splitlines()
                  if line.startswith("lcm-lora-sd15"))
    assert "not present" not in listed and "present" in listed
    removed = limner("remove", "lcm-lora-sd15")
    assert removed.returncode == 0 and "24" in removed.stdout, removed.stdout
    assert models.local_path("lcm-lora-sd15") is None
