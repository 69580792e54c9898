"""The Krita installer: profile layout, kritarc enabling, the importable zip."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALLER = ROOT / "install" / "krita.py"


def test_install_into_a_profile_enables_it_and_carries_the_client(tmp_path):
    kritarc = tmp_path / "kritarc"
    kritarc.write_text("[General]\nfoo=1\n\n[python]\nenable_other=true\nenable_limner_krita=false\n")
    res = tmp_path / "krita"
    for _ in range(2):   # installing again updates in place
        subprocess.run([sys.executable, str(INSTALLER), "--resource-dir", str(res),
                        "--kritarc", str(kritarc)], check=True, capture_output=True)
    text = kritarc.read_text()
    assert text.count("enable_limner_krita=true") == 1 and "enable_limner_krita=false" not in text
    assert "enable_other=true" in text and "[General]\nfoo=1" in text
    plugin = res / "pykrita" / "limner_krita"
    assert (res / "pykrita" / "limner.desktop").read_text().count("X-KDE-Library=limner_krita")
    assert (res / "actions" / "limner_krita.action").exists()
    assert not (plugin / "backend.json").exists(), "the plug-in holds no path of the backend"
    vendored = {p.name for p in (plugin / "vendor" / "limner").iterdir()}
    assert vendored == {"__init__.py", "protocol.py", "schema.py", "discovery.py", "client.py",
                        "launcher.py", "provenance.py"}
    assert (plugin / "vendor" / "websockets" / "sync" / "client.py").exists()
    assert 'version = commit = "13.1"' in (plugin / "vendor" / "websockets" / "version.py").read_text(), \
        "the release that imports in Python 3.8"
    assert not list((plugin / "vendor").rglob("*.so")), "compiled modules would tie it to one Python"


def test_vendored_client_imports_without_numpy_or_the_backend(tmp_path):
    res = tmp_path / "krita"
    subprocess.run([sys.executable, str(INSTALLER), "--resource-dir", str(res), "--kritarc",
                    str(tmp_path / "kritarc")], check=True, capture_output=True)
    vendor = res / "pykrita" / "limner_krita" / "vendor"
    code = (f"import sys; sys.path.insert(0, {str(vendor)!r})\n"
            "import limner.client, limner.launcher\n"
            "assert limner.client.__file__.startswith(sys.path[0])\n"
            "assert 'numpy' not in sys.modules, 'the editors have no numpy'\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_zip_for_import_python_plugin_from_file(tmp_path):
    target = tmp_path / "limner-krita.zip"
    subprocess.run([sys.executable, str(INSTALLER), "--zip", str(target)], check=True,
                   capture_output=True)
    names = zipfile.ZipFile(target).namelist()
    assert "limner.desktop" in names and "limner_krita/__init__.py" in names
    assert "limner_krita/vendor/limner/client.py" in names
    assert "limner_krita/vendor/websockets/sync/client.py" in names
