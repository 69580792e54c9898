#!/usr/bin/env bash
# Linux and macOS: set Limner up (or update it). install/setup.py does the work, the same
# on every system; this only finds a Python to run it. Options: see `--help`.
#   bash install/setup.sh            # the backend (lean: the offline engines)
#   bash install/setup.sh --dev      # + the diffusion engines and the test tools
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for python in "${PYTHON:-}" python3 python; do
    if [ -n "$python" ] && command -v "$python" >/dev/null 2>&1; then
        exec "$python" "$here/setup.py" "$@"
    fi
done
echo "Limner's setup needs Python 3 (3.11 or 3.12 for the backend): install it, or uv," >&2
echo "and run this again." >&2
exit 1
