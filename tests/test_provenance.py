"""Honest images: the IPTC digital source type in every file the CLI writes (read back by
exiftool, not by the library that wrote it), C2PA Content Credentials signed with a test
chain made here and verified by the C2PA reader, batches that skip bad files and resume,
and proof that no operation opens a connection off this machine."""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile

import cv2
import numpy as np
import pytest
from conftest import run_array
from limner import provenance

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(EXIFTOOL is None and not os.environ.get(
    "LIMNER_REQUIRE_EDITORS"), reason="exiftool is not installed (.ci/run installs it)")


def limner(*args, env, timeout=300):
    return subprocess.run([sys.executable, "-m", "limner", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout)


def exif(path) -> dict:
    out = subprocess.run(["exiftool", "-j", "-G1", "-XMP:all", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)[0]


@pytest.fixture
def env(tmp_path):
    """No backend to discover (the CLI starts its own) and no user config."""
    return {**os.environ, "LIMNER_STATE_DIR": str(tmp_path / "state"),
            "LIMNER_CONFIG": str(tmp_path / "no-config.json")}


@pytest.fixture
def pictures(tmp_path, portraits):
    folder = tmp_path / "shoot"
    folder.mkdir()
    for name, image in portraits.items():
        small = cv2.resize(image, (256, 256 * image.shape[0] // image.shape[1]))
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    return folder


@needs_exiftool
def test_every_file_the_cli_writes_says_it_was_edited_with_ai(tmp_path, pictures, env):
    out = tmp_path / "out"
    done = limner("run", pictures / "astronaut.png", "--op", "relight", "--out", out, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    relit = next(out.glob("astronaut-relight-relit-*.png"))
    tags = exif(relit)
    assert tags["XMP-iptcExt:DigitalSourceType"] == provenance.EDITED
    assert tags["XMP-iptcExt:AISystemUsed"] == "Limner (geometric)"
    assert tags["XMP-iptcExt:AISystemVersionUsed"] == "0.1.0"
    assert tags["XMP-dc:Description"] == "Edited with AI by Limner: relight"
    with zipfile.ZipFile(out / "astronaut-relight.ora") as ora:   # the stack's picture too
        (tmp_path / "merged.png").write_bytes(ora.read("mergedimage.png"))
        (tmp_path / "source.png").write_bytes(ora.read("data/layer3.png"))   # the original
    assert exif(tmp_path / "merged.png")["XMP-iptcExt:DigitalSourceType"] == provenance.EDITED
    assert "XMP-iptcExt:DigitalSourceType" not in exif(tmp_path / "source.png")


@needs_exiftool
@pytest.mark.parametrize("op", ["background.remove", "background.replace", "background.blur",
                                "background.generate", "relight", "style", "grade", "mood"])
def test_every_ai_layer_inside_the_stack_says_so_for_every_operation(
        tmp_path, pictures, env, op, tiny_model_folder):
    """XMP on the AI layers inside the .ora was checked for relight's merged image only:
    every operation's AI layers (named "… [AI engine]") carry it, the source none."""
    import xml.etree.ElementTree as ET

    out = tmp_path / "out"
    params = ["--param", "steps=2", "--param", "match_light=false"] \
        if op == "background.generate" else []
    done = limner("run", pictures / "grace_hopper.png", "--op", op, *params, "--out", out,
                  env={**env, "LIMNER_MODELS_DIR": str(tiny_model_folder),
                       "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    stack = next(out.glob("*.ora"))
    with zipfile.ZipFile(stack) as ora:
        layers = [(layer.get("name"), layer.get("src"))
                  for layer in ET.fromstring(ora.read("stack.xml")).iter("layer")]
        for n, (_, src) in enumerate(layers):
            (tmp_path / f"layer{n}.png").write_bytes(ora.read(src))
    assert any("[AI" in name for name, _ in layers), layers
    for n, (name, _) in enumerate(layers):
        tags = exif(tmp_path / f"layer{n}.png")
        if "[AI" in name:
            assert tags.get("XMP-iptcExt:DigitalSourceType") in (provenance.EDITED,
                                                                   provenance.GENERATED), name
        else:
            assert "XMP-iptcExt:DigitalSourceType" not in tags, name


def make_test_chain(folder, lasting=datetime.timedelta(days=7), self_signed=False):
    """A throwaway ES256 chain: a CA and a signing certificate it issued (C2PA refuses a
    self-signed signer), as PEM files; the signing certificate valid for `lasting` from
    now, or issued by itself."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Limner tests")])

    def usage(sign_certs):
        return x509.KeyUsage(digital_signature=not sign_certs, content_commitment=False,
                             key_encipherment=False, data_encipherment=False,
                             key_agreement=False, key_cert_sign=sign_certs,
                             crl_sign=sign_certs, encipher_only=False, decipher_only=False)

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(subject, public, ca):
        issuer = subject if self_signed and not ca else "Limner test CA"
        builder = (x509.CertificateBuilder().subject_name(name(subject))
                   .issuer_name(name(issuer)).public_key(public)
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + (datetime.timedelta(days=7) if ca else lasting))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None),
                                  critical=True)
                   .add_extension(usage(ca), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(public),
                                  critical=False))
        if not ca:
            builder = builder.add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False)
        return builder.sign(key if self_signed and not ca else ca_key, hashes.SHA256())

    ca = certificate("Limner test CA", ca_key.public_key(), True)
    leaf = certificate("Limner test signer", key.public_key(), False)
    pem = serialization.Encoding.PEM
    (folder / "chain.pem").write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    (folder / "key.pem").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "chain.pem", folder / "key.pem"


def test_signed_exports_carry_c2pa_credentials_the_reader_verifies(tmp_path, pictures, env):
    import c2pa

    cert, key = make_test_chain(tmp_path)
    out = tmp_path / "out"
    done = limner("run", pictures / "grace_hopper.png", "--op", "background.blur", "--out",
                  out, "--sign-cert", cert, "--sign-key", key, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    signed = next(out.glob("grace_hopper-background-blur-*.png"))
    with open(signed, "rb") as stream:
        reader = c2pa.Reader("image/png", stream)
        assert reader.get_validation_state() == "Valid"       # intact; the CA is not trusted
        store = json.loads(reader.json())
    active = store["manifests"][store["active_manifest"]]
    actions = next(a for a in active["assertions"]
                   if a["label"].startswith("c2pa.actions"))["data"]["actions"]
    assert [a["action"] for a in actions] == ["c2pa.opened", "c2pa.edited"]
    edit = actions[1]
    assert edit["digitalSourceType"] == provenance.EDITED
    assert edit["parameters"]["operation"] == "background.blur"
    assert edit["parameters"]["engine"] == "rvm"
    assert active["ingredients"][0]["relationship"] == "parentOf"
    assert active["claim_generator_info"][0]["name"] == "Limner"
    if EXIFTOOL or os.environ.get("LIMNER_REQUIRE_EDITORS"):   # the XMP kept too
        assert exif(signed)["XMP-iptcExt:DigitalSourceType"] == provenance.EDITED
    # a key that is not the certificate's is refused before anything is written
    (tmp_path / "other").mkdir()
    _, other_key = make_test_chain(tmp_path / "other")
    refused = limner("run", pictures / "grace_hopper.png", "--op", "background.blur",
                     "--out", tmp_path / "refused", "--sign-cert", cert, "--sign-key",
                     other_key, env=env)
    assert refused.returncode == 2 and "sign" in refused.stderr
    assert not (tmp_path / "refused").exists()                  # nothing half signed
    half = limner("run", pictures / "grace_hopper.png", "--op", "background.blur", "--out",
                  tmp_path / "half", "--sign-cert", cert, env=env)
    assert half.returncode == 2 and "--sign-key" in half.stderr


@pytest.mark.parametrize("case", ["self-signed", "expiring", "unreachable TSA"])
def test_a_signer_that_cannot_sign_the_whole_run_is_refused_before_anything_is_written(
        tmp_path, pictures, env, case):
    """A self-signed leaf was accepted although C2PA refuses it; a certificate that
    expired mid-batch left one layer unsigned beside signed files; a timestamp authority
    is used when given (here one that does not answer: refused at the trial signing)."""
    cert, key = make_test_chain(tmp_path, self_signed=case == "self-signed",
                                lasting=datetime.timedelta(
                                    minutes=30 if case == "expiring" else 60 * 24 * 7))
    extra = ["--tsa-url", "http://127.0.0.1:9/"] if case == "unreachable TSA" else []
    out = tmp_path / "out"
    refused = limner("batch", pictures, "--op", "grade", "--out", out, "--sign-cert", cert,
                     "--sign-key", key, *extra, env=env)
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr
    expected = {"self-signed": "is self-signed", "expiring": "expires",
                "unreachable TSA": "cannot sign"}[case]
    assert expected in refused.stderr or "signing failed" in refused.stderr, refused.stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("config", ["a folder", "a JSON list", "wrong types", "not JSON"])
def test_a_config_file_that_is_wrong_says_what_is_wrong(tmp_path, pictures, env, config):
    """A JSON list or wrong types crashed with a traceback; LIMNER_CONFIG naming a folder
    silently signed nothing (exit 0)."""
    path = tmp_path / "config.json"
    if config == "a folder":
        path.mkdir()
    else:
        path.write_text({"a JSON list": '["chain.pem", "key.pem"]',
                         "wrong types": '{"sign_cert": 5, "sign_key": ["key.pem"]}',
                         "not JSON": "sign_cert = chain.pem"}[config])
    done = limner("run", pictures / "astronaut.png", "--op", "grade", "--out",
                  tmp_path / "out", env={**env, "LIMNER_CONFIG": str(path)})
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"the config {path}" in done.stderr
    assert not (tmp_path / "out").exists()


def test_signing_from_the_config_file(tmp_path, pictures, env):
    import c2pa

    cert, key = make_test_chain(tmp_path)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"sign_cert": str(cert), "sign_key": str(key)}))
    out = tmp_path / "out"
    done = limner("run", pictures / "astronaut.png", "--op", "grade", "--out", out,
                  env={**env, "LIMNER_CONFIG": str(config)})
    assert done.returncode == 0, done.stderr[-2000:]
    for png in out.glob("*.png"):
        with open(png, "rb") as stream:
            assert c2pa.Reader("image/png", stream).get_validation_state() == "Valid"


def test_a_batch_skips_what_it_cannot_read_and_resumes(tmp_path, pictures, env):
    (pictures / "broken.jpg").write_bytes(b"this is no jpeg")
    (pictures / "notes.txt").write_text("not a picture, not taken")
    out = tmp_path / "out"
    # interrupted: stopped once the first picture's results are written
    batch = subprocess.Popen([sys.executable, "-m", "limner", "batch", str(pictures),
                              "--op", "mood", "--param", "mood=film noir", "--out", str(out)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
    deadline = time.time() + 240
    while not (out / "astronaut-mood-film-noir.ora").exists() and time.time() < deadline \
            and batch.poll() is None:
        time.sleep(0.1)
    os.killpg(batch.pid, signal.SIGKILL)
    batch.wait(30)
    assert (out / "astronaut-mood-film-noir.ora").exists()
    first = sorted(p.name for p in out.iterdir())
    done = limner("batch", pictures, "--op", "mood", "--param", "mood=film noir", "--out",
                  out, env=env)
    assert done.returncode == 1                                   # one picture was bad
    assert "skipped" in done.stderr and "broken.jpg" in done.stderr
    assert "1 done, 1 already done, 1 skipped (unreadable or refused)" in done.stderr
    assert (out / "grace_hopper-mood-film-noir.ora").exists()
    assert {p.name for p in out.iterdir()} > set(first)
    again = limner("batch", str(pictures / "*.png"), "--op", "mood", "--param",
                   "mood=film noir", "--out", out, env=env)
    assert again.returncode == 0 and "0 done, 2 already done" in again.stderr


def test_a_batch_into_its_own_folder_is_refused(pictures, env):
    """Outputs written beside the inputs became the next run's inputs (10, 26, 58 files)."""
    refused = limner("batch", pictures, "--op", "grade", "--out", pictures, env=env)
    assert refused.returncode == 2 and "choose another --out" in refused.stderr
    assert sorted(p.name for p in pictures.iterdir()) == ["astronaut.png", "grace_hopper.png"]
    glob_too = limner("batch", str(pictures / "*.png"), "--op", "grade", "--out",
                      pictures, env=env)
    assert glob_too.returncode == 2 and "choose another --out" in glob_too.stderr


def test_a_picture_the_backend_refuses_is_one_skipped_line(tmp_path, pictures, env):
    """A 40000x2 picture (under 64 MP, over the 32768 px side) aborted the whole batch."""
    cv2.imwrite(str(pictures / "strip.png"), np.full((2, 40000, 3), 128, np.uint8))
    out = tmp_path / "out"
    done = limner("batch", pictures, "--op", "grade", "--out", out, env=env)
    assert done.returncode == 1, done.stderr
    assert "skipped" in done.stderr and "strip.png" in done.stderr
    assert "2 done, 0 already done, 1 skipped (unreadable or refused)" in done.stderr
    assert (out / "astronaut-grade.ora").exists()
    assert (out / "grace_hopper-grade.ora").exists()


def test_an_interrupted_batch_leaves_no_half_written_file_and_says_where_it_stopped(
        tmp_path, pictures, env):
    """SIGINT while a stack was written left a 130-byte .ora that a resumed batch counted
    as done, and printed a traceback: every file is written under a temporary name and
    renamed when whole, and an interrupted batch exits 130 with one line."""
    for n in range(6):
        cv2.imwrite(str(pictures / f"extra{n}.png"), cv2.imread(str(pictures /
                                                                     "astronaut.png")))
    out = tmp_path / "out"
    batch = subprocess.Popen([sys.executable, "-m", "limner", "batch", str(pictures),
                              "--op", "background.blur", "--out", str(out)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.time() + 240
    while not (out.exists() and any(out.glob("*.ora"))) and time.time() < deadline \
            and batch.poll() is None:
        time.sleep(0.02)
    batch.send_signal(signal.SIGINT)
    _, stderr = batch.communicate(timeout=60)
    assert batch.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "limner batch: interrupted: " in stderr.splitlines()[-1]
    assert not [p for p in out.iterdir() if p.name.endswith(".partial")]
    for stack in out.glob("*.ora"):                   # every finished name is whole
        with zipfile.ZipFile(stack) as whole:
            assert whole.testzip() is None and "stack.xml" in whole.namelist()


class Outbound(Exception):
    pass


@pytest.fixture
def offline(monkeypatch):
    """Every connection that is not to this machine raises, and is recorded."""
    tried = []
    loopback = ("127.0.0.1", "::1", "localhost", "0.0.0.0")

    def guard(address):
        host = address[0] if isinstance(address, tuple) else str(address)
        if host not in loopback:
            tried.append(host)
            raise Outbound(f"a connection to {host}")

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            guard(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            guard(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in loopback and host is not None:
            guard((host,))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return tried


def test_the_guard_catches_a_connection_off_the_machine(offline):
    with pytest.raises(Outbound):
        socket.create_connection(("example.org", 80), timeout=1)
    assert offline == ["example.org"]


def test_no_operation_opens_a_connection_off_this_machine(client, portraits, offline,
                                                          tiny_models, caplog, tmp_path,
                                                          monkeypatch):
    """Every operation, the diffusion ones on the tiny models, with all outbound traffic
    refused: none tries. The hub is switched on (its real address), so a hub call would
    reach the guard instead of stopping at the hub's own offline switch. Nor does any
    operation write its pixels, or a file it read, to the log."""
    from conftest import use_hub
    from limner import operations

    use_hub(monkeypatch, tmp_path / "hub-online", endpoint="https://huggingface.co")

    secret = "the-sitters-private-notes-7a1f"
    notes = tmp_path / "notes.png"
    notes.write_text(secret)                 # a "picture" that is really a private text
    image = cv2.resize(portraits["grace_hopper"], (192, 224))
    caplog.set_level(logging.DEBUG)
    runs = {"style": [{"preset": "oil painting"}, {"engine": "diffusion", "steps": 2}],
            "background.generate": [{"steps": 2, "match_light": False}],
            "grade": [{"look": "teal and orange"}],
            "background.replace": [{"backdrop": str(notes)}]}
    ran = []
    for op_id in operations.OPERATIONS:
        for params in runs.get(op_id, [{}]):
            try:
                run_array(client, op_id, params, image)
            except Exception as exc:  # noqa: BLE001 - a refusal is fine, a connection is not
                assert "cannot read" in str(exc), (op_id, exc)
            ran.append(op_id)
    assert offline == [], offline
    assert set(ran) == set(operations.OPERATIONS)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert secret not in logged
    assert max((len(record.getMessage()) for record in caplog.records), default=0) < 4000


#: files opened for writing while WRITES["on"], seen by an audit hook (which sees
#: builtins.open, io.open, pathlib and os.open alike; hooks cannot be removed, so one is
#: added once and switched)
WRITES = {"on": False, "seen": [], "hooked": False}


def _watch_writes(event: str, args) -> None:
    if WRITES["on"] and event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(flag in mode for flag in "wax+")) or \
            (mode is None and isinstance(flags, int)
             and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND))
        if writing:
            WRITES["seen"].append(str(path))


def test_what_is_worked_out_about_faces_stays_in_memory(tmp_path, portraits, monkeypatch):
    """A relight (faces, geometry, the photo's light, the matte) writes nothing anywhere:
    no file is opened for writing by any Python route while it runs, nothing appears in
    the temporary folder or the home folder (where native code would write), and the
    state folder holds only the discovery file and the log."""
    import tempfile

    from limner.client import Client
    from limner.server import ServerThread

    if not WRITES["hooked"]:
        sys.addaudithook(_watch_writes)
        WRITES["hooked"] = True
    scratch, home = tmp_path / "tmp", tmp_path / "home"
    scratch.mkdir()
    home.mkdir()
    with ServerThread(port=0, state_dir=tmp_path / "state") as server:
        with Client(server.uri, server.server.token) as client:
            run_array(client, "relight", {}, portraits["astronaut"])     # load models first
            monkeypatch.setattr(tempfile, "tempdir", str(scratch))
            for name in ("TMPDIR", "TEMP", "TMP"):
                monkeypatch.setenv(name, str(scratch))
            monkeypatch.setenv("HOME", str(home))
            WRITES.update(on=True, seen=[])
            try:
                run_array(client, "relight", {"azimuth": 40.0},
                          cv2.flip(portraits["astronaut"], 1))           # a new layer
            finally:
                WRITES["on"] = False
    assert WRITES["seen"] == []
    assert list(scratch.rglob("*")) == [] and list(home.rglob("*")) == []
    assert {p.name for p in (tmp_path / "state").iterdir()} <= {"server.json", "backend.log"}
