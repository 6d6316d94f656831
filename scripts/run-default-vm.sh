#!/usr/bin/env bash
# One command from a fresh Debian 12 (as root): install, build, and boot the
# default guest with its console on this terminal. Ctrl-A x quits; `poweroff`
# in the guest ends the VM. Extra arguments go to `kvmkit run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
./build/bin/kvmkit check >/dev/null || ./build/bin/kvmkit check
echo "== booting the default guest (Ctrl-A x quits)"
exec ./build/bin/kvmkit run "$@"
