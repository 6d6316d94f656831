#!/usr/bin/env bash
# One command from a fresh Debian 12 (as root): install, build (normal and
# ASan+UBSan), build the guest assets, then run every test: unit tests in both
# builds, integration tests (real guests on /dev/kvm) in the normal build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --sanitize

echo "== host check"
./build/bin/kvmkit check || true

echo "== unit tests under ASan+UBSan"
ctest --test-dir build-asan -L unit --output-on-failure -j "$(nproc)"

echo "== all tests (unit + integration on /dev/kvm)"
ctest --test-dir build --output-on-failure --timeout 900
