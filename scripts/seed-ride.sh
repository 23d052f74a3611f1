#!/usr/bin/env bash
# The ride-duration flow of seeds 001 and 003 on this machine, with nothing but Sluice and
# Debian's packages: the development Kafka broker on loopback, N generated ride events
# (models/ride_data.py) on topic ride-events, then
#   pipelines/ride.yaml   ride-events → PU_DO → predict (models/ride) → ride-predictions,
#                         keyed by ride_id, in the seed's message shape
# Shows a few predictions with their keys, then stops everything it started.
# With PUSH=1, the events arrive as Pub/Sub push deliveries over HTTP instead
# (pipelines/ride-pubsub.yaml), posted with curl.
# Usage: scripts/seed-ride.sh [N]     (default 10000 events)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

events=${1:-10000}
work=$(mktemp -d /tmp/sluice-seed-ride.XXXXXX)
pids=()
cleanup() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

echo "== development Kafka broker (loopback)"
build/sluice dev-kafka -t ride-events:4 -t ride-predictions:4 --bootstrap-file "$work/bootstrap" \
  2>"$work/broker.log" &
pids+=($!)
for _ in $(seq 1 100); do [[ -s "$work/bootstrap" ]] && break; sleep 0.1; done
export KAFKA_BROKERS=$(cat "$work/bootstrap")
export SLUICE_OUT="$work"

/usr/bin/python3 models/ride_data.py --events "$events" --seed 1 > "$work/events.jsonl"
if [[ "${PUSH:-}" == 1 ]]; then
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  export RIDE_PUSH_ADDRESS="127.0.0.1:$port"
  build/sluice validate --connect pipelines/ride-pubsub.yaml
  echo "== sluice run pipelines/ride-pubsub.yaml (push endpoint http://$RIDE_PUSH_ADDRESS/)"
  build/sluice run --quiet pipelines/ride-pubsub.yaml &
  pids+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://$RIDE_PUSH_ADDRESS/" && break; sleep 0.1; done
  echo "== posting $events Pub/Sub push deliveries with curl (8 at a time)"
  /usr/bin/python3 - "$work/events.jsonl" "$work/push" <<'PY'
import base64, json, os, sys
os.makedirs(sys.argv[2], exist_ok=True)
for i, line in enumerate(open(sys.argv[1])):
    body = {"message": {"data": base64.b64encode(line.strip().encode()).decode(),
                        "messageId": str(i)}, "subscription": "projects/demo/subscriptions/rides"}
    with open(os.path.join(sys.argv[2], f"{i}.json"), "w") as f:
        json.dump(body, f)
PY
  ls "$work/push" | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' \
    -H 'Content-Type: application/json' --data-binary "@$work/push/{}" "http://$RIDE_PUSH_ADDRESS/" \
    | sort | uniq -c | sed 's/^/   HTTP /'
else
  kcat -P -b "$KAFKA_BROKERS" -t ride-events -X linger.ms=20 < "$work/events.jsonl"
  echo "== sluice validate --connect pipelines/ride.yaml: both topics, before running"
  build/sluice validate --connect pipelines/ride.yaml
  echo "== sluice run pipelines/ride.yaml ($events events on ride-events)"
  build/sluice run --quiet pipelines/ride.yaml &
  pids+=($!)
fi

n=0
for _ in $(seq 1 240); do
  n=$(timeout 20 kcat -C -b "$KAFKA_BROKERS" -t ride-predictions -e -o beginning -q | wc -l)
  [[ $n -ge $events ]] && break
  sleep 0.5
done
echo "== ride-predictions: $n messages (key | value), the first five:"
timeout 20 kcat -C -b "$KAFKA_BROKERS" -t ride-predictions -e -o beginning -q -c 5 -f '%k | %s\n' 2>/dev/null
