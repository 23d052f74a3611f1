#!/usr/bin/env bash
# Seed 000's whole iris flow on this machine, with nothing but Sluice and Debian's packages: a
# throwaway PostgreSQL cluster and the development Kafka broker on loopback ports, the seed's
# iris_data table filled with the shipped rows, then
#   pipelines/iris-source.yaml   iris_data rows → topic postgres-source-iris_data (Connect JSON)
#   pipelines/iris.yaml          topic → predict in process → iris_prediction, exactly once
# (or, with MODEL=api, pipelines/iris-api.yaml: the seed's FastAPI model server on loopback).
# Shows the target table, then stops everything it started and removes the temporary cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

work=$(mktemp -d /tmp/sluice-seed-iris.XXXXXX)
pids=()
pg_ctl=/usr/lib/postgresql/15/bin/pg_ctl
as=()
if [[ $(id -u) == 0 ]]; then as=(runuser -u postgres --); chown postgres "$work"; fi
cleanup() {
  # The pipelines first (they drain), then the servers they use.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  "${as[@]}" "$pg_ctl" -D "$work/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== PostgreSQL 15 in $work (loopback)"
port=$(free_port)
"${as[@]}" /usr/lib/postgresql/15/bin/initdb -D "$work/data" -A trust -U sluice -E UTF8 >/dev/null
"${as[@]}" "$pg_ctl" -D "$work/data" -l "$work/server.log" -w \
  -o "-p $port -k $work -c listen_addresses=127.0.0.1" start >/dev/null
export DATABASE_URL="postgresql://sluice@127.0.0.1:$port/postgres"
psql -X -q -d "$DATABASE_URL" -f pipelines/sql/iris_data.sql -c 'TRUNCATE iris_data' \
  -f pipelines/sql/iris_prediction.sql
# The shipped envelopes' payloads as rows of iris_data (the seed's data generator's job).
/usr/bin/python3 - pipelines/data/iris_data.jsonl "$work/rows.csv" <<'PY'
import csv, json, math, sys
from datetime import datetime, timezone
out = csv.writer(open(sys.argv[2], "w", newline=""))
for line in open(sys.argv[1]):
    try:
        p = json.loads(line)["payload"]
        m = [float(p[k]) for k in ("sepal_length", "sepal_width", "petal_length", "petal_width")]
        if not all(math.isfinite(v) for v in m):
            continue
        ts = datetime.fromtimestamp(p["timestamp"] / 1000, timezone.utc)
        out.writerow([int(p["id"]), ts.strftime("%Y-%m-%d %H:%M:%S.%f"), *m, int(p["target"])])
    except (ValueError, KeyError, TypeError):
        continue
PY
psql -X -q -d "$DATABASE_URL" -c "\\copy iris_data FROM '$work/rows.csv' WITH (FORMAT csv)"
rows=$(psql -X -At -d "$DATABASE_URL" -c 'SELECT count(*) FROM iris_data')
echo "   iris_data: $rows rows"

echo "== development Kafka broker (loopback)"
build/sluice dev-kafka -t postgres-source-iris_data:2 --bootstrap-file "$work/bootstrap" \
  2>"$work/broker.log" &
pids+=($!)
for _ in $(seq 1 100); do [[ -s "$work/bootstrap" ]] && break; sleep 0.1; done
export KAFKA_BROKERS=$(cat "$work/bootstrap")
export SLUICE_OUT="$work"

pipeline=pipelines/iris.yaml
if [[ "${MODEL:-}" == api ]]; then
  echo "== the seed's model API (FastAPI + uvicorn, loopback)"
  /usr/bin/python3 tests/integration/model_server.py --model models/iris --port-file "$work/api-port" \
    >"$work/api.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 150); do [[ -s "$work/api-port" ]] && break; sleep 0.1; done
  [[ -s "$work/api-port" ]] || { cat "$work/api.log"; echo "the model server did not start"; exit 1; }
  export MODEL_API_URL="http://127.0.0.1:$(cat "$work/api-port")"
  pipeline=pipelines/iris-api.yaml
fi

echo "== sluice validate --connect: the topic, the tables and the privileges, before running"
build/sluice validate --connect pipelines/iris-source.yaml "$pipeline"

echo "== sluice run pipelines/iris-source.yaml & sluice run $pipeline"
build/sluice run --quiet pipelines/iris-source.yaml &
pids+=($!)
build/sluice run --quiet "$pipeline" &
pids+=($!)
count() { psql -X -At -d "$DATABASE_URL" -c 'SELECT count(*) FROM iris_prediction'; }
for _ in $(seq 1 600); do [[ $(count) -ge $rows ]] && break; sleep 0.1; done

echo
echo "== iris_prediction (the seed's table)"
psql -X -d "$DATABASE_URL" -c 'SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM iris_prediction' \
  -c 'SELECT iris_class, count(*) AS rows FROM iris_prediction GROUP BY 1 ORDER BY 1' \
  -c 'SELECT * FROM iris_prediction ORDER BY id LIMIT 5' \
  -c 'SELECT pipeline, node, topic, partition, next_offset FROM sluice_positions ORDER BY 1, 2, 3, 4'
