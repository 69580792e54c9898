"""Find the running backend, or start it: used by the editor plug-ins (standard library
only). The installer records the command that starts the backend in `backend.json` beside
each plug-in, since the plug-in runs in the editor's Python, not in the backend's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import discovery


def backend_command(plugin_dir: str | os.PathLike) -> list[str]:
    """The command the installer recorded for starting `limner serve`."""
    path = Path(plugin_dir) / "backend.json"
    try:
        command = json.loads(path.read_text())["command"]
    except (OSError, ValueError, KeyError) as exc:
        raise RuntimeError(f"no backend command recorded at {path} ({exc}); "
                           "run the Limner installer again") from None
    return list(command)


def ensure_running(plugin_dir, timeout: float = 90, on_wait=None) -> dict:
    """The discovery info of a running backend, starting one if none answers (a backend
    that died leaves its file behind, and its process may linger as a zombie of the
    editor that started it: only an answer at its port counts). `on_wait(seconds)` is
    called while it waits, so a plug-in can show that it does."""
    info = discovery.answering()
    if info is not None:
        return info
    command = backend_command(plugin_dir)
    log_path = discovery.state_dir() / "backend.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    flags = {"start_new_session": True} if sys.platform != "win32" else \
        {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   **flags)
    started = time.monotonic()
    while True:
        info = discovery.answering()
        if info is not None:
            return info
        if process.poll() is not None:
            raise RuntimeError(f"the Limner backend exited with code {process.returncode}; "
                               f"see {log_path}")
        waited = time.monotonic() - started
        if waited > timeout:
            raise RuntimeError(f"the Limner backend did not start within {timeout:.0f} s; "
                               f"see {log_path}")
        if on_wait:
            on_wait(waited)
        time.sleep(0.2)
