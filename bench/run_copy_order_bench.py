#!/usr/bin/python3
"""Key-order benchmark: what the order of the keys costs the PostgreSQL server, apart from Sluice.

The question: when Sluice writes the iris flow into PostgreSQL, how much of the server's work
comes from the order in which the rows' keys arrive, and how much from Sluice running next to
it on the same cores? The rows are those of the PostgreSQL benchmark (bench/run_pg_bench.py):
1,000,000 predictions (id, timestamp, iris_class) into the seed's table iris_prediction, whose
primary key is id.

What this script does:
  1. as bench/run_pg_bench.py: the input, the expected rows (in key order), a throwaway
     PostgreSQL 15 with its durable defaults, `sluice dev-kafka` with the topic produced by kcat;
  2. runs Sluice once (pipelines/iris-pg-bench.yaml, at-least-once, --batch-size x
     --max-in-flight), checks the table against the expected rows, and saves its rows in the
     order Sluice wrote them (the heap's physical order, `ORDER BY ctid`), split into Sluice's
     batches (each batch is one sorted COPY, so a batch ends where the key goes down);
  3. --rounds times, with no Sluice running, loads the same rows with psql and measures the
     server's CPU: (a) one COPY in key order (the PostgreSQL benchmark's ceiling); (b) one COPY
     in Sluice's order; (c) Sluice's batches, one COPY and one commit each, from one psql
     session; and with --hog, each again while `sha256sum /dev/zero` keeps the other core busy.
     Every load is checked: the table's md5 equals that of (a);
  4. prints the medians and writes bench/results/copy-order-<timestamp>.json.

Usage: run_copy_order_bench.py [--records N] [--rounds K] [--batch-size N] [--max-in-flight N]
                               [--hog] [--sluice PATH] [--wait-idle S] [--results PATH]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import run_kafka_bench as kb  # noqa: E402
import run_pg_bench as pb  # noqa: E402

ROOT = pb.ROOT
BenchError = kb.BenchError
log = kb.log


def save_sluice_order(psql, pg, records):
    """The table's rows in the order they were written, as COPY text, and Sluice's batches:
    (first line, line count) of each run of increasing keys."""
    path = pb.DATA / f"pg-sluice-order-{records}.tsv"
    subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg.url, "-c",
                    f"\\copy (SELECT {pb.COLUMNS} FROM {pb.TABLE} ORDER BY ctid) TO '{path}'"],
                   check=True, capture_output=True)
    ids = []
    with open(path) as f:
        for line in f:
            ids.append(int(line.split("\t", 1)[0]))
    batches, start = [], 0
    for i in range(1, len(ids)):
        if ids[i] < ids[i - 1]:
            batches.append((start, i - start))
            start = i
    batches.append((start, len(ids) - start))
    spans = [(ids[s + n - 1] - ids[s]) / max(1, records) for s, n in batches]
    return path, batches, spans


def write_batches(path, batches):
    """One file per batch and a psql script that copies each in a transaction of its own."""
    folder = pb.DATA / "pg-sluice-batches"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    script = folder / "load.sql"
    with open(path) as src, open(script, "w") as sql:
        for k, (_, n) in enumerate(batches):
            part = folder / f"batch-{k:04d}.tsv"
            with open(part, "w") as dst:
                for _ in range(n):
                    dst.write(src.readline())
            sql.write(f"\\copy {pb.TABLE} ({pb.COLUMNS}) FROM '{part}'\n")
    return script


def load(psql, pg, db, broker, what, source, records, hog, wait_idle_s):
    """psql loads `source` (a COPY text file, or a script of \\copy lines) into the emptied
    table; the server's CPU from psql's spawn to its exit."""
    pb.reset_tables(db)
    kb.wait_idle(wait_idle_s)
    h = None
    if hog:
        h = subprocess.Popen(["sha256sum", "/dev/zero"], stdout=subprocess.DEVNULL)
        time.sleep(0.3)
    try:
        lsn = pb.wal_lsn(db)
        if source.suffix == ".sql":
            cmd = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg.url, "-f", str(source)]
        else:
            cmd = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg.url, "-c",
                   f"\\copy {pb.TABLE} ({pb.COLUMNS}) FROM '{source}'"]
        meter = pb.Meter(pg, broker)
        start = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=max(120, records / 5000))
        wall = time.perf_counter() - start
        time.sleep(0.05)  # the postmaster reaps the backend: its CPU time is then counted
        busy, server, _ = meter.read()
    finally:
        if h:
            h.kill()
            h.wait()
    if r.returncode != 0:
        raise BenchError(f"{what}: psql failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
    return {"load": what, "hog": hog, "wall_s": wall, "server_cpu_s": server,
            "wal_bytes": pb.wal_bytes(db, lsn),
            "index_bytes": int(db.value(f"SELECT pg_relation_size('{pb.TABLE}_pkey')")),
            "busy_cores": busy / wall}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the loads (default 3)")
    ap.add_argument("--batch-size", type=int, default=32768,
                    help="Sluice's batch_size for the run that sets the order (default 32768)")
    ap.add_argument("--max-in-flight", type=int, default=4, help="Sluice's max_in_flight "
                    "(default 4)")
    ap.add_argument("--hog", action="store_true",
                    help="also load each while `sha256sum /dev/zero` keeps another core busy")
    ap.add_argument("--sluice", default=str(ROOT / "build" / "sluice"))
    ap.add_argument("--wait-idle", type=float, default=20.0)
    ap.add_argument("--results", default=None)
    args = ap.parse_args()
    if args.records < 1000 or args.rounds < 1:
        ap.error("need --records >= 1000 and --rounds >= 1")
    sluice = str(Path(args.sluice).resolve())
    psql, kcat = shutil.which("psql"), shutil.which("kcat")
    if not psql or not kcat or not os.access(sluice, os.X_OK):
        sys.exit("needs psql, kcat and a built sluice (scripts/setup.sh)")
    date = datetime.now(timezone.utc)

    envelopes, _ = kb.ensure_input(args.records, "connect-json")
    parts = kb.partitions_for(args.records * (envelopes.stat().st_size / args.records - 1 +
                                              kb.RECORD_OVERHEAD))
    pb.OUT.mkdir(parents=True, exist_ok=True)
    log("expected rows: running the file pipeline on the same records ...")
    sorted_file = pb.expected_copy_file(sluice, envelopes, args.records)
    pg = broker = db = None
    loads = []
    try:
        pg = pb.Postgres(pb.PG_BIN)
        db = pb.Psql(psql, pg.url)
        db.query(pb.DDL.read_text())
        broker = kb.Broker(sluice, [(pb.IN_TOPIC, parts)])
        kb.produce(kcat, broker, envelopes, pb.IN_TOPIC, parts, args.records)

        # The reference digest: the expected rows, loaded in key order.
        loads.append(load(psql, pg, db, broker, "one COPY, key order", sorted_file, args.records,
                          False, args.wait_idle))
        n, distinct, expected_md5 = pb.table_digest(db)
        if n != args.records or distinct != args.records:
            raise BenchError(f"psql loaded {n:,} rows ({distinct:,} distinct ids)")
        full_bytes = int(db.value(f"SELECT pg_relation_size('{pb.TABLE}')"))

        run_args = argparse.Namespace(poll_ms=pb.POLL_S * 1000, wait_idle=args.wait_idle)
        s = pb.run_sluice(sluice, pg, db, broker,
                          ("at-least-once", args.batch_size, args.max_in_flight), args.records,
                          "order", full_bytes, run_args, {})
        pb.check_table(db, args.records, expected_md5, False, parts)
        log(f"sluice: {args.records / s['steady_s']:,.0f} records/s after start-up, server "
            f"{s['server_cpu_steady_s']:.2f} CPU-s from the first row to the last")
        order_file, batches, spans = save_sluice_order(psql, pg, args.records)
        script = write_batches(order_file, batches)
        sizes = [b[1] for b in batches]
        log(f"sluice's order: {len(batches)} batches, median {statistics.median(sizes):,.0f} "
            f"rows, each spanning a median {statistics.median(spans):.0%} of the keys")

        kinds = [("one COPY, key order", sorted_file), ("one COPY, Sluice's order", order_file),
                 ("Sluice's batches, a COPY and commit each", script)]
        for rnd in range(args.rounds):
            for hog in ([False, True] if args.hog else [False]):
                for what, source in kinds:
                    r = load(psql, pg, db, broker, what, source, args.records, hog,
                             0 if hog else args.wait_idle)
                    n, distinct, md5 = pb.table_digest(db)
                    if md5 != expected_md5 or n != args.records:
                        raise BenchError(f"{what}: the table differs from the expected rows")
                    r["round"] = rnd + 1
                    loads.append(r)
                    log(f"round {rnd + 1}: {what:<42} {'(hog) ' if hog else ''}wall "
                        f"{r['wall_s']:.2f} s  server {r['server_cpu_s']:.2f} CPU-s  WAL "
                        f"{r['wal_bytes'] / 2**20:.0f} MiB  index "
                        f"{r['index_bytes'] / 2**20:.1f} MiB")
    finally:
        if broker:
            broker.stop()
        if db:
            db.close()
        if pg:
            pg.stop()

    measured = [r for r in loads if "round" in r]
    table = []
    for what, _ in kinds:
        for hog in ([False, True] if args.hog else [False]):
            rs = [r for r in measured if r["load"] == what and r["hog"] == hog]
            per_m = statistics.median(r["server_cpu_s"] for r in rs) * 1e6 / args.records
            table.append({"load": what, "hog": hog, "runs": len(rs),
                          "server_cpu_s_per_million": round(per_m, 3),
                          "server_cpu_s_range": [round(min(r["server_cpu_s"] for r in rs), 2),
                                                 round(max(r["server_cpu_s"] for r in rs), 2)],
                          "wal_mib": round(statistics.median(r["wal_bytes"] for r in rs) / 2**20),
                          "index_mib": round(statistics.median(r["index_bytes"]
                                                               for r in rs) / 2**20, 1)})
    result = {
        "benchmark": "copy-order", "date": date.isoformat(timespec="seconds"),
        "machine": kb.machine(os.getloadavg(), 0.0), "records": args.records,
        "partitions": parts,
        "sluice_run": {"batch_size": args.batch_size, "max_in_flight": args.max_in_flight,
                       "steady_records_per_s": round(args.records / s["steady_s"]),
                       "server_cpu_steady_s": round(s["server_cpu_steady_s"], 3),
                       "cpu_steady_s": round(s["cpu_steady_s"], 3)},
        "sluice_order": {"batches": len(batches), "median_rows": statistics.median(sizes),
                         "median_key_span": round(statistics.median(spans), 3)},
        "summary": table, "loads": loads,
    }
    results = Path(args.results) if args.results else \
        kb.RESULTS / f"copy-order-{date.strftime('%Y%m%dT%H%M%SZ')}.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Key-order benchmark, {result['date']}; {args.records:,} rows; Sluice's run "
          f"({args.batch_size:,} x {args.max_in_flight}): {len(batches)} batches spanning a median "
          f"{statistics.median(spans):.0%} of the keys, server {s['server_cpu_steady_s']:.2f} "
          f"CPU-s from its first row to its last")
    print("| load | other core | server CPU-s per million (median) | range | WAL MiB | index MiB |")
    print("|---|---|---:|---|---:|---:|")
    for t in table:
        print(f"| {t['load']} | {'busy' if t['hog'] else 'idle'} | "
              f"{t['server_cpu_s_per_million']:.2f} | {t['server_cpu_s_range'][0]:.2f}–"
              f"{t['server_cpu_s_range'][1]:.2f} | {t['wal_mib']} | {t['index_mib']} |")
    print(f"results: {kb.rel(results)}")


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        sys.exit(f"error: {e}")
