#!/usr/bin/python3
"""Ride benchmark: what the expression step costs in the ride pipeline.

The question (issue: the ride flow): on 1,000,000 ride events, how many records/s does the
ride pipeline do with its `map` step, and without it? Target: the expression step costs less
than 20% of the pipeline's throughput (map / no-map >= 0.80).

The job, from a file into a file so that the engine alone is measured (no broker on the same
two cores), with each variant in bench/ride/:
  map    ride-map.yaml: JSON events with a nested `ride` object -> map (PU_DO =
         concat(to_string(ride.PULocationID), "_", to_string(ride.DOLocationID)),
         trip_distance = ride.trip_distance) -> predict (models/ride) -> select -> file
  nomap  ride-nomap.yaml: the same events, which also carry PU_DO precomputed, -> flatten
         (a rename: no computation) -> the same predict -> the same select -> file
  full   ride-full.yaml: pipelines/ride.yaml's whole work: the PU_DO map, predict, and the map
         that shapes the seed's message (round half to even, the model's version as an int)
  nodrift ride-nodrift.yaml: nomap with a copy of the model without its reference profile, so
         predict keeps no drift window: nomap / nodrift is what drift monitoring costs
All three read the same input file (map and full ignore the precomputed PU_DO, as the decoder
skips fields a schema does not declare). map and nomap must write identical files: the script
checks that, so the comparison is between equal work.

What this script does:
  1. generates --events events once into bench/data/ with models/ride_data.py, and adds each
     event's PU_DO;
  2. runs the variants --runs times each, alternately, measuring each process's wall time
     (spawn to exit) and CPU time;
  3. checks every run (exit status, rows written, no dead letters) and map == nomap output;
  4. prints a table of medians and ratios and writes bench/results/ride.json.

Usage: run_ride_bench.py [--events N] [--runs K] [--sluice PATH] [--results PATH]
"""
import argparse
import filecmp
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
DATA = BENCH / "data"
OUT = DATA / "out"
RESULTS = BENCH / "results"
PYTHON = "/usr/bin/python3"
GENERATOR = ROOT / "models" / "ride_data.py"
VARIANTS = ["nomap", "map", "full", "nodrift"]
TARGET_RATIO = 0.80


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def generate(events):
    path = DATA / f"rides-{events}.jsonl"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    raw = DATA / f".rides-{events}.raw"
    with open(raw, "wb") as f:
        subprocess.run([PYTHON, str(GENERATOR), "--events", str(events), "--seed", "2026"],
                       stdout=f, check=True)
    # Each event also carries its PU_DO, for the variant without the map step.
    tmp = path.with_suffix(".tmp")
    with open(raw, "rb") as src, open(tmp, "wb") as dst:
        for line in src:
            e = json.loads(line)
            pu_do = f'{e["ride"]["PULocationID"]}_{e["ride"]["DOLocationID"]}'
            dst.write(line.rstrip(b"\n")[:-1] + f', "PU_DO": "{pu_do}"}}\n'.encode())
    raw.unlink()
    tmp.rename(path)
    log(f"input: {events:,} events generated in {time.perf_counter() - t:.1f} s -> {path}")
    return path


def model_without_profile():
    """bench/data/ride-noprofile: models/ride without metadata.profile."""
    dst = DATA / "ride-noprofile"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(ROOT / "models" / "ride", dst)
    mlmodel = dst / "MLmodel"
    lines = [l for l in mlmodel.read_text().splitlines(True) if not l.strip().startswith("profile:")]
    mlmodel.write_text("".join(lines))
    (dst / "profile.json").unlink()


