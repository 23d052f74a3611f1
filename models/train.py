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
metadata (see docs/models.md). Each directory also gets profile.json, named by
metadata.profile: the binned distribution of every input and of the model's
predictions on the training set, the reference Sluice measures live traffic's
drift against (population stability index; see docs/models.md).

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


PROFILE_FORMAT = "sluice-profile/1"
PROFILE_FILE = "profile.json"
# Deciles: at most 9 interior cut points, so at most 10 bins.
PROFILE_QUANTILES = 10
# A categorical feature keeps its most frequent values as bins; the rest share one "other" bin.
PROFILE_MAX_CATEGORIES = 20
# Fractions are written as whole multiples of this, so they read as 6 decimals and sum to 1
# exactly (largest remainders); PSI floors fractions at 1e-4, far above the rounding.
PROFILE_FRACTION_UNITS = 10**6


def quantized_fractions(counts):
    """counts / sum(counts) as multiples of 1e-6 that sum to exactly 1 (largest remainder)."""
    counts = [int(c) for c in counts]
    total = sum(counts)
    if total == 0:
        # No values at all: every live value is new, so the reference puts them in the last bin.
        return [0.0] * (len(counts) - 1) + [1.0]
    units = [c * PROFILE_FRACTION_UNITS // total for c in counts]
    # Integer arithmetic throughout, ties to the earlier bin: the same bytes on every run.
    by_remainder = sorted(range(len(counts)),
                          key=lambda i: (-(counts[i] * PROFILE_FRACTION_UNITS % total), i))
    for i in by_remainder[:PROFILE_FRACTION_UNITS - sum(units)]:
        units[i] += 1
    return [u / PROFILE_FRACTION_UNITS for u in units]


def missing_fraction(missing, rows):
    return round(missing * PROFILE_FRACTION_UNITS / rows) / PROFILE_FRACTION_UNITS if rows else 0.0


def numeric_profile(name, values):
    """Decile bins of a numeric column: edges e_0 < ... < e_k-1, bin i is e_i-1 < x <= e_i."""
    values = np.asarray(values)
    integral = values.dtype.kind in "iub"
    x = values.astype(np.float64)
    present = np.sort(x[~np.isnan(x)])
    edges = []
    if len(present):
        n = len(present)
        # The smallest value with at least q of the data at or below it (an actual data value, so
        # an integer feature gets integer edges), found in integers rather than floats.
        cuts = [present[(n * q + PROFILE_QUANTILES - 1) // PROFILE_QUANTILES - 1]
                for q in range(1, PROFILE_QUANTILES)]
        if not integral:
            cuts = [float(f"{c:.6g}") for c in cuts]
        # An edge at the maximum would leave the top bin empty (rounding can also push an edge
        # past an end); the fractions below are counted with the rounded edges as written.
        edges = sorted({float(c) for c in cuts if present[0] <= c < present[-1]})
    counts = np.bincount(np.searchsorted(np.asarray(edges), present, side="left"),
                         minlength=len(edges) + 1)
    return {"name": name, "kind": "numeric", "edges": edges,
            "fractions": quantized_fractions(counts),
            "missing": missing_fraction(len(x) - len(present), len(x))}


def categorical_profile(name, values, categories=None):
    """The most frequent values (or the given `categories`, in their order), then "other"."""
    present = [v for v in values if isinstance(v, str)]
    counts = Counter(present)
    if categories is None:
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        categories = [v for v, _ in ranked[:PROFILE_MAX_CATEGORIES]]
    kept = [counts.get(c, 0) for c in categories]
    return {"name": name, "kind": "categorical", "categories": list(categories),
            "fractions": quantized_fractions(kept + [len(present) - sum(kept)]),
            "missing": missing_fraction(len(values) - len(present), len(values))}


def class_profile(classes, predicted):
    """The predicted classes (indexes into `classes`, the MLmodel's metadata.classes)."""
    return categorical_profile("class", [classes[i] for i in np.asarray(predicted).tolist()],
                               categories=classes)


def reference_profile(input_specs, columns, prediction, source="training set"):
    """profile.json's content: each signature input's bins, in signature order, and the
    prediction's. String inputs are categorical, all others numeric."""
    features = [
        categorical_profile(s["name"], list(columns[s["name"]])) if s["type"] == "string"
        else numeric_profile(s["name"], columns[s["name"]])
        for s in input_specs]
    rows = {len(columns[s["name"]]) for s in input_specs}
    assert len(rows) == 1, "profiled columns differ in length"
    return {"format": PROFILE_FORMAT, "source": source, "rows": rows.pop(),
            "features": features, "prediction": prediction}


def profile_text(profile):
    # One line per feature: the file is read by people as well as by Sluice.
    entry = json.dumps
    features = ",\n".join(f"    {entry(f)}" for f in profile["features"])
    return (f'{{\n  "format": {entry(profile["format"])},\n'
            f'  "source": {entry(profile["source"])},\n'
            f'  "rows": {profile["rows"]},\n'
            f'  "features": [\n{features}\n  ],\n'
            f'  "prediction": {entry(profile["prediction"])}\n}}\n')


def write_mlmodel(out, model_class, metadata, uuid, inputs, outputs, profile=None):
    """Writes the MLmodel file; `metadata` is the YAML of the metadata keys, indented. With a
    `profile` (see reference_profile), also writes profile.json and names it in the metadata.
    The profile is not part of the uuid: it follows from the model and its training data."""
    if profile is not None:
        (out / PROFILE_FILE).write_text(profile_text(profile))
        metadata += f"  profile: {PROFILE_FILE}\n"
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

    input_specs = [{"type": "double", "name": f, "required": True} for f in FEATURES]
    inputs = signature_json(input_specs)
    outputs = signature_json([{"type": "long", "required": True}])
    classes = ", ".join(iris.target_names)

    predicted = clf.predict(x)
    # The features as the pipeline sends them (doubles), not the float32 copy trained on.
    profile = reference_profile(input_specs, dict(zip(FEATURES, iris.data.T)),
                                class_profile(list(iris.target_names), predicted))
    write_mlmodel(out, "xgboost.sklearn.XGBClassifier",
                  f"  name: iris\n  version: '1'\n  classes: [{classes}]\n", uuid, inputs, outputs,
                  profile)

    accuracy = float((predicted == iris.target).mean())
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
    frame = ride_frame(keys, train["distance"], categories)
    reg.fit(frame, train["duration"])
    booster = reg.get_booster()
    booster.feature_names = RIDE_INPUTS
    booster.feature_types = ["c", "q"]

    model_path = out / "model.json"
    booster.save_model(str(model_path))
    categories_path = out / "categories.json"
    categories_path.write_text(json.dumps({"PU_DO": categories}, indent=0) + "\n")
    uuid = hashlib.md5(model_path.read_bytes() + categories_path.read_bytes()).hexdigest()

    input_specs = [
        {"type": "string", "name": "PU_DO", "required": True},
        {"type": "double", "name": "trip_distance", "required": True},
    ]
    inputs = signature_json(input_specs)
    outputs = signature_json([{"type": "double", "required": True}])
    # PU_DO as the pipeline sends it: every zone pair, not only those among the categories.
    profile = reference_profile(input_specs, {"PU_DO": keys, "trip_distance": train["distance"]},
                                numeric_profile("value", reg.predict(frame)))
    write_mlmodel(out, "xgboost.sklearn.XGBRegressor",
                  "  name: ride_duration_prediction_model\n  version: '1'\n"
                  "  categories: categories.json\n", uuid, inputs, outputs, profile)

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
# metadata.classes: class 1 is a fraud.
FRAUD_CLASSES = ["legit", "fraud"]


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
    frame = fraud_frame(feats, categories)
    clf.fit(frame, y)
    booster = clf.get_booster()
    booster.feature_names = list(FRAUD_SIGNATURE)
    booster.feature_types = ["c" if t == "string" else "q" for t in FRAUD_SIGNATURE.values()]

    model_path = out / "model.json"
    booster.save_model(str(model_path))
    categories_path = out / "categories.json"
    categories_path.write_text(json.dumps({"category": categories}, indent=0) + "\n")
    uuid = hashlib.md5(model_path.read_bytes() + categories_path.read_bytes()).hexdigest()

    input_specs = [{"type": t, "name": name, "required": True}
                   for name, t in FRAUD_SIGNATURE.items()]
    inputs = signature_json(input_specs)
    outputs = signature_json([{"type": "double", "required": True}])
    # predict() labels at 0.5 (FRAUD_THRESHOLD), as Sluice's `label` output does.
    profile = reference_profile(input_specs, feats,
                                class_profile(FRAUD_CLASSES, clf.predict(frame)))
    write_mlmodel(out, "xgboost.sklearn.XGBClassifier",
                  f"  name: fraud\n  version: '1'\n  classes: [{', '.join(FRAUD_CLASSES)}]\n"
                  "  categories: categories.json\n", uuid, inputs, outputs, profile)

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
