"""The installer for every system: the lock files agree with pyproject.toml, each system's
branch picks its own lock, Python and profile folders (run here against temporary
profiles, with the system's environment simulated), a failed update leaves the previous
environment as it was, no module needs a POSIX-only module on Windows, and the plug-ins'
"backend not found" message names the command for each system."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from limner import launcher
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "install"
sys.path.insert(0, str(INSTALL))
import lock  # noqa: E402
import targets  # noqa: E402


def load_setup():
    spec = importlib.util.spec_from_file_location("limner_setup", INSTALL / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pins(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of a lock file."""
    found, name = {}, None
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^ \\]+)", line)
        if match:
            name = match.group(1).lower().replace("_", "-")
            found[name] = (match.group(2), 0)
        elif "--hash=sha256:" in line and name:
            found[name] = (found[name][0], found[name][1] + 1)
    return found


VARIANTS = [(t, v) for t in targets.TARGETS.values() for v in t.variants]


@pytest.mark.parametrize("target,variant", VARIANTS,
                         ids=[f"{t.name}-{v or 'default'}" for t, v in VARIANTS])
def test_each_lock_is_made_from_todays_inputs_and_pins_every_requirement(target, variant):
    path = targets.lock_file(target, variant)
    assert path.exists(), f"no lock for {target.name} {variant}: run install/lock.py"
    digest = re.search(r"^# inputs-sha256: (\w+)$", path.read_text(), re.MULTILINE).group(1)
    assert digest == lock.inputs_digest(target, variant), \
        f"{path.name} was made from other inputs: run install/lock.py"
    locked = pins(path)
    assert all(hashes for _, hashes in locked.values()), "every package hashed"
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"]) + [
        r for extra in targets.extras(target, variant)
        for r in project["optional-dependencies"][extra]]
    wanted += [line.split("#")[0].strip() for line in lock.MODELS_IN.read_text().splitlines()
               if line.split("#")[0].strip()]
    for text in wanted:
        requirement = Requirement(text)
        name = requirement.name.lower().replace("_", "-")
        if name == "torch" and (target.name, variant) in targets.TORCH_INDEX:
            assert name not in locked, "installed from PyTorch's index, after the lock"
            torch, _ = targets.TORCH_INDEX[(target.name, variant)]
            assert Version(torch.split("==")[1]).public in requirement.specifier
            continue
        assert name in locked, f"{path.name} lacks {name}"
        assert Version(locked[name][0]) in requirement.specifier, (text, locked[name])
    dropped = {"jax", "jaxlib", "opencv-contrib-python", "opencv-python", "moviepy"}
    assert not dropped & set(locked), "the model wheels' unneeded dependencies"
    if "diffusion" not in targets.extras(target, variant):
        assert not {"torch", "diffusers", "transformers"} & set(locked), "lean by default"


def test_torch_is_one_release_everywhere():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f"torch=={targets.TORCH}" in project["optional-dependencies"]["diffusion"]
    for torch, _ in targets.TORCH_INDEX.values():
        assert torch.startswith(f"torch=={targets.TORCH}+")


def test_a_changed_dependency_makes_the_locks_stale(tmp_path, monkeypatch):
    target = targets.TARGETS["linux-x86_64"]
    before = lock.inputs_digest(target, "")
    changed = tmp_path / "pyproject.toml"
    changed.write_text((ROOT / "pyproject.toml").read_text().replace('"pillow>=10"',
                                                                     '"pillow>=11"'))
    monkeypatch.setattr(lock, "ROOT", tmp_path)
    assert lock.inputs_digest(target, "") != before


