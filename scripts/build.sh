#!/usr/bin/env bash
# Installs the Debian packages kvmkit needs, builds kvmkit (build/), builds
# the default guest into the cache (scripts/build-guest.sh; cached, so a
# second run takes seconds), and as root installs kvmkit under /usr/local
# (scripts/install.sh: binaries, the kvmkitd systemd unit, bash completion;
# nothing is enabled or started).
#   scripts/build.sh [--no-guest] [--sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."

guest=1
sanitize=0
for a in "$@"; do
  case "$a" in
    --no-guest) guest=0 ;;
    --sanitize) sanitize=1 ;;
    *) echo "build.sh: unknown option '$a'" >&2; exit 2 ;;
  esac
done

bash scripts/install-deps.sh

echo "== building kvmkit (build/)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build

if [ "$sanitize" = 1 ]; then
  echo "== building kvmkit with ASan+UBSan (build-asan/)"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKVMKIT_SANITIZE=ON >/dev/null
  ninja -C build-asan
fi

if [ "$guest" = 1 ]; then
  echo "== building the default guest"
  bash scripts/build-guest.sh
fi

if [ "$(id -u)" -eq 0 ]; then
  echo "== installing kvmkit under /usr/local (scripts/install.sh)"
  bash scripts/install.sh
fi
