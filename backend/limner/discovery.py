"""Where a running backend says how to reach it: port, token, pid, protocol version.

Standard library only (the editor plug-ins read it). The file is owner-only (0600) because
the token in it is what stops other local users and web pages from driving the backend.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

FILE_NAME = "server.json"


def state_dir() -> Path:
    """Per-user state folder: $LIMNER_STATE_DIR, else the platform's usual place."""
    if os.environ.get("LIMNER_STATE_DIR"):
        return Path(os.environ["LIMNER_STATE_DIR"])
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "limner"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "limner"
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "limner"


def discovery_path(directory: Path | None = None) -> Path:
    return (directory or state_dir()) / FILE_NAME


def write(info: dict, directory: Path | None = None) -> Path:
    """Write the discovery file atomically with owner-only permissions."""
    path = discovery_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(info, fh)
    os.replace(tmp, path)
    return path


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
    if sys.platform == "win32":
        return True  # no cheap check; a failed connect tells the client instead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
