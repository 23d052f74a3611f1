#!/usr/bin/python3
"""Train Sluice's example models and write them as MLflow-layout model directories.

Usage:
  train.py [MODEL_DIR]          the iris classifier (default: models/iris next to this script)
  train.py iris [MODEL_DIR]     the same
  train.py ride [MODEL_DIR]     the ride-duration regressor (default: models/ride)
  train.py fraud [MODEL_DIR]    the card-fraud classifier (default: models/fraud)
  train.py all                  all three, into their default directories

Each directory holds the XGBoost booster as model.json and an MLmodel file in
the format MLflow writes, so Sluice can load the same artifact an MLflow
registry would hand it. The mlflow package is not needed: MLmodel is plain
YAML and is written directly here. The ride and fraud models have a
categorical input (PU_DO, category); its training categories, in code order,
are written beside the model as categories.json and named by the MLmodel's
metadata (see docs/models.md).

Everything written is deterministic (fixed seed, fixed creation time, uuid
derived from the model bytes), so re-running produces identical files and the
checked-in model only changes when training actually changes.
"""
import hashlib
import json
import platform
import sys
from collections import Counter
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


def write_mlmodel(out, model_class, metadata, uuid, inputs, outputs):
    """Writes the MLmodel file; `metadata` is the YAML of the metadata keys, indented."""
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
    model_class: {model_class}
    model_format: json
    xgb_version: {xgboost.__version__}
metadata:
{metadata}mlflow_version: {MLFLOW_VERSION}
model_uuid: {uuid}
signature:
  inputs: '{inputs}'
  outputs: '{outputs}'
