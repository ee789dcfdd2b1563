#!/usr/bin/env bash
# The sanitizer job of CI: the whole test suite built with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer (halting at the first report), then every fuzz target for a short
# time from its seeds. clang, not GCC: GCC's UBSan does not report a null pointer plus an offset
# (an empty vector's data() + n), which clang's does.
#
# Usage: scripts/sanitize.sh [FUZZ_SECONDS]   (default 30 per target; 0 skips the fuzzing)
# Builds in <repo>/build-sanitize (SINKLAB_SANITIZE_BUILD to change it). Prints the time of each
# phase; exits non-zero at the first failing phase.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fuzz_seconds=${1:-30}
build=${SINKLAB_SANITIZE_BUILD:-$root/build-sanitize}

phase_start=$SECONDS
phase_done() { echo "[sanitize] $1: $((SECONDS - phase_start)) s" >&2; phase_start=$SECONDS; }

# One build serves both: SINKLAB_FUZZ instruments for libFuzzer and implies the sanitizers.
# -O1 keeps the suite fast enough; line tables give reports their source lines; no benchmarks.
CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DSINKLAB_FUZZ=ON -DSINKLAB_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)"
phase_done "clang ASan + UBSan build"

# Reports with function names and lines (Debian installs the symbolizer under llvm-14's folder).
if [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer; fi
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" --timeout 900
phase_done "test suite under ASan + UBSan"

if [ "$fuzz_seconds" -gt 0 ]; then
  SINKLAB_FUZZ_BUILD=$build bash "$root/scripts/fuzz.sh" "$fuzz_seconds"
  phase_done "fuzz targets, ${fuzz_seconds} s each"
fi
