"""What the installer and the lock files agree on: the systems Limner installs on, the
variants of the backend environment, which lock file holds each, and where torch comes
from. Standard library only, and Python 3.8 syntax: the installer imports it before it
knows whether the Python running it is one the backend can use.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

LOCKS = Path(__file__).resolve().parent / "locks"

#: the Pythons the backend runs on: colour-science 0.4.7 needs 3.11, and mediapipe
#: 0.10.21 (the last release that ships its models) has wheels up to 3.12
PYTHONS = ((3, 11), (3, 12))

#: the torch release every variant pins (pyproject.toml's diffusion extra says the same)
TORCH = "2.13.0"


class Target:
    """One system the lock files cover: its name (in the lock files' names), uv's
    --python-platform for it, and the oldest OS release its wheels need."""

    def __init__(self, name: str, system: str, uv_platform: str, os_minimum: str,
                 variants: tuple):
        self.name, self.system, self.uv_platform = name, system, uv_platform
        self.os_minimum, self.variants = os_minimum, variants

    def __repr__(self) -> str:
        return f"Target({self.name})"


#: variants: "" (the default: offline engines only), "diffusion" (+ torch for the CPU,
#: or Apple's GPU on macOS), "diffusion-cuda" (+ torch for NVIDIA GPUs), "studio" and
#: "studio-cuda" (a studio server's: the default or diffusion-cuda, + Ray Serve; Linux
#: only, where Ray Serve runs in production), "dev" (the diffusion engines with the CPU
#: torch, the test tools, and Ray Serve where there is a studio variant)
TARGETS = {t.name: t for t in (
    Target("linux-x86_64", "linux", "x86_64-manylinux_2_28", "glibc 2.28",
           ("", "diffusion", "diffusion-cuda", "studio", "studio-cuda", "dev")),
    Target("windows-x86_64", "windows", "x86_64-pc-windows-msvc", "Windows 10",
           ("", "diffusion", "diffusion-cuda", "dev")),
    Target("macos-arm64", "macos", "aarch64-apple-darwin", "14.0",
           ("", "diffusion", "dev")),
    # PyTorch stopped building for Intel Macs after 2.2: no diffusion engines there
    Target("macos-x86_64", "macos", "x86_64-apple-darwin", "13.0", ("", "dev")),
)}

#: (target, variant) -> the torch build and the index it comes from, for the variants
#: whose torch is not on PyPI (PyPI's Linux torch is the CUDA build, and its Windows
#: torch the CPU one): installed after the lock file, pinned by version (the lock file
#: holds every other package, hashed)
TORCH_INDEX = {
    ("linux-x86_64", "diffusion"): ("torch==" + TORCH + "+cpu",
                                    "https://download.pytorch.org/whl/cpu"),
    ("linux-x86_64", "dev"): ("torch==" + TORCH + "+cpu", "https://download.pytorch.org/whl/cpu"),
    ("windows-x86_64", "diffusion-cuda"): ("torch==" + TORCH + "+cu130",
                                           "https://download.pytorch.org/whl/cu130"),
}

def extras(target: Target, variant: str) -> tuple:
    """The extras of pyproject.toml a variant installs (the test tools' "dev" has the
    diffusion engines wherever torch is built, and Ray Serve wherever a studio runs)."""
    if variant == "dev":
        return tuple(name for name, there in (("diffusion", "diffusion" in target.variants),
                                              ("test", True),
                                              ("studio", "studio" in target.variants))
                     if there)
    wanted = ("diffusion",) if variant.startswith("diffusion") or variant.endswith("cuda") \
        else ()
    return wanted + (("studio",) if variant.startswith("studio") else ())


def this_target(system: str | None = None, machine: str | None = None) -> Target | None:
    """The target of this machine (or of `system` and `machine`), None if none fits."""
    system = system or {"win32": "windows", "darwin": "macos"}.get(sys.platform, "linux")
    machine = (machine or platform.machine()).lower()
    arch = {"amd64": "x86_64", "x86_64": "x86_64", "x64": "x86_64", "arm64": "arm64",
            "aarch64": "arm64"}.get(machine, machine)
    return TARGETS.get(f"{system}-{arch}")


def lock_file(target: Target, variant: str) -> Path:
    return LOCKS / (target.name + (f"-{variant}" if variant else "") + ".txt")
