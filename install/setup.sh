#!/usr/bin/env bash
# Set up (or update) the backend's Python environment in .venv: idempotent, offline-safe
# once the packages are cached. Usage: bash install/setup.sh [--python PYTHON]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
[ "${1:-}" = "--python" ] && python=$2
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install -e "$root[test,diffusion]"
"${pip[@]}" install --no-deps -r "$root/install/requirements-nodeps.txt"
echo "limner environment ready: $venv"
