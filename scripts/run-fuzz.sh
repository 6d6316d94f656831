#!/usr/bin/env bash
# Builds the libFuzzer targets with clang + ASan + UBSan in build-fuzz/ and
# runs one for a bounded time. Exits non-zero if the fuzzer finds a crash,
# a leak, a sanitizer report or a timeout (the reproducer is left in
# build-fuzz/artifacts/<target>/; copy it into tests/fuzz/corpus/<corpus>/
# once fixed so the regression test keeps it fixed).
#   scripts/run-fuzz.sh [-t SECONDS] [-j JOBS] [TARGET] [-- LIBFUZZER_ARGS...]
# TARGET defaults to virtqueue_fuzz; SECONDS to 60 (libFuzzer -max_total_time).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
jobs=1
target=virtqueue_fuzz
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    -t) seconds="$2"; shift 2 ;;
    -j) jobs="$2"; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -*) echo "run-fuzz.sh: unknown option '$1'" >&2; exit 2 ;;
    *) target="$1"; shift ;;
  esac
done

# Seed corpus per target (tests/fuzz/corpus/<name without _fuzz>).
seeds="tests/fuzz/corpus/${target%_fuzz}"
[ -d "$seeds" ] || { echo "run-fuzz.sh: no seed corpus $seeds" >&2; exit 2; }

command -v clang++ >/dev/null || { echo "run-fuzz.sh: clang++ not found (scripts/install-deps.sh)" >&2; exit 2; }

echo "== building $target with clang, libFuzzer, ASan+UBSan (build-fuzz/)"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DKVMKIT_FUZZ=ON -DKVMKIT_SANITIZE=ON >/dev/null
ninja -C build-fuzz "$target"

# The working corpus grows in build-fuzz/; the committed seeds are read-only input.
work="build-fuzz/corpus/$target"
artifacts="build-fuzz/artifacts/$target"
mkdir -p "$work" "$artifacts"

echo "== fuzzing $target for ${seconds}s ($jobs job(s))"
bin="build-fuzz/tests/fuzz/$target"
args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
      -artifact_prefix="$artifacts/")
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
if [ "$jobs" -gt 1 ]; then
  args+=(-fork="$jobs")  # stops at the first crash (no -ignore_crashes)
fi
set +e
"$bin" "${args[@]}" "${extra[@]}" "$work" "$seeds"
status=$?
set -e
if [ $status -ne 0 ]; then
  echo "== $target: FAILED (exit $status); reproducers in $artifacts/" >&2
  exit $status
fi
echo "== $target: no crash in ${seconds}s"
