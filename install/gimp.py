"""Install the Limner GIMP 3 plug-in into a GIMP profile's plug-ins folder.

    python install/gimp.py                 # the user's GIMP 3 (Linux, macOS, Windows)
    python install/gimp.py --flatpak       # Flatpak GIMP (org.gimp.GIMP)
    python install/gimp.py --plug-ins-dir DIR

Run it with the backend environment's Python (.venv/bin/python): it records that Python as
the command that starts the backend, and writes the backend's capabilities beside the
plug-in (GIMP registers procedures at start-up, before any backend runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, vendor_client, write_backend_command

NAME = "limner_gimp"
#: where earlier installers put the plug-in (its file name clashed with the vendored package)
OLD_NAME = "limner"


def default_plug_ins_dir(flatpak: bool) -> Path:
    home = Path.home()
    if flatpak:
        return home / ".var/app/org.gimp.GIMP/config/GIMP/3.0/plug-ins"
    if sys.platform == "win32":
        return Path(os.environ["APPDATA"]) / "GIMP" / "3.0" / "plug-ins"
    if sys.platform == "darwin":
        return home / "Library/Application Support/GIMP/3.0/plug-ins"
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return config / "GIMP" / "3.0" / "plug-ins"


def install(plug_ins: Path) -> Path:
    """GIMP 3 wants each plug-in in a folder named like its executable file."""
    from limner.server import Server

    old = plug_ins / OLD_NAME
    if (old / f"{OLD_NAME}.py").exists():      # it would register the same procedures
        shutil.rmtree(old)
    target = plug_ins / NAME
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(ROOT / "gimp_plugin" / NAME, target,
                    ignore=shutil.ignore_patterns("__pycache__"))
    script = target / f"{NAME}.py"
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    vendor_client(target / "vendor")
    write_backend_command(target)
    capabilities = Server(write_discovery=False).capabilities()
    (target / "capabilities.json").write_text(json.dumps(capabilities, indent=1))
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plug-ins-dir", type=Path, help="a GIMP 3 plug-ins folder")
    parser.add_argument("--flatpak", action="store_true", help="the Flatpak GIMP")
    args = parser.parse_args()
    target = install(args.plug_ins_dir or default_plug_ins_dir(args.flatpak))
    print(f"installed {target}; restart GIMP and find it under Filters > Limner")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
