#!/usr/bin/python3
"""Write tests/data/categorical_model: a one-tree XGBoost regressor with a categorical input,
for predict's unit tests.

Inputs: color (string; categories c, a, b, in that code order, deliberately not sorted) and x
(double, unused by the tree). The tree predicts exactly 10 for "a", 20 for "b", 30 for "c" and
40 when color is missing, so a test can tell from a prediction which code a string was given,
and that an unseen string was treated as missing.
"""
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost

CATEGORIES = ["c", "a", "b"]
TARGET = {"a": 10.0, "b": 20.0, "c": 30.0, None: 40.0}


def main():
    out = Path(__file__).resolve().parent / "categorical_model"
    out.mkdir(exist_ok=True)
    colors = [c for c in TARGET for _ in range(25)]
    frame = pd.DataFrame({
        "color": pd.Categorical(colors, categories=CATEGORIES),
        "x": np.linspace(0.0, 1.0, len(colors)),
    })
    y = np.array([TARGET[c] for c in colors])
    # One exact tree: leaf = mean target of its rows (no shrinkage, no regularisation, base 0).
    reg = xgboost.XGBRegressor(n_estimators=1, max_depth=3, learning_rate=1.0, reg_lambda=0.0,
                               min_child_weight=0.0, base_score=0.0, tree_method="hist",
                               enable_categorical=True, max_cat_to_onehot=1, random_state=0,
                               n_jobs=1)
    reg.fit(frame, y)
    pred = reg.predict(frame)
    assert np.allclose(pred, y), pred
    booster = reg.get_booster()
    booster.feature_types = ["c", "q"]
    booster.save_model(str(out / "model.json"))
    (out / "categories.json").write_text(json.dumps({"color": CATEGORIES}) + "\n")
    inputs = json.dumps([{"type": "string", "name": "color", "required": True},
                         {"type": "double", "name": "x", "required": True}])
    uuid = hashlib.md5((out / "model.json").read_bytes()).hexdigest()
    (out / "MLmodel").write_text(f"""\
flavors:
  xgboost:
    data: model.json
    model_class: xgboost.sklearn.XGBRegressor
    model_format: json
    xgb_version: {xgboost.__version__}
metadata:
  name: colors
  version: '1'
  categories: categories.json
model_uuid: {uuid}
signature:
  inputs: '{inputs}'
  outputs: '[{{"type": "double", "required": true}}]'
""")


if __name__ == "__main__":
    main()