def dry_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(INSTALL / "setup.py"), "--dry-run", "--no-uv",
                           *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("system,machine,python,lock_name", [
    ("windows", "AMD64", "Scripts/python.exe", "windows-x86_64-diffusion-cuda.txt"),
    ("linux", "x86_64", "bin/python", "linux-x86_64-diffusion-cuda.txt"),
])
def test_each_system_installs_its_own_lock_into_its_own_layout(system, machine, python,
                                                               lock_name, tmp_path):
    out = dry_run("--system", system, "--machine", machine, "--cuda", "--venv",
                  str(tmp_path / "env"), "--all")
    assert out.returncode == 0, out.stderr
    assert f"-r {INSTALL / 'locks' / lock_name}" in out.stdout.replace('"', "")
    assert str(tmp_path / "env" / python) in out.stdout
    assert "-e " in out.stdout and "--require-hashes" in out.stdout
    assert "install/krita.py" in out.stdout and "install/gimp.py" in out.stdout
    if system == "windows":        # PyPI's Windows torch is the CPU build
        assert "torch==2.13.0+cu130 --index-url https://download.pytorch.org/whl/cu130" \
            in out.stdout


def test_linux_cpu_torch_comes_from_pytorchs_index_and_macs_from_pypi(tmp_path):
    linux = dry_run("--system", "linux", "--machine", "x86_64", "--with-diffusion")
    assert "torch==2.13.0+cpu --index-url https://download.pytorch.org/whl/cpu" in linux.stdout
    mac = dry_run("--system", "macos", "--machine", "arm64", "--with-diffusion")
    assert mac.returncode == 0 and "macos-arm64-diffusion.txt" in mac.stdout
    assert "index-url" not in mac.stdout, "macOS takes torch from the lock (PyPI)"
    assert "macos-arm64.txt" in dry_run("--system", "macos", "--machine", "arm64").stdout


@pytest.mark.parametrize("args,says", [
    (("--system", "macos", "--machine", "x86_64", "--with-diffusion"), "no builds for macos"),
    (("--system", "macos", "--machine", "arm64", "--cuda"), "no CUDA on macOS"),
    (("--system", "linux", "--machine", "riscv64"), "not this machine"),
])
def test_what_cannot_be_installed_is_refused_with_the_reason(args, says):
    out = dry_run(*args)
    assert out.returncode == 1 and says in out.stderr, out.stderr


def fake_python(folder: Path, version: str) -> Path:
    """A program that answers the installer's version question like that Python would."""
    path = folder / f"python{version}"
    path.write_text(f"#!/bin/sh\necho {version.replace('.', ' ')}\n")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("version", ["3.10", "3.13"])
