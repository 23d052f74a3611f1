#!/usr/bin/python3
"""Generate the iris demo stream as Kafka Connect JSON envelopes.

Each line is what the JDBC source connector emits, through JsonConverter with
schemas enabled, for a row of the Postgres table

  iris_data(id serial, timestamp timestamp, sepal_length float8,
            sepal_width float8, petal_length float8, petal_width float8,
            target int)

The 150 iris rows are replayed --repeat times. Ids count up from 1 and
timestamps (epoch milliseconds, Connect's Timestamp logical type) start at
2026-01-01T00:00:00Z and advance by one second plus a few milliseconds.

--bad N inserts N malformed lines, evenly spaced, cycling through: truncated
JSON, a payload missing petal_width, sepal_length given as a string, and
sepal_width given as the non-standard JSON literal NaN. Bad lines take an id
and a timestamp like any other line, but do not consume an iris row, so the
good lines are always exactly the iris rows in order.

Output is deterministic: the millisecond jitter comes from a seeded RNG.

Usage: make_iris_data.py [--out PATH] [--repeat N] [--bad N]
"""
import argparse
import json
import random
import sys
from datetime import datetime, timezone

from sklearn.datasets import load_iris

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
START_MS = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)

# The schema half of the envelope, as JsonConverter writes it for this table:
# the serial key is NOT NULL, every other column is nullable.
SCHEMA = {
    "type": "struct",
    "fields": [
        {"type": "int32", "optional": False, "field": "id"},
        {
            "type": "int64",
            "optional": True,
            "name": "org.apache.kafka.connect.data.Timestamp",
            "version": 1,
            "field": "timestamp",
        },
        *({"type": "double", "optional": True, "field": f} for f in FEATURES),
        {"type": "int32", "optional": True, "field": "target"},
    ],
    "optional": False,
    "name": "iris_data",
}


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"))


def corrupt(kind, payload):
    """Return a bad line of the given kind, built from an otherwise good payload."""
    if kind == 0:  # cut off mid-object, as a partial write would leave it
        line = dumps({"schema": SCHEMA, "payload": payload})
        return line[: len(line) - 40]
    if kind == 1:
        del payload["petal_width"]
    elif kind == 2:
        payload["sepal_length"] = "abc"
    else:
        payload["sepal_width"] = float("nan")  # json.dumps writes NaN
    return dumps({"schema": SCHEMA, "payload": payload})


def generate(repeat, bad, seed=0):
    rng = random.Random(seed)
    iris = load_iris()
    rows = [(list(map(float, x)), int(y)) for x, y in zip(iris.data, iris.target)]
    total = len(rows) * repeat
    # Bad line k goes just before good line (k+1) * total / (bad+1); the
    # positions are non-decreasing and all fall before the last good line.
    bad_at = [(k + 1) * total // (bad + 1) for k in range(bad)]

    next_id, ts, good, nbad = 1, START_MS, 0, 0
    while good < total:
        features, target = rows[good % len(rows)]
        payload = {"id": next_id, "timestamp": ts, **dict(zip(FEATURES, features)), "target": target}
        if nbad < bad and bad_at[nbad] == good:
            yield corrupt(nbad % 4, payload)
            nbad += 1
        else:
            yield dumps({"schema": SCHEMA, "payload": payload})
            good += 1
        next_id += 1
        ts += 1000 + rng.randint(0, 9)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="output path (default: stdout)")
    ap.add_argument("--repeat", type=int, default=10, help="times to replay the 150 rows")
    ap.add_argument("--bad", type=int, default=0, help="number of bad lines to insert")
    args = ap.parse_args()
    if args.repeat < 1 or args.bad < 0:
        ap.error("--repeat must be >= 1 and --bad >= 0")

    out = open(args.out, "w") if args.out else sys.stdout
    with out:
        for line in generate(args.repeat, args.bad):
            out.write(line)
            out.write("\n")


if __name__ == "__main__":
    main()
