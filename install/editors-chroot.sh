#!/usr/bin/env bash
# Build (once) the chroots the plug-ins' tests run the editors in, under .cache/:
#   editors-trixie  Debian 13: GIMP 3.0, Krita 5.2 (what most users run)
#   editors-sid     Debian unstable: GIMP 3.2, Krita 5.3, Python 3.14 (the newest)
#   editors-krita6  Debian experimental: Krita 6.0 (Qt 6, PyQt6)
# Never adds either suite to the host's apt sources: mmdebstrap fetches into the folder
# only. Each is built as .partial and renamed, so a half-built chroot is never used. (Krita
# 5.1 comes from the host's own Debian 12 packages.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
command -v mmdebstrap >/dev/null || apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
# the Debian mirror the host's apt uses (deb822 or one-line sources; either may be absent)
mirror=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list \
         2>/dev/null | grep -oE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' | head -n1 \
         | awk '{print $2}' || true)
mirror=${mirror:-http://deb.debian.org/debian}
packages=gimp,python3-gi,gir1.2-gimp-3.0,krita,python3-pyqt5

build() {   # suite, folder, the binary that says it is built, mirrors ("|" between
            # several), mmdebstrap options...
    local suite=$1 target=$2 binary=$3 mirrors
    IFS='|' read -r -a mirrors <<<"$4"
    shift 4
    [ -x "$target/usr/bin/$binary" ] && [ -x "$target/usr/bin/kritarunner" ] && return 0
    mkdir -p "$(dirname "$target")"
    rm -rf "$target.partial"
    mmdebstrap --quiet --variant=apt "$@" "$suite" "$target.partial" "${mirrors[@]}"
    mv "$target.partial" "$target"
}

build trixie "${LIMNER_EDITORS_CHROOT:-$root/.cache/editors-trixie}" gimp-console-3.0 "$mirror" \
    --include=$packages &
trixie=$!
# sid's Release file on the mirror may be past its Valid-Until date: accept it, for these
# chroots only
build sid "${LIMNER_EDITORS_SID_CHROOT:-$root/.cache/editors-sid}" gimp-console-3.2 "$mirror" \
    --include=$packages --aptopt='Acquire::Check-Valid-Until "false"' &
sid=$!
# Krita 6 is in experimental only: sid plus experimental, and krita/experimental picks that
# suite for Krita alone (its PyQt6 comes from sid)
build sid "${LIMNER_EDITORS_KRITA6_CHROOT:-$root/.cache/editors-krita6}" krita \
    "deb $mirror sid main|deb $mirror experimental main" \
    --include='krita/experimental,python3-pyqt6' --aptopt='Acquire::Check-Valid-Until "false"' &
krita6=$!
wait $trixie
wait $sid
wait $krita6
