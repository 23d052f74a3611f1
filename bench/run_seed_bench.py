#!/usr/bin/python3
"""Seed benchmark: Sluice against the seed's way, on the same broker, database and messages.

The job is seed 000's iris flow: Kafka Connect envelopes of iris_data rows on the topic
`postgres-source-iris_data` (pipelines/iris.yaml's topic) become predictions in the seed's table
iris_prediction(id, timestamp, iris_class) in PostgreSQL. Side by side, in one run:

  seed          bench/seed_subscriber.py: the seed's data subscriber as the seed writes it
                (kafka-python, per message one requests.post to the FastAPI + uvicorn model API of
                tests/integration/model_server.py and one INSERT + commit), on a bounded run
                (--seed-messages or --seed-seconds after its first row, whichever first);
  python        bench/python_consumer.py: a best-effort Python consumer (confluent-kafka batches,
                in-process XGBoost on a float32 matrix, one COPY + commit per batch on a writer
                thread, offsets committed after the rows), over every message;
  sluice        `build/sluice run pipelines/iris.yaml` as shipped (exactly-once upsert, the
                batches of 32,768, 4 in flight), and pipelines/iris-pg-bench.yaml (at-least-once
                COPY, the same batches, as bench/run_pg_bench.py runs it), each with --threads 2
                and 1;
  ceilings      kcat reading the topic (no group, and in a consumer group), and `psql \\copy` of
                the expected rows into the table.

What this script does:
  1. generates the input once into bench/data/ (as bench/run_kafka_bench.py) and derives the
     expected rows from the file pipeline (as bench/run_pg_bench.py);
  2. starts a throwaway PostgreSQL 15 cluster (durable defaults) with the table of
     pipelines/sql/iris_prediction.sql, `sluice dev-kafka` with the topic on enough partitions
     that the broker keeps every message, produces the input with kcat and checks that every low
     watermark is 0 and the highs add up; starts the model server on a free loopback port;
  3. runs each side (--runs times, the seed once), one after the other (the Python consumer and
     the Sluice sides take turns at going first, round by round), each with a consumer group
     of its own, the table emptied (TRUNCATE ... RESTART IDENTITY) and a CHECKPOINT taken before
     it, after waiting (up to --wait-idle s) for a quiet machine; a fast side that other processes
     disturbed (> 0.25 cores busy) is measured again (--retries);
  4. checks every side: exit status, no dead letters, the counts of its own summary; full runs:
     count(*) = count(DISTINCT id) = --records and an md5 of the rows in id order equal to that of
     the ceiling's table; the seed's bounded run: as many rows as messages it handled, distinct
     timestamps, and each row's (timestamp, iris_class) one of the expected rows (its ids are the
     table's SERIAL, as in the seed);
  5. prints a markdown table with Sluice's ratios to every side and writes
     bench/results/seed-<UTC time>.json.

A side's time runs from spawn until the table holds all its rows (exactly-once: until the positions
stored with the rows add up to every message), watched through one psql session every --poll-ms;
then Sluice gets SIGTERM (it must drain and exit 0) and the Python consumer exits by itself. The
seed's subscriber is timed from spawn to exit; its JSON line gives its rate after start-up.

Usage: run_seed_bench.py [--records N] [--seed-messages N] [--seed-seconds S] [--runs K]
                         [--retries R] [--no-seed] [--sluice PATH] [--kcat PATH] [--psql PATH]
                         [--pg-bin DIR] [--python-batch N] [--wait-idle S] [--poll-ms MS]
                         [--results PATH]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import run_kafka_bench as kb  # noqa: E402  (input, broker, producing, kcat, CPU accounting)
import run_pg_bench as pb  # noqa: E402  (the cluster, psql, the expected rows, the ceiling)

ROOT = kb.ROOT
OUT = kb.OUT
RESULTS = kb.RESULTS
PYTHON = "/usr/bin/python3"  # Debian's: python3-kafka, -confluent-kafka, -psycopg2, -requests
TOPIC = "postgres-source-iris_data"  # the seed's topic, which pipelines/iris.yaml reads
IRIS = ROOT / "pipelines" / "iris.yaml"
PG_BENCH = ROOT / "pipelines" / "iris-pg-bench.yaml"
MODEL_DIR = ROOT / "models" / "iris"
MODEL_SERVER = ROOT / "tests" / "integration" / "model_server.py"
SEED = BENCH / "seed_subscriber.py"
PY_CONSUMER = BENCH / "python_consumer.py"
IRIS_GROUP = "iris-data-consumer-group"  # fixed in pipelines/iris.yaml
TABLE = pb.TABLE
TARGET_VS_SEED = 500.0
TARGET_VS_PYTHON = 3.0
PG_BENCH_BATCH = pb.BATCH_SIZE  # run_pg_bench.py's defaults for iris-pg-bench.yaml, which are
PG_BENCH_IN_FLIGHT = pb.MAX_IN_FLIGHT  # pipelines/iris.yaml's settings
OTHER_CORES_NOTE = 0.25
IRIS_SESSION_S = 47.0  # librdkafka's session.timeout.ms (45 s) and a margin
IRIS_FREE_AT = 0.0

BenchError = kb.BenchError
log = kb.log
rel = kb.rel


# ---- helpers --------------------------------------------------------------------------------

class ModelServer:
    """tests/integration/model_server.py (FastAPI + uvicorn, the seed's POST /predict) on a free
    loopback port."""

    def __init__(self):
        self.port_file = OUT / "seed-model-server.port"
        self.port_file.unlink(missing_ok=True)
        self.err = open(OUT / "seed-model-server.stderr", "wb")
        self.p = subprocess.Popen([PYTHON, str(MODEL_SERVER), "--model", str(MODEL_DIR),
                                   "--port", "0", "--port-file", str(self.port_file)],
                                  stdout=subprocess.DEVNULL, stderr=self.err, cwd=ROOT)
        deadline = time.monotonic() + 60
        while not self.port_file.exists():
            if self.p.poll() is not None:
                raise BenchError(f"the model server exited ({self.p.returncode}): "
                                 f"{(OUT / 'seed-model-server.stderr').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise BenchError("the model server wrote no port within 60 s")
            time.sleep(0.05)
        self.base = f"http://127.0.0.1:{int(self.port_file.read_text())}"
        self.url = f"{self.base}/predict"
        body = json.dumps({"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4,
                           "petal_width": 0.2}).encode()
        req = urllib.request.Request(self.url, data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            answer = json.loads(r.read())
        if answer != {"iris_class": 0}:
            raise BenchError(f"the model server answered {answer} for a setosa")

    def cpu_s(self):
        return kb.proc_cpu_s(self.p.pid)

    def stop(self):
        kb.stop_process(self.p, "model server")
        self.err.close()


def reset(db, restart_identity=False):
    """Empty tables and a fresh checkpoint (pb.reset_tables), the SERIAL restarted for the seed."""
    if restart_identity:
        db.query(f"TRUNCATE {TABLE} RESTART IDENTITY")
    pb.reset_tables(db)


def stderr_text(path):
    return Path(path).read_text(errors="replace")


def check_full_table(db, records, expected_md5, name):
    n, distinct, md5 = pb.table_digest(db)
    if n != records or distinct != records:
        raise BenchError(f"{name}: {TABLE} holds {n:,} rows with {distinct:,} distinct ids, "
                         f"expected {records:,}")
    if md5 != expected_md5:
        raise BenchError(f"{name}: {TABLE} holds {n:,} rows, but not the expected ones")


def check_seed_table(db, messages, copy_file):
    """The seed's rows: one per message handled, distinct timestamps, and each (timestamp,
    iris_class) one of the expected rows (the table's ids are its SERIAL, as in the seed)."""
    rows = db.query(f"SELECT to_char(timestamp, 'YYYY-MM-DD HH24:MI:SS.US'), iris_class "
                    f"FROM {TABLE}")
    got = {}
    for line in rows:
        ts, cls = line.split("|")
        if ts in got:
            raise BenchError(f"seed: timestamp {ts} written twice")
        got[ts] = int(cls)
    if len(got) != messages:
        raise BenchError(f"seed: {TABLE} holds {len(got):,} rows for {messages:,} messages")
    seen = 0
    with open(copy_file) as f:
        for line in f:
            _, ts, cls = line.rstrip("\n").split("\t")
            ts = datetime.fromisoformat(ts).strftime("%Y-%m-%d %H:%M:%S.%f")
            if ts in got:
                if got[ts] != int(cls):
                    raise BenchError(f"seed: the row of {ts} has class {got[ts]}, expected {cls}")
                seen += 1
    if seen != len(got):
        raise BenchError(f"seed: {len(got) - seen:,} rows whose timestamp is in no message")
    return seen


def partitions_committed(broker, group, parts):
    return sum(1 for o in broker.wire.committed(group, TOPIC, parts).values() if o >= 0)


# ---- a side from spawn until the table is full -----------------------------------------------

def exit_code_unreaped(p):
    """The child's exit code (negative: the signal) once it has exited, else None, leaving it a
    zombie: /proc keeps its CPU time until the child is reaped, which Popen.poll would do."""
    if p.returncode is not None:
        return p.returncode
    try:
        r = os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return p.poll()
    if r is None:
        return None
    return r.si_status if r.si_code == os.CLD_EXITED else -r.si_status


def run_until_full(name, cmd, env, pg, db, broker, records, full_bytes, args, exactly_once,
                   sigterm, err_path):
    """Spawns cmd and polls the table (as pb.run_sluice) until it holds `records` rows (exactly-
    once: until the stored positions add up to `records`). Then SIGTERM (sluice) or waits for the
    process to exit (python consumer). Returns the timings, CPU and its standard error."""
    reset(db)
    kb.wait_idle(args.wait_idle)
    lsn = pb.wal_lsn(db)
    timeout_s = max(180.0, records / 2_000)
    t_first = t_done = None
    last_size = polls = 0
    with open(err_path, "wb") as err:
        meter = pb.Meter(pg, broker)
        start = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        try:
            while True:
                # Seen without reaping it, so that its CPU time can still be read below.
                code = exit_code_unreaped(p)
                exited = code is not None
                if exited and (sigterm or code != 0):
                    raise BenchError(f"{name} exited early ({code}):\n"
                                     f"{stderr_text(err_path)[-3000:]}")
                size = int(db.value(f"SELECT pg_relation_size('{TABLE}')"))
                polls += 1
                now = time.perf_counter()
                if size > 0 and t_first is None:
                    t_first = now
                    cpu_first = kb.proc_cpu_s(p.pid)
                    busy_first, server_first, bcpu_first = meter.read()
                if exactly_once:
                    done = pb.stored_positions(db)[1] >= records
                elif size >= full_bytes or (size >= pb.COUNT_FROM * full_bytes
                                            and size == last_size) or exited:
                    done = int(db.value(f"SELECT count(*) FROM {TABLE}")) >= records
                else:
                    done = False
                if exited and not done:
                    raise BenchError(f"{name} exited (0) before the table held {records:,} "
                                     f"rows:\n{stderr_text(err_path)[-3000:]}")
                last_size = size
                if done:
                    t_done = time.perf_counter()
                    break
                if now - start > timeout_s:
                    raise BenchError(f"{name}: not done after {timeout_s:.0f} s "
                                     f"({rel(err_path)})")
                time.sleep(args.poll_ms / 1000)
            cpu = kb.proc_cpu_s(p.pid)
            busy, server, bcpu = meter.read()
            window = time.perf_counter() - start
            if sigterm:
                code = kb.stop_process(p, name, timeout_s=30)
            else:
                code = p.wait(timeout=60)
            t_exit = time.perf_counter()
        finally:
            kb.stop_process(p, name, timeout_s=5)
    if t_first is None:  # a process that wrote everything between two polls
        t_first, cpu_first, busy_first, server_first, bcpu_first = t_done, cpu, busy, server, bcpu
    if code != 0:
        raise BenchError(f"{name} did not exit cleanly (exit {code}):\n"
                         f"{stderr_text(err_path)[-3000:]}")
    steady = max(t_done - t_first, 1e-9)
    return {
        "wall_s": t_done - start,  # spawn to the last row committed
        "startup_s": t_first - start,  # spawn to the first rows seen in the table's file
        "steady_s": steady,
        "exit_s": t_exit - start,
        "cpu_s": cpu,
        "cpu_steady_s": cpu - cpu_first,
        "server_cpu_s": server,
        "broker_cpu_s": bcpu,
        "cores_steady": (cpu - cpu_first + server - server_first + bcpu - bcpu_first) / steady,
        "other_cores": max(0.0, (busy - cpu - server - bcpu) / window),
        "other_cores_steady": max(0.0, (busy - busy_first - (cpu - cpu_first) -
                                        (server - server_first) - (bcpu - bcpu_first)) / steady),
        "wal_bytes": pb.wal_bytes(db, lsn),
        "polls": polls,
    }


def run_sluice(sluice, pipeline, threads, pg, db, broker, records, full_bytes, args, attempt):
    """`sluice run PIPELINE --threads N`: iris.yaml as shipped (exactly-once, its fixed group), or
    iris-pg-bench.yaml at-least-once in a new group with batches of 32,768, 4 in flight."""
    tag = f"seed-sluice-{attempt}"
    out_dir = OUT / tag
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    env = dict(os.environ, KAFKA_BROKERS=broker.bootstrap, DATABASE_URL=pg.url,
               SLUICE_OUT=str(out_dir))
    if pipeline == PG_BENCH:
        group = f"seed-bench-sluice-{attempt}-{time.time_ns()}"
        env.update(BENCH_INPUT_TOPIC=TOPIC, BENCH_GROUP=group, BENCH_DELIVERY="at-least-once",
                   BENCH_BATCH_SIZE=str(PG_BENCH_BATCH),
                   BENCH_MAX_IN_FLIGHT=str(PG_BENCH_IN_FLIGHT),
                   BENCH_DEAD_LETTER=str(out_dir / "iris-pg-bench.dead-letter.jsonl"))
        exactly_once = False
    else:
        group = IRIS_GROUP
        exactly_once = True
        # The group is fixed in iris.yaml. The development broker holds a member that left until
        # its session times out (librdkafka's session.timeout.ms, 45 s): a second run of
        # iris.yaml right after the first would wait that long for its assignment. Waited out
        # here, untimed.
        global IRIS_FREE_AT
        if IRIS_FREE_AT and time.monotonic() < IRIS_FREE_AT:
            log(f"iris.yaml: waiting {IRIS_FREE_AT - time.monotonic():.0f} s (untimed) for the "
                f"broker to drop the last run's member of {IRIS_GROUP}")
            time.sleep(IRIS_FREE_AT - time.monotonic())
    cmd = [sluice, "--log-format", "json", "run", "--threads", str(threads), str(pipeline)]
    err_path = OUT / f"{tag}.stderr"
    try:
        r = run_until_full(f"sluice {rel(pipeline)}", cmd, env, pg, db, broker, records,
                           full_bytes, args, exactly_once, sigterm=True, err_path=err_path)
    finally:
        if pipeline == IRIS:
            IRIS_FREE_AT = time.monotonic() + IRIS_SESSION_S
    summary = kb.last_json(stderr_text(err_path), "records_read")
    if summary is None or int(summary["records_read"]) != records \
            or int(summary["rows_written"]) != records or int(summary["dead_letters"]) != 0:
        raise BenchError(f"sluice's summary does not match {records:,} records: {summary}")
    dead = [f for f in out_dir.iterdir() if f.stat().st_size > 0]
    if dead:
        raise BenchError(f"sluice wrote dead letters: {[rel(f) for f in dead]}")
    if exactly_once:
        rows, total = pb.stored_positions(db)
        if total != records:
            raise BenchError(f"stored positions add up to {total:,}, expected {records:,}")
        if partitions_committed(broker, group, args.parts):
            raise BenchError(f"exactly-once committed offsets into the group {group}")
    r.update(group=group, self_seconds=float(summary["seconds"]))
    return r


def run_python(pg, db, broker, records, full_bytes, args, attempt):
    tag = f"seed-python-{attempt}"
    dead = OUT / f"{tag}.dead-letter.jsonl"
    dead.unlink(missing_ok=True)
    group = f"seed-bench-python-{attempt}-{time.time_ns()}"
    cmd = [PYTHON, str(PY_CONSUMER), "--brokers", broker.bootstrap, "--topic", TOPIC,
           "--group", group, "--db", pg.url, "--max-records", str(records),
           "--batch", str(args.python_batch), "--dead-letter", str(dead)]
    err_path = OUT / f"{tag}.stderr"
    r = run_until_full("python consumer", cmd, dict(os.environ), pg, db, broker, records,
                       full_bytes, args, exactly_once=False, sigterm=False, err_path=err_path)
    summary = kb.last_json(stderr_text(err_path), "records_read")
    if summary is None or summary["records_read"] != records \
            or summary["rows_written"] != records or summary["dead_letters"] != 0:
        raise BenchError(f"the python consumer's summary does not match {records:,} records: "
                         f"{summary}")
    if dead.exists():
        raise BenchError(f"the python consumer wrote dead letters: {rel(dead)}")
    committed = broker.wire.committed(group, TOPIC, args.parts)
    if sum(committed.values()) != records:
        raise BenchError(f"the python consumer's committed offsets add up to "
                         f"{sum(committed.values()):,}, expected {records:,}")
    r.update(group=group, self_seconds=summary["seconds"], self_summary=summary)
    return r


def run_seed(pg, db, broker, server, copy_file, args):
    """The seed's subscriber on a bounded run, spawn to exit."""
    reset(db, restart_identity=True)
    kb.wait_idle(args.wait_idle)
    group = f"seed-bench-subscriber-{time.time_ns()}"
    cmd = [PYTHON, str(SEED), "--brokers", broker.bootstrap, "--topic", TOPIC, "--group", group,
           "--db", pg.url, "--api", server.url, "--max-messages", str(args.seed_messages),
           "--max-seconds", str(args.seed_seconds)]
    err_path = OUT / "seed-subscriber.stderr"
    lsn = pb.wal_lsn(db)
    with open(err_path, "wb") as err:
        meter = pb.Meter(pg, broker)
        api0 = server.cpu_s()
        start = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        status, ru = kb.wait_rusage(p, args.seed_seconds + 300)
        wall = time.perf_counter() - start
        busy, server_cpu, bcpu = meter.read()
        api = server.cpu_s() - api0
    if ru is None:
        raise BenchError(f"the seed's subscriber did not finish ({rel(err_path)})")
    code = os.waitstatus_to_exitcode(status)
    text = stderr_text(err_path)
    if code != 0:
        raise BenchError(f"the seed's subscriber failed (exit {code}):\n{text[-3000:]}")
    summary = kb.last_json(text, "messages")
    if summary is None or summary["messages"] < 2:
        raise BenchError(f"the seed's subscriber handled no messages:\n{text[-3000:]}")
    n = summary["messages"]
    checked = check_seed_table(db, n, copy_file)
    committed = broker.wire.committed(group, TOPIC, args.parts)
    cpu = ru.ru_utime + ru.ru_stime
    return {
        "group": group,
        "records": n,
        "wall_s": wall,  # spawn to exit
        "startup_s": summary["startup_s"],  # its start to its first row committed
        "steady_s": summary["steady_s"],  # first row committed to the last
        "steady_records": n - 1,
        "cpu_s": cpu,
        "api_cpu_s": api,
        "server_cpu_s": server_cpu,
        "broker_cpu_s": bcpu,
        "other_cores": max(0.0, (busy - cpu - api - server_cpu - bcpu) / wall),
        "wal_bytes": pb.wal_bytes(db, lsn),
        "rows_checked": checked,
        "offsets_committed": sum(o for o in committed.values() if o > 0),
        "bound": ("messages" if n >= args.seed_messages else "seconds"),
        "spent": {k: summary[k] for k in ("kafka_first_s", "kafka_next_s", "requests_post_s",
                                          "db_commit_s") if k in summary},
    }


# ---- main -------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000,
                    help="messages on the topic: every side but the seed's reads them all "
                         "(default 1,000,000)")
    ap.add_argument("--seed-messages", type=int, default=20_000,
                    help="the seed's subscriber stops after this many messages (default 20,000)")
    ap.add_argument("--seed-seconds", type=float, default=60.0,
                    help="... or this many seconds after its first row (default 60)")
    ap.add_argument("--no-seed", action="store_true", help="leave the seed's subscriber out")
    ap.add_argument("--runs", type=int, default=1,
                    help="runs of each side but the seed's; medians are reported (default 1)")
    ap.add_argument("--retries", type=int, default=1,
                    help="times a side is measured again when other processes disturbed it "
                         "(default 1; the seed's run is not repeated)")
    ap.add_argument("--threads", default="2,1",
                    help="Sluice's --threads values, comma-separated (default 2,1)")
    ap.add_argument("--python-batch", type=int, default=10_000,
                    help="the Python consumer's messages per consume() and COPY (default 10,000)")
    ap.add_argument("--sluice", default=str(ROOT / "build" / "sluice"))
    ap.add_argument("--psql", default="psql")
    ap.add_argument("--kcat", default="kcat")
    ap.add_argument("--pg-bin", default=str(pb.PG_BIN))
    ap.add_argument("--poll-ms", type=float, default=50.0)
    ap.add_argument("--wait-idle", type=float, default=pb.WAIT_IDLE_S, metavar="SECONDS",
                    help="before each side, wait up to this long for a quiet machine (default 20)")
    ap.add_argument("--results", default=None, metavar="PATH",
                    help="default bench/results/seed-<UTC time>.json")
    args = ap.parse_args()
    if args.records < 1000 or args.runs < 1 or args.retries < 0 or args.seed_messages < 2:
        ap.error("need --records >= 1000, --runs >= 1, --retries >= 0, --seed-messages >= 2")
    threads = [int(t) for t in args.threads.split(",")]
    kb.WAIT_IDLE_S = args.wait_idle
    sluice = str(Path(args.sluice).resolve())
    if not os.access(sluice, os.X_OK):
        sys.exit(f"{args.sluice}: not an executable; build first (scripts/setup.sh)")
    tools = {}
    for name, hint in ((args.psql, "postgresql-client"), (args.kcat, "kcat")):
        tools[name] = shutil.which(name)
        if not tools[name]:
            sys.exit(f"{name}: not found (Debian: apt-get install {hint})")
    psql, kcat = tools[args.psql], tools[args.kcat]
    probe = subprocess.run([PYTHON, "-c", "import kafka, confluent_kafka, psycopg2, requests, "
                            "xgboost, fastapi, uvicorn"], capture_output=True, text=True)
    if probe.returncode != 0:
        sys.exit(f"{PYTHON} lacks a module: {probe.stderr.strip().splitlines()[-1]} (Debian: "
                 "apt-get install python3-kafka python3-confluent-kafka python3-psycopg2 "
                 "python3-requests python3-xgboost python3-fastapi python3-uvicorn, or "
                 "scripts/setup.sh)")
    for pipeline, env in ((IRIS, {}), (PG_BENCH, {"BENCH_DELIVERY": "at-least-once"})):
        v = subprocess.run([sluice, "validate", str(pipeline)], cwd=ROOT, capture_output=True,
                           text=True, env=dict(os.environ, **env))
        if v.returncode != 0:
            sys.exit(f"{rel(pipeline)} does not validate:\n{v.stdout}{v.stderr}")

    envelopes, _ = kb.ensure_input(args.records, "connect-json")
    size = envelopes.stat().st_size
    msg_bytes = size / args.records - 1
    args.parts = kb.partitions_for(args.records * (msg_bytes + kb.RECORD_OVERHEAD))
    log(f"input: {rel(envelopes)}, {args.records:,} Connect envelopes of {msg_bytes:.0f} bytes "
        f"({size / 2**20:,.0f} MiB); topic {TOPIC} on {args.parts} partitions")
    OUT.mkdir(parents=True, exist_ok=True)
    log("expected rows: running the file pipeline on the same records ...")
    copy_file = pb.expected_copy_file(sluice, envelopes, args.records)

    versions = {
        "sluice": subprocess.run([sluice, "--version"], capture_output=True,
                                 text=True).stdout.strip(),
        "psql": subprocess.run([psql, "--version"], capture_output=True, text=True).stdout.strip(),
        "python": subprocess.run([PYTHON, "-c", (
            "import sys, kafka, confluent_kafka, psycopg2, requests, xgboost, numpy, fastapi, "
            "uvicorn; print(sys.version.split()[0], 'kafka-python', kafka.__version__, "
            "'confluent-kafka', confluent_kafka.version()[0], 'librdkafka', "
            "confluent_kafka.libversion()[0], 'psycopg2', psycopg2.__version__.split()[0], "
            "'requests', requests.__version__, 'xgboost', xgboost.__version__, 'numpy', "
            "numpy.__version__, 'fastapi', fastapi.__version__, 'uvicorn', uvicorn.__version__)")],
            capture_output=True, text=True).stdout.strip(),
    }
    load = os.getloadavg()
    t_begin = time.monotonic()
    pg = db = broker = server = None
    runs = {}  # side key -> [run dicts]
    disturbed = 0
    sluice_sides = [(IRIS, t) for t in threads] + [(PG_BENCH, t) for t in threads]
    try:
        pg = pb.Postgres(args.pg_bin)
        db = pb.Psql(psql, pg.url)
        db.query(pb.DDL.read_text())
        db.query("SET max_parallel_workers_per_gather = 0")
        settings = pb.server_settings(db)
        log(f"postgres: {pg.url}; " + ", ".join(f"{k}={settings[k]}" for k in (
            "fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")))
        broker = kb.Broker(sluice, [(TOPIC, args.parts)])
        log(f"broker: sluice dev-kafka at {broker.bootstrap} (pid {broker.p.pid})")
        produced = kb.produce(kcat, broker, envelopes, TOPIC, args.parts, args.records)
        if not args.no_seed:
            server = ModelServer()
            log(f"model server: {server.url} (pid {server.p.pid})")

        def measure(name, fn):
            nonlocal disturbed
            for retry in range(args.retries + 1):
                r = fn()
                other = max(r["other_cores"], r.get("other_cores_steady", 0.0))
                if other <= OTHER_CORES_NOTE or retry == args.retries:
                    return r
                disturbed += 1
                log(f"{name}: disturbed (other processes kept {other:.2f} cores busy): "
                    "measuring again")

        def show(key, r, n):
            extra = ""
            if "steady_s" in r and "startup_s" in r:
                extra = (f" (start-up {r['startup_s']:.2f} s, then "
                         f"{r.get('steady_records', n) / r['steady_s']:,.0f} rec/s)")
            log(f"{key:<44} {r['wall_s']:7.2f} s {n / r['wall_s']:>10,.0f} rec/s{extra}  cpu "
                f"{r['cpu_s']:.2f} s  server cpu {r.get('server_cpu_s', 0):.2f} s  broker cpu "
                f"{r.get('broker_cpu_s', 0):.2f} s  (others busy: {r['other_cores']:.2f})")

        n = args.records
        expected_md5 = None
        attempt = 0
        for i in range(1, args.runs + 1):
            log(f"-- run {i}/{args.runs}")
            c = measure("copy", lambda: pb.run_copy(psql, pg, db, broker, copy_file, n,
                                                    args.wait_idle))
            check_n, distinct, md5 = pb.table_digest(db)
            if check_n != n or distinct != n or (expected_md5 and md5 != expected_md5):
                raise BenchError(f"psql \\copy loaded {check_n:,} rows ({distinct:,} distinct "
                                 "ids), or other rows than in the first run")
            expected_md5 = md5
            full_bytes = c["table_bytes"]
            runs.setdefault("copy", []).append(c)
            show("psql \\copy", c, n)
            for key, group in (("kcat -C", None), ("kcat -G", "seed-bench-kcat")):
                k = measure(key, lambda: kb.run_kcat(kcat, broker, TOPIC, produced["highs"],
                                                     group=group and f"{group}-{time.time_ns()}"))
                runs.setdefault(key, []).append(k)
                show(key, k, n)

            # The compared sides take turns at going first: a side's rate can depend on what ran
            # just before it (iris.yaml ran 10-15% slower right after the Python consumer than
            # elsewhere; bench/README.md), so a fixed order would favour the same sides.
            compared = [None] + list(sluice_sides)
            turn = (i - 1) % len(compared)
            for side in compared[turn:] + compared[:turn]:
                if side is None:
                    key, label = "python", "python consumer"

                    def one():
                        nonlocal attempt
                        attempt += 1
                        return run_python(pg, db, broker, n, full_bytes, args, attempt)
                else:
                    pipeline, t = side
                    key = label = f"sluice {pipeline.name} --threads {t}"

                    def one():
                        nonlocal attempt
                        attempt += 1
                        return run_sluice(sluice, pipeline, t, pg, db, broker, n, full_bytes,
                                          args, attempt)
                r = measure(key, one)
                check_full_table(db, n, expected_md5, label)
                runs.setdefault(key, []).append(r)
                show(label, r, n)
        if not args.no_seed:
            log(f"-- the seed's subscriber: up to {args.seed_messages:,} messages or "
                f"{args.seed_seconds:.0f} s after its first row")
            s = run_seed(pg, db, broker, server, copy_file, args)
            runs["seed"] = [s]
            show("seed subscriber", s, s["records"])
            per = {k: v / s["records"] * 1000 for k, v in s["spent"].items()}
            log(f"seed subscriber: per message {s['steady_s'] / s['steady_records'] * 1000:.2f} "
                f"ms: waiting for kafka-python {per.get('kafka_next_s', 0):.2f} ms, "
                f"requests.post {per.get('requests_post_s', 0):.2f} ms, the commit "
                f"{per.get('db_commit_s', 0):.2f} ms; CPU per message: subscriber "
                f"{s['cpu_s'] / s['records'] * 1000:.2f} ms, model API "
                f"{s['api_cpu_s'] / s['records'] * 1000:.2f} ms, PostgreSQL "
                f"{s['server_cpu_s'] / s['records'] * 1000:.2f} ms")
        broker.check_no_drops("at the end")
        lows = broker.wire.offsets(TOPIC, args.parts, -2)
        if any(lows.values()):
            raise BenchError("the broker dropped messages during the run (low watermark > 0)")
    except (BenchError, OSError, subprocess.SubprocessError) as e:
        sys.exit(f"error: {e}")
    finally:
        for thing in (db, server):
            if thing is not None:
                (thing.close if thing is db else thing.stop)()
        if broker is not None:
            broker.stop()
        if pg is not None:
            pg.stop()
    elapsed = time.monotonic() - t_begin
    report(args, runs, sluice_sides, versions, settings, produced, msg_bytes, load, disturbed,
           elapsed)


