"""Model downloads a plug-in asks for (the `pull` message): byte progress, cancel, errors.
The hub itself is the one edge replaced here (nothing may be downloaded in tests): a fake
snapshot_download drives the tqdm class it is given as huggingface_hub 2.x does (byte bars
whose totals grow as files start, updated per chunk) and writes the files."""

from __future__ import annotations

import threading
import time

import huggingface_hub
import numpy as np
import pytest
from conftest import run_array
from limner import models, protocol
from limner.client import BackendError

CHUNK, FILES = 1 << 20, {"config.json": 2 << 20, "model.safetensors": 30 << 20}


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    calls = {"slow": 0.0, "fail": None, "started": threading.Event()}

    def snapshot_download(repo_id, revision=None, allow_patterns=None, tqdm_class=None,
                          **kwargs):
        calls.update(repo=repo_id, revision=revision, patterns=allow_patterns)
        if calls["fail"]:
            raise calls["fail"]
        folder = tmp_path / repo_id.replace("/", "--")
        folder.mkdir(parents=True, exist_ok=True)
        bars = [tqdm_class(desc=d, total=0, initial=0, unit="B", unit_scale=True)
                for d in ("Downloading bytes", "Reconstructing (incomplete total...)")]
        for bar in bars:
            bar.total = sum(FILES.values())
        calls["started"].set()
        for name, size in FILES.items():
            with open(folder / name, "wb") as out:
                for _ in range(size // CHUNK):
                    out.write(b"\0" * CHUNK)
                    time.sleep(calls["slow"])
                    bars[1].update(CHUNK)
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls


def test_capabilities_list_every_model_with_size_licence_and_state(client, without_models):
    listed = {m["name"]: m for m in client.capabilities["models"]}
    assert set(listed) == set(models.MODELS)
    for name, info in models.MODELS.items():
        assert listed[name]["size_mb"] == info.size_mb and listed[name]["licence"] == info.licence
        assert listed[name]["engines"] == list(info.engines)


def test_pull_reports_bytes_as_progress(client, fake_hub):
    events = []
    path = client.pull("lcm-lora-sd15", lambda job, f, stage: events.append((f, stage)))
    assert path.endswith("latent-consistency--lcm-lora-sdv1-5")
    assert fake_hub["patterns"] == ["pytorch_lora_weights.safetensors"]
    assert events[0] == (0.0, "downloading lcm-lora-sd15 (135 MB, OpenRAIL++)")
    fractions = [f for f, _ in events[1:]]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) >= 10
    assert events[-1][1] == "lcm-lora-sd15: 32 of 32 MB"


def test_the_revision_of_remote_code_is_pinned(client, fake_hub):
    client.pull("birefnet-matting")
    assert fake_hub["revision"] == models.MODELS["birefnet-matting"].revision
    assert len(fake_hub["revision"]) == 40


def test_cancel_stops_a_pull_and_the_backend_carries_on(client, fake_hub, small_portrait):
    fake_hub["slow"] = 0.05
    threading.Thread(target=lambda: (fake_hub["started"].wait(10), time.sleep(0.2),
                                     client.cancel("pull-1")), daemon=True).start()
    events = []
    with pytest.raises(BackendError) as err:
        client.pull("sd15", lambda job, f, stage: events.append(f), job="pull-1")
    assert err.value.code == protocol.E_CANCELLED and "resume" in err.value.message
    assert events[-1] < 0.5
    layers = run_array(client, "diagnostics.echo", {}, small_portrait)
    assert np.array_equal(layers[0][1], small_portrait)


def test_hub_errors_and_unknown_models_are_reported(client, fake_hub):
    fake_hub["fail"] = OSError("Connection refused: huggingface.co")
    with pytest.raises(BackendError) as err:
        client.pull("sd15")
    assert err.value.code == protocol.E_OPERATION_FAILED
    assert err.value.message == "downloading sd15 failed: Connection refused: huggingface.co"
    with pytest.raises(BackendError) as err:
        client.pull("sd99")
    assert err.value.code == protocol.E_BAD_PARAMETER and "known: sd15" in err.value.message
