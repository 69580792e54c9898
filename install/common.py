"""What both editor installers share: the client code and websockets placed beside a
plug-in, and the command that starts the backend recorded for it."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the backend modules the plug-ins import: standard library + websockets only
CLIENT_MODULES = ["__init__.py", "protocol.py", "discovery.py", "client.py", "launcher.py",
                  "provenance.py"]


def copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.pyd"))


def vendor_client(dest: Path) -> None:
    """dest/limner (client subset) and dest/websockets (pure Python: the compiled speed-up
    is left out, so it imports in any editor's Python)."""
    import websockets

    (dest / "limner").mkdir(parents=True, exist_ok=True)
    for name in CLIENT_MODULES:
        shutil.copy2(ROOT / "backend" / "limner" / name, dest / "limner" / name)
    copy_tree(Path(websockets.__file__).parent, dest / "websockets")


def write_backend_command(dest: Path) -> None:
    """backend.json: how the plug-in starts `limner serve` (this environment's Python)."""
    command = [sys.executable, "-m", "limner", "serve"]
    (dest / "backend.json").write_text(json.dumps({"command": command}, indent=2))
