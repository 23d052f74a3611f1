#!/usr/bin/python3
"""Python baseline for the iris benchmark: the same job as the Sluice pipeline.

Usage: iris_baseline.py INPUT_JSONL MODEL_DIR OUTPUT_JSONL [--batch N]

Reads Kafka Connect JSON envelopes, predicts the iris class of each payload
with the XGBoost booster in MODEL_DIR/model.json, and writes one line per good
record: {"timestamp": <as in the input>, "iris_class": <int>}. Lines that are
not valid JSON, lack a field, or hold a non-numeric feature are counted as bad
and skipped.

Work is batched so the per-record cost is JSON decoding and a tuple build; the
model runs once per batch on a float32 matrix with inplace_predict (no DMatrix
copy). Timing covers reading, decoding, predicting and writing; loading the
model is excluded, as it is a one-off start-up cost for both sides.

Prints one JSON line to stdout: {"records", "bad", "seconds", "records_per_s"}.
"""
import argparse
import json
import time
from itertools import islice
from pathlib import Path

import numpy as np
import xgboost

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
NUMBER = (int, float)


def reject_constant(name):
    # Python accepts NaN/Infinity by default; they are not JSON, so count them
    # as bad lines just as a strict parser would.
    raise ValueError(f"non-standard JSON constant {name}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("model_dir")
    ap.add_argument("output")
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()
    if args.batch < 1:
        ap.error("--batch must be >= 1")

    booster = xgboost.Booster(model_file=str(Path(args.model_dir) / "model.json"))
    # One decoder reused for every line; json.loads(..., parse_constant=...)
    # would build a new decoder per call.
    decode = json.JSONDecoder(parse_constant=reject_constant).decode
    dumps = json.dumps

    records = bad = 0
    start = time.perf_counter()
    with open(args.input) as src, open(args.output, "w") as dst:
        while True:
            lines = list(islice(src, args.batch))
            if not lines:
                break
            stamps, rows = [], []
            for line in lines:
                try:
                    p = decode(line)["payload"]
                    row = (p["sepal_length"], p["sepal_width"], p["petal_length"], p["petal_width"])
                    # bool is an int subclass, so test exact types.
                    for v in row:
                        if type(v) not in NUMBER:
                            raise TypeError("feature is not a number")
                    ts = p["timestamp"]
                    # Connect sends epoch millis; only other forms need encoding.
                    stamps.append(ts if type(ts) is int else dumps(ts))
                    rows.append(row)
                except (ValueError, KeyError, TypeError):
                    bad += 1
            if not rows:
                continue
            probs = booster.inplace_predict(np.array(rows, dtype=np.float32))
            classes = probs.reshape(len(rows), -1).argmax(axis=1).tolist()
            dst.write("".join(
                f'{{"timestamp":{t},"iris_class":{c}}}\n' for t, c in zip(stamps, classes)
            ))
            records += len(rows)
    seconds = time.perf_counter() - start

    print(json.dumps({
        "records": records,
        "bad": bad,
        "seconds": round(seconds, 6),
        "records_per_s": round(records / seconds, 1) if seconds > 0 else None,
    }))


if __name__ == "__main__":
    main()
