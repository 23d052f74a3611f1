#!/usr/bin/python3
"""Iris benchmark: Sluice against a batched Python baseline on the same job.

The job (pipelines/iris-bench.yaml and bench/iris_baseline.py): read Kafka Connect JSON
envelopes from a file, decode them against the iris_data schema, drop id and target, classify
with the XGBoost model in models/iris, and write {"timestamp", "iris_class"} as JSON lines;
bad lines go to a dead-letter file.

What this script does:
  1. generates the input once into bench/data/ with pipelines/data/make_iris_data.py:
     about --records good records (the 150 iris rows replayed) plus --bad bad lines, and a
     file of a tenth of that size (after checking there is disk space for both);
  2. runs Sluice and the baseline on the same file --runs times each, alternately, and
     Sluice on the small file as many times; for every process it measures the wall time
     (spawn to exit), its CPU time, and its peak RSS (GNU time's %M: of that process alone);
  3. checks every run: exit status, rows written and dead letters as expected, and the two
     outputs identical line for line (both keep input order);
  4. prints a table of medians and writes bench/results/iris.json.

records/s = input lines / median wall time of the whole process (start-up, model load and
the final fsync included). Each side's self-reported figure (its own timer, which leaves out
start-up) is in the JSON too.

On a shared machine, other work skews both sides: before each run the script waits (up to
--wait-idle seconds) for a quiet second, and records how many cores other processes kept
busy during each run (other_cores; the table warns when it is above 0.25).

Usage: run_iris_bench.py [--records N] [--runs K] [--sluice PATH] [--bad N] [--wait-idle S]
                         [--sluice-env NAME=VALUE ...] [--results PATH]
"""
import argparse
import filecmp
import json
import math
import os
import platform
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
PIPELINE = ROOT / "pipelines" / "iris-bench.yaml"
MODEL = ROOT / "models" / "iris"
GENERATOR = ROOT / "pipelines" / "data" / "make_iris_data.py"
BASELINE = BENCH / "iris_baseline.py"
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
PYTHON = "/usr/bin/python3"  # Debian's: it has python3-xgboost, numpy and sklearn
IRIS_ROWS = 150  # make_iris_data.py replays the 150 iris rows
SMALL_FRACTION = 10  # the RSS check runs Sluice on 1/10 of the input as well

WAIT_IDLE_S = 20.0  # --wait-idle
# Above this many cores used by other processes during a run, the table carries a note. Not 0:
# /proc/stat counts in 10 ms ticks, which is ~0.1 core of noise on a 0.15 s run.
OTHER_CORES_NOTE = 0.25

TARGET_RECORDS_PER_S = 500_000
TARGET_RATIO = 10.0


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Dataset:
    """One generated input file: `repeat` replays of the iris rows plus `bad` bad lines."""

    def __init__(self, records, bad):
        self.repeat = max(1, math.ceil(records / IRIS_ROWS))
        self.bad = bad
        self.good = self.repeat * IRIS_ROWS
        self.lines = self.good + bad
        self.path = DATA / f"iris-r{self.repeat}-b{bad}.jsonl"

    def ensure(self):
        if self.path.exists() and count_lines(self.path) == self.lines:
            log(f"input: {rel(self.path)} ({self.lines:,} lines, reused)")
            return
        tmp = self.path.with_suffix(".jsonl.tmp")
        log(f"input: generating {rel(self.path)} ({self.good:,} good + {self.bad} bad lines) ...")
        t = time.perf_counter()
        subprocess.run([PYTHON, str(GENERATOR), "--repeat", str(self.repeat),
                        "--bad", str(self.bad), "--out", str(tmp)], check=True)
        tmp.replace(self.path)
        log(f"input: generated in {time.perf_counter() - t:.1f} s, "
            f"{self.path.stat().st_size / 2**20:,.0f} MiB")


def rel(path):
    try:
        return str(Path(path).relative_to(ROOT))
    except ValueError:
        return str(path)


def count_lines(path):
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):  # small: see measure() on peak RSS
            n += chunk.count(b"\n")
    return n


def check_disk(datasets):
    """Refuses to start without room for the inputs and four outputs (+10%)."""
    sample = ROOT / "pipelines" / "data" / "iris_data.jsonl"
    per_line = sample.stat().st_size / count_lines(sample)
    need = 0
    for d in datasets:
        if not d.path.exists():
            need += d.lines * per_line
        need += d.lines * 60 * 2  # ~60-byte output rows, Sluice's and the baseline's
    need *= 1.1
    DATA.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(DATA).free
    log(f"disk: need ~{need / 2**30:.2f} GiB under {rel(DATA)}, {free / 2**30:.1f} GiB free")
    if free < need:
        sys.exit(f"not enough disk space under {DATA}: need {need / 2**30:.2f} GiB, "
                 f"have {free / 2**30:.2f} GiB")


