#!/usr/bin/env bash
# Sets up Sluice (packages + build) and runs the iris demo on embedded defaults: Kafka Connect
# envelopes of the iris_data table replayed from a file, classified in process, written to
# SQLite. Ends by showing what landed in the database and what was dead-lettered.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

export SLUICE_OUT="${SLUICE_OUT:-$PWD/out}"
mkdir -p "$SLUICE_OUT"
# A fresh database each time, so the counts below are this run's.
rm -f "$SLUICE_OUT"/iris.db "$SLUICE_OUT"/iris.db-wal "$SLUICE_OUT"/iris.db-shm \
      "$SLUICE_OUT"/iris-demo.dead-letter.jsonl

build/sluice validate pipelines/iris-demo.yaml
build/sluice run pipelines/iris-demo.yaml

echo
echo "== iris_prediction in $SLUICE_OUT/iris.db"
sqlite3 -header -column "$SLUICE_OUT/iris.db" \
  "SELECT count(*) AS rows FROM iris_prediction;
   SELECT iris_class, count(*) AS rows FROM iris_prediction GROUP BY iris_class;
   SELECT * FROM iris_prediction LIMIT 5;"
if [[ -s "$SLUICE_OUT/iris-demo.dead-letter.jsonl" ]]; then
  echo
  echo "== dead letters (node: reason) in $SLUICE_OUT/iris-demo.dead-letter.jsonl"
  python3 -c 'import json,sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    print("  line {}: {}: {}".format(d["position"], d["node"], d["reason"]))' \
    "$SLUICE_OUT/iris-demo.dead-letter.jsonl"
fi