def run_once(sluice, variant, input_path):
    out = OUT / f"ride-{variant}.jsonl"
    for p in (out, Path(str(out) + ".dead-letter.jsonl")):
        if p.exists():
            p.unlink()
    env = dict(os.environ, BENCH_INPUT=str(input_path), BENCH_OUTPUT=str(out))
    cmd = [sluice, "--log-format", "json", "run", str(BENCH / "ride" / f"ride-{variant}.yaml")]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{variant}: exit {proc.returncode}\n{err.decode()[-2000:]}")
    summary = None
    for line in err.decode().splitlines():
        if '"rows_written"' in line:
            summary = json.loads(line)
    return wall, ru.ru_utime + ru.ru_stime, summary, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sluice", default=str(ROOT / "build" / "sluice"))
    ap.add_argument("--results", default=str(RESULTS / "ride.json"))
    args = ap.parse_args()

    input_path = generate(args.events)
    model_without_profile()
    OUT.mkdir(parents=True, exist_ok=True)
    for v in VARIANTS:
        r = subprocess.run([args.sluice, "validate", str(BENCH / "ride" / f"ride-{v}.yaml")],
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"ride-{v}.yaml does not validate:\n{r.stdout}{r.stderr}")

    walls = {v: [] for v in VARIANTS}
    cpus = {v: [] for v in VARIANTS}
    # CPU time of children so far (the generator, validation), so each run's is a difference.
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = ru.ru_utime + ru.ru_stime
    for k in range(args.runs):
        for v in VARIANTS:
            wall, cpu_total, summary, out = run_once(args.sluice, v, input_path)
            cpu, cpu_before = cpu_total - cpu_before, cpu_total
            written = summary.get("rows_written") if summary else None
            dead = summary.get("dead_letters") if summary else None
            if written != args.events or dead != 0:
                sys.exit(f"{v}: wrote {written} rows with {dead} dead letters, "
                         f"expected {args.events} and 0")
            walls[v].append(wall)
            cpus[v].append(cpu)
            log(f"run {k + 1}/{args.runs} {v:6s} {wall:6.2f} s wall {cpu:6.2f} s cpu "
                f"{args.events / wall:>12,.0f} records/s")
        for other in ("map", "nodrift"):
            if not filecmp.cmp(OUT / f"ride-{other}.jsonl", OUT / "ride-nomap.jsonl",
                               shallow=False):
                sys.exit(f"{other} and nomap outputs differ: the variants do not do the same work")

    rows = {}
    for v in VARIANTS:
        wall = statistics.median(walls[v])
        rows[v] = {
            "wall_s": round(wall, 3),
            "cpu_s": round(statistics.median(cpus[v]), 3),
            "records_per_s": round(args.events / wall),
            "runs_wall_s": [round(w, 3) for w in walls[v]],
        }
    base = rows["nomap"]["records_per_s"]
    for v in VARIANTS:
        rows[v]["vs_nomap"] = round(rows[v]["records_per_s"] / base, 3)
    ratio = rows["map"]["vs_nomap"]

    print(f"\nride benchmark: {args.events:,} events, median of {args.runs} runs "
          f"({os.cpu_count()} cores)\n")
    print("| variant | records/s | wall s | CPU s | vs no-map |")
    print("|---|---:|---:|---:|---:|")
    for v in VARIANTS:
        r = rows[v]
        print(f"| {v} | {r['records_per_s']:,} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | "
              f"{r['vs_nomap']:.2f}x |")
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"\nthe map step costs {100 * (1 - ratio):.1f}% of the throughput "
          f"(target: under {100 * (1 - TARGET_RATIO):.0f}%): {verdict}")
    drift = rows["nomap"]["records_per_s"] / rows["nodrift"]["records_per_s"]
    print(f"drift monitoring (PSI window of predict) costs {100 * (1 - drift):.1f}% of the "
          f"throughput (nomap / nodrift = {drift:.3f})")

    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "ride",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "events": args.events,
        "runs": args.runs,
        "variants": rows,
        "map_vs_nomap": ratio,
        "nomap_vs_nodrift": round(drift, 3),
        "target_ratio": TARGET_RATIO,
    }
    Path(args.results).write_text(json.dumps(result, indent=2) + "\n")
    log(f"results: {args.results}")


if __name__ == "__main__":
    main()