def busy_cpu_s():
    """CPU seconds the whole machine has spent busy since boot (all processes, all cores)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    busy = fields[0] + fields[1] + fields[2] + sum(fields[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def wait_idle(limit_s):
    """Waits (up to limit_s) for a second in which other processes use < 0.15 cores, so that
    a build or test run elsewhere on a shared machine does not land in a measurement."""
    deadline = time.monotonic() + limit_s
    while True:
        b0, t0 = busy_cpu_s(), time.monotonic()
        time.sleep(1.0)
        if (busy_cpu_s() - b0) / (time.monotonic() - t0) < 0.15:
            return
        if time.monotonic() >= deadline:
            log(f"warning: the machine did not become idle within {limit_s:.0f} s; running anyway")
            return


def measure(cmd, env=None):
    """Runs cmd to completion; returns (exit code, stats, stdout, stderr).

    stats: wall s, peak RSS KiB and CPU s of that process, and other_cores: the cores that
    other processes on the machine kept busy meanwhile (0 on an idle machine).

    Peak RSS comes from GNU time (/usr/bin/time), which forks the command from its own small
    process. Not from wait4 on a child of this script: Python starts children with vfork, and
    Linux carries the parent's peak RSS into the child's ru_maxrss across exec, so every child
    would report at least this script's own peak."""
    if WAIT_IDLE_S > 0:
        wait_idle(WAIT_IDLE_S)
    out_path, err_path, time_path = OUT / ".stdout", OUT / ".stderr", OUT / ".time"
    if GNU_TIME:
        time_path.unlink(missing_ok=True)
        cmd = [GNU_TIME, "-f", "%M", "-o", str(time_path), *cmd]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        busy0 = busy_cpu_s()
        start = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        # wait4's CPU times include the children the child has waited for (GNU time's command).
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - start
        busy = busy_cpu_s() - busy0
    p.returncode = os.waitstatus_to_exitcode(status)
    rss = ru.ru_maxrss
    if GNU_TIME:
        reported = time_path.read_text().split()
        rss = int(reported[-1]) if reported and reported[-1].isdigit() else None
        if rss is None:
            sys.exit(f"cannot read the peak RSS from {time_path}: {reported}")
    cpu = ru.ru_utime + ru.ru_stime
    stats = {"wall_s": wall, "peak_rss_kib": rss, "cpu_s": cpu,
             "other_cores": max(0.0, (busy - cpu) / wall)}
    return (p.returncode, stats, out_path.read_text(errors="replace"),
            err_path.read_text(errors="replace"))


def last_json(text, key):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if key in obj:
                return obj
    return None


def fresh(output):
    """Removes a previous run's output and dead letters (Sluice appends to its dead-letter
    file, so that a rerun never loses earlier ones); returns the dead-letter path."""
    dead = Path(f"{output}.dead-letter.jsonl")
    output.unlink(missing_ok=True)
    dead.unlink(missing_ok=True)
    return dead


def run_sluice(sluice, data, output, extra_env):
    dead = fresh(output)
    env = dict(os.environ, **extra_env, BENCH_INPUT=str(data.path), BENCH_OUTPUT=str(output),
               BENCH_REPEAT="1")
    code, stats, _, err = measure([sluice, "--log-format", "json", "run", str(PIPELINE)], env)
    summary = last_json(err, "records_read")
    if code != 0 or summary is None:
        sys.exit(f"sluice failed (exit {code}):\n{err[-3000:]}")
    return check_counts("sluice", data, dead, {
        **stats,
        "records_read": int(summary["records_read"]),
        "rows_written": int(summary["rows_written"]),
        "dead_letters": int(summary["dead_letters"]),
        "self_seconds": float(summary["seconds"]),
    })


def run_baseline(data, output):
    dead = fresh(output)
    code, stats, out, err = measure(
        [PYTHON, str(BASELINE), str(data.path), str(MODEL), str(output), "--dead-letter", str(dead)])
    summary = last_json(out, "records_read")
    if code != 0 or summary is None:
        sys.exit(f"baseline failed (exit {code}):\n{err[-3000:]}")
    return check_counts("baseline", data, dead, {
        **stats,
        "records_read": summary["records_read"],
        "rows_written": summary["rows_written"],
        "dead_letters": summary["dead_letters"],
        "self_seconds": summary["seconds"],
    })


def check_counts(who, data, dead, r):
    expected = {"records_read": data.lines, "rows_written": data.good, "dead_letters": data.bad}
    for key, want in expected.items():
        if r[key] != want:
            sys.exit(f"{who}: {key} = {r[key]:,}, expected {want:,}")
    dead_lines = count_lines(dead) if dead.exists() else 0
    if dead_lines != data.bad:
        sys.exit(f"{who}: {rel(dead)} has {dead_lines} lines, expected {data.bad}")
    return r


