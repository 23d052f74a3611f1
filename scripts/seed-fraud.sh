#!/usr/bin/env bash
# Seed 004's fraud-detection flow on this machine, with nothing but Sluice and Debian's packages:
# a throwaway PostgreSQL cluster, the development Kafka broker and a local webhook receiver (a
# stand-in for Slack) on loopback ports, N generated card transactions (models/fraud_data.py) on
# topic_1 as the seed's producer writes them, then
#   pipelines/fraud.yaml          topic_1 → features → models:/fraud@champion → topic_2,
#                                 predicted frauds posted to the webhook
#   pipelines/fraud-logger.yaml   topic_2 → fraud_transactions, upserted by trans_num
# Halfway, version 2 of the model is published and the champion alias moved to it, in a copy of
# the registry: the table's model_version column shows the switch without a record lost.
# Shows the table's counts, the alerts, then stops everything it started.
# Usage: scripts/seed-fraud.sh [N]     (default 20000 transactions)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

total=${1:-20000}
half=$((total / 2))
work=$(mktemp -d /tmp/sluice-seed-fraud.XXXXXX)
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
psql -X -q -d "$DATABASE_URL" -f pipelines/sql/fraud_transactions.sql

echo "== webhook receiver (loopback; records each alert)"
/usr/bin/python3 tests/integration/webhook_receiver.py --port-file "$work/hook-port" \
  --log "$work/alerts.jsonl" 2>"$work/hook.log" &
pids+=($!)
for _ in $(seq 1 100); do [[ -s "$work/hook-port" ]] && break; sleep 0.1; done
export FRAUD_WEBHOOK_URL="http://127.0.0.1:$(cat "$work/hook-port")/services/demo"
export FRAUD_ALERTS_PER_S=20

echo "== development Kafka broker (loopback)"
build/sluice dev-kafka -t topic_1:4 -t topic_2:4 --bootstrap-file "$work/bootstrap" \
  2>"$work/broker.log" &
pids+=($!)
for _ in $(seq 1 100); do [[ -s "$work/bootstrap" ]] && break; sleep 0.1; done
export KAFKA_BROKERS=$(cat "$work/bootstrap")
export SLUICE_OUT="$work"

# A registry of the demo's own, so publishing a version leaves models/registry as shipped.
registry="$work/registry"
mkdir -p "$registry/fraud/aliases"
cp -rL models/registry/fraud/1 "$registry/fraud/1"
echo 1 > "$registry/fraud/aliases/champion"
export SLUICE_MODEL_REGISTRY="$registry" FRAUD_RELOAD_INTERVAL_MS=500

/usr/bin/python3 models/fraud_data.py --rows "$half" --seed 1 -o "$work/first.jsonl"
/usr/bin/python3 models/fraud_data.py --rows $((total - half)) --seed 2 --start-index "$half" \
  -o "$work/second.jsonl"
count() { psql -X -At -d "$DATABASE_URL" -c 'SELECT count(*) FROM fraud_transactions'; }
wait_rows() { for _ in $(seq 1 1200); do [[ $(count) -ge $1 ]] && break; sleep 0.1; done; }

echo "== sluice validate --connect: the topics and the table, before running"
build/sluice validate --connect pipelines/fraud.yaml pipelines/fraud-logger.yaml

echo "== sluice run pipelines/fraud.yaml & sluice run pipelines/fraud-logger.yaml"
build/sluice run --quiet pipelines/fraud.yaml 2>"$work/fraud.log" &
pids+=($!)
build/sluice run --quiet pipelines/fraud-logger.yaml &
pids+=($!)
kcat -P -b "$KAFKA_BROKERS" -t topic_1 -X linger.ms=20 < "$work/first.jsonl"
wait_rows "$half"

echo "== publishing fraud version 2 and moving the champion alias to it"
cp -r "$registry/fraud/1" "$registry/fraud/.2" && mv "$registry/fraud/.2" "$registry/fraud/2"
echo 2 > "$registry/fraud/aliases/.champion" && mv "$registry/fraud/aliases/.champion" "$registry/fraud/aliases/champion"
for _ in $(seq 1 100); do grep -q "is now version 2" "$work/fraud.log" && break; sleep 0.1; done
grep "is now version" "$work/fraud.log" | sed 's/^/   /'
kcat -P -b "$KAFKA_BROKERS" -t topic_1 -X linger.ms=20 < "$work/second.jsonl"
wait_rows "$total"
sleep 1  # the last alerts

echo
echo "== fraud_transactions (seed 004's log)"
psql -X -d "$DATABASE_URL" \
  -c 'SELECT count(*) AS rows, count(DISTINCT trans_num) AS transactions FROM fraud_transactions' \
  -c 'SELECT model_version, is_fraud, count(*) AS rows FROM fraud_transactions GROUP BY 1, 2 ORDER BY 1, 2' \
  -c "SELECT trans_num, amt, category, round(fraud_probability::numeric, 3) AS p, model_version,
             fraud_confirmed FROM fraud_transactions WHERE is_fraud = 1 ORDER BY amt DESC LIMIT 5"
echo "== alerts posted to the webhook: $(wc -l < "$work/alerts.jsonl"), the first three:"
/usr/bin/python3 -c '
import json, sys
for line in list(open(sys.argv[1]))[:3]:
    print("   " + json.loads(json.loads(line)["body"])["text"])' "$work/alerts.jsonl"
