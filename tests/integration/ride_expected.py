#!/usr/bin/python3
"""The ride predictions as seed 001's cloud function makes them, for Sluice's end-to-end test.

Usage: ride_expected.py MODEL_DIR < events.jsonl > expected.txt

Reads ride events ({"ride": {"PULocationID", "DOLocationID", "trip_distance"}, "ride_id"}), one
JSON object per line, and prints for each "<ride_id>|<message>", where the message is the one
the seed publishes to `ride-predictions`, written compactly:
  {"model":"ride_duration_prediction_model","version":1,"prediction":{"ride_duration":18,"ride_id":123}}
The steps are the seed's: PU_DO = "%s_%s" % (PULocationID, DOLocationID); the model's
prediction on (PU_DO, trip_distance) with PU_DO as a pandas categorical of the training
categories (unseen ones become missing, as pandas and XGBoost handle them); Python's round().
The model name and version are the model directory's (MLmodel metadata).
"""
import json
import sys
from pathlib import Path

import pandas as pd
import xgboost
import yaml


def main():
    model_dir = Path(sys.argv[1])
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    meta = mlmodel["metadata"]
    data_file = mlmodel["flavors"]["xgboost"]["data"]
    categories = json.loads((model_dir / meta["categories"]).read_text())

    events = [json.loads(line) for line in sys.stdin if line.strip()]
    features = pd.DataFrame(
        {
            "PU_DO": ["%s_%s" % (e["ride"]["PULocationID"], e["ride"]["DOLocationID"])
                      for e in events],
            "trip_distance": [e["ride"]["trip_distance"] for e in events],
        }
    )
    features["PU_DO"] = pd.Categorical(features["PU_DO"], categories=categories["PU_DO"])
    booster = xgboost.Booster()
    booster.load_model(str(model_dir / data_file))
    predictions = booster.predict(xgboost.DMatrix(features, enable_categorical=True))

    out = sys.stdout
    for event, predicted in zip(events, predictions):
        message = {
            "model": meta["name"],
            "version": int(meta["version"]),
            "prediction": {"ride_duration": round(float(predicted)), "ride_id": event["ride_id"]},
        }
        out.write(f'{event["ride_id"]}|{json.dumps(message, separators=(",", ":"))}\n')


if __name__ == "__main__":
    main()
