"""Install the Limner Krita plug-in into a Krita profile, or build the zip that Krita's
Tools > Scripts > Import Python Plugin from File accepts.

    python install/krita.py                       # the user's Krita (Linux, macOS, Windows)
    python install/krita.py --flatpak             # Flatpak Krita (org.kde.krita)
    python install/krita.py --resource-dir DIR --kritarc FILE   # another profile
    python install/krita.py --zip limner-krita.zip

install/setup.py --krita runs it, with the backend environment's Python (it carries the
websockets that environment holds for the editors). The plug-in holds no path of the
backend: it finds it by the record install/setup.py writes in the user's state folder.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, copy_tree, this_system, vendor_client

PLUGIN = "limner_krita"
SOURCE = ROOT / "krita_plugin"


def default_locations(flatpak: bool, system: str | None = None) -> tuple[Path, Path]:
    """(resource folder, kritarc) of the user's Krita on `system` (this one by default)."""
    home = Path.home()
    system = system or this_system()
    if flatpak:
        base = home / ".var" / "app" / "org.kde.krita"
        return base / "data" / "krita", base / "config" / "kritarc"
    if system == "windows":
        return (Path(os.environ["APPDATA"]) / "krita",
                Path(os.environ["LOCALAPPDATA"]) / "kritarc")
    if system == "macos":
        return (home / "Library" / "Application Support" / "krita",
                home / "Library" / "Preferences" / "kritarc")
    data = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return data / "krita", config / "kritarc"


def build(pykrita: Path) -> None:
    """The plug-in as Krita loads it: pykrita/limner.desktop and pykrita/limner_krita/."""
    pykrita.mkdir(parents=True, exist_ok=True)
    shutil.copy2(SOURCE / "limner.desktop", pykrita / "limner.desktop")
    target = pykrita / PLUGIN
    if target.exists():
        shutil.rmtree(target)   # no stale modules from an older version
    copy_tree(SOURCE / PLUGIN, target)
    shutil.copy2(SOURCE / "Manual.html", target / "Manual.html")
    vendor_client(target / "vendor")


def enable(kritarc: Path, plugin: str = PLUGIN) -> None:
    """User plug-ins are off until kritarc's [python] section says enable_NAME=true."""
    kritarc.parent.mkdir(parents=True, exist_ok=True)
    text = kritarc.read_text() if kritarc.exists() else ""
    line = f"enable_{plugin}=true"
    if re.search(rf"^enable_{plugin}=", text, re.MULTILINE):
        text = re.sub(rf"^enable_{plugin}=.*$", line, text, flags=re.MULTILINE)
    elif re.search(r"^\[python\]\s*$", text, re.MULTILINE):
        text = re.sub(r"^\[python\]\s*$", f"[python]\n{line}", text, count=1, flags=re.MULTILINE)
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + f"[python]\n{line}\n"
    kritarc.write_text(text)


def install(resource_dir: Path, kritarc: Path) -> Path:
    build(resource_dir / "pykrita")
    (resource_dir / "actions").mkdir(parents=True, exist_ok=True)
    shutil.copy2(SOURCE / f"{PLUGIN}.action", resource_dir / "actions" / f"{PLUGIN}.action")
    enable(kritarc)
    return resource_dir / "pykrita" / PLUGIN


def make_zip(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp))
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for file in sorted(Path(tmp).rglob("*")):
                if file.is_file():
                    zf.write(file, file.relative_to(tmp))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resource-dir", type=Path, help="Krita's resource folder")
    parser.add_argument("--kritarc", type=Path, help="Krita's kritarc file")
    parser.add_argument("--flatpak", action="store_true", help="the Flatpak Krita")
    parser.add_argument("--zip", type=Path, help="build the importable zip instead")
    parser.add_argument("--system", choices=("linux", "macos", "windows"),
                        help="the profile locations of that system (for tests)")
    args = parser.parse_args()
    if args.zip:
        make_zip(args.zip)
        print(f"wrote {args.zip}: import it with Tools > Scripts > Import Python Plugin "
              "from File, then restart Krita")
        return 0
    resource_dir, kritarc = default_locations(args.flatpak, args.system)
    target = install(args.resource_dir or resource_dir, args.kritarc or kritarc)
    print(f"installed {target}; enabled in {args.kritarc or kritarc}; restart Krita and "
          "open Settings > Dockers > Limner")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
