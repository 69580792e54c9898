"""Find the running backend, or start it: used by the editor plug-ins (standard library
only, Python 3.8's: it runs in the editors' own Python).

The plug-ins hold no path of the backend: it can move, and so can the editor's profile.
The installer (install/setup.py) records where it put the backend in the per-user state
folder (`install.json`, beside the discovery file); a plug-in starts the backend with that
record after checking it still points at a Python, and when there is none it tells the
user the exact command for their system (and offers to run the installer again when the
record names one that is still there). Inside a Flatpak sandbox nothing on the host can be
started: the backend runs on the host, started by the service or launcher the installer
made with --flatpak, and the plug-in finds it by the discovery file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import __version__, discovery

RECORD_NAME = "install.json"


class NotInstalled(RuntimeError):
    """No backend answers and none can be started: `str()` says what to do; `installer`
    is the command that runs the installer again (None when none was found)."""

    def __init__(self, message: str, installer: list[str] | None = None):
        super().__init__(message)
        self.installer = installer


def record_path(directory: Path | None = None, system: str | None = None) -> Path:
    return (directory or discovery.state_dir(system)) / RECORD_NAME


def write_record(command: list[str], setup: list[str], directory: Path | None = None,
                 system: str | None = None) -> Path:
    """Record how to start the backend (`command`) and how to run the installer again
    (`setup`), owner-only: a plug-in runs what it says."""
    return discovery.write_private(record_path(directory, system),
                                   {"command": command, "setup": setup,
                                    "version": __version__})


def read_record(directory: Path | None = None) -> dict | None:
    try:
        record = json.loads(record_path(directory).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def setup_command(option: str, system: str | None = None) -> str:
    """The installer with `option` ("krita": the backend and that editor's plug-in;
    "with-diffusion": the diffusion engines), as the user types it on their system."""
    if (system or discovery.this_system()) == "windows":
        return rf"py install\setup.py --{option}"
    return f"python3 install/setup.py --{option}"


def not_found_message(editor: str, system: str | None = None, sandboxed: bool | None = None,
                      record: dict | None = None) -> str:
    """What `editor`'s plug-in tells the user when no backend answers and none can be
    started."""
    system = system or discovery.this_system()
    sandboxed = discovery.in_flatpak() if sandboxed is None else sandboxed
    if sandboxed:
        return ("The Limner backend is not running. This editor runs in Flatpak, which cannot "
                "start programs outside it: start the backend on this computer with "
                f"'systemctl --user start limner' (or 'Limner backend' in your applications), "
                f"made by 'python3 install/setup.py --{editor} --flatpak' in the Limner "
                "folder.")
    where = {"windows": "In PowerShell, in the folder where you unpacked Limner, run:",
             "macos": "In Terminal, in the folder where you unpacked Limner, run:",
             "linux": "In a terminal, in the folder where you unpacked Limner, run:"}[system]
    if record is not None:
        command = record.get("command") or ["?"]
        return (f"The Limner backend is no longer where it was installed ({command[0]} is "
                f"missing: was the Limner folder moved or deleted?). {where} "
                f"{setup_command(editor, system)}")
    return f"The Limner backend is not installed on this computer. {where} " \
           f"{setup_command(editor, system)}"


def backend_command(editor: str, directory: Path | None = None) -> list[str]:
    """The command that starts `limner serve`, from the installer's record, checked;
    NotInstalled (with `editor`'s message for this system) when there is none that
    works."""
    if discovery.in_flatpak():
        raise NotInstalled(not_found_message(editor, sandboxed=True))
    record = read_record(directory)
    command = record.get("command") if record else None
    if isinstance(command, list) and command and all(isinstance(a, str) for a in command) \
            and os.path.isfile(command[0]):
        return _windowless(command)
    setup = record.get("setup") if record else None
    installer = setup if isinstance(setup, list) and len(setup) >= 2 \
        and all(isinstance(a, str) for a in setup) \
        and all(os.path.isfile(a) for a in setup[:2]) else None
    raise NotInstalled(not_found_message(editor, record=record), installer)


def _windowless(command: list[str]) -> list[str]:
    """On Windows, pythonw.exe beside python.exe: no console window flashes up."""
    if sys.platform == "win32" and command[0].lower().endswith("python.exe"):
        quiet = command[0][:-len("python.exe")] + "pythonw.exe"
        if os.path.isfile(quiet):
            return [quiet, *command[1:]]
    return command


def detached() -> dict:
    """Popen options that start the backend on its own, outliving the editor."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP
                | subprocess.DETACHED_PROCESS}
    return {"start_new_session": True}


def ensure_running(editor: str, timeout: float = 90, on_wait=None) -> dict:
    """The discovery info of a running backend, starting one if none answers (a backend
    that died leaves its file behind, and its process may linger as a zombie of the
    editor that started it: only an answer at its port counts). `on_wait(seconds)` is
    called while it waits, so a plug-in can show that it does. NotInstalled (with what
    the user of `editor`, "krita" or "gimp", should do) when none answers and none can
    be started. With a studio server set (discovery.studio_setting), that instead: its
    url, token and fingerprint, nothing started here."""
    studio = discovery.studio_setting()
    if studio is not None:
        return studio
    info = discovery.answering()
    if info is not None:
        return info
    command = backend_command(editor)
    log_path = discovery.state_dir() / "backend.log"
    with _private_log(log_path) as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   **detached())
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


def stop(directory: Path | None = None, timeout: float = 15) -> dict | None:
    """Stop the backend that answers for the state folder, if one does; its discovery
    info, or None. On POSIX it gets SIGTERM and closes its connections within a few
    seconds; on Windows os.kill ends it at once (TerminateProcess), so its discovery file
    is removed here."""
    info = discovery.answering(directory)
    if info is None:
        return None
    os.kill(info["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while discovery.answering(directory) is not None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Limner backend (pid {info['pid']}) did not stop within "
                               f"{timeout:.0f} s")
        time.sleep(0.2)
    discovery.remove(info["token"], directory)
    return info


def _private_log(path: Path):
    """A log in the state folder, appended to: the folder owner-only as the server makes
    it (discovery.private_dir), the file readable by its owner alone (a backend's log
    names the files it read)."""
    discovery.private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    if hasattr(os, "fchmod"):                 # one an older version left readable
        os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


def run_installer(installer: list[str]) -> subprocess.Popen:
    """Run the installer again (the button a plug-in shows beside NotInstalled), on its
    own, its output in installer.log in the state folder; the caller polls the process."""
    log_path = discovery.state_dir() / "installer.log"
    with _private_log(log_path) as log:
        return subprocess.Popen(installer, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT,
                                cwd=str(Path(installer[1]).resolve().parent.parent), **detached())
