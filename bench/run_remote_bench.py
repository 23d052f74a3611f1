#!/usr/bin/python3
"""Remote predict benchmark: Sluice scoring iris through a model server over HTTP, side by side
with the same model in process and with the seed's way of calling the model API.

The job: the iris envelopes of pipelines/data/iris_data.jsonl (1,500 good records and 4 bad
ones), replayed by the file source, decoded, `target` dropped, classified, and (id, iris_class)
written as JSON lines. The model server is tests/integration/model_server.py (FastAPI + uvicorn
from Debian, serving models/iris) on a free loopback port, started by this script and stopped at
the end.

Sides, each run one after the other:
  sluice xgboost       predict in process (the ceiling: no server at all)
  sluice mlflow        POST /invocations, one request per batch of --batch-size rows
  sluice kserve-v2     POST /v2/models/iris/infer, one [rows, 4] tensor per batch
  sluice json          the seed's model API: one POST /predict per record, `concurrency` 16
  python requests      the seed's way (bench/seed_subscriber.py): one `requests.post` per
                       record, one after the other, each on a new connection
The batched sides and xgboost score --records rows; json and python, which make one request per
record, score --json-records rows.

Every side is checked: exit status 0, every good row written, the 4 bad records (per replay)
dead-lettered by Sluice and skipped by Python, and every output line equal to the in-process
side's line at the same position (the file sink keeps input order).

records/s = rows written / wall time from spawn to exit (start-up included). cpu s is the
side's own user + system time; server cpu s the model server's over the same run. Ratios are
against the in-process side (batched protocols) and against Python's per-record requests (json).

Usage: run_remote_bench.py [--records N] [--json-records N] [--runs K] [--threads 2,1]
                           [--delay-ms MS] [--batch-size N] [--sluice PATH] [--results PATH]
"""
import argparse
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DATA = ROOT / "pipelines" / "data" / "iris_data.jsonl"
SCHEMA = ROOT / "schemas" / "iris_data.json"
MODEL = ROOT / "models" / "iris"
SERVER = ROOT / "tests" / "integration" / "model_server.py"
PYTHON = "/usr/bin/python3"  # Debian's: python3-fastapi, -uvicorn, -xgboost, -requests
GOOD_PER_REPLAY = 1500
BAD_PER_REPLAY = 4
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")

