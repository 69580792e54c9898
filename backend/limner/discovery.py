"""Where a running backend says how to reach it: port, token, pid, protocol version.

Standard library only, and Python 3.8's (the editor plug-ins read it in the editors' own
Python). The file is owner-only (0600) because the token in it is what stops other local
users and web pages from driving the backend. On Windows the state folder is under
%LOCALAPPDATA%, which Windows gives to its user alone; there neither the folder's owner
nor the file's mode is checked (POSIX owners and modes do not exist there).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import sys
import tempfile
from pathlib import Path

FILE_NAME = "server.json"
#: the plug-ins' "studio server" setting: where a shared backend is, the user's token and
#: the certificate fingerprint pinned; owner-only, as the token is a secret
STUDIO_SETTING = "studio-server.json"


def this_system() -> str:
    """"windows", "macos" or "linux" (any other POSIX system is treated as Linux)."""
    return {"win32": "windows", "darwin": "macos"}.get(sys.platform, "linux")


def in_flatpak() -> bool:
    """Inside a Flatpak sandbox (a Flatpak GIMP or Krita): the backend runs on the host,
    in another process namespace, and the sandbox's XDG folders are the app's own."""
    return os.path.exists("/.flatpak-info")


def state_dir(system: str | None = None) -> Path:
    """Per-user state folder: $LIMNER_STATE_DIR, else the platform's usual place (inside
    a Flatpak sandbox, the host's: XDG_STATE_HOME there is the app's own)."""
    if os.environ.get("LIMNER_STATE_DIR"):
        return Path(os.environ["LIMNER_STATE_DIR"])
    system = system or this_system()
    if system == "windows":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "limner"
    if system == "macos":
        return Path.home() / "Library" / "Application Support" / "limner"
    base = (None if in_flatpak() else os.environ.get("XDG_STATE_HOME")) \
        or Path.home() / ".local" / "state"
    return Path(base) / "limner"


def state_dir_of(directory: Path | None) -> Path:
    return directory or state_dir()


def discovery_path(directory: Path | None = None) -> Path:
    return state_dir_of(directory) / FILE_NAME


def private_dir(directory: Path) -> Path:
    """`directory`, made owner-only if new; refused if another user owns it or others may
    write to it (they could plant a file or a link where the token is written)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if sys.platform != "win32":
        info = os.stat(directory, follow_symlinks=False)
        if not stat.S_ISDIR(info.st_mode):
            raise PermissionError(f"{directory} is not a folder (a link?); refusing to use it")
        if info.st_uid != os.getuid():
            raise PermissionError(f"{directory} belongs to another user; refusing to use it")
        if info.st_mode & 0o022:
            raise PermissionError(f"{directory} can be written by other users; make it "
                                  f"owner-only (chmod 700) or choose another LIMNER_STATE_DIR")
    return directory


def write(info: dict, directory: Path | None = None) -> Path:
    """Write the discovery file (see write_private)."""
    return write_private(discovery_path(directory), info)


def write_private(path: Path, info: dict) -> Path:
    """Write JSON atomically with owner-only permissions (see write_private_bytes)."""
    return write_private_bytes(path, json.dumps(info).encode())


def write_private_bytes(path: Path, data: bytes) -> Path:
    """Write a file atomically with owner-only permissions, in a new file of a random name
    (never one someone else planted or linked) renamed into place, in a private folder."""
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def studio_setting(directory: Path | None = None) -> dict | None:
    """The studio server to use instead of a local backend ({"url", "token",
    "fingerprint"}), or None when unset (or unreadable: the local backend then)."""
    try:
        setting = json.loads((state_dir_of(directory) / STUDIO_SETTING).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(setting, dict) or not setting.get("url") or not setting.get("token"):
        return None
    return {"url": str(setting["url"]), "token": str(setting["token"]),
            "fingerprint": str(setting.get("fingerprint") or "")}


def set_studio_setting(url: str, token: str, fingerprint: str = "",
                       directory: Path | None = None) -> Path | None:
    """Use the studio server at `url` (wss:// only: a token never travels in clear), or,
    with an empty `url`, the local backend again."""
    path = state_dir_of(directory) / STUDIO_SETTING
    if not url.strip():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None
    if not url.startswith("wss://"):
        raise ValueError(f"a studio server's address starts with wss:// (TLS), not {url!r}")
    if not token.strip():
        raise ValueError("the studio server needs your token (the studio's admin makes it "
                         "with limner users add)")
    return write_private(path, {"url": url.strip(), "token": token.strip(),
                                "fingerprint": fingerprint.strip()})


def answering(directory: Path | None = None) -> dict | None:
    """The discovery file's info when a backend really answers at its port, else None."""
    info = read(directory)
    if info is None or not isinstance(info.get("port"), int):
        return None
    try:
        with socket.create_connection(("127.0.0.1", info["port"]), timeout=1):
            return info
    except OSError:
        return None


def read(directory: Path | None = None) -> dict | None:
    """The running server's info, or None if there is none (or its process is gone)."""
    path = discovery_path(directory)
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not _alive(info.get("pid")):
        return None
    return info


def remove(token: str, directory: Path | None = None) -> None:
    """Remove the discovery file if it is still ours (another server may have replaced it)."""
    path = discovery_path(directory)
    try:
        if json.loads(path.read_text()).get("token") == token:
            path.unlink()
    except (OSError, ValueError):
        pass


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    if sys.platform == "win32" or in_flatpak():
        # Windows has no cheap check, and a Flatpak sandbox cannot see the host's
        # processes: a failed connect tells the client instead
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
