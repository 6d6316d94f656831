#!/usr/bin/env bash
# Installs every Debian package kvmkit needs to build, test, benchmark and to
# build its guest assets. Idempotent: skips apt when everything is present.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libcli11-dev nlohmann-json3-dev liburing-dev
  # user-mode networking (--net user)
  libslirp-dev
  # fuzzing: clang's libFuzzer + sanitizer runtimes (scripts/run-fuzz.sh)
  clang libclang-rt-14-dev
  # guest assets: Debian's kernel source, its build tools, busybox
  linux-source-6.1 flex bison bc libelf-dev libssl-dev cpio xz-utils
  busybox-static kmod
  # benchmarks compare against Debian's QEMU
  qemu-system-x86 time python3
  # misc tooling used by tests
  iproute2 procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
