"""What both editor installers share: Limner's client and the editors' websockets placed
beside a plug-in, and the system the profiles are looked for on."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "backend"))
from limner.discovery import this_system  # noqa: E402, F401  (standard library only)

#: the backend modules the plug-ins import: standard library + websockets only
CLIENT_MODULES = ["__init__.py", "protocol.py", "schema.py", "discovery.py", "client.py", "launcher.py",
                  "provenance.py"]
#: where install/setup.py puts the websockets the plug-ins carry (locks/editor-client.txt:
#: a release that imports in the oldest Python an editor bundles), in the backend's
#: environment, which runs these installers
EDITOR_CLIENT = Path(sys.prefix) / "editor-client"


def copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.pyd"))


def vendor_client(dest: Path) -> None:
    """dest/limner (client subset) and dest/websockets (pure Python: the compiled speed-up
    is left out, so it imports in any editor's Python)."""
    websockets = EDITOR_CLIENT / "websockets"
    if not (websockets / "__init__.py").exists():
        raise SystemExit(f"the editors' websockets is not at {websockets}: run "
                         "install/setup.py, and these installers with the Python of the "
                         "environment it makes")
    (dest / "limner").mkdir(parents=True, exist_ok=True)
    for name in CLIENT_MODULES:
        shutil.copy2(ROOT / "backend" / "limner" / name, dest / "limner" / name)
    copy_tree(websockets, dest / "websockets")
