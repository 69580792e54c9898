#!/usr/bin/env python3
"""Set up Limner on Windows, macOS or Linux: the backend's Python environment from pinned,
hashed lock files, and the plug-ins in every editor profile found.

    python3 install/setup.py                     # the backend, lean: the offline engines
    python3 install/setup.py --krita --gimp      # ... and the plug-ins (--all: both)
    python3 install/setup.py --with-diffusion    # + the diffusion engines (torch; --cuda)
    python3 install/setup.py --studio            # a studio server: + Ray Serve (Linux)
    python3 install/setup.py --dev               # + the diffusion engines and test tools
    python3 install/setup.py --flatpak --all     # Flatpak editors, and a host service
    py install\\setup.py --all                   # Windows

With uv on PATH it makes the environment with uv (which also fetches a Python the backend
supports when none is installed), else with venv and pip. Running it again updates the
environment in place; one that does not work (or has another Python) is rebuilt beside the
old one, which comes back if anything fails. Only the standard library is used here, in
Python 3.8 syntax, so that any Python can run it and say what it needs.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "backend")]
from limner import discovery, launcher  # noqa: E402  (standard library only)
from targets import PYTHONS, TARGETS, TORCH_INDEX, Target, lock_file, this_target  # noqa: E402

EDITOR_CLIENT_LOCK = HERE / "locks" / "editor-client.txt"
#: Flatpak apps of the editors, for the sandbox's read access to the discovery file
FLATPAK_APPS = {"krita": "org.kde.krita", "gimp": "org.gimp.GIMP"}
WANTED = " or ".join(f"{major}.{minor}" for major, minor in PYTHONS)


class SetupError(Exception):
    """A step failed or cannot run: the message says which, and what to do."""


class Step:
    """One thing the installer does: what it is, in words, and the command that does it."""

    def __init__(self, what: str, command: list[str]):
        self.what, self.command = what, [str(part) for part in command]


def shown(command: list[str], system: str) -> str:
    return subprocess.list2cmdline(command) if system == "windows" else shlex.join(command)


def venv_python(venv: Path, system: str) -> Path:
    return venv / "Scripts" / "python.exe" if system == "windows" else venv / "bin" / "python"


def how_to_get_python(system: str) -> str:
    newest = "%d.%d" % PYTHONS[-1]
    if system == "windows":
        return (f"Install Python {newest} (python.org, or: winget install Python.Python."
                f"{newest}) and run: py -{newest} install\\setup.py; or install uv "
                "(py -m pip install uv) and run this again: uv fetches a Python itself.")
    if system == "macos":
        return (f"Install Python {newest} (python.org, or: brew install python@{newest}) and "
                f"run: python{newest} install/setup.py; or install uv (brew install uv) and "
                "run this again: uv fetches a Python itself.")
    return (f"Install your distribution's python{newest} (or {'%d.%d' % PYTHONS[0]}) and run: "
            f"python{newest} install/setup.py; or install uv (python3 -m pip install --user "
            "uv) and run this again: uv fetches a Python itself.")


def version_of(python: list[str]) -> tuple | None:
    """(major, minor) of a Python command, None when it does not run."""
    try:
        out = subprocess.run([*python, "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = out.stdout.split()
    return (int(parts[0]), int(parts[1])) if out.returncode == 0 and len(parts) == 2 else None


def executable_of(python: list[str]) -> str:
    """The interpreter a command runs (`py -3.12` -> its python.exe), for uv and venv."""
    out = subprocess.run([*python, "-c", "import sys; print(sys.executable)"],
                         capture_output=True, text=True, timeout=60)
    return out.stdout.strip()


def find_uv(allowed: bool) -> str | None:
    """uv on PATH, or uv's Python package in the Python running this (pip install uv)."""
    if not allowed:
        return None
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin
        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return None


def choose_python(system: str, given: str | None, uv: str | None) -> list[str] | str:
    """The Python to make the environment with: a command, or (with uv) a version that uv
    finds or fetches. SetupError when there is none."""
    if given:
        version = version_of([given])
        if version is None:
            raise SetupError(f"{given} does not run as a Python")
        if version not in PYTHONS:
            raise SetupError(f"{given} is Python {'%d.%d' % version}; Limner's backend needs "
                             f"Python {WANTED} (the pinned wheels cover no other: mediapipe "
                             f"0.10.21 has none past 3.12, colour-science needs 3.11). "
                             + how_to_get_python(system))
        return [given]
    if tuple(sys.version_info[:2]) in PYTHONS:
        return [sys.executable]
    for major, minor in reversed(PYTHONS):
        if system == "windows":
            candidate = ["py", f"-{major}.{minor}"]
        else:
            found = shutil.which(f"python{major}.{minor}")
            candidate = [found] if found else None
        if candidate and version_of(candidate) == (major, minor):
            return [executable_of(candidate)]
    if uv:
        return "%d.%d" % PYTHONS[-1]
    raise SetupError(f"this is Python {sys.version.split()[0]} ({sys.executable}), and no "
                     f"Python {WANTED} was found; Limner's backend needs one (its pinned "
                     "wheels cover no other). " + how_to_get_python(system))