def compare_outputs(a, b):
    """Both outputs keep input order, so they must be identical line for line."""
    if filecmp.cmp(a, b, shallow=False):
        return
    with open(a) as fa, open(b) as fb:
        for n, (la, lb) in enumerate(zip(fa, fb), 1):
            if la != lb:
                sys.exit(f"outputs differ at line {n}:\n  sluice:   {la.rstrip()}\n"
                         f"  baseline: {lb.rstrip()}")
    sys.exit(f"outputs differ in length: {rel(a)} vs {rel(b)}")


def progress(i, n, who, data, r):
    log(f"run {i}/{n}: {who:<8} {data.lines:>10,} lines  {r['wall_s']:7.2f} s  "
        f"{data.lines / r['wall_s']:>10,.0f} rec/s  {r['peak_rss_kib'] / 1024:7.1f} MiB  "
        f"cpu {r['cpu_s']:6.2f} s  (others busy: {r['other_cores']:.2f} cores)")


def summarise(runs, lines):
    wall = statistics.median(r["wall_s"] for r in runs)
    own = statistics.median(r["self_seconds"] for r in runs)
    return {
        "records_per_s": round(lines / wall),
        "wall_s_median": round(wall, 3),
        "self_records_per_s": round(lines / own),
        "self_seconds_median": round(own, 3),
        "cpu_s_median": round(statistics.median(r["cpu_s"] for r in runs), 3),
        "other_cores_max": round(max(r["other_cores"] for r in runs), 2),
        "peak_rss_mib": round(max(r["peak_rss_kib"] for r in runs) / 1024, 1),
        "runs": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}
                 for r in runs],
    }


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    global WAIT_IDLE_S
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000,
                    help="good records in the input, rounded up to whole replays of the 150 "
                         "iris rows (default 1,000,000)")
    ap.add_argument("--bad", type=int, default=10, help="bad lines in the input (default 10)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each side; medians are "
                    "reported (default 3)")
    ap.add_argument("--sluice", default=str(ROOT / "build" / "sluice"),
                    help="the sluice binary (default build/sluice)")
    ap.add_argument("--wait-idle", type=float, default=WAIT_IDLE_S, metavar="SECONDS",
                    help="before each run, wait up to this long for the machine to be idle "
                         "(default 20; 0: do not wait)")
    ap.add_argument("--sluice-env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for the Sluice runs, e.g. to try another allocator: "
                         "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtbbmalloc_proxy.so.2 "
                         "(repeatable)")
    ap.add_argument("--results", default=str(RESULTS / "iris.json"), metavar="PATH",
                    help="where to write the results (default bench/results/iris.json)")
    args = ap.parse_args()
    sluice_env = {}
    for item in args.sluice_env:
        name, eq, value = item.partition("=")
        if not eq or not name:
            ap.error(f"--sluice-env {item!r}: expected NAME=VALUE")
        sluice_env[name] = value
    WAIT_IDLE_S = args.wait_idle
    if args.records < IRIS_ROWS * SMALL_FRACTION or args.runs < 1 or args.bad < 0:
        ap.error(f"need --records >= {IRIS_ROWS * SMALL_FRACTION}, --runs >= 1, --bad >= 0")
    sluice = str(Path(args.sluice).resolve())
    if not os.access(sluice, os.X_OK):
        sys.exit(f"{args.sluice}: not an executable; build first: cmake -S . -B build "
                 "-DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build -j2")
    v = subprocess.run([sluice, "validate", str(PIPELINE)], cwd=ROOT, capture_output=True,
                       text=True)
    if v.returncode != 0:
        sys.exit(f"{rel(PIPELINE)} does not validate:\n{v.stdout}{v.stderr}")

    big = Dataset(args.records, args.bad)
    small = Dataset(args.records // SMALL_FRACTION, max(1, args.bad // SMALL_FRACTION))
    check_disk([big, small])
    big.ensure()
    small.ensure()
    OUT.mkdir(parents=True, exist_ok=True)

    load = os.getloadavg()  # recorded only: it lags, and counts this script's own runs

    s_out, b_out, ss_out = OUT / "sluice.jsonl", OUT / "baseline.jsonl", OUT / "sluice-small.jsonl"
    sluice_runs, baseline_runs, small_runs = [], [], []
    for i in range(1, args.runs + 1):
        # Alternate the sides so that drift on the machine hits both alike.
        r = run_sluice(sluice, big, s_out, sluice_env)
        sluice_runs.append(r)
        progress(i, args.runs, "sluice", big, r)
        r = run_baseline(big, b_out)
        baseline_runs.append(r)
        progress(i, args.runs, "baseline", big, r)
        compare_outputs(s_out, b_out)
        r = run_sluice(sluice, small, ss_out, sluice_env)
        small_runs.append(r)
        progress(i, args.runs, "sluice", small, r)
    log(f"outputs: identical in all {args.runs} runs ({big.good:,} rows, {big.bad} dead letters)")

    s = summarise(sluice_runs, big.lines)
    b = summarise(baseline_runs, big.lines)
    sm = summarise(small_runs, small.lines)
    ratio = s["records_per_s"] / b["records_per_s"]
    self_ratio = s["self_records_per_s"] / b["self_records_per_s"]
    rss_growth = s["peak_rss_mib"] / sm["peak_rss_mib"]

    result = {
        "benchmark": "iris",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release(),
                    "memory_gib": round(os.sysconf("SC_PAGE_SIZE") *
                                        os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                    "loadavg_before": [round(x, 2) for x in load],
                    "other_cores_max": max(s["other_cores_max"], b["other_cores_max"],
                                           sm["other_cores_max"])},
        "sluice_version": subprocess.run([sluice, "--version"], capture_output=True,
                                         text=True).stdout.strip(),
        "sluice_env": sluice_env,
        "runs": args.runs,
        "records": big.lines,
        "good_records": big.good,
        "bad_records": big.bad,
        "input": rel(big.path),
        "input_mib": round(big.path.stat().st_size / 2**20, 1),
        "outputs_identical": True,
        "rss_method": "GNU time %M" if GNU_TIME else "wait4 ru_maxrss (includes the driver's peak)",
        "sluice_records_per_s": s["records_per_s"],
        "baseline_records_per_s": b["records_per_s"],
        "ratio": round(ratio, 1),
        "sluice_peak_rss_mib": {str(small.lines): sm["peak_rss_mib"],
                                str(big.lines): s["peak_rss_mib"]},
        "baseline_peak_rss_mib": b["peak_rss_mib"],
        "self_timed": {"sluice_records_per_s": s["self_records_per_s"],
                       "baseline_records_per_s": b["self_records_per_s"],
                       "ratio": round(self_ratio, 1)},
        "targets": {"sluice_records_per_s": TARGET_RECORDS_PER_S, "ratio": TARGET_RATIO,
                    "records_per_s_met": s["records_per_s"] >= TARGET_RECORDS_PER_S,
                    "ratio_met": ratio >= TARGET_RATIO},
        "detail": {"sluice": s, "baseline": b, "sluice_small": sm,
                   "small_records": small.lines},
    }
    results = Path(args.results).resolve()
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n")

    def row(name, lines, r):
        return (f"| {name:<26} | {lines:>9,} | {r['wall_s_median']:>8.2f} | "
                f"{r['records_per_s']:>10,} | {r['self_records_per_s']:>10,} | "
                f"{r['cpu_s_median']:>7.2f} | {r['peak_rss_mib']:>12.1f} |")

    print(f"iris benchmark, {result['date']}, {os.cpu_count()} CPUs ({cpu_model()}), "
          f"median of {args.runs} runs"
          + "".join(f", sluice with {k}={v}" for k, v in sluice_env.items()))
    print("| side                       |   records |   wall s |  records/s | self rec/s |"
          "   cpu s | peak RSS MiB |")
    print("|----------------------------|----------:|---------:|-----------:|-----------:|"
          "--------:|-------------:|")
    print(row("sluice", big.lines, s))
    print(row("python baseline", big.lines, b))
    print(row(f"sluice, 1/{SMALL_FRACTION} input", small.lines, sm))
    print()
    met = lambda ok: "met" if ok else "NOT met"
    print(f"sluice / baseline:   {ratio:.1f}x end to end ({self_ratio:.1f}x self-timed)  "
          f"[target >= {TARGET_RATIO:.0f}x: {met(ratio >= TARGET_RATIO)}]")
    print(f"sluice records/s:    {s['records_per_s']:,}  "
          f"[target >= {TARGET_RECORDS_PER_S:,}: {met(s['records_per_s'] >= TARGET_RECORDS_PER_S)}]")
    print(f"sluice peak RSS:     {sm['peak_rss_mib']} MiB at {small.lines:,} records, "
          f"{s['peak_rss_mib']} MiB at {big.lines:,} ({rss_growth:.2f}x for 10x the input)")
    print(f"outputs identical:   yes, {big.good:,} rows; {big.bad} dead letters on each side")
    print(f"results:             {rel(results)}")
    other = result["machine"]["other_cores_max"]
    if other > OTHER_CORES_NOTE:
        print(f"note: other processes kept up to {other:.2f} of the {os.cpu_count()} cores busy "
              f"during a run: the machine was not idle, figures are pessimistic")


if __name__ == "__main__":
    main()
