#!/usr/bin/env bash
# Benchmarks kvmkit against Debian's QEMU (-M pc and -M microvm) side by side,
# in one run, on the project's test guest and (with --linux, when it is built)
# the default Linux guest. Prints medians and the ratios kvmkit/QEMU.
#   bench/run.sh [--markdown] [--spread] [--runs N] [--linux [--linux-runs N]] ...
#   bench/run.sh --help         lists every option (bench/vmm_bench.py)
# With --blk (first argument), the virtio-blk benchmark instead: kvmkit vs QEMU
# (virtio-blk-pci, cache=none, aio=io_uring) vs the same I/O on the host
# (bench/blk_bench.py; a few minutes; --linux adds the Linux guest):
#   bench/run.sh --blk [--markdown] [--spread] [--runs N] [--linux] ...
#   bench/run.sh --blk --help   lists every option (bench/blk_bench.py)
#   bench/run.sh --net [...]    virtio-net: kvmkit vs QEMU per backend (bench/net_bench.py --help)
# Needs: a built kvmkit (ninja -C build, or scripts/build.sh), qemu-system-x86,
# python3 (scripts/install-deps.sh installs both), /dev/kvm. The default run (test
# guest only) takes about a minute on an idle 2-CPU PVM host; --linux adds the
# default Linux guest (scripts/build-guest.sh), 1-1.5 minutes per boot there
# (more when the host is busy).
# Never part of the tests: nothing here asserts anything about timings.
set -euo pipefail
cd "$(dirname "$0")/.."

for f in build/bin/kvmkit build/tests/guests/testguest.elf build/tests/guests/testguest.bzImage; do
  if [ ! -e "$f" ]; then
    echo "bench: $f missing; build first: ninja -C build (or bash scripts/build.sh)" >&2
    exit 1
  fi
done
command -v qemu-system-x86_64 >/dev/null || { echo "bench: qemu-system-x86_64 missing (bash scripts/install-deps.sh)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench: python3 missing (bash scripts/install-deps.sh)" >&2; exit 1; }

if [ "${1:-}" = "--blk" ]; then
  shift
  command -v gcc >/dev/null || { echo "bench: gcc missing (bash scripts/install-deps.sh)" >&2; exit 1; }
  exec python3 bench/blk_bench.py "$@"
fi
if [ "${1:-}" = "--net" ]; then
  shift
  exec python3 bench/net_bench.py "$@"
fi
exec python3 bench/vmm_bench.py "$@"