# The seed's way of calling the model API, as bench/seed_subscriber.py does for each message:
# requests.post without a session (a new connection per call), one record after the other.
PYTHON_CLIENT = r'''
import json, math, sys, requests
data, replays, url, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
keys = ("sepal_length", "sepal_width", "petal_length", "petal_width")
rows = []
for line in open(data):
    try:
        p = json.loads(line)["payload"]
        features = {k: float(p[k]) for k in keys}
        row_id = int(p["id"])
    except (ValueError, KeyError, TypeError):
        continue
    if all(math.isfinite(v) for v in features.values()):
        rows.append((row_id, features))
with open(out, "w") as f:
    for _ in range(replays):
        for row_id, features in rows:
            answer = requests.post(url=url, json=features,
                                   headers={"Content-Type": "application/json"}).json()
            f.write(json.dumps({"id": row_id, "iris_class": answer["iris_class"]},
                               separators=(",", ":")) + "\n")
'''


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_s(pid):
    """User + system CPU seconds of a running process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ModelServer:
    def __init__(self, workdir, delay_ms):
        self.port = free_port()
        self.log = open(Path(workdir) / "server.log", "w")
        self.proc = subprocess.Popen(
            [PYTHON, str(SERVER), "--model", str(MODEL), "--port", str(self.port),
             "--delay-ms", str(delay_ms)], stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the model server did not start; see {self.log.name}")
                time.sleep(0.1)

    def cpu_s(self):
        return proc_cpu_s(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def pipeline(workdir, name, replays, predict, batch_size):
    """Writes NAME.yaml: file source → drop target → predict → select id, iris_class → file."""
    path = Path(workdir) / f"{name}.yaml"
    path.write_text(
        f"name: remote-bench-{name}\n"
        f"settings: {{batch_size: {batch_size}, max_in_flight: 8}}\n"
        "sources:\n"
        f"  iris_data: {{type: file, path: {DATA}, format: connect-json, schema: {SCHEMA},\n"
        f"              repeat: {replays}}}\n"
        "transforms:\n"
        "  features: {type: drop-fields, inputs: [iris_data], fields: [target]}\n"
        f"  classify: {{type: predict, inputs: [features], model: {MODEL}, {predict}}}\n"
        "  prediction: {type: select, inputs: [classify], fields: [id, iris_class]}\n"
        "sinks:\n"
        f"  out: {{type: file, inputs: [prediction], path: {name}.jsonl}}\n"
        f"dead_letter: {{path: {name}.dead.jsonl}}\n")
    return path


def timed(cmd, server, cwd):
    """Runs `cmd` to its end: (wall s, its CPU s, the server's CPU s, exit code, stderr)."""
    server_cpu = server.cpu_s() if server else 0.0
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - start
    cpu = usage.ru_utime + usage.ru_stime
    server_cpu = (server.cpu_s() if server else 0.0) - server_cpu
    return wall, cpu, server_cpu, proc.returncode, err


def lines(path):
    with open(path) as f:
        return f.read().splitlines()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=150_000,
                    help="rows for the in-process and batched sides (default 150,000)")
    ap.add_argument("--json-records", type=int, default=3_000,
                    help="rows for the per-record sides, json and python (default 3,000)")
    ap.add_argument("--runs", type=int, default=1, help="runs of every side (default 1)")
    ap.add_argument("--threads", default="2,1",
                    help="Sluice's worker threads, one value or several (default 2,1)")
    ap.add_argument("--delay-ms", type=int, default=0,
                    help="the server waits this long before every answer (default 0)")
    ap.add_argument("--batch-size", type=int, default=1000, help="rows per batch and request")
    ap.add_argument("--sluice", default=str(ROOT / "build" / "sluice"))
    ap.add_argument("--results", help="default bench/results/remote-<UTC time>.json")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    replays = max(1, math.ceil(args.records / GOOD_PER_REPLAY))
    json_replays = max(1, math.ceil(args.json_records / GOOD_PER_REPLAY))
    if not os.access(args.sluice, os.X_OK):
        raise SystemExit(f"{args.sluice} is not built (./scripts/setup.sh builds it)")

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    results_path = Path(args.results) if args.results else RESULTS / f"remote-{stamp}.json"
    workdir = tempfile.mkdtemp(prefix="sluice-remote-bench-")
    server = ModelServer(workdir, args.delay_ms)
    log(f"model server on {server.url} (delay {args.delay_ms} ms); work in {workdir}")

    batched = f"batches of {args.batch_size:,}"
    sides = []  # (name, rows kind, command maker, output, expected lines)
    for t in threads:
        for backend, predict, kind in (
                ("xgboost", "outputs: {iris_class: label}", "batched"),
                ("mlflow", f"backend: mlflow, url: \"{server.url}\", outputs: {{iris_class: label}}",
                 "batched"),
                ("kserve-v2", f"backend: kserve-v2, url: \"{server.url}\", "
                              "outputs: {iris_class: label}", "batched"),
                ("json", f"backend: json, url: \"{server.url}/predict\", concurrency: 16, "
                         "outputs: {iris_class: iris_class}", "per-record")):
            n = replays if kind == "batched" else json_replays
            name = f"{backend}-t{t}"
            yaml = pipeline(workdir, name, n, predict, args.batch_size)
            label = f"sluice {backend}" + ("" if backend == "xgboost" else
                                           f", {batched}" if kind == "batched" else
                                           ", one request per record, concurrency 16")
            sides.append({"side": f"{label}, {t} worker{'s' if t > 1 else ''}",
                          "backend": backend, "threads": t, "kind": kind, "replays": n,
                          "cmd": [args.sluice, "run", "--quiet", "--threads", str(t), str(yaml)],
                          "out": f"{name}.jsonl", "dead": f"{name}.dead.jsonl"})
    client = Path(workdir) / "python_client.py"
    client.write_text(PYTHON_CLIENT)
    sides.append({"side": "python: requests.post per record, one at a time", "backend": "python",
                  "threads": 1, "kind": "per-record", "replays": json_replays,
                  "cmd": [PYTHON, str(client), str(DATA), str(json_replays),
                          server.url + "/predict", "python.jsonl"],
                  "out": "python.jsonl", "dead": None})

    # The reference lines: the in-process side on the larger input (a prefix serves the smaller).
    reference = None
    failures = []
    try:
        for run in range(args.runs):
            for s in sides:
                wall, cpu, server_cpu, code, err = timed(s["cmd"], None if s["backend"] ==
                                                         "xgboost" else server, workdir)
                rows = s["replays"] * GOOD_PER_REPLAY
                out = lines(Path(workdir) / s["out"]) if (Path(workdir) / s["out"]).exists() else []
                problems = []
                if code != 0:
                    problems.append(f"exit {code}: {err.strip()[-500:]}")
                if len(out) != rows:
                    problems.append(f"{len(out)} rows written, expected {rows}")
                if s["dead"]:
                    dead = Path(workdir) / s["dead"]
                    dead_n = len(lines(dead)) if dead.exists() else 0
                    if dead_n != s["replays"] * BAD_PER_REPLAY:
                        problems.append(f"{dead_n} dead letters, expected "
                                        f"{s['replays'] * BAD_PER_REPLAY}")
                if s["backend"] == "xgboost" and reference is None and not problems:
                    reference = out
                if reference is not None and s["backend"] != "xgboost":
                    differ = sum(a != b for a, b in zip(out, reference))
                    if differ:
                        problems.append(f"{differ} lines differ from the in-process side")
                for p in problems:
                    failures.append(f"{s['side']} (run {run + 1}): {p}")
                    log(f"FAILED {s['side']}: {p}")
                s.setdefault("runs", []).append({
                    "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                    "server_cpu_s": round(server_cpu, 3), "rows": rows,
                    "records_per_s": round(rows / wall), "ok": not problems})
                log(f"{s['side']}: {rows:,} rows in {wall:.2f} s, {rows / wall:,.0f} records/s")
                (Path(workdir) / s["out"]).unlink(missing_ok=True)
                if s["dead"]:
                    (Path(workdir) / s["dead"]).unlink(missing_ok=True)
    finally:
        server.stop()

    # Medians, and ratios: batched sides against xgboost in process with the same workers; json
    # against Python's per-record requests.
    def median_rate(s):
        return statistics.median(r["records_per_s"] for r in s["runs"])
    python_rate = median_rate(sides[-1])
    table = []
    for s in sides:
        rate = median_rate(s)
        if s["backend"] == "python":
            base, ratio_to = None, ""
        elif s["kind"] == "per-record":
            base, ratio_to = python_rate, "python"
        else:
            base = median_rate(next(x for x in sides if x["backend"] == "xgboost" and
                                    x["threads"] == s["threads"]))
            ratio_to = "in process"
        row = {"side": s["side"], "rows": s["runs"][0]["rows"],
               "wall_s": statistics.median(r["wall_s"] for r in s["runs"]),
               "records_per_s": rate,
               "cpu_s": statistics.median(r["cpu_s"] for r in s["runs"]),
               "server_cpu_s": statistics.median(r["server_cpu_s"] for r in s["runs"]),
               "ratio": round(rate / base, 3) if base else None, "ratio_to": ratio_to,
               "runs": s["runs"]}
        table.append(row)

    print(f"\nremote predict, server delay {args.delay_ms} ms, {args.runs} run(s), median\n")
    print(f"| side | rows | wall s | records/s | cpu s | server cpu s | ratio |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in table:
        ratio = f"{r['ratio']:.3f}× {r['ratio_to']}" if r["ratio"] else ""
        print(f"| {r['side']} | {r['rows']:,} | {r['wall_s']:.2f} | {r['records_per_s']:,.0f} | "
              f"{r['cpu_s']:.2f} | {r['server_cpu_s']:.2f} | {ratio} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps({
        "benchmark": "remote predict", "utc": stamp, "machine": {
            "cpus": os.cpu_count(), "platform": platform.platform(),
            "processor": platform.processor()},
        "settings": {"records": replays * GOOD_PER_REPLAY,
                     "json_records": json_replays * GOOD_PER_REPLAY, "runs": args.runs,
                     "threads": threads, "delay_ms": args.delay_ms,
                     "batch_size": args.batch_size, "sluice": args.sluice},
        "sides": table, "failures": failures}, indent=2) + "\n")
    print(f"\nresults: {results_path}")
    if failures:
        raise SystemExit(f"{len(failures)} check(s) failed")
    for f in Path(workdir).iterdir():
        f.unlink()
    os.rmdir(workdir)


if __name__ == "__main__":
    main()