def variant_of(target: Target, args) -> str:
    if args.dev:
        return "dev"
    if args.studio:
        wanted = "studio-cuda" if args.cuda else "studio"
        if wanted not in target.variants:
            raise SetupError(f"a studio server's engine replicas (Ray Serve) are installed on "
                             f"Linux only, not {target.name}; `limner serve --studio` without "
                             "--ray works everywhere")
        return wanted
    if not (args.with_diffusion or args.cuda):
        return ""
    wanted = "diffusion-cuda" if args.cuda else "diffusion"
    if wanted not in target.variants:
        if target.system == "macos" and "diffusion" in target.variants:
            raise SetupError("there is no CUDA on macOS: --with-diffusion alone uses Apple's "
                             "GPU (MPS)")
        raise SetupError(f"PyTorch {'with CUDA ' if args.cuda else ''}has no builds for "
                         f"{target.name}: the diffusion engines cannot be installed there; "
                         "the offline engines work without them")
    return wanted


def install_steps(target: Target, variant: str, venv: Path, uv: str | None, lock: Path,
                  find_links: list[str]) -> list[Step]:
    """The steps that fill the environment at `venv` (which exists): the lock file, torch
    where it comes from PyTorch's index, Limner itself, the editors' websockets, and a
    check that the backend imports."""
    python = venv_python(venv, target.system)
    installer = [uv, "pip", "install", "--python", python] if uv else \
        [python, "-m", "pip", "install", "--disable-pip-version-check"]
    links = [arg for path in find_links for arg in ("--find-links", path)]
    steps = [Step(f"installing the locked packages ({lock.name})",
                  [*installer, "--no-deps", "--require-hashes", "-r", lock, *links])]
    if (target.name, variant) in TORCH_INDEX:
        torch, index = TORCH_INDEX[(target.name, variant)]
        steps.append(Step(f"installing {torch} from {index}",
                          [*installer, "--no-deps", torch, "--index-url", index, *links]))
    steps.append(Step("installing Limner (editable: this folder is the backend's code)",
                      [*installer, "--no-deps", "-e", ROOT, *links]))
    steps.append(Step("installing the websockets the editor plug-ins carry",
                      [*installer, "--no-deps", "--require-hashes", "--target",
                       venv / "editor-client.new", "-r", EDITOR_CLIENT_LOCK, *links]))
    steps.append(Step("checking that the backend imports",
                      [python, "-c", "import limner.server, limner.cli; "
                       "print('limner', limner.__version__)"]))
    return steps


def create_step(venv: Path, python: list[str] | str, uv: str | None) -> Step:
    if uv:
        version = python if isinstance(python, str) else python[0]
        return Step(f"making the environment {venv} with uv",
                    [uv, "venv", "--no-config", "--python", version, venv])
    return Step(f"making the environment {venv}", [*python, "-m", "venv", venv])


def run(step: Step, system: str, dry_run: bool) -> None:
    print(f"- {step.what}", flush=True)
    if dry_run:
        print(f"    {shown(step.command, system)}")
        return
    result = subprocess.run(step.command)
    if result.returncode != 0:
        raise SetupError(f"{step.what} failed: {shown(step.command, system)} exited with "
                         f"{result.returncode} (its output is above)")


def usable(venv: Path, system: str, asked: tuple | None) -> bool:
    """Whether the environment at `venv` can be updated in place: its Python runs, is one
    the backend supports, and is the version asked for (`asked`, when one was)."""
    version = version_of([str(venv_python(venv, system))])
    return version in PYTHONS and asked in (None, version)


def installed(venv: Path, system: str) -> str:
    """What an environment holds (every distribution and its version), to tell whether a
    failed step changed it."""
    code = ("import importlib.metadata as m; print(sorted((d.metadata['Name'], d.version) "
            "for d in m.distributions()))")
    out = subprocess.run([str(venv_python(venv, system)), "-c", code], capture_output=True,
                         text=True)
    return out.stdout


def folder_size(path: Path) -> int:
    return sum(os.lstat(os.path.join(folder, name)).st_size
               for folder, _, files in os.walk(path) for name in files)


