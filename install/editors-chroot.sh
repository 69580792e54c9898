#!/usr/bin/env bash
# Build (once) a Debian 13 chroot with GIMP 3.0 and Krita 5.2 for the plug-ins' tests,
# under .cache/editors-trixie. Never adds trixie to the host's apt sources: mmdebstrap
# fetches into the folder only. Built as .partial and renamed, so a half-built chroot is
# never used. (Krita 5.1 comes from the host's own Debian 12 packages.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${LIMNER_EDITORS_CHROOT:-$root/.cache/editors-trixie}
[ -x "$target/usr/bin/gimp-console-3.0" ] && [ -x "$target/usr/bin/kritarunner" ] && exit 0
command -v mmdebstrap >/dev/null || apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
# the Debian mirror the host's apt uses (deb822 or one-line sources; either may be absent)
mirror=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list \
         2>/dev/null | grep -oE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' | head -n1 \
         | awk '{print $2}' || true)
mirror=${mirror:-http://deb.debian.org/debian}
mkdir -p "$(dirname "$target")"
rm -rf "$target.partial"
mmdebstrap --variant=apt --include=gimp,python3-gi,gir1.2-gimp-3.0,krita,python3-pyqt5 trixie "$target.partial" "$mirror"
mv "$target.partial" "$target"
