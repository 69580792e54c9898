"""Install the Limner GIMP 3 plug-in into a GIMP profile's plug-ins folder.

    python install/gimp.py                 # the user's GIMP 3.x (Linux, macOS, Windows)
    python install/gimp.py --flatpak       # Flatpak GIMP (org.gimp.GIMP)
    python install/gimp.py --plug-ins-dir DIR

GIMP keeps one profile per minor version (GIMP/3.0, GIMP/3.2, …; 3.2 copies 3.0's once,
on its first start), so the plug-in goes into every 3.x profile there is, or, when there
is none yet, into the newest GIMP's found on this machine.

install/setup.py --gimp runs it, with the backend environment's Python: it writes the
backend's capabilities beside the plug-in (GIMP registers procedures at start-up, before
any backend runs). The plug-in holds no path of the backend: it finds it by the record
install/setup.py writes in the user's state folder.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, this_system, vendor_client

NAME = "limner_gimp"
#: where earlier installers put the plug-in (its file name clashed with the vendored package)
OLD_NAME = "limner"


#: the newest GIMP minor version this plug-in is tested with
NEWEST = "3.2"


def gimp_config(flatpak: bool, system: str | None = None) -> Path:
    """The folder that holds GIMP's per-version profiles on `system` (this one by
    default)."""
    home = Path.home()
    system = system or this_system()
    if flatpak:
        return home / ".var/app/org.gimp.GIMP/config/GIMP"
    if system == "windows":
        return Path(os.environ["APPDATA"]) / "GIMP"
    if system == "macos":
        return home / "Library/Application Support/GIMP"
    return Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "GIMP"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def default_plug_ins_dirs(flatpak: bool, system: str | None = None) -> list[Path]:
    """Every GIMP 3.x profile's plug-ins folder; with none yet, the newest installed
    GIMP's (else NEWEST's). No empty profile is made beside an existing one: GIMP copies
    the previous version's profile only into a version folder that does not exist."""
    config = gimp_config(flatpak, system)
    versions = sorted((p.name for p in config.glob("3.*")
                       if p.is_dir() and re.fullmatch(r"3\.\d+", p.name)), key=_version_key)
    if not versions:
        found = [m.group(1) for name in os.environ.get("PATH", "").split(os.pathsep)
                 if os.path.isdir(name) for entry in os.listdir(name)
                 if (m := re.fullmatch(r"gimp(?:-console)?-(3\.\d+)(?:\.exe)?", entry))]
        versions = [max(found, key=_version_key)] if found else [NEWEST]
    return [config / version / "plug-ins" for version in versions]


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
    capabilities = Server(write_discovery=False).capabilities()
    (target / "capabilities.json").write_text(json.dumps(capabilities, indent=1))
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plug-ins-dir", type=Path, help="a GIMP 3 plug-ins folder")
    parser.add_argument("--flatpak", action="store_true", help="the Flatpak GIMP")
    parser.add_argument("--system", choices=("linux", "macos", "windows"),
                        help="the profile locations of that system (for tests)")
    args = parser.parse_args()
    folders = [args.plug_ins_dir] if args.plug_ins_dir else \
        default_plug_ins_dirs(args.flatpak, args.system)
    for folder in folders:
        print(f"installed {install(folder)}")
    print("restart GIMP and find it under Filters > Limner")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
