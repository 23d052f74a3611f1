#!/usr/bin/python3
"""Latency benchmark: per record, from produce to the row committed in PostgreSQL, at a fixed load.

The job is the iris flow as shipped: `build/sluice run pipelines/iris.yaml` (Kafka Connect envelopes
on the topic postgres-source-iris_data -> drop target -> predict -> exactly-once upsert into the
seed's table iris_prediction), while a producer (bench/latency_producer.py, Debian's
python3-confluent-kafka) offers a fixed load of --rate envelopes per second for --seconds, paced,
to the development broker. Each envelope carries its own id; the producer records the wall-clock
time of each id's send (µs), and the server, started with track_commit_timestamp = on, records
the commit time of each row's transaction: after the run, pg_xact_commit_timestamp(xmin) per row,
joined on id, gives each record's latency. Both clocks are this machine's CLOCK_REALTIME. A
commit's timestamp is taken just before its commit record's WAL flush; the flushes' mean duration
(pg_stat_wal, track_wal_io_timing = on) is reported apart.

Variants (--variants, one after the other, each on a fresh broker and an emptied table):
  iris        pipelines/iris.yaml exactly as shipped;
  fetch-wait  pipelines/iris-latency-bench.yaml (the same flow, iris.yaml's settings) with the
              consumer's fetch.wait.max.ms = --tuned-fetch-wait-ms: the development broker holds
              a fetch that finds no data for that long, even when data arrives meanwhile;
  tuned       the same, and the source's max_wait_ms = --tuned-max-wait-ms (with
              --tuned-batch-size and --tuned-max-in-flight);
  max-wait    (on request) tuned's source settings with librdkafka's fetch.wait.max.ms, 500.
The producer uses librdkafka's default linger.ms (5 ms, --linger-ms): that wait is part of
every measured latency.

Warm-up, excluded explicitly: Sluice is started first; the producer sends one envelope every 20 ms
until the pipeline has written its first row (the consumer group's first join, ~3 s on this broker)
and --settle seconds more; only then does the paced load start, and only its records are measured.
The warm-up records are reported apart (count, worst latency).

What this script does, per variant:
  1. starts `sluice dev-kafka` with the topic on enough partitions that the broker keeps every
     message of the run (its retention is 5 MiB per partition), empties the tables, takes a
     CHECKPOINT and waits (up to --wait-idle s) for a quiet machine;
  2. starts Sluice (with --metrics-addr, so its own sluice_end_to_end_latency_seconds histogram
     can be read before and after the measured phase), then the producer; after the warm-up it
     sends the producer SIGUSR1 and waits for it to finish;
  3. waits until the table holds every record, reads Sluice's metrics, stops Sluice with SIGTERM
     (it must drain and exit 0 with every record read and written and no dead letters);
  4. checks: count(*) = count(DISTINCT id) = records produced, the stored positions add up to
     them, every partition's low watermark is 0 and the highs add up (the broker dropped nothing);
  5. reads (id, commit time) of every row and computes the latencies of the measured records:
     p50, p90, p99, p99.9, max, and p99 per 10 s of the run.
It prints a table and writes bench/results/latency-<UTC time>.json.

Usage: run_latency_bench.py [--rate R] [--seconds S] [--variants LIST] [--settle S]
                            [--tuned-max-wait-ms MS] [--tuned-batch-size N]
                            [--tuned-max-in-flight N] [--tuned-fetch-wait-ms MS]
                            [--linger-ms MS] [--partitions P] [--threads N] [--sluice PATH]
                            [--psql PATH] [--pg-bin DIR] [--wait-idle S] [--results PATH]
"""
import argparse
import array
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import run_kafka_bench as kb  # noqa: E402  (the broker, watermarks, CPU accounting)
import run_pg_bench as pb  # noqa: E402  (the cluster, psql)