def report(args, runs, sluice_sides, versions, settings, produced, msg_bytes, load, disturbed,
           elapsed):
    n = args.records
    med = lambda rs, k: statistics.median(r[k] for r in rs)

    def rate(key):
        rs = runs[key]
        recs = rs[0].get("records", n)
        return recs / med(rs, "wall_s")

    def steady(key):
        rs = runs[key]
        if "steady_s" not in rs[0]:
            return None
        return statistics.median(r.get("steady_records", n) / r["steady_s"] for r in rs)

    sides = []
    labels = {
        "seed": "seed: kafka-python, requests.post, INSERT + commit per row",
        "python": "python: confluent-kafka, xgboost, COPY per batch",
        "copy": "ceiling: psql \\copy (one COPY, one commit)",
        "kcat -C": "ceiling: kcat -C reads the topic (no group)",
        "kcat -G": "ceiling: kcat -G reads it in a consumer group",
    }
    order = [k for k in ("seed", "python") if k in runs]
    order += [f"sluice {p.name} --threads {t}" for p, t in sluice_sides]
    order += ["copy", "kcat -C", "kcat -G"]
    sluice_keys = [f"sluice {p.name} --threads {t}" for p, t in sluice_sides]
    most = max(int(x) for x in args.threads.split(","))
    head_keys = [k for k in sluice_keys if k.endswith(f"--threads {most}")]
    for key in order:
        rs = runs[key]
        r = rate(key)
        st = steady(key)
        side = {"side": key, "label": labels.get(key, key),
                "records": rs[0].get("records", n),
                "records_per_s": round(r),
                "steady_records_per_s": round(st) if st else None,
                "wall_s_median": round(med(rs, "wall_s"), 3),
                "startup_s_median": round(med(rs, "startup_s"), 3)
                if "startup_s" in rs[0] else None,
                "cpu_s_median": round(med(rs, "cpu_s"), 3),
                "server_cpu_s_median": round(med(rs, "server_cpu_s"), 3)
                if "server_cpu_s" in rs[0] else None,
                "broker_cpu_s_median": round(med(rs, "broker_cpu_s"), 3),
                "runs": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in x.items()}
                         for x in rs]}
        if key == "seed":
            side["api_cpu_s"] = round(rs[0]["api_cpu_s"], 3)
        sides.append(side)
    by_key = {s["side"]: s for s in sides}
    ratios = {}
    for sk in sluice_keys:
        sr = by_key[sk]["records_per_s"]
        ss = by_key[sk]["steady_records_per_s"]
        ratios[sk] = {other["side"]: {
            "end_to_end": round(sr / other["records_per_s"], 3),
            "after_startup": round(ss / other["steady_records_per_s"], 3)
            if ss and other["steady_records_per_s"] else None}
            for other in sides if other["side"] != sk}
    targets = []
    for sk in head_keys:
        for other, want in (("seed", TARGET_VS_SEED), ("python", TARGET_VS_PYTHON)):
            if other in by_key:
                got = ratios[sk][other]
                targets.append({"sluice": sk, "versus": other, "target": want,
                                "end_to_end": got["end_to_end"],
                                "after_startup": got["after_startup"],
                                "met_end_to_end": got["end_to_end"] >= want,
                                "met_after_startup": (got["after_startup"] or 0) >= want})
    other_max = max(max(r.get("other_cores", 0.0), r.get("other_cores_steady", 0.0))
                    for rs in runs.values() for r in rs)
    date = datetime.now(timezone.utc)
    result = {
        "benchmark": "seed",
        "date": date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": kb.machine(load, other_max),
        "versions": versions,
        "server_settings": settings,
        "records": n,
        "message_bytes": round(msg_bytes, 1),
        "topic": TOPIC,
        "partitions": args.parts,
        "produce_seconds": produced["seconds"],
        "runs": args.runs,
        "seed_bound": {"messages": args.seed_messages, "seconds": args.seed_seconds},
        "python_batch": args.python_batch,
        "pg_bench_settings": {"batch_size": PG_BENCH_BATCH, "max_in_flight": PG_BENCH_IN_FLIGHT,
                              "delivery": "at-least-once"},
        "disturbed_runs_repeated": disturbed,
        "seconds_total": round(elapsed, 1),
        "outputs_checked": True,
        "sides": sides,
        "ratios": ratios,
        "targets": targets,
    }
    results = Path(args.results) if args.results else \
        RESULTS / f"seed-{date.strftime('%Y%m%dT%H%M%SZ')}.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n")

    # The table: every side, and Sluice's (the first head pipeline's) ratio to it.
    ref_iris = next((k for k in head_keys if "iris.yaml" in k), None)
    ref_bench = next((k for k in head_keys if "iris-pg-bench" in k), None)
    print(f"Seed benchmark, {result['date']}, {os.cpu_count()} CPUs ({kb.cpu_model()}); "
          f"{n:,} Connect envelopes of {msg_bytes:.0f} bytes on {args.parts} partitions of "
          f"`sluice dev-kafka`; PostgreSQL {settings.get('server_version', '?')} "
          f"(fsync={settings.get('fsync')}, synchronous_commit="
          f"{settings.get('synchronous_commit')}); "
          + (f"median of {args.runs} runs; " if args.runs > 1 else "one run; ")
          + f"{elapsed / 60:.1f} min in all")
    print()
    hdr = ("| side | records | wall s | records/s | after start-up | cpu s | iris.yaml ÷ | "
           "iris-pg-bench ÷ |")
    print(hdr)
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for s in sides:
        def ratio(ref):
            if ref is None or ref == s["side"]:
                return "" if ref is None else "1"
            return f"{ratios[ref][s['side']]['end_to_end']:,.2f}×"
        st = s["steady_records_per_s"]
        print(f"| {s['label']} | {s['records']:,} | {s['wall_s_median']:.2f} | "
              f"{s['records_per_s']:,} | {f'{st:,}' if st else ''} | {s['cpu_s_median']:.2f} | "
              f"{ratio(ref_iris)} | {ratio(ref_bench)} |")
    print()
    for t in targets:
        print(f"target: {t['sluice']} ≥ {t['target']:g}× {t['versus']}: "
              f"{t['end_to_end']:,.2f}× end to end ({'met' if t['met_end_to_end'] else 'NOT met'})"
              + (f", {t['after_startup']:,.2f}× after start-up "
                 f"({'met' if t['met_after_startup'] else 'NOT met'})"
                 if t["after_startup"] is not None else ""))
    print(f"checked: every full run wrote exactly the expected {n:,} rows (ids, timestamps, "
          "classes), no dead letters" + (f"; the seed's {by_key['seed']['records']:,} rows "
                                         "all expected predictions" if "seed" in by_key else ""))
    print(f"results: {rel(results)}")
    if other_max > OTHER_CORES_NOTE:
        print(f"note: other processes kept up to {other_max:.2f} of the {os.cpu_count()} cores "
              "busy during a run: the machine was not idle, figures are pessimistic")


if __name__ == "__main__":
    main()
