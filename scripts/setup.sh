#!/usr/bin/env bash
# Installs the Debian packages Sluice needs to build, run its demo and pass its tests, then
# builds it. Idempotent: packages already present are not reinstalled, the build is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # build
  g++ cmake make pkg-config
  # libraries (fixed by the design)
  libyaml-cpp-dev libtbb-dev librdkafka-dev libpqxx-dev libpq-dev libxgboost-dev libsimdjson-dev
  libcli11-dev libfmt-dev libsqlite3-dev catch2 libcurl4-openssl-dev libcpp-httplib-dev
  # demo and tests
  sqlite3 postgresql kcat python3 python3-xgboost python3-sklearn python3-numpy python3-pandas python3-yaml python3-jsonschema
  python3-fastapi python3-uvicorn curl
  # metrics tests: a real Prometheus server and promtool
  prometheus
  # benchmarks: the seed's way in Python (bench/run_seed_bench.py)
  python3-kafka python3-confluent-kafka python3-psycopg2 python3-requests
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}"
cmake -S . -B build -DCMAKE_BUILD_TYPE="$BUILD_TYPE" >/dev/null
cmake --build build -j"$(nproc)"