ROOT = kb.ROOT
OUT = kb.OUT
RESULTS = kb.RESULTS
PYTHON = "/usr/bin/python3"  # Debian's: python3-confluent-kafka, numpy, sklearn
TOPIC = "postgres-source-iris_data"  # pipelines/iris.yaml's topic
IRIS = ROOT / "pipelines" / "iris.yaml"
VARIANT = ROOT / "pipelines" / "iris-latency-bench.yaml"
PRODUCER = BENCH / "latency_producer.py"
TABLE = pb.TABLE
ENVELOPE_BYTES = 647  # a Connect envelope of an iris row, on average
TARGET_P99_MS = 50.0
OTHER_CORES_NOTE = 0.25
WINDOW_S = 10.0

BenchError = kb.BenchError
log = kb.log
rel = kb.rel


def free_port():
    return pb.free_loopback_port()


def scrape_latency(url):
    """Sluice's sluice_end_to_end_latency_seconds histogram of its sink: {le: cumulative count}."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    except OSError as e:
        log(f"warning: cannot read {url}: {e}")
        return None
    out = {}
    for line in text.splitlines():
        if not line.startswith("sluice_end_to_end_latency_seconds_bucket{"):
            continue
        m = re.search(r'le="([^"]+)"\}\s+(\S+)$', line)
        if m:
            le = float("inf") if m[1] == "+Inf" else float(m[1])
            out[le] = out.get(le, 0.0) + float(m[2])
    return out


def histogram_summary(before, after):
    """The measured phase's share of Sluice's own latency histogram: count, the share of rows at or
    under each bound, and the bucket bounds that hold p50 / p99 / p99.9."""
    if not before or not after:
        return None
    bounds = sorted(after)
    cum = [after[b] - before.get(b, 0.0) for b in bounds]
    total = cum[-1]
    if total <= 0:
        return None

    def bound_of(q):
        for b, c in zip(bounds, cum):
            if c >= q * total:
                return b
        return bounds[-1]
    return {
        "rows": int(total),
        "share_le_s": {str(b): round(c / total, 6) for b, c in zip(bounds, cum)},
        "p50_le_s": bound_of(0.5),
        "p99_le_s": bound_of(0.99),
        "p999_le_s": bound_of(0.999),
    }


def commit_times(psql, pg, path):
    """(ids, commit µs) of every row of the table, from pg_xact_commit_timestamp(xmin)."""
    sql = (f"\\copy (SELECT id, (extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000000)"
           f"::bigint FROM {TABLE} ORDER BY id) TO '{path}'")
    r = subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg.url, "-c", sql],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise BenchError(f"reading the commit timestamps failed:\n{r.stderr[-2000:]}")
    ids, times = array.array("q"), array.array("q")
    with open(path) as f:
        for line in f:
            a, b = line.split("\t")
            ids.append(int(a))
            times.append(int(b))
    return ids, times


def quantile(sorted_values, q):
    """The smallest value with at least a share q of the values at or below it."""
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


def percentiles_ms(lat_us):
    v = sorted(lat_us)
    return {"p50_ms": round(quantile(v, 0.5) / 1000, 3),
            "p90_ms": round(quantile(v, 0.9) / 1000, 3),
            "p99_ms": round(quantile(v, 0.99) / 1000, 3),
            "p999_ms": round(quantile(v, 0.999) / 1000, 3),
            "max_ms": round(v[-1] / 1000, 3), "mean_ms": round(sum(v) / len(v) / 1000, 3),
            "min_ms": round(v[0] / 1000, 3)}


VARIANTS = ("iris", "fetch-wait", "tuned")  # the default run; "max-wait" on request


def variant_env(name, args):
    """(pipeline, environment) of a variant: iris.yaml as shipped; iris-latency-bench.yaml with
    iris.yaml's settings but the consumer's fetch.wait.max.ms (fetch-wait); the same with the
    source's max_wait_ms and the batching settings too (tuned)."""
    if name == "iris":
        return IRIS, {}
    env = {"BENCH_MAX_WAIT_MS": "100", "BENCH_BATCH_SIZE": "32768", "BENCH_MAX_IN_FLIGHT": "4",
           "BENCH_FETCH_WAIT_MS": str(args.tuned_fetch_wait_ms),
           "BENCH_GROUP": f"iris-latency-bench-{time.time_ns()}"}
    if name == "fetch-wait":
        return VARIANT, env
    if name == "max-wait":  # the source's settings alone, with librdkafka's fetch.wait.max.ms
        env.update(BENCH_MAX_WAIT_MS=str(args.tuned_max_wait_ms),
                   BENCH_BATCH_SIZE=str(args.tuned_batch_size),
                   BENCH_MAX_IN_FLIGHT=str(args.tuned_max_in_flight), BENCH_FETCH_WAIT_MS="500")
        return VARIANT, env
    if name == "tuned":
        env.update(BENCH_MAX_WAIT_MS=str(args.tuned_max_wait_ms),
                   BENCH_BATCH_SIZE=str(args.tuned_batch_size),
                   BENCH_MAX_IN_FLIGHT=str(args.tuned_max_in_flight))
        return VARIANT, env
    raise BenchError(f"unknown variant {name!r} (known: {', '.join(VARIANTS)}, max-wait)")


