#!/usr/bin/env bash
# Sets up Sluice (packages + build) and runs every test: unit, golden and integration.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