def build_environment(target: Target, variant: str, venv: Path, python: list[str] | str,
                      asked: tuple | None, uv: str | None, lock: Path,
                      find_links: list[str]) -> None:
    """The environment at `venv`, updated in place when it works (with the Python version
    `asked`, when the user named one), else made anew with the old one kept aside (and put
    back if anything fails)."""
    system = target.system
    aside = None
    in_place = venv.exists() and usable(venv, system, asked)
    before = installed(venv, system) if in_place else None
    if venv.exists() and not in_place:
        aside = venv.with_name(venv.name + ".previous")
        if aside.exists():
            shutil.rmtree(aside)
        print(f"- keeping the environment there now at {aside} until the new one works")
        venv.rename(aside)
    shutil.rmtree(venv / "editor-client.new", ignore_errors=True)   # a run cut short
    try:
        if not in_place:
            run(create_step(venv, python, uv), system, False)
        for step in install_steps(target, variant, venv, uv, lock, find_links):
            run(step, system, False)
        fresh, client = venv / "editor-client.new", venv / "editor-client"
        if client.exists():
            shutil.rmtree(client)
        fresh.rename(client)
    except BaseException:
        shutil.rmtree(venv / "editor-client.new", ignore_errors=True)
        if aside is not None:
            shutil.rmtree(venv, ignore_errors=True)
            aside.rename(venv)
            print(f"The environment that was there is back at {venv}, as it was.")
        elif in_place:
            unchanged = installed(venv, system) == before
            print(f"The environment at {venv} " + (
                "is unchanged: it still works as it did." if unchanged else
                "was changed in part: run this again once the cause is fixed."))
        else:
            shutil.rmtree(venv, ignore_errors=True)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def install_plugins(editors: list[str], python: Path, flatpak: bool, dry_run: bool,
                    system: str) -> None:
    """Each editor's plug-in into every profile of it found, by its own installer (run
    with the backend's Python: GIMP's writes the backend's capabilities beside it)."""
    for editor in editors:
        command = [str(python), str(HERE / f"{editor}.py")] + (["--flatpak"] if flatpak else [])
        name = {"krita": "Krita", "gimp": "GIMP"}[editor]
        run(Step(f"installing the {name} plug-in", command), system, dry_run)


def host_service(python: Path, editors: list[str], dry_run: bool) -> None:
    """For Flatpak editors, which cannot start a program outside their sandbox: a systemd
    user service and a desktop launcher that start the backend on the host, and read
    access for the editors' sandboxes to the state folder (where the discovery file is)."""
    # systemd and desktop entries both take double quotes round an argument
    quoted = '"' + "".join("\\" + c if c in '"`$\\' else c for c in str(python)) + '"'
    command = f"{quoted} -m limner serve"
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    unit = config / "systemd" / "user" / "limner.service"
    desktop = data / "applications" / "limner-backend.desktop"
    print(f"- a user service ({unit}) and a launcher ({desktop}) that start the backend")
    if not dry_run:
        unit.parent.mkdir(parents=True, exist_ok=True)
        unit.write_text("[Unit]\nDescription=Limner backend (AI portrait retouching for GIMP "
                        f"and Krita)\n\n[Service]\nExecStart={command}\nRestart=on-failure\n\n"
                        "[Install]\nWantedBy=default.target\n")
        desktop.parent.mkdir(parents=True, exist_ok=True)
        desktop.write_text("[Desktop Entry]\nType=Application\nName=Limner backend\n"
                           "Comment=Starts Limner's backend for the Flatpak GIMP and Krita\n"
                           f"Exec={command}\nTerminal=false\nCategories=Graphics;\n")
    state = "~/.local/state/limner"
    commands = [["systemctl", "--user", "daemon-reload"],
                ["systemctl", "--user", "enable", "--now", "limner.service"]] + \
               [["flatpak", "override", "--user", f"--filesystem={state}:ro", FLATPAK_APPS[e]]
                for e in editors]
    for cmd in commands:
        if dry_run or shutil.which(cmd[0]) is None:
            print(f"    run: {shlex.join(cmd)}")
        elif subprocess.run(cmd).returncode != 0:
            print(f"    that failed; run it yourself: {shlex.join(cmd)}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with-diffusion", action="store_true",
                        help="also the diffusion engines (torch, diffusers, transformers; "
                             "for GPU machines: several GB)")
    parser.add_argument("--cuda", action="store_true",
                        help="the diffusion engines with PyTorch's CUDA build (NVIDIA GPUs; "
                             "Linux and Windows)")
    parser.add_argument("--studio", action="store_true",
                        help="a studio server: also Ray Serve, for `limner serve --studio "
                             "--ray` (Linux; with --cuda, the diffusion engines on NVIDIA "
                             "GPUs too)")
    parser.add_argument("--dev", action="store_true",
                        help="the diffusion engines (CPU) and the test tools: what "
                             "`python -m pytest` needs")
    parser.add_argument("--krita", action="store_true", help="install the Krita plug-in")
    parser.add_argument("--gimp", action="store_true", help="install the GIMP 3 plug-in")
    parser.add_argument("--all", action="store_true", help="both plug-ins")
    parser.add_argument("--flatpak", action="store_true",
                        help="the plug-ins into Flatpak editors, and a host service that "
                             "starts the backend (Flatpak apps cannot start it)")
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv",
                        help="where the backend's environment goes (default: .venv here)")
    parser.add_argument("--python", help="the Python to make it with (3.11 or 3.12)")
    parser.add_argument("--no-uv", action="store_true", help="venv and pip even with uv here")
    parser.add_argument("--find-links", action="append", default=[], metavar="DIR",
                        help="also look for packages in this folder (offline installs)")
    parser.add_argument("--lock", type=Path, help="install this lock file instead of "
                        "install/locks/<system>[-variant].txt")
    parser.add_argument("--dry-run", action="store_true",
                        help="say what would be done, and do nothing")
    parser.add_argument("--system", choices=("linux", "macos", "windows"),
                        help="with --dry-run: what it would do on that system")
    parser.add_argument("--machine", help="with --dry-run: on that processor (x86_64, arm64)")
    args = parser.parse_args(argv)
    if (args.system or args.machine) and not args.dry_run:
        parser.error("--system and --machine only go with --dry-run")
    return args


