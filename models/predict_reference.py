#!/usr/bin/python3
"""Reference predictions from XGBoost itself, for Sluice parity tests.

Usage:
  predict_reference.py MODEL_DIR INPUT_CSV
      Print one JSON object per CSV row:
      {"label": <argmax>, "probabilities": [p0, p1, p2]}
  predict_reference.py --dump-iris-csv PATH
      Write the 150 iris rows as a CSV, so a test can feed identical rows to
      Sluice and to this script.

The CSV header is sepal_length,sepal_width,petal_length,petal_width.
"""
import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import xgboost

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def dump_iris_csv(path):
    from sklearn.datasets import load_iris

    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(FEATURES)
        # repr gives the shortest text that round-trips, e.g. 5.1 not 5.0999...
        for row in load_iris().data:
            w.writerow([repr(float(v)) for v in row])


def read_features(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != FEATURES:
            sys.exit(f"{path}: header must be {','.join(FEATURES)}")
        # Parse as double, then narrow to float32: the same path as reading a
        # JSON number into a double and handing the model a float.
        rows = [[float(r[name]) for name in FEATURES] for r in reader]
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(FEATURES)).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir", nargs="?")
    ap.add_argument("input_csv", nargs="?")
    ap.add_argument("--dump-iris-csv", metavar="PATH")
    args = ap.parse_args()

    if args.dump_iris_csv:
        dump_iris_csv(args.dump_iris_csv)
        return
    if not (args.model_dir and args.input_csv):
        ap.error("MODEL_DIR and INPUT_CSV are required")

    booster = xgboost.Booster(model_file=str(Path(args.model_dir) / "model.json"))
    x = read_features(args.input_csv)
    if len(x) == 0:
        return
    probs = booster.inplace_predict(x).reshape(len(x), -1)
    labels = probs.argmax(axis=1)
    out = sys.stdout
    for label, p in zip(labels, probs):
        # float(np.float32) is exact, so repr keeps every bit of the float32.
        out.write(json.dumps({"label": int(label), "probabilities": [float(v) for v in p]}))
        out.write("\n")


if __name__ == "__main__":
    main()