def run_variant(name, args, sluice, psql, pg, db, parts):
    pipeline, extra = variant_env(name, args)
    tag = f"latency-{name}"
    out_dir = OUT / tag
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    broker = kb.Broker(sluice, [(TOPIC, parts)])
    sluice_p = prod_p = None
    try:
        log(f"[{name}] broker: sluice dev-kafka at {broker.bootstrap}, {TOPIC} on {parts} "
            f"partitions")
        pb.reset_tables(db)
        kb.wait_idle(args.wait_idle)
        ckpt0, lsn0 = pb.checkpoints(db), pb.wal_lsn(db)
        db.query("SELECT pg_stat_reset_shared('wal')")
        metrics_port = free_port()
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        env = dict(os.environ, KAFKA_BROKERS=broker.bootstrap, DATABASE_URL=pg.url,
                   SLUICE_OUT=str(out_dir), **extra)
        cmd = [sluice, "--log-format", "json", "run", "--metrics-addr",
               f"127.0.0.1:{metrics_port}"]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        cmd.append(str(pipeline))
        err_path = OUT / f"{tag}-sluice.stderr"
        prod_err_path = OUT / f"{tag}-producer.stderr"
        times_path = OUT / f"{tag}-send-times.bin"
        times_path.unlink(missing_ok=True)
        err = open(err_path, "wb")
        prod_err = open(prod_err_path, "wb")
        t_spawn = time.perf_counter()
        sluice_p = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                    stderr=err)
        prod_cmd = [PYTHON, str(PRODUCER), "--brokers", broker.bootstrap, "--topic", TOPIC,
                    "--times", str(times_path), "--rate", str(args.rate), "--seconds",
                    str(args.seconds), "--linger-ms", str(args.linger_ms)]
        prod_p = subprocess.Popen(prod_cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=prod_err)
        # Warm-up: until the first row is in the table, then --settle seconds.
        deadline = time.monotonic() + 90
        while int(db.value(f"SELECT count(*) FROM {TABLE}")) == 0:
            for p, what, path in ((sluice_p, "sluice", err_path),
                                  (prod_p, "the producer", prod_err_path)):
                if p.poll() is not None:
                    raise BenchError(f"[{name}] {what} exited during the warm-up "
                                     f"({p.returncode}):\n"
                                     f"{path.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                raise BenchError(f"[{name}] no row in {TABLE} within 90 s ({rel(err_path)})")
            time.sleep(0.05)
        t_first_row = time.perf_counter()
        time.sleep(args.settle)
        before = scrape_latency(metrics_url)
        meter = pb.Meter(pg, broker)
        scpu0, pcpu0 = kb.proc_cpu_s(sluice_p.pid), kb.proc_cpu_s(prod_p.pid)
        t_go = time.perf_counter()
        prod_p.send_signal(signal.SIGUSR1)
        log(f"[{name}] first row {t_first_row - t_spawn:.2f} s after spawn; measured phase: "
            f"{args.rate:,.0f} records/s for {args.seconds:g} s")
        # The producer's CPU is read while it lives: poll its end.
        pcpu = 0.0
        end = time.monotonic() + args.seconds + 180
        while prod_p.poll() is None:
            pcpu = kb.proc_cpu_s(prod_p.pid) - pcpu0
            if time.monotonic() > end:
                raise BenchError(f"[{name}] the producer did not finish ({rel(prod_err_path)})")
            if sluice_p.poll() is not None:
                raise BenchError(f"[{name}] sluice exited during the run ({sluice_p.returncode})"
                                 f":\n{err_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        t_prod_end = time.perf_counter()
        prod_err.close()
        prod_text = prod_err_path.read_text(errors="replace")
        produced = kb.last_json(prod_text, "measured_messages")
        if prod_p.returncode != 0 or produced is None or produced["delivery_errors"]:
            raise BenchError(f"[{name}] the producer failed ({prod_p.returncode}):\n"
                             f"{prod_text[-3000:]}")
        total = produced["last_id"]
        # Until every record is in the table.
        deadline = time.monotonic() + 120
        while int(db.value(f"SELECT count(*) FROM {TABLE}")) < total:
            if time.monotonic() > deadline or sluice_p.poll() is not None:
                raise BenchError(f"[{name}] {TABLE} does not hold the {total:,} records "
                                 f"({rel(err_path)})")
            time.sleep(0.1)
        t_done = time.perf_counter()
        busy, server_cpu, broker_cpu = meter.read()
        scpu = kb.proc_cpu_s(sluice_p.pid) - scpu0
        window = t_done - t_go
        after = scrape_latency(metrics_url)
        code = kb.stop_process(sluice_p, "sluice", timeout_s=30)
        err.close()
        text = err_path.read_text(errors="replace")
        if code != 0:
            raise BenchError(f"[{name}] sluice did not exit cleanly (exit {code}):\n"
                             f"{text[-3000:]}")
        summary = kb.last_json(text, "records_read")
        if summary is None or int(summary["records_read"]) != total \
                or int(summary["rows_written"]) != total or int(summary["dead_letters"]) != 0:
            raise BenchError(f"[{name}] sluice's summary does not match {total:,} records: "
                             f"{summary}")
        dead = [f for f in out_dir.iterdir() if f.stat().st_size > 0]
        if dead:
            raise BenchError(f"[{name}] sluice wrote dead letters: {[rel(f) for f in dead]}")
        # Checks: every record once, positions, the broker's retention.
        n, distinct = (int(x) for x in db.value(
            f"SELECT count(*), count(DISTINCT id) FROM {TABLE}").split("|"))
        if n != total or distinct != total:
            raise BenchError(f"[{name}] {TABLE} holds {n:,} rows ({distinct:,} distinct ids) "
                             f"for {total:,} records")
        _, stored = pb.stored_positions(db)
        if stored != total:
            raise BenchError(f"[{name}] the stored positions add up to {stored:,}, expected "
                             f"{total:,}")
        lows = broker.wire.offsets(TOPIC, parts, -2)
        highs = broker.wire.offsets(TOPIC, parts, -1)
        if any(lows.values()) or sum(highs.values()) != total:
            raise BenchError(f"[{name}] the broker dropped messages: low watermarks "
                             f"{sum(1 for v in lows.values() if v)} partitions > 0, highs sum to "
                             f"{sum(highs.values()):,} for {total:,}")
        broker.check_no_drops("at the end")
        ckpts = pb.checkpoints(db) - ckpt0
        # The WAL flushes (fdatasync) of the run: a commit's timestamp is taken just before its
        # commit record is flushed, so the row is durable and visible one flush later.
        syncs, sync_ms = db.value("SELECT wal_sync, wal_sync_time FROM pg_stat_wal").split("|")
        syncs, sync_ms = int(syncs), float(sync_ms)
        wal = pb.wal_bytes(db, lsn0)
        # Latencies, joined on id.
        sent_us = array.array("q")
        sent_us.frombytes(times_path.read_bytes())
        if len(sent_us) != total:
            raise BenchError(f"[{name}] {len(sent_us):,} send times for {total:,} records")
        ids, commit_us = commit_times(psql, pg, OUT / f"{tag}-commit-times.tsv")
        if len(ids) != total or any(i != k + 1 for k, i in enumerate(ids)):
            raise BenchError(f"[{name}] the table's ids are not 1..{total:,}")
        lat = [c - s for c, s in zip(commit_us, sent_us)]  # µs, index = id - 1
        first = produced["first_measured_id"] - 1
        measured, warm = lat[first:], lat[:first]
        negative = sum(1 for x in measured if x < 0)
        if negative:
            raise BenchError(f"[{name}] {negative} rows committed before they were sent: the "
                             "clocks disagree")
        stats = percentiles_ms(measured)
        # p50 / p99 per 10 s of the run (by send time), to show whether it drifts.
        by_window = {}
        t0 = sent_us[first]
        last = max(0, math.ceil(args.seconds / WINDOW_S - 1e-9) - 1)  # the tail joins the last
        for s_us, x in zip(sent_us[first:], measured):
            by_window.setdefault(min(last, int((s_us - t0) / 1e6 // WINDOW_S)), []).append(x)
        windows = []
        for k in sorted(by_window):
            v = sorted(by_window[k])
            windows.append({"from_s": k * WINDOW_S, "records": len(v),
                            "p50_ms": round(quantile(v, 0.5) / 1000, 2),
                            "p99_ms": round(quantile(v, 0.99) / 1000, 2),
                            "max_ms": round(v[-1] / 1000, 2)})
        hist = histogram_summary(before, after)
        # Batches: how many transactions (distinct commit times) the measured rows took.
        txns = len(set(commit_us[first:]))
        result = {
            "variant": name,
            "pipeline": rel(pipeline),
            "env": {k: v for k, v in extra.items() if k != "BENCH_GROUP"},
            "partitions": parts,
            "warmup_records": first,
            "warmup_max_ms": round(max(warm) / 1000, 1) if first else None,
            "first_row_after_s": round(t_first_row - t_spawn, 3),
            "settle_s": args.settle,
            "measured_records": int(len(measured)),
            "offered": produced,
            "latency": stats,
            "windows": windows,
            "transactions": txns,
            "rows_per_transaction": round(len(measured) / max(txns, 1), 1),
            "sluice_histogram": hist,
            "drain_after_producer_s": round(t_done - t_prod_end, 3),
            "cpu": {"sluice_s": round(scpu, 2), "server_s": round(server_cpu, 2),
                    "broker_s": round(broker_cpu, 2), "producer_s": round(pcpu, 2),
                    "window_s": round(window, 2),
                    "other_cores": round(max(0.0, (busy - scpu - server_cpu - broker_cpu - pcpu)
                                             / window), 3)},
            "checkpoints": ckpts,
            "wal_bytes": wal,
            "wal_syncs": syncs,
            "wal_sync_mean_ms": round(sync_ms / syncs, 3) if syncs else None,
            "sluice_summary": summary,
        }
        return result
    finally:
        for p, what in ((prod_p, "producer"), (sluice_p, "sluice")):
            if p is not None:
                kb.stop_process(p, what, timeout_s=10)
        broker.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=10_000.0,
                    help="records per second offered (default 10,000)")
    ap.add_argument("--seconds", type=float, default=60.0,
                    help="length of the measured phase (default 60)")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="comma-separated: iris (pipelines/iris.yaml as shipped), fetch-wait "
                         "(pipelines/iris-latency-bench.yaml: iris.yaml's settings, the "
                         "consumer's fetch.wait.max.ms = --tuned-fetch-wait-ms), tuned (that and "
                         "the other --tuned-* settings), max-wait (the --tuned-* settings but "
                         "librdkafka's fetch.wait.max.ms of 500); default: iris,fetch-wait,tuned")
    ap.add_argument("--tuned-max-wait-ms", type=int, default=10)
    ap.add_argument("--tuned-batch-size", type=int, default=8192)
    ap.add_argument("--tuned-max-in-flight", type=int, default=8)
    ap.add_argument("--tuned-fetch-wait-ms", type=int, default=5)
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds of warm-up after the first row, before the load (default 2)")
    ap.add_argument("--linger-ms", type=float, default=5.0,
                    help="the producer's linger.ms (default 5, librdkafka's own)")
    ap.add_argument("--partitions", type=int, default=0,
                    help="default: enough for the broker to keep every message")
    ap.add_argument("--threads", type=int, default=0, help="Sluice's --threads (default: all)")
    ap.add_argument("--sluice", default=str(ROOT / "build" / "sluice"))
    ap.add_argument("--psql", default="psql")
    ap.add_argument("--pg-bin", default=str(pb.PG_BIN))
    ap.add_argument("--wait-idle", type=float, default=pb.WAIT_IDLE_S, metavar="SECONDS")
    ap.add_argument("--results", default=None, metavar="PATH",
                    help="default bench/results/latency-<UTC time>.json")
    args = ap.parse_args()
    if args.rate <= 0 or args.seconds <= 0:
        ap.error("--rate and --seconds must be positive")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    sluice = str(Path(args.sluice).resolve())
    if not os.access(sluice, os.X_OK):
        sys.exit(f"{args.sluice}: not an executable; build first (scripts/setup.sh)")
    psql = shutil.which(args.psql)
    if not psql:
        sys.exit(f"{args.psql}: not found (Debian: apt-get install postgresql-client)")
    probe = subprocess.run([PYTHON, "-c", "import confluent_kafka, sklearn"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        sys.exit(f"{PYTHON} lacks a module: {probe.stderr.strip().splitlines()[-1]} (Debian: "
                 "apt-get install python3-confluent-kafka python3-sklearn)")
    for v in variants:
        pipeline, extra = variant_env(v, args)
        r = subprocess.run([sluice, "validate", str(pipeline)], cwd=ROOT, capture_output=True,
                           text=True, env=dict(os.environ, **extra))
        if r.returncode != 0:
            sys.exit(f"{rel(pipeline)} does not validate:\n{r.stdout}{r.stderr}")
    records = int(args.rate * args.seconds) + 2000  # and the warm-up's trickle
    parts = args.partitions or kb.partitions_for(records * (ENVELOPE_BYTES + kb.RECORD_OVERHEAD))
    OUT.mkdir(parents=True, exist_ok=True)
    versions = {
        "sluice": subprocess.run([sluice, "--version"], capture_output=True,
                                 text=True).stdout.strip(),
        "psql": subprocess.run([psql, "--version"], capture_output=True, text=True).stdout.strip(),
        "python": subprocess.run([PYTHON, "-c", (
            "import sys, confluent_kafka; print(sys.version.split()[0], 'confluent-kafka', "
            "confluent_kafka.version()[0], 'librdkafka', confluent_kafka.libversion()[0])")],
            capture_output=True, text=True).stdout.strip(),
    }
    load = os.getloadavg()
    t_begin = time.monotonic()
    pg = db = None
    results = []
    try:
        pg = pb.Postgres(args.pg_bin, settings=["track_commit_timestamp=on",
                                                "track_wal_io_timing=on"])
        db = pb.Psql(psql, pg.url)
        db.query(pb.DDL.read_text())
        settings = pb.server_settings(db)
        settings["track_commit_timestamp"] = db.value("SHOW track_commit_timestamp")
        if settings["track_commit_timestamp"] != "on":
            raise BenchError("the server did not take track_commit_timestamp = on")
        log(f"postgres: {pg.url}; " + ", ".join(f"{k}={settings[k]}" for k in (
            "fsync", "synchronous_commit", "wal_sync_method", "track_commit_timestamp")))
        for v in variants:
            r = run_variant(v, args, sluice, psql, pg, db, parts)
            results.append(r)
            s, o = r["latency"], r["offered"]
            log(f"[{v}] {r['measured_records']:,} records at {o['rate_achieved']:,.0f}/s: "
                f"p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, p99.9 {s['p999_ms']:.1f} "
                f"ms, max {s['max_ms']:.1f} ms; {r['rows_per_transaction']:.0f} rows per "
                f"transaction; others busy {r['cpu']['other_cores']:.2f} cores")
    except (BenchError, OSError, subprocess.SubprocessError) as e:
        sys.exit(f"error: {e}")
    finally:
        if db is not None:
            db.close()
        if pg is not None:
            pg.stop()
    report(args, results, versions, settings, parts, load, time.monotonic() - t_begin)


def report(args, results, versions, settings, parts, load, elapsed):
    date = datetime.now(timezone.utc)
    other_max = max(r["cpu"]["other_cores"] for r in results)
    out = {
        "benchmark": "latency",
        "date": date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": kb.machine(load, other_max),
        "versions": versions,
        "server_settings": settings,
        "topic": TOPIC,
        "partitions": parts,
        "rate": args.rate,
        "seconds": args.seconds,
        "settle_s": args.settle,
        "producer_linger_ms": args.linger_ms,
        "target_p99_ms": TARGET_P99_MS,
        "seconds_total": round(elapsed, 1),
        "variants": results,
        "targets": [{"variant": r["variant"], "p99_ms": r["latency"]["p99_ms"],
                     "met": r["latency"]["p99_ms"] < TARGET_P99_MS} for r in results],
    }
    path = Path(args.results) if args.results else \
        RESULTS / f"latency-{date.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"Latency benchmark, {out['date']}, {os.cpu_count()} CPUs ({kb.cpu_model()}); "
          f"{args.rate:,.0f} Connect envelopes/s offered for {args.seconds:g} s to {parts} "
          f"partitions of `sluice dev-kafka`; PostgreSQL {settings.get('server_version', '?')} "
          f"(fsync={settings.get('fsync')}, synchronous_commit="
          f"{settings.get('synchronous_commit')}); {elapsed / 60:.1f} min in all")
    print()
    print("| variant | settings | records | offered/s | p50 ms | p90 ms | p99 ms | p99.9 ms | "
          "max ms | rows/txn | sluice cpu s | server cpu s | broker cpu s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        s, c = r["latency"], r["cpu"]
        env = r["env"]
        settings_txt = ("as shipped" if r["variant"] == "iris" else
                        f"max_wait_ms {env['BENCH_MAX_WAIT_MS']}, batch_size "
                        f"{env['BENCH_BATCH_SIZE']}, max_in_flight {env['BENCH_MAX_IN_FLIGHT']}, "
                        f"fetch.wait.max.ms {env['BENCH_FETCH_WAIT_MS']}")
        print(f"| {r['variant']}: {r['pipeline']} | {settings_txt} | {r['measured_records']:,} | "
              f"{r['offered']['rate_achieved']:,.0f} | {s['p50_ms']:.1f} | {s['p90_ms']:.1f} | "
              f"{s['p99_ms']:.1f} | {s['p999_ms']:.1f} | {s['max_ms']:.1f} | "
              f"{r['rows_per_transaction']:.0f} | {c['sluice_s']:.2f} | {c['server_s']:.2f} | "
              f"{c['broker_s']:.2f} |")
    print()
    for r in results:
        h = r["sluice_histogram"]
        w = ", ".join(f"{x['p99_ms']:.0f}" for x in r["windows"])
        print(f"{r['variant']}: warm-up excluded: {r['warmup_records']} records (first row "
              f"{r['first_row_after_s']:.1f} s after spawn, worst {r['warmup_max_ms']} ms) and "
              f"{r['settle_s']:g} s more; p99 per {WINDOW_S:.0f} s: {w} ms; WAL flush "
              f"{r['wal_sync_mean_ms']} ms on average ({r['wal_syncs']:,}), after the commit "
              "timestamp"
              + (f"; Sluice's own histogram: p50 ≤ {h['p50_le_s'] * 1000:g} ms, "
                 f"p99 ≤ {h['p99_le_s'] * 1000:g} ms, p99.9 ≤ {h['p999_le_s'] * 1000:g} ms "
                 f"({h['rows']:,} rows)" if h else ""))
    for t in out["targets"]:
        print(f"target: p99 < {TARGET_P99_MS:g} ms, {t['variant']}: {t['p99_ms']:.1f} ms "
              f"({'met' if t['met'] else 'NOT met'})")
    print(f"checked: every record in {TABLE} exactly once, positions stored, the broker dropped "
          "nothing")
    print(f"results: {rel(path)}")
    if other_max > OTHER_CORES_NOTE:
        print(f"note: other processes kept up to {other_max:.2f} of the {os.cpu_count()} cores "
              "busy during a run: the machine was not idle, figures are pessimistic")


if __name__ == "__main__":
    main()
