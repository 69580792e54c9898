#!/usr/bin/env bash
# Build (once) a Debian 13 chroot with GIMP 3.0 for the GIMP plug-in's tests, under
# .cache/gimp-trixie. Never adds trixie to the host's apt sources: mmdebstrap fetches into
# the folder only. Built as .partial and renamed, so a half-built chroot is never used.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${LIMNER_GIMP_CHROOT:-$root/.cache/gimp-trixie}
[ -x "$target/usr/bin/gimp-console-3.0" ] && exit 0
command -v mmdebstrap >/dev/null || apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?' /etc/apt/sources.list.d/* /etc/apt/sources.list 2>/dev/null \
         | head -n1 | awk '{print $2}')
mirror=${mirror:-http://deb.debian.org/debian}
mkdir -p "$(dirname "$target")"
rm -rf "$target.partial"
mmdebstrap --variant=apt --include=gimp,python3-gi,gir1.2-gimp-3.0 trixie "$target.partial" "$mirror"
mv "$target.partial" "$target"
