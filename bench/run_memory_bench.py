#!/usr/bin/python3
"""Memory benchmark: Sluice's peak RSS while it works off a backlog of 10,000,000 Kafka messages.

The job: the iris flow, Kafka -> decode -> drop target -> predict -> PostgreSQL
(pipelines/iris-memory-bench.yaml: the kafka source, `format: json`, into the seed's table
iris_prediction with the postgres sink, one COPY and one commit per batch), started only once the
whole backlog is on the topic. Memory must be bounded by configuration (batch size, batches in
flight, the consumer's read-ahead), never by the backlog's size.

What this script does:
  1. generates the input once into bench/data/: --records plain JSON rows of
     schemas/iris_data.json (~135 bytes each; ids 1..N, the 150 iris rows in turn, timestamps
     one second apart), or with --format connect-json the Kafka Connect envelopes of the other
     benchmarks (~650 bytes, as on pipelines/iris.yaml's topic);
  2. starts a throwaway PostgreSQL 15 cluster (durable defaults) with the table of
     pipelines/sql/iris_prediction.sql and `sluice dev-kafka` with the topic on enough partitions
     that the broker keeps every message (it keeps only 5 MiB per partition), produces the input
     with kcat and checks every partition's low watermark is 0 and the highs add up;
  3. waits (up to --wait-idle s) for a quiet machine, starts `sluice run` and samples its
     VmRSS (/proc/PID/status) every --sample-ms, and the table's size on disk (pg_relation_size,
     through one psql session) every --poll-ms, until the table holds every row; then SIGTERM
     (Sluice must drain and exit 0 with every record read and written, no dead letters); the
     peak is the largest of the samples, VmHWM read just before SIGTERM, and the kernel's
     ru_maxrss at exit (which covers the drain too);
  4. checks: count(*) = count(DISTINCT id) = --records, every low watermark still 0;
  5. reports peak RSS, RSS at 10/25/50/75/90% of the rows written (progress = the table's size
     over its final size, which grows with the rows: insert only), records/s, and writes
     bench/results/memory-<UTC time>.json.

Usage: run_memory_bench.py [--records N] [--batch-size N] [--max-in-flight N]
                           [--delivery at-least-once|exactly-once] [--partitions P]
                           [--format json|connect-json]
                           [--sluice-env NAME=VALUE ...]
                           [--sample-ms MS] [--poll-ms MS] [--threads N] [--sluice PATH]
                           [--kcat PATH] [--psql PATH] [--pg-bin DIR] [--wait-idle S]
                           [--results PATH]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import run_kafka_bench as kb  # noqa: E402  (the broker, producing, watermarks, CPU accounting)
import run_pg_bench as pb  # noqa: E402  (the cluster, psql)

ROOT = kb.ROOT
DATA = kb.DATA
OUT = kb.OUT
RESULTS = kb.RESULTS
PIPELINE = ROOT / "pipelines" / "iris-memory-bench.yaml"
TOPIC = "iris-memory-bench-in"
TABLE = pb.TABLE
TARGET_MIB = 256.0
PROGRESS_POINTS = (0.10, 0.25, 0.50, 0.75, 0.90)
OTHER_CORES_NOTE = 0.25
START = datetime(2026, 1, 1, tzinfo=timezone.utc)

BenchError = kb.BenchError
log = kb.log
rel = kb.rel


# ---- input ---------------------------------------------------------------------------------------

def iris_rows():
    """The 150 iris rows (measurements, target) in the order of the demo data, read from its good
    lines (pipelines/data/iris_data.jsonl: Connect envelopes, some deliberately bad)."""
    rows = []
    with open(ROOT / "pipelines" / "data" / "iris_data.jsonl") as f:
        for line in f:
            try:
                p = json.loads(line)["payload"]
                row = ([float(p[k]) for k in ("sepal_length", "sepal_width", "petal_length",
                                              "petal_width")], int(p["target"]))
            except (ValueError, KeyError, TypeError):
                continue
            rows.append(row)
            if len(rows) == kb.IRIS_ROWS:
                break
    if len(rows) != kb.IRIS_ROWS:
        raise BenchError(f"pipelines/data/iris_data.jsonl: {len(rows)} good rows, expected 150")
    return rows


def ensure_input(records):
    """bench/data/memory-iris-json-N.jsonl: N JSON rows, made once."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"memory-iris-json-{records}.jsonl"
    if path.exists() and kb.count_lines(path) == records:
        return path
    need = records * 140
    free = shutil.disk_usage(DATA).free
    if free < need * 1.5:
        raise BenchError(f"{rel(DATA)}: {free / 2**30:.1f} GiB free, the input needs "
                         f"{need / 2**30:.1f} GiB")
    log(f"input: generating {records:,} JSON rows into {rel(path)} ...")
    t = time.perf_counter()
    tails = []
    for x, y in iris_rows():
        tails.append(f'","sepal_length":{x[0]!r},"sepal_width":{x[1]!r},'
                     f'"petal_length":{x[2]!r},"petal_width":{x[3]!r},"target":{y}}}\n')
    days = {}
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        chunk = []
        for i in range(1, records + 1):
            secs = i - 1
            d, rest = divmod(secs, 86400)
            day = days.get(d)
            if day is None:
                day = days[d] = (START + timedelta(days=d)).strftime("%Y-%m-%d")
            h, rest = divmod(rest, 3600)
            m, s = divmod(rest, 60)
            chunk.append(f'{{"id":{i},"timestamp":"{day}T{h:02d}:{m:02d}:{s:02d}.'
                         f'{(i * 7) % 1000:03d}Z{tails[(i - 1) % kb.IRIS_ROWS]}')
            if len(chunk) == 100_000:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))
    tmp.replace(path)
    log(f"input: {path.stat().st_size / 2**20:,.0f} MiB in {time.perf_counter() - t:.0f} s")
    return path