utc_time_created: '{CREATED}'
"""
    (out / "MLmodel").write_text(mlmodel)


def train_iris(out):
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

    write_mlmodel(out, "xgboost.sklearn.XGBClassifier",
                  f"  name: iris\n  version: '1'\n  classes: [{classes}]\n", uuid, inputs, outputs)

    accuracy = float((clf.predict(x) == iris.target).mean())
    print(f"wrote {out} (training accuracy {accuracy:.4f})")


RIDE_INPUTS = ["PU_DO", "trip_distance"]
RIDE_TRAIN_ROWS = 200_000
RIDE_TRAIN_SEED = 1
RIDE_HELD_OUT_ROWS = 20_000
RIDE_HELD_OUT_SEED = 2
# A zone pair is a category of its own only with this many training rides; rarer pairs are
# left out of the categories, so the model sees them as missing, as it sees unseen pairs at
# prediction time. XGBoost 1.7 stores each categorical split as a set of category codes, so
# the number of categories drives the model's size (about 1,000 keep it under 2 MB).
RIDE_MIN_PAIR_RIDES = 30


def ride_frame(pu_do, distance, categories):
    import pandas as pd

    # Categories fixed to the training ones: a value outside them becomes NaN (code -1), which
    # XGBoost treats as missing. Sluice applies the same encoding from categories.json.
    return pd.DataFrame({
        "PU_DO": pd.Categorical(pu_do, categories=categories),
        "trip_distance": distance,
    })


def train_ride(out):
    import ride_data

    out.mkdir(parents=True, exist_ok=True)
    train = ride_data.generate(RIDE_TRAIN_ROWS, RIDE_TRAIN_SEED)
    keys = ride_data.pu_do(train["pu"], train["do"])
    counts = Counter(keys)
    categories = sorted(k for k, c in counts.items() if c >= RIDE_MIN_PAIR_RIDES)
    reg = xgboost.XGBRegressor(
        objective="reg:squarederror",
        tree_method="hist",
        enable_categorical=True,
        n_estimators=40,
        max_depth=5,
        learning_rate=0.2,
        random_state=0,
        n_jobs=2,
    )
    reg.fit(ride_frame(keys, train["distance"], categories), train["duration"])
    booster = reg.get_booster()
    booster.feature_names = RIDE_INPUTS
    booster.feature_types = ["c", "q"]

    model_path = out / "model.json"
    booster.save_model(str(model_path))
    categories_path = out / "categories.json"
    categories_path.write_text(json.dumps({"PU_DO": categories}, indent=0) + "\n")
    uuid = hashlib.md5(model_path.read_bytes() + categories_path.read_bytes()).hexdigest()

    inputs = signature_json([
        {"type": "string", "name": "PU_DO", "required": True},
        {"type": "double", "name": "trip_distance", "required": True},
    ])
    outputs = signature_json([{"type": "double", "required": True}])
    write_mlmodel(out, "xgboost.sklearn.XGBRegressor",
                  "  name: ride_duration_prediction_model\n  version: '1'\n"
                  "  categories: categories.json\n", uuid, inputs, outputs)

    held = ride_data.generate(RIDE_HELD_OUT_ROWS, RIDE_HELD_OUT_SEED)
    held_keys = ride_data.pu_do(held["pu"], held["do"])
    pred = reg.predict(ride_frame(held_keys, held["distance"], categories))
    err = pred - held["duration"]
    floor = held["expected"] - held["duration"]
    # The same trees on distance alone: what the zone pair adds.
    base = xgboost.XGBRegressor(**{**reg.get_params(), "enable_categorical": False})
    base.fit(train["distance"].reshape(-1, 1), train["duration"])
    base_err = base.predict(held["distance"].reshape(-1, 1)) - held["duration"]
    known = sum(k in counts for k in held_keys) / len(held_keys)
    in_categories = sum(1 for k in held_keys if counts.get(k, 0) >= RIDE_MIN_PAIR_RIDES)
    print(f"wrote {out}: {len(categories)} PU_DO categories from {len(counts)} zone pairs; "
          f"held-out ({len(held_keys)} rides, seed {RIDE_HELD_OUT_SEED}): "
          f"RMSE {np.sqrt(np.mean(err ** 2)):.3f} min, MAE {np.mean(np.abs(err)):.3f} min "
          f"(distance alone: RMSE {np.sqrt(np.mean(base_err ** 2)):.3f}, MAE "
          f"{np.mean(np.abs(base_err)):.3f}; noise floor: RMSE {np.sqrt(np.mean(floor ** 2)):.3f}, MAE "
          f"{np.mean(np.abs(floor)):.3f}); pairs in the categories "
          f"{in_categories / len(held_keys):.1%}, seen in training {known:.1%}")


# About 1,000 frauds to learn from; more rows add little and training must stay well under a
# minute on 2 cores.
FRAUD_TRAIN_ROWS = 200_000
FRAUD_TRAIN_SEED = 1
FRAUD_HELD_OUT_ROWS = 200_000
FRAUD_HELD_OUT_SEED = 2
# MLflow types of the features, in the model's input order (fraud_data.FEATURES).
FRAUD_SIGNATURE = {"amt": "double", "category": "string", "hour": "long", "age": "double",
                   "distance_km": "double", "city_pop": "long", "gender_f": "long"}
FRAUD_THRESHOLD = 0.5


def fraud_frame(feats, categories):
    import pandas as pd

    # As for the ride model: categories fixed to the training ones, an unknown one is missing.
    return pd.DataFrame({
        name: pd.Categorical(feats[name], categories=categories) if name == "category"
        else feats[name]
        for name in FRAUD_SIGNATURE})


def fraud_features(n, seed):
    import fraud_data

    t = fraud_data.generate(n, seed)
    return fraud_data.features(fraud_data.columns(t)), t["is_fraud"]


def train_fraud(out):
    import fraud_data
    from sklearn.metrics import average_precision_score, precision_score, recall_score, \
        roc_auc_score

    assert list(FRAUD_SIGNATURE) == fraud_data.FEATURES
    out.mkdir(parents=True, exist_ok=True)
    feats, y = fraud_features(FRAUD_TRAIN_ROWS, FRAUD_TRAIN_SEED)
    categories = list(fraud_data.CATEGORY_NAMES)
    positives = int(y.sum())
    clf = xgboost.XGBClassifier(
        objective="binary:logistic",
        tree_method="hist",
        enable_categorical=True,
        n_estimators=100,
        max_depth=4,
        learning_rate=0.15,
        # The classes are ~199:1. Frauds weigh the square root of that: on the held-out rows,
        # unweighted training flags too few at 0.5 (recall 0.78) and the full ratio far too many
        # (precision 0.25); PR-AUC barely moves (0.89-0.90), so only the threshold's meaning
        # changes, and this keeps 0.5 a usable alert threshold (precision ~0.65, recall ~0.89).
        scale_pos_weight=float(np.sqrt((len(y) - positives) / positives)),
        random_state=0,
        n_jobs=2,
    )
    clf.fit(fraud_frame(feats, categories), y)
    booster = clf.get_booster()
    booster.feature_names = list(FRAUD_SIGNATURE)
    booster.feature_types = ["c" if t == "string" else "q" for t in FRAUD_SIGNATURE.values()]

    model_path = out / "model.json"
    booster.save_model(str(model_path))
    categories_path = out / "categories.json"
    categories_path.write_text(json.dumps({"category": categories}, indent=0) + "\n")
    uuid = hashlib.md5(model_path.read_bytes() + categories_path.read_bytes()).hexdigest()

    inputs = signature_json([{"type": t, "name": name, "required": True}
                             for name, t in FRAUD_SIGNATURE.items()])
    outputs = signature_json([{"type": "double", "required": True}])
    write_mlmodel(out, "xgboost.sklearn.XGBClassifier",
                  "  name: fraud\n  version: '1'\n  classes: [legit, fraud]\n"
                  "  categories: categories.json\n", uuid, inputs, outputs)

    held, held_y = fraud_features(FRAUD_HELD_OUT_ROWS, FRAUD_HELD_OUT_SEED)
    p = clf.predict_proba(fraud_frame(held, categories))[:, 1]
    flagged = (p > FRAUD_THRESHOLD).astype(int)
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"wrote {out} ({size / 1e6:.2f} MB): trained on {len(y)} transactions "
          f"({positives} frauds, seed {FRAUD_TRAIN_SEED}); held-out ({len(held_y)} transactions, "
          f"{int(held_y.sum())} frauds, seed {FRAUD_HELD_OUT_SEED}): "
          f"PR-AUC {average_precision_score(held_y, p):.4f}, "
          f"ROC-AUC {roc_auc_score(held_y, p):.4f}, at {FRAUD_THRESHOLD}: "
          f"precision {precision_score(held_y, flagged):.4f}, "
          f"recall {recall_score(held_y, flagged):.4f} ({int(flagged.sum())} flagged)")


def main():
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    args = sys.argv[1:]
    which = args.pop(0) if args and args[0] in ("iris", "ride", "fraud", "all") else "iris"
    if which == "all":
        if args:
            sys.exit("train.py all writes the default directories and takes no MODEL_DIR")
        train_iris(here / "iris")
        train_ride(here / "ride")
        train_fraud(here / "fraud")
        return
    out = Path(args[0]) if args else here / which
    {"iris": train_iris, "ride": train_ride, "fraud": train_fraud}[which](out)


if __name__ == "__main__":
    main()