def test_a_python_the_wheels_do_not_cover_is_refused_with_how_to_get_one(tmp_path, version):
    out = subprocess.run([sys.executable, str(INSTALL / "setup.py"), "--no-uv", "--python",
                          str(fake_python(tmp_path, version)), "--venv", str(tmp_path / "env")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert f"Python {version}" in out.stderr and "3.11 or 3.12" in out.stderr
    assert "python3.12 install/setup.py" in out.stderr and "uv" in out.stderr
    assert not (tmp_path / "env").exists()


@pytest.mark.parametrize("system,says", [("windows", "py -3.12 install\\setup.py"),
                                         ("macos", "brew install python@3.12"),
                                         ("linux", "python3.12 install/setup.py")])
def test_without_any_usable_python_each_system_is_told_its_own_way(system, says, monkeypatch):
    setup = load_setup()
    monkeypatch.setattr(setup.sys, "version_info", (3, 13, 0))
    monkeypatch.setattr(setup, "version_of", lambda python: None)   # nothing else found
    with pytest.raises(setup.SetupError) as err:
        setup.choose_python(system, None, None)
    assert says in str(err.value)
    assert setup.choose_python(system, None, "/usr/bin/uv") == "3.12", "uv fetches one"


def tiny_wheel(folder: Path, version: str = "1.0") -> tuple[Path, str]:
    """A real, minimal wheel (limner-tiny) and its sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"limner_tiny-{version}-py3-none-any.whl"
    info = f"limner_tiny-{version}.dist-info"
    files = {"limner_tiny.py": f"VERSION = {version!r}\n",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: limner-tiny\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def make_env(venv: Path, wheel: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index",
                    "--no-deps", str(wheel)], check=True, timeout=120)


def setup_with_lock(venv: Path, lock_text: str, wheels: Path, tmp_path: Path,
                    python: str | None = None):
    bad = tmp_path / "lock.txt"
    bad.write_text(lock_text)
    env = dict(os.environ, LIMNER_STATE_DIR=str(tmp_path / "state"), PIP_NO_INDEX="1")
    return subprocess.run([sys.executable, str(INSTALL / "setup.py"), "--no-uv", "--venv",
                           str(venv), "--lock", str(bad), "--find-links", str(wheels),
                           *(["--python", python] if python else [])],
                          capture_output=True, text=True, timeout=300, env=env)


def test_a_failed_update_leaves_the_working_environment_working(tmp_path):
    """An update whose download does not match its lock's hash stops before it changes
    anything (pip checks every download first)."""
    wheel, digest = tiny_wheel(tmp_path / "wheels")
    tiny_wheel(tmp_path / "wheels", "2.0")
    venv = tmp_path / "env"
    make_env(venv, wheel)
    out = setup_with_lock(venv, f"limner-tiny==2.0 --hash=sha256:{'0' * 64}\n",
                          wheel.parent, tmp_path)
    assert out.returncode == 1
    assert "installing the locked packages (lock.txt) failed" in out.stderr, out.stderr
    assert "is unchanged: it still works as it did" in out.stdout, out.stdout
    check = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import limner_tiny; print(limner_tiny.VERSION)"],
                           capture_output=True, text=True)
    assert check.stdout.strip() == "1.0", "the previous environment is as it was"
    assert not launcher.record_path(tmp_path / "state").exists(), "no record of a failure"


def test_an_environment_made_anew_puts_the_old_one_back_when_it_fails(tmp_path):
    """An environment whose Python is not the one asked for is rebuilt beside it; when the
    rebuild fails, the old one is back, untouched."""
    wheel, _ = tiny_wheel(tmp_path / "wheels")
    venv = tmp_path / "env"
    make_env(venv, wheel)
    (venv / "marker").write_text("the old one")
    other = next((str(p) for p in (*sorted(Path.home().glob(
        ".pyenv/versions/3.12*/bin/python3.12")), shutil.which("python3.12"))
        if p and subprocess.run([str(p), "-V"], capture_output=True).returncode == 0), None)
    if other is None:
        (venv / "bin" / "python").unlink()        # a broken one is rebuilt too
        (venv / "bin" / "python").symlink_to("/nonexistent/python")
    out = setup_with_lock(venv, f"limner-tiny==1.0 --hash=sha256:{'0' * 64}\n",
                          wheel.parent, tmp_path, python=other)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "keeping the environment there now at" in out.stdout
    assert "is back at" in out.stdout
    assert (venv / "marker").read_text() == "the old one"
    assert not (tmp_path / "env.previous").exists()


PROFILES = {
    # system: (environment, the Krita plug-in, kritarc, GIMP's 3.0 plug-ins folder, record)
    "windows": ({"APPDATA": "Roaming", "LOCALAPPDATA": "Local"}, "Roaming/krita/pykrita",
                "Local/kritarc", "Roaming/GIMP/3.0/plug-ins", "Local/limner/install.json"),
    "macos": ({}, "Library/Application Support/krita/pykrita", "Library/Preferences/kritarc",
              "Library/Application Support/GIMP/3.0/plug-ins",
              "Library/Application Support/limner/install.json"),
    "linux": ({"XDG_DATA_HOME": ".local/share", "XDG_CONFIG_HOME": ".config",
               "XDG_STATE_HOME": ".local/state"}, ".local/share/krita/pykrita",
              ".config/kritarc", ".config/GIMP/3.0/plug-ins", ".local/state/limner/install.json"),
    "flatpak": ({}, ".var/app/org.kde.krita/data/krita/pykrita",
                ".var/app/org.kde.krita/config/kritarc",
                ".var/app/org.gimp.GIMP/config/GIMP/3.0/plug-ins", None),
}


@pytest.mark.parametrize("system", list(PROFILES))
def test_each_systems_plug_ins_land_where_its_editors_look(system, tmp_path):
    home = tmp_path / "home"
    variables, krita, kritarc, gimp, record = PROFILES[system]
    env = {"PATH": os.environ["PATH"], "HOME": str(home),
           **{k: str(home / v) for k, v in variables.items()}}
    (home / Path(gimp).parent).mkdir(parents=True)           # GIMP 3.0 has run once
    flags = ["--flatpak"] if system == "flatpak" else ["--system", system]
    for editor in ("krita", "gimp"):
        subprocess.run([sys.executable, str(INSTALL / f"{editor}.py"), *flags], env=env,
                       check=True, capture_output=True, timeout=120)
    assert (home / krita / "limner_krita" / "__init__.py").exists()
    assert "enable_limner_krita=true" in (home / kritarc).read_text()
    assert (home / gimp / "limner_gimp" / "limner_gimp.py").exists()
    for text in (p.read_text(errors="replace") for p in home.rglob("*") if p.is_file()):
        assert str(ROOT) not in text and sys.prefix not in text, \
            "no path of the backend in a plug-in: the folder may move"
    if record is not None:        # where install/setup.py records the backend there
        code = (f"import sys; sys.path.insert(0, {str(ROOT / 'backend')!r}); "
                f"from limner import launcher; print(launcher.record_path(system={system!r}))")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True)
        assert Path(out.stdout.strip()) == home / record


def test_flatpak_editors_get_a_host_service_that_starts_the_backend(tmp_path, monkeypatch,
                                                                    capsys):
    setup = load_setup()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("PATH", str(tmp_path))          # no systemctl, no flatpak here
    python = tmp_path / "limner env" / "bin" / "python"
    setup.host_service(python, ["krita", "gimp"], dry_run=False)
    unit = (tmp_path / "config" / "systemd" / "user" / "limner.service").read_text()
    assert f'ExecStart="{python}" -m limner serve' in unit
    desktop = (tmp_path / "data" / "applications" / "limner-backend.desktop").read_text()
    assert "Name=Limner backend" in desktop and "-m limner serve" in desktop
    said = [shlex.split(line.split("run: ", 1)[1])
            for line in capsys.readouterr().out.splitlines() if "run: " in line]
    assert ["systemctl", "--user", "enable", "--now", "limner.service"] in said
    for app in ("org.kde.krita", "org.gimp.GIMP"):   # the sandbox may read the discovery file
        assert ["flatpak", "override", "--user", "--filesystem=~/.local/state/limner:ro",
                app] in said


@pytest.mark.parametrize("system,command,where", [
    ("windows", r"py install\setup.py --krita", "PowerShell"),
    ("macos", "python3 install/setup.py --krita", "Terminal"),
    ("linux", "python3 install/setup.py --krita", "a terminal")])
def test_backend_not_found_names_the_command_for_the_users_system(system, command, where):
    message = launcher.not_found_message("krita", system=system, sandboxed=False)
    assert command in message and where in message and "not installed" in message
    assert r"py install\setup.py --gimp" in launcher.not_found_message(
        "gimp", system="windows", sandboxed=False)


def test_inside_flatpak_the_user_is_told_to_start_the_backend_on_the_host():
    message = launcher.not_found_message("gimp", system="linux", sandboxed=True)
    assert "systemctl --user start limner" in message
    assert "python3 install/setup.py --gimp --flatpak" in message


def test_inside_a_flatpak_sandbox_the_hosts_state_folder_is_read_and_nothing_started(
        tmp_path, monkeypatch):
    """A Flatpak app's XDG folders are its own, its process table is not the host's, and
    it cannot start host programs: the plug-in reads the host's state folder, does not
    judge the backend by its pid, and says how to start it on the host."""
    from limner import discovery

    monkeypatch.setattr(discovery, "in_flatpak", lambda: True)
    monkeypatch.delenv("LIMNER_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "app-own-state"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert discovery.state_dir() == tmp_path / ".local" / "state" / "limner"
    discovery.write({"port": 1, "token": "t", "pid": 2**22})   # no such pid here
    assert discovery.read() is not None, "another namespace's pid: the port decides"
    launcher.write_record([sys.executable, "-m", "limner", "serve"], [])
    with pytest.raises(launcher.NotInstalled) as err:
        launcher.backend_command("krita")
    assert "systemctl --user start limner" in str(err.value) and err.value.installer is None


def test_a_moved_backend_is_found_missing_and_its_installer_offered(tmp_path):
    state = tmp_path / "state"
    with pytest.raises(launcher.NotInstalled) as err:
        launcher.backend_command("krita", state)
    assert "not installed" in str(err.value) and err.value.installer is None
    installer = [sys.executable, str(INSTALL / "setup.py"), "--dev"]
    launcher.write_record([str(tmp_path / "moved" / "python"), "-m", "limner", "serve"],
                          installer, state)
    with pytest.raises(launcher.NotInstalled) as err:
        launcher.backend_command("krita", state)
    assert "moved or deleted" in str(err.value)
    assert err.value.installer == installer, "the installer is there: it can run again"
    launcher.write_record([sys.executable, "-m", "limner", "serve"], installer, state)
    assert launcher.backend_command("krita", state)[0] == sys.executable
    assert (launcher.record_path(state).stat().st_mode & 0o777) == 0o600


#: modules that exist only on POSIX systems (the standard library's own posix and
#: _posixsubprocess excepted: os and subprocess pick them by platform themselves)
POSIX_ONLY = ["fcntl", "termios", "pwd", "grp", "resource", "tty", "pty", "syslog", "crypt",
              "readline"]


def test_no_module_needs_a_posix_only_module_when_imported_on_windows():
    """Every backend module, the installers and the plug-ins' standard-library modules are
    imported with the POSIX-only modules made unimportable, as on Windows."""
    modules = sorted(
        "limner." + ".".join(p.relative_to(ROOT / "backend" / "limner").with_suffix("").parts)
        for p in (ROOT / "backend" / "limner").rglob("*.py") if p.name != "__init__.py"
        and p.name != "__main__.py" and p.name != "replicas.py")   # Ray Serve's: Linux only
    code = textwrap.dedent(f"""
        import importlib, importlib.util, sys
        for name in {POSIX_ONLY!r}:
            sys.modules[name] = None
        failed = []
        for name in {modules!r}:
            try:
                importlib.import_module(name)
            except ImportError as exc:
                failed.append(f"{{name}}: {{exc}}")
        sys.path[:0] = [{str(INSTALL)!r}, {str(ROOT / 'gimp_plugin' / 'limner_gimp')!r}]
        for name in ["targets", "common", "lock", "names", "previews"]:
            try:
                importlib.import_module(name)
            except ImportError as exc:
                failed.append(f"{{name}}: {{exc}}")
        spec = importlib.util.spec_from_file_location("setup_", {str(INSTALL / 'setup.py')!r})
        try:
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
        except ImportError as exc:
            failed.append(f"setup.py: {{exc}}")
        print("\\n".join(failed) or "ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.stdout.strip().splitlines()[-1:] == ["ok"], out.stdout + out.stderr[-3000:]


def oldest_editor_python() -> str | None:
    """A Python 3.8 (the oldest an editor Limner supports bundles): on PATH, from pyenv, or
    one uv knows."""
    for candidate in (*map(str, sorted(Path.home().glob(".pyenv/versions/3.8*/bin/python3.8"))),
                      shutil.which("python3.8")):
        if candidate and subprocess.run([candidate, "-c", "import sys; assert sys.version_info"
                                         "[:2] == (3, 8)"], capture_output=True).returncode == 0:
            return candidate
    if shutil.which("uv"):
        out = subprocess.run(["uv", "python", "find", "3.8"], capture_output=True, text=True)
        if out.returncode == 0:
            return out.stdout.strip()
    return None


def test_the_vendored_client_works_in_the_oldest_editor_python(tmp_path, server):
    """The client the plug-ins carry, alone (no site-packages), in Python 3.8: it connects
    to the real backend and runs an operation."""
    python = oldest_editor_python()
    if python is None:
        if os.environ.get("LIMNER_REQUIRE_EDITORS"):
            pytest.fail("no Python 3.8 here (pyenv, PATH or uv)")
        pytest.skip("no Python 3.8 here")
    subprocess.run([sys.executable, str(INSTALL / "krita.py"), "--resource-dir",
                    str(tmp_path / "krita"), "--kritarc", str(tmp_path / "kritarc")],
                   check=True, capture_output=True)
    vendor = tmp_path / "krita" / "pykrita" / "limner_krita" / "vendor"
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(vendor)!r})
        from limner import discovery, launcher, provenance
        from limner.client import Client
        from limner.protocol import Pixels
        assert "numpy" not in sys.modules
        with Client(sys.argv[1], sys.argv[2], name="python 3.8") as client:
            pixels = Pixels(bytes([200, 120, 90, 255]) * (32 * 32), 32, 32, 4, "u8")
            layers = client.run("grade", {{"look": "warm"}}, pixels)
        print(sys.version_info[:2], layers[0][0].name, len(layers[0][1].data))
    """)
    out = subprocess.run([python, "-S", "-c", code, server.uri, server.server.token],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("(3, 8) Grade warm") and out.stdout.split()[-1] == "4096"


def test_a_lean_install_lists_the_diffusion_engines_as_needing_the_extra(tmp_path):
    """Without torch, diffusers, transformers and the hub's client (the default install),
    the backend starts, its offline engines run, and the diffusion engines say what adds
    them; a model download says the same."""
    code = textwrap.dedent("""
        import json, sys
        for name in ("torch", "diffusers", "transformers", "huggingface_hub", "safetensors",
                     "peft"):
            sys.modules[name] = None
        import numpy as np
        from limner import engines, models, protocol
        from limner.server import Server
        caps = Server(write_discovery=False).capabilities()
        style = {e["name"]: e for e in caps["engines"]["style"]}
        print(json.dumps({"diffusion": style["diffusion"], "classic": style["classic"]}))
        try:
            models.pull("sd15")
        except protocol.ProtocolError as exc:
            print(exc.message)
        rgb = np.zeros((64, 64, 3), np.float32)
        print(engines.get("matting", "mediapipe").matte(rgb).shape)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    import json

    style = json.loads(lines[0])
    assert not style["diffusion"]["available"]
    assert "install/setup.py --with-diffusion" in style["diffusion"]["setup"]
    assert style["classic"]["available"] and style["classic"]["setup"] is None
    assert "install/setup.py --with-diffusion" in lines[1]
    assert lines[2] == "(64, 64)"


def test_limner_stop_ends_the_running_backend(tmp_path):
    """What the installer does before it updates an environment, and `limner stop`."""
    import time

    from limner import discovery

    env = dict(os.environ, LIMNER_STATE_DIR=str(tmp_path))
    process = subprocess.Popen([sys.executable, "-m", "limner", "serve", "--port", "0",
                                "--log-level", "WARNING"], env=env)
    try:
        deadline = time.time() + 120
        while discovery.answering(tmp_path) is None:
            assert process.poll() is None and time.time() < deadline, "it did not start"
            time.sleep(0.2)
        out = subprocess.run([sys.executable, "-m", "limner", "stop"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.stdout.startswith("stopped the Limner backend"), out.stdout + out.stderr
        assert process.wait(10) == 0
        assert discovery.answering(tmp_path) is None and not discovery.discovery_path(
            tmp_path).exists()
        assert launcher.stop(tmp_path) is None, "nothing left to stop"
    finally:
        if process.poll() is None:
            process.kill()
