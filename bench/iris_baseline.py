#!/usr/bin/python3
"""Python baseline for the iris benchmark: the same job as pipelines/iris-bench.yaml.

Usage: iris_baseline.py INPUT_JSONL MODEL_DIR OUTPUT_JSONL [--batch N] [--dead-letter PATH]

The job, step for step as the Sluice pipeline does it:

  1. read Kafka Connect JSON envelopes (one per line) and decode each payload against the
     iris_data schema: id, timestamp, the four features and target are all required and not
     null; id and target are integers, the features numbers, the timestamp epoch
     milliseconds (Connect's Timestamp type) or an ISO-8601 string;
  2. drop id and target;
  3. predict the class with the XGBoost booster in MODEL_DIR/model.json (argmax of the
     class probabilities, ties to the lowest class, as Sluice's `label` output);
  4. write one JSON line per good record, byte for byte what Sluice's file sink writes:
     {"timestamp":"2026-01-01T00:00:01.006000Z","iris_class":0}
     (UTC, microseconds, no fraction when it is zero), and fsync the file at the end, as
     Sluice's file sink does when the pipeline drains.

A line that is not valid JSON (NaN and Infinity included: they are not JSON), lacks a field
or holds a value of the wrong type is a dead letter: counted, skipped, and written with its
line number and reason to --dead-letter PATH if given. Blank lines are skipped and not
counted, as Sluice's file source does.

It is written to be a fair, fast Python: work is batched (--batch lines at a time, default
1024), so the per-record cost is the JSON decode, a few type checks and a tuple; the model
runs once per batch on a float32 matrix with inplace_predict (no DMatrix copy, one
thread: faster than OpenMP at this batch size), and timestamps are formatted for the whole batch with numpy.

Prints one JSON line to stdout, with the field names of Sluice's final log line:
{"records_read", "rows_written", "dead_letters", "seconds", "records_per_s"}, where seconds
covers reading, decoding, predicting and writing (not the imports nor loading the model).
"""
import argparse
import json
import os
import time
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path

import numpy as np
import xgboost

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def reject_constant(name):
    # Python accepts NaN/Infinity by default; they are not JSON, so count them
    # as bad lines just as a strict parser (simdjson, in Sluice) does.
    raise ValueError(f"non-standard constant {name}")


class Bad(Exception):
    pass


def iso_micros(text):
    """Epoch microseconds of an ISO-8601 timestamp string (the rare, slow path)."""
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise Bad(f"field 'timestamp': not an ISO-8601 timestamp: {text!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    d = t - EPOCH
    return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds


def format_timestamps(micros):
    """ISO-8601 UTC strings as Sluice writes them: microseconds, no fraction when zero."""
    t = np.array(micros, dtype="datetime64[us]")
    with_fraction = np.datetime_as_string(t, unit="us", timezone="UTC")
    whole = np.array(micros, dtype=np.int64) % 1_000_000 == 0
    if whole.any():
        with_fraction[whole] = np.datetime_as_string(t[whole], unit="s", timezone="UTC")
    return with_fraction.tolist()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("model_dir")
    ap.add_argument("output")
    ap.add_argument("--batch", type=int, default=1024, help="lines per batch (default 1024)")
    ap.add_argument("--dead-letter", help="write bad lines here as JSON lines")
    args = ap.parse_args()
    if args.batch < 1:
        ap.error("--batch must be >= 1")

    booster = xgboost.Booster(model_file=str(Path(args.model_dir) / "model.json"))
    # One thread, as Sluice's predict runs its boosters: on a batch of ~1000 rows,
    # OpenMP's fork/join costs more than it saves (on the 2-core bench machine a
    # 1024-row batch took ~0.5-0.8 ms with nthread=1, 2-3x that with 2 threads or the
    # default, and far worse when other processes compete for the cores).
    booster.set_param({"nthread": 1})
    # One decoder reused for every line; json.loads(..., parse_constant=...)
    # would build a new decoder per call.
    decode = json.JSONDecoder(parse_constant=reject_constant).decode
    dead = []  # (line number, reason, line)

    lines_read = written = blank = 0
    start = time.perf_counter()
    with open(args.input, encoding="utf-8") as src, open(args.output, "w", encoding="utf-8") as dst:
        while True:
            lines = list(islice(src, args.batch))
            if not lines:
                break
            micros, rows = [], []
            for n, line in enumerate(lines, lines_read + 1):
                try:
                    try:
                        p = decode(line)["payload"]
                    except ValueError as e:
                        if line.isspace():  # blank lines are skipped, as Sluice does
                            blank += 1
                            continue
                        raise Bad(f"malformed JSON: {e}") from None
                    except (KeyError, TypeError):
                        raise Bad("connect-json: no 'payload' in the envelope") from None
                    if type(p) is not dict:
                        raise Bad("connect-json: 'payload' is not an object")
                    # Decode against the schema: every field present, typed, not null.
                    # bool is an int subclass, so test exact types.
                    row = (p["sepal_length"], p["sepal_width"], p["petal_length"], p["petal_width"])
                    for v in row:
                        if type(v) is not float and type(v) is not int:
                            raise Bad(f"feature {v!r} is not a number")
                    for k in ("id", "target"):
                        v = p[k]
                        # Like Sluice, take 3.0 as the integer 3.
                        if type(v) is not int and not (type(v) is float and v.is_integer()):
                            raise Bad(f"field '{k}': expected an integer, found {v!r}")
                    ts = p["timestamp"]
                    if type(ts) is int:
                        micros.append(ts * 1000)
                    elif type(ts) is str:
                        micros.append(iso_micros(ts))
                    else:
                        raise Bad(f"field 'timestamp': expected a timestamp, found {ts!r}")
                    # Dropping id and target: only the timestamp and the features go on.
                    rows.append(row)
                except KeyError as e:
                    dead.append((n, f"missing field {e}", line))
                except (Bad, TypeError) as e:
                    dead.append((n, str(e), line))
            lines_read += len(lines)
            if not rows:
                continue
            probs = booster.inplace_predict(np.array(rows, dtype=np.float32))
            probs = probs.reshape(len(rows), -1)
            if probs.shape[1] == 1:  # binary model: probability of class 1
                classes = (probs[:, 0] > 0.5).astype(np.int64).tolist()
            else:
                classes = probs.argmax(axis=1).tolist()
            dst.write("".join([
                f'{{"timestamp":"{t}","iris_class":{c}}}\n'
                for t, c in zip(format_timestamps(micros), classes)
            ]))
            written += len(rows)
        # Durable on return, as Sluice's file sink is when the pipeline drains.
        dst.flush()
        os.fsync(dst.fileno())
    seconds = time.perf_counter() - start
    records = lines_read - blank

    if args.dead_letter:
        with open(args.dead_letter, "w", encoding="utf-8") as f:
            for n, reason, line in dead:
                f.write(json.dumps({"line": n, "reason": reason, "input": line.rstrip("\n")}) + "\n")

    print(json.dumps({
        "records_read": records,
        "rows_written": written,
        "dead_letters": len(dead),
        "seconds": round(seconds, 6),
        "records_per_s": round(records / seconds, 1) if seconds > 0 else None,
    }))


if __name__ == "__main__":
    main()
