#!/usr/bin/python3
"""Reference predictions from XGBoost itself, for Sluice parity tests.

Usage:
  predict_reference.py MODEL_DIR INPUT_CSV
      Print one JSON object per CSV row:
      {"label": <argmax>, "probabilities": [p0, p1, p2]}
  predict_reference.py --dump-iris-csv PATH
      Write the 150 iris rows as a CSV, so a test can feed identical rows to
      Sluice and to this script.
  predict_reference.py --ride MODEL_DIR INPUT_JSONL
      Score the ride model on rows {"PU_DO": "130_205", "trip_distance": 3.66}
      (ride_data.py --features) and print one JSON object per row:
      {"value": <minutes>, "encoded": <PU_DO is one of the training categories>}
  predict_reference.py --fraud MODEL_DIR FILE
      Score the fraud model on raw card transactions (fraud_data.py's output: messages in
      pandas' split orientation, one per line, or CSV with a header line), computing the
      features as the pipeline's map does (fraud_data.features, docs/models.md), and print one
      JSON object per transaction, in order:
      {"index": <the message's index, or the CSV row number from 0>, "probability": <of fraud>,
       "features": {"amt": 16.18, "category": "home", "hour": 15, "age": 59.95...,
       "distance_km": 49.1..., "city_pop": 5438, "gender_f": 1}}

The CSV header is sepal_length,sepal_width,petal_length,petal_width.

The ride model is scored the way its trainer fed it: PU_DO as a pandas
categorical with the training categories saved beside the model (so a value
outside them is NaN, a missing value for XGBoost), through a DMatrix with
enable_categorical.
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


def predict_ride(model_dir, path):
    import pandas as pd
    import yaml

    model_dir = Path(model_dir)
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    categories = json.loads((model_dir / mlmodel["metadata"]["categories"]).read_text())["PU_DO"]
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if not rows:
        return
    frame = pd.DataFrame({
        "PU_DO": pd.Categorical([r["PU_DO"] for r in rows], categories=categories),
        "trip_distance": np.array([float(r["trip_distance"]) for r in rows], dtype=np.float64),
    })
    booster = xgboost.Booster(model_file=str(model_dir / "model.json"))
    values = booster.predict(xgboost.DMatrix(frame, enable_categorical=True))
    encoded = frame["PU_DO"].cat.codes.to_numpy() >= 0
    out = sys.stdout
    for v, e in zip(values, encoded):
        out.write(json.dumps({"value": float(v), "encoded": bool(e)}))
        out.write("\n")


def read_transactions(path):
    """Raw transactions from fraud_data.py's messages or CSV: (indices, dict of columns)."""
    import pandas as pd

    with open(path) as f:
        first = f.read(1)
    if first == "{":
        indices, rows, names = [], [], None
        with open(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                msg = json.loads(line)
                if names is None:
                    names = msg["columns"]
                elif msg["columns"] != names:
                    sys.exit(f"{path}:{n}: the columns differ from the first message's")
                indices.extend(msg["index"])
                rows.extend(msg["data"])
        if names is None:
            return [], {}
        return indices, {c: [r[j] for r in rows] for j, c in enumerate(names)}
    if not first:
        return [], {}
    # Strings stay strings: dates and card numbers must not be reinterpreted.
    frame = pd.read_csv(path, dtype={"trans_date_trans_time": str, "dob": str, "gender": str,
                                     "category": str})
    return list(range(len(frame))), {c: frame[c].tolist() for c in frame.columns}


def predict_fraud(model_dir, path):
    import pandas as pd
    import yaml

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fraud_data

    model_dir = Path(model_dir)
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    categories = json.loads(
        (model_dir / mlmodel["metadata"]["categories"]).read_text())["category"]
    names = [c["name"] for c in json.loads(mlmodel["signature"]["inputs"])]
    indices, cols = read_transactions(path)
    if not indices:
        return
    feats = fraud_data.features(cols)
    frame = pd.DataFrame({
        name: pd.Categorical(feats[name], categories=categories) if name == "category"
        else feats[name]
        for name in names})
    booster = xgboost.Booster(model_file=str(model_dir / "model.json"))
    probs = booster.predict(xgboost.DMatrix(frame, enable_categorical=True))
    out = sys.stdout
    for i, (index, p) in enumerate(zip(indices, probs)):
        row = {name: feats[name][i].item() if hasattr(feats[name][i], "item") else feats[name][i]
               for name in names}
        out.write(json.dumps({"index": index, "probability": float(p), "features": row}))
        out.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir", nargs="?")
    ap.add_argument("input_csv", nargs="?")
    ap.add_argument("--dump-iris-csv", metavar="PATH")
    ap.add_argument("--ride", action="store_true", help="score the ride model on JSONL rows")
    ap.add_argument("--fraud", action="store_true",
                    help="score the fraud model on raw transactions")
    args = ap.parse_args()

    if args.dump_iris_csv:
        dump_iris_csv(args.dump_iris_csv)
        return
    if args.ride:
        if not (args.model_dir and args.input_csv):
            ap.error("--ride needs MODEL_DIR and INPUT_JSONL")
        predict_ride(args.model_dir, args.input_csv)
        return
    if args.fraud:
        if not (args.model_dir and args.input_csv):
            ap.error("--fraud needs MODEL_DIR and FILE")
        predict_fraud(args.model_dir, args.input_csv)
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
