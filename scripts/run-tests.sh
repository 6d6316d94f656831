#!/usr/bin/env bash
# One command from a fresh Debian 12 (as root): install, build (normal and
# ASan+UBSan), build the guest assets, then run every test: unit tests in both
# builds, a bounded fuzz run of the virtqueue, integration tests (real
# guests on /dev/kvm) in the normal build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --sanitize

echo "== host check"
./build/bin/kvmkit check || true

echo "== unit tests under ASan+UBSan"
ctest --test-dir build-asan -L unit --output-on-failure -j "$(nproc)"

echo "== fuzzing the virtqueue for 60 s (libFuzzer, ASan+UBSan)"
bash scripts/run-fuzz.sh -t 60 virtqueue_fuzz

echo "== all tests (unit + integration on /dev/kvm)"
# Two at a time: an emulated Linux guest keeps one CPU busy, and the tests
# share nothing (temporary dirs, free ports, their own network namespaces).
ctest --test-dir build --output-on-failure --timeout 900 -j "$(nproc)"