def stop_own_backend(python: Path) -> None:
    """A running backend of this environment holds its files open: stop it (the editors
    start it again when they need it). Another environment's is left alone."""
    record = launcher.read_record()
    command = record.get("command") if record else None
    if isinstance(command, list) and command and command[0] == str(python):
        stopped = launcher.stop()
        if stopped:
            print(f"- stopped the running backend (pid {stopped['pid']}); the editors start "
                  "it again when they need it")


def repeat_args(args) -> list[str]:
    """The options that make the same environment again (the plug-ins' installer button)."""
    flags = [f"--{name.replace('_', '-')}" for name in ("with_diffusion", "cuda", "studio",
                                                         "dev")
             if getattr(args, name)]
    return flags + ["--venv", str(args.venv.resolve())]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.monotonic()
    target = this_target(args.system, args.machine)
    system = args.system or discovery.this_system()
    editors = ["krita", "gimp"] if args.all else \
        [e for e in ("krita", "gimp") if getattr(args, e)]
    try:
        if target is None:
            raise SetupError(f"Limner's locked packages cover {', '.join(TARGETS)}; not this "
                             f"machine ({system}, {args.machine or platform.machine()})")
        variant = variant_of(target, args)
        uv = find_uv(not args.no_uv)
        if args.dry_run:          # perhaps for another system: no Python is looked for
            python = [args.python] if args.python else \
                ("%d.%d" % PYTHONS[-1] if uv else [sys.executable])
        else:
            python = choose_python(system, args.python, uv)
        venv = args.venv if args.dry_run else args.venv.resolve()
        lock = args.lock or lock_file(target, variant)
        print(f"Limner: the backend for {target.name}"
              f"{' (' + variant + ')' if variant else ''} in {venv}, "
              f"with {'uv' if uv else 'venv and pip'}", flush=True)
        if args.dry_run:
            if not venv.exists():
                run(create_step(venv, python, uv), system, True)
            for step in install_steps(target, variant, venv, uv, lock, args.find_links):
                run(step, system, True)
        else:
            stop_own_backend(venv_python(venv, system))
            asked = version_of([args.python]) if args.python else None
            build_environment(target, variant, venv, python, asked, uv, lock, args.find_links)
            record = launcher.write_record(
                [str(venv_python(venv, system)), "-m", "limner", "serve"],
                [sys.executable, str(Path(__file__).resolve()), *repeat_args(args)])
            print(f"- recorded where the backend is for the plug-ins: {record}")
        python_in_env = venv_python(venv, system)
        install_plugins(editors, python_in_env, args.flatpak, args.dry_run, system)
        if args.flatpak and system == "linux":
            host_service(python_in_env, editors, args.dry_run)
    except SetupError as exc:
        print(f"\nLimner's setup failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nLimner's setup was interrupted.", file=sys.stderr)
        return 130
    if not args.dry_run:
        print(f"\nLimner's backend is ready in {venv}: {folder_size(venv) / 2**20:.0f} MB, "
              f"set up in {time.monotonic() - started:.0f} s.")
        if not editors:
            print("Add the plug-ins with --krita, --gimp or --all.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
