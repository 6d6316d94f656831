#!/usr/bin/env bash
# Installs kvmkit from build/ (scripts/build.sh first): the binaries, the
# kvmkitd systemd unit, bash completion, and the "kvmkit" group whose members
# may use kvmkitd's read-only socket. It does not enable or start kvmkitd:
#   systemctl enable --now kvmkitd
#   scripts/install.sh [--prefix DIR] [--destdir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/usr/local
destdir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --destdir) destdir="$2"; shift 2 ;;
    *) echo "install.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done

[ -d build ] || { echo "install.sh: no build/ here: run scripts/build.sh first" >&2; exit 1; }
cmake -S . -B build -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
DESTDIR="$destdir" cmake --install build

if [ -z "$destdir" ] && [ "$(id -u)" -eq 0 ]; then
  getent group kvmkit >/dev/null || groupadd --system kvmkit
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
  fi
  echo "install.sh: installed under $prefix; start the daemon with: systemctl enable --now kvmkitd"
  echo "install.sh: members of the group 'kvmkit' may query VMs (kvmkit list) without root"
fi
