#!/usr/bin/python3
"""A model server for the HTTP predict backends' integration tests: FastAPI + uvicorn serving an
MLflow-layout XGBoost model (models/iris) through three protocols:

  POST /predict                 the seed's model API: one record's features -> {"iris_class": int}
  POST /invocations             MLflow scoring server: dataframe_split -> {"predictions": [...]}
  POST /v2/models/{name}/infer  KServe V2 / Open Inference Protocol: one [rows, features] tensor

and the read-only calls `sluice validate --connect` makes: GET /ping (MLflow's scoring server)
and GET /v2/models/{name} (the Open Inference Protocol's model metadata: one FP64 input tensor
[-1, features]).

A record whose sepal_length is above 50 (no iris is that large) is refused with 400 and a
FastAPI `detail`, so tests can check that a refused record is dead-lettered with the message.

`PUT /delay?ms=N` changes the delay every predict request waits before it answers (start value
--delay-ms), so a test can make a running server slower than a client's timeout and fast again.
`GET /answered` counts the `POST /predict` requests answered so far, so a test can act mid-stream.
The KServe calls name the model's version: the MLmodel's metadata.version, or --model-version.

  model_server.py --model DIR [--host 127.0.0.1] [--port 0] [--port-file FILE] [--delay-ms N]
                  [--model-version V]

With --port 0 the kernel picks a free port; the port is written to --port-file once the socket
listens. Debian's python3-fastapi, python3-uvicorn and python3-xgboost only.
"""
import argparse
import asyncio
import json
import os
import socket

import numpy as np
import uvicorn
import xgboost
import yaml
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

MAX_CM = 50.0


class PredictIn(BaseModel):
    sepal_length: float
    sepal_width: float
    petal_length: float
    petal_width: float


class PredictOut(BaseModel):
    iris_class: int


def load_model(model_dir):
    with open(os.path.join(model_dir, "MLmodel")) as f:
        meta = yaml.safe_load(f)
    inputs = [i["name"] for i in json.loads(meta["signature"]["inputs"])]
    booster = xgboost.Booster()
    booster.load_model(os.path.join(model_dir, meta["flavors"]["xgboost"]["data"]))
    booster.set_param({"nthread": 1})
    return meta["metadata"], inputs, booster


def make_app(model_dir, delay_ms, model_version=None):
    metadata, inputs, booster = load_model(model_dir)
    name = metadata["name"]
    version = model_version or str(metadata.get("version", "1"))
    app = FastAPI()
    state = {"delay_ms": delay_ms, "answered": 0}

    def labels(matrix):
        matrix = np.asarray(matrix, dtype=np.float32).reshape(-1, len(inputs))
        too_large = np.argwhere(matrix > MAX_CM)
        if too_large.size:
            row, col = too_large[0]
            raise HTTPException(
                status_code=400,
                detail=f"{inputs[col]} {float(matrix[row, col])} is out of range (0..{MAX_CM} cm)")
        proba = booster.inplace_predict(matrix)
        return np.argmax(proba.reshape(len(matrix), -1), axis=1).tolist()

    async def pause():
        if state["delay_ms"]:
            await asyncio.sleep(state["delay_ms"] / 1000)

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/ping")
    def ping():
        return {"status": "ok"}

    @app.get("/v2/models/{model}")
    def model_metadata(model: str):
        if model != name:
            raise HTTPException(status_code=404, detail=f"model '{model}' not found")
        return {"name": name, "versions": [version],
                "platform": "xgboost",
                "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, len(inputs)]}],
                "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1, 1]}]}

    @app.get("/answered")
    def answered():
        return {"answered": state["answered"]}

    @app.put("/delay")
    def set_delay(ms: int):
        state["delay_ms"] = ms
        return {"delay_ms": ms}

    @app.post("/predict", response_model=PredictOut)
    async def predict(data: PredictIn):
        await pause()
        out = PredictOut(iris_class=labels([[getattr(data, k) for k in inputs]])[0])
        state["answered"] += 1
        return out

    @app.post("/invocations")
    async def invocations(request: Request):
        await pause()
        body = await request.json()
        split = body.get("dataframe_split")
        if not isinstance(split, dict):
            raise HTTPException(status_code=400, detail="expected a dataframe_split payload")
        columns = split["columns"]
        order = [columns.index(k) for k in inputs]
        rows = [[row[i] for i in order] for row in split["data"]]
        return {"predictions": labels(rows)}

    @app.post("/v2/models/{model}/infer")
    async def infer(model: str, request: Request):
        await pause()
        if model != name:
            raise HTTPException(status_code=404, detail=f"model '{model}' not found")
        body = await request.json()
        tensor = body["inputs"][0]
        rows, width = tensor["shape"]
        if width != len(inputs) or tensor["datatype"] not in ("FP32", "FP64"):
            raise HTTPException(status_code=400, detail="expected one FP32/FP64 [rows, 4] tensor")
        data = labels(tensor["data"])
        return {"model_name": name, "model_version": version, "outputs": [
            {"name": "predict", "shape": [rows, 1], "datatype": "INT64", "data": data}]}

    return app


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--model-version")
    args = ap.parse_args()
    app = make_app(args.model, args.delay_ms, args.model_version)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(sock.getsockname()[1]))
        os.rename(tmp, args.port_file)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
