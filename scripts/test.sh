#!/usr/bin/env bash
# Sets up Sluice (packages + build) and runs every test: unit, golden and integration, then the
# sanitized unit tests and a short fuzzing run.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
# The whole run (no ctest arguments) also runs the unit tests under ASan/LSan/UBSan and each fuzz
# target for 10 s (about 8 minutes on 2 cores, most of it the sanitized build); SLUICE_SANITIZE=0
# skips them.
if (($# == 0)) && [[ "${SLUICE_SANITIZE:-1}" != 0 ]]; then
  ./scripts/test-sanitized.sh 10
fi
