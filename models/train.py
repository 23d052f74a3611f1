#!/usr/bin/python3
"""Train the iris classifier and write it as an MLflow-layout model directory.

Usage: train.py [MODEL_DIR]   (default: models/iris next to this script)

The directory holds the XGBoost booster as model.json and an MLmodel file in
the format MLflow writes, so Sluice can load the same artifact an MLflow
registry would hand it. The mlflow package is not needed: MLmodel is plain
YAML and is written directly here.

Everything written is deterministic (fixed seed, fixed creation time, uuid
derived from the model bytes), so re-running produces identical files and the
checked-in model only changes when training actually changes.
"""
import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np
import xgboost
from sklearn.datasets import load_iris

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
# Fixed so the MLmodel file does not change between runs.
CREATED = "2026-01-01 00:00:00.000000"
# The MLmodel format version this file follows.
MLFLOW_VERSION = "2.9.2"


def signature_json(specs):
    # MLflow stores the signature as JSON text embedded in the YAML, using
    # json.dumps' default separators.
    return json.dumps(specs)


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "iris"
    out.mkdir(parents=True, exist_ok=True)

    iris = load_iris()
    # Train on float32, the precision both XGBoost and Sluice predict with.
    x = iris.data.astype(np.float32)
    clf = xgboost.XGBClassifier(
        objective="multi:softprob", n_estimators=50, max_depth=3, random_state=0
    )
    clf.fit(x, iris.target)
    booster = clf.get_booster()
    booster.feature_names = FEATURES
    booster.feature_types = ["float"] * len(FEATURES)

    model_path = out / "model.json"
    booster.save_model(str(model_path))
    uuid = hashlib.md5(model_path.read_bytes()).hexdigest()

    inputs = signature_json(
        [{"type": "double", "name": f, "required": True} for f in FEATURES]
    )
    outputs = signature_json([{"type": "long", "required": True}])
    classes = ", ".join(iris.target_names)

    # Keys are in the sorted order MLflow's yaml.safe_dump produces. The JSON
    # signature strings contain no single quotes, so single-quoting is safe.
    mlmodel = f"""\
artifact_path: model
flavors:
  python_function:
    data: model.json
    loader_module: mlflow.xgboost
    python_version: {platform.python_version()}
  xgboost:
    code: null
    data: model.json
    model_class: xgboost.sklearn.XGBClassifier
    model_format: json
    xgb_version: {xgboost.__version__}
metadata:
  name: iris
  version: '1'
  classes: [{classes}]
mlflow_version: {MLFLOW_VERSION}
model_uuid: {uuid}
signature:
  inputs: '{inputs}'
  outputs: '{outputs}'
utc_time_created: '{CREATED}'
"""
    (out / "MLmodel").write_text(mlmodel)

    accuracy = float((clf.predict(x) == iris.target).mean())
    print(f"wrote {out} (training accuracy {accuracy:.4f})")


if __name__ == "__main__":
    main()
