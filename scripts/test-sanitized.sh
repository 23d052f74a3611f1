#!/usr/bin/env bash
# The unit tests under AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer (clang, in
# build-fuzz/), then every fuzz target for SECONDS each (default 10; scripts/fuzz.sh).
# Usage: scripts/test-sanitized.sh [SECONDS]        (after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}

# Builds the fuzz targets (and with them the sanitized libraries), fuzzes each for a moment.
./scripts/fuzz.sh "$seconds"
echo "== unit tests with ASan, LSan and UBSan"
cmake --build build-fuzz -j"$(nproc)" --target unit_tests >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  build-fuzz/tests/unit_tests --reporter compact