# ---- sampling ---------------------------------------------------------------------------------

def proc_status(pid):
    """{VmRSS, VmHWM, RssAnon, RssFile, Threads...} of a live process, in KiB (Threads: count)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads"):
                    out[k] = int(v.split()[0])
    except (OSError, ValueError):
        pass
    return out


class RssSampler(threading.Thread):
    """VmRSS of a process every interval_s, with the time of each sample."""

    def __init__(self, pid, interval_s):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval_s
        self.samples = []  # (perf_counter, VmRSS KiB, RssAnon KiB)
        self.stop_flag = threading.Event()

    def run(self):
        nxt = time.perf_counter()
        while not self.stop_flag.is_set():
            st = proc_status(self.pid)
            if st.get("VmRSS"):  # 0 while the process is being spawned
                self.samples.append((time.perf_counter(), st["VmRSS"], st.get("RssAnon", 0)))
            nxt += self.interval
            time.sleep(max(0.0, nxt - time.perf_counter()))

    def stop(self):
        self.stop_flag.set()
        self.join(timeout=5)


# ---- the run -----------------------------------------------------------------------------------

def run_sluice(sluice, pg, db, broker, args, records):
    env = dict(os.environ, KAFKA_BROKERS=broker.bootstrap, DATABASE_URL=pg.url,
               BENCH_INPUT_TOPIC=TOPIC, BENCH_GROUP=f"iris-memory-bench-{time.time_ns()}",
               BENCH_DELIVERY=args.delivery, BENCH_FORMAT=args.format,
               BENCH_BATCH_SIZE=str(args.batch_size),
               BENCH_MAX_IN_FLIGHT=str(args.max_in_flight),
               BENCH_DEAD_LETTER=str(OUT / "memory-sluice.dead-letter.jsonl"))
    env.update(args.extra_env)
    dead = Path(env["BENCH_DEAD_LETTER"])
    dead.unlink(missing_ok=True)
    cmd = [sluice, "--log-format", "json", "run"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    cmd.append(str(PIPELINE))
    pb.reset_tables(db)
    kb.wait_idle(args.wait_idle)
    ckpt0, lsn0 = pb.checkpoints(db), pb.wal_lsn(db)
    err_path = OUT / "memory-sluice.stderr"
    sizes = []  # (perf_counter, table bytes)
    timeout_s = max(300.0, records / 10_000)
    t_first = t_done = None
    with open(err_path, "wb") as err:
        meter = pb.Meter(pg, broker)
        start = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        sampler = RssSampler(p.pid, args.sample_ms / 1000)
        sampler.start()
        try:
            stalled = 0
            while True:
                if p.poll() is not None:
                    raise BenchError(f"sluice exited early ({p.returncode}):\n"
                                     f"{err_path.read_text(errors='replace')[-3000:]}")
                size = int(db.value(f"SELECT pg_relation_size('{TABLE}')"))
                now = time.perf_counter()
                stalled = stalled + 1 if sizes and size == sizes[-1][1] and size > 0 else 0
                sizes.append((now, size))
                if size > 0 and t_first is None:
                    t_first = now
                    cpu_first = kb.proc_cpu_s(p.pid)
                    busy_first, server_first, bcpu_first = meter.read()
                # Count once the table is about full (~157 rows per 8 kB page) or stops growing.
                if (size >= 0.97 * records / 157 * 8192 or stalled >= 4) and \
                        int(db.value(f"SELECT count(*) FROM {TABLE}")) >= records:
                    t_done = time.perf_counter()
                    break
                if now - start > timeout_s:
                    raise BenchError(f"sluice: not done after {timeout_s:.0f} s "
                                     f"({rel(err_path)})")
                time.sleep(args.poll_ms / 1000)
            cpu = kb.proc_cpu_s(p.pid)
            busy, server_cpu, broker_cpu = meter.read()
            hwm = proc_status(p.pid).get("VmHWM", 0)
            sampler.stop()
            # SIGTERM: drain and exit; ru_maxrss covers the whole life, the drain included.
            p.send_signal(15)
            status, ru = kb.wait_rusage(p, 60)
            if ru is None:
                raise BenchError("sluice did not exit within 60 s of SIGTERM")
            code = os.waitstatus_to_exitcode(status)
        finally:
            sampler.stop()
            kb.stop_process(p, "sluice", timeout_s=5)
    text = err_path.read_text(errors="replace")
    if code != 0:
        raise BenchError(f"sluice did not exit cleanly (exit {code}):\n{text[-3000:]}")
    summary = kb.last_json(text, "records_read")
    if summary is None or int(summary["records_read"]) != records \
            or int(summary["rows_written"]) != records or int(summary["dead_letters"]) != 0:
        raise BenchError(f"sluice's summary does not match {records:,} records: {summary}")
    if dead.exists() and dead.stat().st_size > 0:
        raise BenchError(f"sluice wrote dead letters: {rel(dead)}")
    if t_first is None:
        t_first, cpu_first, busy_first, server_first, bcpu_first = \
            t_done, cpu, busy, server_cpu, broker_cpu
    window = t_done - start
    steady = max(t_done - t_first, 1e-9)
    return {
        "wall_s": t_done - start,
        "startup_s": t_first - start,
        "steady_s": steady,
        "cpu_s": cpu,
        "server_cpu_s": server_cpu,
        "broker_cpu_s": broker_cpu,
        "other_cores": max(0.0, (busy - cpu - server_cpu - broker_cpu) / window),
        "other_cores_steady": max(0.0, (busy - busy_first - (cpu - cpu_first) -
                                        (server_cpu - server_first) -
                                        (broker_cpu - bcpu_first)) / steady),
        "vm_hwm_kib": hwm,
        "ru_maxrss_kib": ru.ru_maxrss,
        "samples": [(t - start, rss, anon) for t, rss, anon in sampler.samples],
        "sizes": [(t - start, s) for t, s in sizes],
        "checkpoints": pb.checkpoints(db) - ckpt0,
        "wal_bytes": pb.wal_bytes(db, lsn0),
        "self_seconds": float(summary["seconds"]),
        "summary": summary,
    }


def rss_by_decile(samples, sizes, final_size):
    """Min / median / max VmRSS (KiB) of the samples taken while the table went from k/10 to
    (k+1)/10 of its final size, k = 0..9."""
    out = []
    for k in range(10):
        t0 = next((t for t, s in sizes if s >= k / 10 * final_size and s > 0), None)
        t1 = next((t for t, s in sizes if s >= (k + 1) / 10 * final_size), None)
        sel = sorted(rss for t, rss, _ in samples
                     if t0 is not None and t0 <= t and (t1 is None or t <= t1))
        out.append(None if not sel else
                   {"from": f"{k * 10}%", "samples": len(sel), "min_kib": sel[0],
                    "median_kib": sel[len(sel) // 2], "max_kib": sel[-1]})
    return out


def rss_at_progress(samples, sizes, final_size):
    """VmRSS (KiB) of the sample nearest to the time the table reached each share of its size."""
    out = {}
    for frac in PROGRESS_POINTS:
        t = next((t for t, s in sizes if s >= frac * final_size), None)
        if t is None or not samples:
            out[f"{round(frac * 100)}%"] = None
            continue
        st, rss, _ = min(samples, key=lambda x: abs(x[0] - t))
        out[f"{round(frac * 100)}%"] = {"t_s": round(st, 2), "vm_rss_kib": rss}
    return out


# ---- main -------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=10_000_000,
                    help="messages on the topic before Sluice starts (default 10,000,000)")
    ap.add_argument("--batch-size", type=int, default=pb.BATCH_SIZE,
                    help=f"the pipeline's settings.batch_size (default {pb.BATCH_SIZE:,}, as the "
                         "PostgreSQL benchmark and pipelines/iris.yaml)")
    ap.add_argument("--max-in-flight", type=int, default=pb.MAX_IN_FLIGHT,
                    help=f"settings.max_in_flight (default {pb.MAX_IN_FLIGHT})")
    ap.add_argument("--delivery", choices=["at-least-once", "exactly-once"],
                    default="at-least-once")
    ap.add_argument("--format", choices=["json", "connect-json"], default="json",
                    help="the messages: plain JSON rows (default, ~135 bytes) or the Kafka "
                         "Connect envelopes of pipelines/iris.yaml's topic (~650 bytes)")
    ap.add_argument("--partitions", type=int, default=0,
                    help="default: enough for the broker to keep every message")
    ap.add_argument("--sluice-env", action="append", default=[], metavar="NAME=VALUE",
                    help="more environment for Sluice, e.g. BENCH_READ_AHEAD_KIB=4096")
    ap.add_argument("--sample-ms", type=float, default=100.0,
                    help="RSS sampling interval (default 100)")
    ap.add_argument("--poll-ms", type=float, default=250.0,
                    help="table size polling interval (default 250)")
    ap.add_argument("--threads", type=int, default=0, help="Sluice's --threads (default: all)")
    ap.add_argument("--sluice", default=str(ROOT / "build" / "sluice"))
    ap.add_argument("--kcat", default="kcat")
    ap.add_argument("--psql", default="psql")
    ap.add_argument("--pg-bin", default=str(pb.PG_BIN))
    ap.add_argument("--wait-idle", type=float, default=pb.WAIT_IDLE_S, metavar="SECONDS")
    ap.add_argument("--results", default=None, metavar="PATH",
                    help="default bench/results/memory-<UTC time>.json")
    args = ap.parse_args()
    if args.records < 1000:
        ap.error("need --records >= 1000")
    if any("=" not in e for e in args.sluice_env):
        ap.error("--sluice-env takes NAME=VALUE")
    args.extra_env = dict(e.split("=", 1) for e in args.sluice_env)
    sluice = str(Path(args.sluice).resolve())
    if not os.access(sluice, os.X_OK):
        sys.exit(f"{args.sluice}: not an executable; build first (scripts/setup.sh)")
    tools = {}
    for name, hint in ((args.psql, "postgresql-client"), (args.kcat, "kcat")):
        tools[name] = shutil.which(name)
        if not tools[name]:
            sys.exit(f"{name}: not found (Debian: apt-get install {hint})")
    psql, kcat = tools[args.psql], tools[args.kcat]
    v = subprocess.run([sluice, "validate", str(PIPELINE)], cwd=ROOT, capture_output=True,
                       text=True, env=dict(os.environ, BENCH_DELIVERY=args.delivery,
                                           BENCH_FORMAT=args.format))
    if v.returncode != 0:
        sys.exit(f"{rel(PIPELINE)} does not validate:\n{v.stdout}{v.stderr}")
    t_begin = time.monotonic()
    pg = db = broker = None
    try:
        if args.format == "json":
            path = ensure_input(args.records)
        else:
            path = kb.ensure_input(args.records, "connect-json")[0]
        size = path.stat().st_size
        msg_bytes = size / args.records - 1
        parts = args.partitions or kb.partitions_for(
            args.records * (msg_bytes + kb.RECORD_OVERHEAD))
        what = "JSON rows" if args.format == "json" else "Connect envelopes"
        log(f"input: {rel(path)}, {args.records:,} {what} of {msg_bytes:.0f} bytes "
            f"({size / 2**20:,.0f} MiB); topic {TOPIC} on {parts} partitions")
        OUT.mkdir(parents=True, exist_ok=True)
        versions = {
            "sluice": subprocess.run([sluice, "--version"], capture_output=True,
                                     text=True).stdout.strip(),
            "psql": subprocess.run([psql, "--version"], capture_output=True,
                                   text=True).stdout.strip(),
            "kcat": next((l.strip() for l in subprocess.run(
                [kcat, "-V"], capture_output=True, text=True).stdout.splitlines()
                if l.startswith("Version")), ""),
        }
        load = os.getloadavg()
        pg = pb.Postgres(args.pg_bin)
        db = pb.Psql(psql, pg.url)
        db.query(pb.DDL.read_text())
        settings = pb.server_settings(db)
        log(f"postgres: {pg.url}; " + ", ".join(f"{k}={settings[k]}" for k in (
            "fsync", "synchronous_commit", "wal_sync_method")))
        broker = kb.Broker(sluice, [(TOPIC, parts)])
        log(f"broker: sluice dev-kafka at {broker.bootstrap} (pid {broker.p.pid})")
        produced = kb.produce(kcat, broker, path, TOPIC, parts, args.records)
        broker_rss = proc_status(broker.p.pid).get("VmRSS", 0)
        log(f"sluice: {rel(PIPELINE)}, {args.delivery}, batches of {args.batch_size:,} x "
            f"{args.max_in_flight} in flight; backlog {args.records:,} messages")
        r = run_sluice(sluice, pg, db, broker, args, args.records)
        n, distinct = (int(x) for x in db.value(
            f"SELECT count(*), count(DISTINCT id) FROM {TABLE}").split("|"))
        if n != args.records or distinct != args.records:
            raise BenchError(f"{TABLE} holds {n:,} rows with {distinct:,} distinct ids, "
                             f"expected {args.records:,}")
        lows = broker.wire.offsets(TOPIC, parts, -2)
        if any(lows.values()):
            raise BenchError("the broker dropped messages during the run (low watermark > 0)")
        broker.check_no_drops("at the end")
        final_size = int(db.value(f"SELECT pg_relation_size('{TABLE}')"))
    except (BenchError, OSError, subprocess.SubprocessError) as e:
        sys.exit(f"error: {e}")
    finally:
        if db is not None:
            db.close()
        if broker is not None:
            broker.stop()
        if pg is not None:
            pg.stop()
    report(args, r, versions, settings, parts, msg_bytes, produced, broker_rss, final_size, load,
           time.monotonic() - t_begin)


def report(args, r, versions, settings, parts, msg_bytes, produced, broker_rss, final_size, load,
           elapsed):
    n = args.records
    samples = r["samples"]
    peak_sample = max(samples, key=lambda x: x[1]) if samples else (0, 0, 0)
    peak_kib = max(peak_sample[1], r["vm_hwm_kib"], r["ru_maxrss_kib"])
    points = rss_at_progress(samples, r["sizes"], final_size)
    deciles = rss_by_decile(samples, r["sizes"], final_size)
    # Flatness: RSS over the middle of the run (10% to 90% of the rows).
    t10 = (points.get("10%") or {}).get("t_s")
    t90 = (points.get("90%") or {}).get("t_s")
    mid = [s[1] for s in samples if t10 is not None and t90 is not None and t10 <= s[0] <= t90]
    date = datetime.now(timezone.utc)
    mib = lambda kib: round(kib / 1024, 1)  # noqa: E731
    other = max(r["other_cores"], r["other_cores_steady"])
    result = {
        "benchmark": "memory",
        "date": date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": kb.machine(load, other),
        "versions": versions,
        "server_settings": settings,
        "records": n,
        "message_bytes": round(msg_bytes, 1),
        "topic": TOPIC,
        "partitions": parts,
        "produce_seconds": produced["seconds"],
        "broker_rss_mib": mib(broker_rss),
        "pipeline": rel(PIPELINE),
        "settings": {"batch_size": args.batch_size, "max_in_flight": args.max_in_flight,
                     "delivery": args.delivery, "format": args.format,
                     "threads": args.threads or os.cpu_count(),
                     "env": args.extra_env},
        "target_mib": TARGET_MIB,
        "peak_rss_mib": mib(peak_kib),
        "peak_sample": {"t_s": round(peak_sample[0], 2), "vm_rss_mib": mib(peak_sample[1])},
        "vm_hwm_mib": mib(r["vm_hwm_kib"]),
        "ru_maxrss_mib": mib(r["ru_maxrss_kib"]),
        "rss_at_progress_mib": {k: (None if v is None else {"t_s": v["t_s"],
                                                           "vm_rss_mib": mib(v["vm_rss_kib"])})
                                for k, v in points.items()},
        "rss_10_to_90_mib": {"min": mib(min(mid)), "max": mib(max(mid))} if mid else None,
        "rss_by_decile_mib": [None if d is None else
                              {"from": d["from"], "samples": d["samples"],
                               "min": mib(d["min_kib"]), "median": mib(d["median_kib"]),
                               "max": mib(d["max_kib"])} for d in deciles],
        "records_per_s": round(n / r["wall_s"]),
        "records_per_s_after_startup": round(n / r["steady_s"]),
        "wall_s": round(r["wall_s"], 3),
        "startup_s": round(r["startup_s"], 3),
        "cpu_s": round(r["cpu_s"], 2),
        "server_cpu_s": round(r["server_cpu_s"], 2),
        "broker_cpu_s": round(r["broker_cpu_s"], 2),
        "other_cores": round(r["other_cores"], 3),
        "other_cores_steady": round(r["other_cores_steady"], 3),
        "checkpoints": r["checkpoints"],
        "wal_bytes": r["wal_bytes"],
        "table_bytes": final_size,
        "sluice_summary": r["summary"],
        "rss_samples": [[round(t, 2), rss] for t, rss, _ in samples],
        "rss_anon_samples": [[round(t, 2), anon] for t, _, anon in samples],
        "table_size_samples": [[round(t, 2), s] for t, s in r["sizes"]],
        "seconds_total": round(elapsed, 1),
        "target_met": peak_kib / 1024 < TARGET_MIB,
    }
    path = Path(args.results) if args.results else \
        RESULTS / f"memory-{date.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Memory benchmark, {result['date']}, {os.cpu_count()} CPUs ({kb.cpu_model()}); "
          f"{n:,} {'JSON rows' if args.format == 'json' else 'Connect envelopes'} of "
          f"{msg_bytes:.0f} bytes on {parts} partitions of `sluice dev-kafka` "
          f"before start; {rel(PIPELINE)} ({args.delivery}, batches of {args.batch_size:,} x "
          f"{args.max_in_flight}); PostgreSQL {settings.get('server_version', '?')}; "
          f"{elapsed / 60:.1f} min in all")
    print()
    print("| progress | 10% | 25% | 50% | 75% | 90% | peak | VmHWM | ru_maxrss |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    cells = []
    for k in ("10%", "25%", "50%", "75%", "90%"):
        v = result["rss_at_progress_mib"].get(k)
        cells.append("" if v is None else f"{v['vm_rss_mib']:.1f}")
    print(f"| RSS MiB | {' | '.join(cells)} | {result['peak_rss_mib']:.1f} | "
          f"{result['vm_hwm_mib']:.1f} | {result['ru_maxrss_mib']:.1f} |")
    print()
    print("| rows written | " + " | ".join(f"{k * 10}-{k * 10 + 10}%" for k in range(10)) + " |")
    print("|---|" + "---:|" * 10)
    for what in ("min", "median", "max"):
        print(f"| RSS {what} MiB | " + " | ".join(
            "" if d is None else f"{d[what]:.0f}" for d in result["rss_by_decile_mib"]) + " |")
    print()
    print(f"rate: {result['records_per_s']:,} records/s spawn to last row ({r['wall_s']:.1f} s), "
          f"{result['records_per_s_after_startup']:,} after start-up ({r['startup_s']:.1f} s); "
          f"cpu: sluice {r['cpu_s']:.1f} s, server {r['server_cpu_s']:.1f} s, broker "
          f"{r['broker_cpu_s']:.1f} s; {len(samples):,} RSS samples"
          + (f", {result['rss_10_to_90_mib']['min']:.1f}-{result['rss_10_to_90_mib']['max']:.1f}"
             f" MiB between 10% and 90%" if mid else ""))
    print(f"target: peak RSS < {TARGET_MIB:g} MiB: {result['peak_rss_mib']:.1f} MiB "
          f"({'met' if result['target_met'] else 'NOT met'})")
    print(f"checked: {n:,} rows, {n:,} distinct ids; every low watermark 0 before and after")
    print(f"results: {rel(path)}")
    if other > OTHER_CORES_NOTE:
        print(f"note: other processes kept up to {other:.2f} of the {os.cpu_count()} cores busy "
              "during the run: the machine was not idle, figures are pessimistic")


if __name__ == "__main__":
    main()
