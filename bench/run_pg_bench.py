#!/usr/bin/python3
"""PostgreSQL benchmark: Sluice from a Kafka topic into a table, against psql \\copy of the same rows.

The job (pipelines/iris-pg-bench.yaml): consume iris messages (Kafka Connect envelopes) from a
topic of the development broker (`sluice dev-kafka`), decode them against
schemas/iris_data.json, drop target, classify with the XGBoost model in models/iris, and write
(id, timestamp, iris_class) into the seed's table iris_prediction with the postgres sink: one
COPY and one commit per batch, `mode: insert`. With `delivery: exactly-once` each batch's
transaction also stores the topic's positions in sluice_positions. The reference is `psql -c
"\\copy iris_prediction (id, timestamp, iris_class) FROM 'file'"` of exactly the rows Sluice
writes, in the same run against the same server: one COPY of every row in one transaction, the
rate at which this database takes these rows here (the ceiling of any writer).

What this script does:
  1. generates the input once into bench/data/ (pipelines/data/make_iris_data.py, exactly
     --records envelopes, as bench/run_kafka_bench.py does);
  2. derives the expected rows as a COPY text file: the file pipeline (pipelines/iris-bench.yaml)
     classifies the same records, in input order; each of its outputs is paired with the id of
     its envelope (the timestamps must match, which proves the pairing);
  3. starts a throwaway PostgreSQL 15 cluster on 127.0.0.1 (initdb into a temporary folder,
     every server setting at its durable default: fsync, synchronous_commit, full_page_writes
     on) and creates the table from pipelines/sql/iris_prediction.sql; starts `sluice
     dev-kafka` and produces the input with kcat before any timing, checking that the broker
     keeps every message;
  4. --runs times, one side after the other: the ceiling (psql \\copy, spawn to exit); for
     reference, kcat reading the topic (without and with a consumer group, spawn to exit: the
     Kafka side's own ceiling here; --no-kcat leaves them out); then Sluice for each delivery
     and setting asked for, from spawn until the table holds every row, then SIGTERM. Before each run the tables are emptied (TRUNCATE) and a CHECKPOINT is
     taken, untimed, so that every side starts alike; then it waits (up to --wait-idle s) for a
     quiet machine. A run in which other processes kept more than 0.25 cores busy is measured
     again (--retries);
  5. checks every run: psql and Sluice exit 0, Sluice read and wrote --records records with no
     dead letters, count(*) = count(DISTINCT id) = --records, and an md5 of the table's rows in
     id order equals that of the expected rows as loaded by psql; exactly-once runs also have
     stored positions that add up to --records;
  6. prints a table of medians and writes bench/results/pg-<timestamp>.json.

The end of a Sluice run is watched through one psql process kept open for the whole benchmark
(no process per poll), every --poll-ms: the table's size on disk (a file size: cheap) until it
nears that of the full table, then count(*); for exactly-once the sum of the stored positions,
which commit with the rows.

Usage: run_pg_bench.py [--records N] [--runs K] [--retries R] [--delivery LIST]
                       [--batch-size LIST] [--max-in-flight LIST] [--sluice PATH] [--psql PATH]
                       [--kcat PATH] [--no-kcat] [--sluice-env NAME=VALUE ...]
                       [--poll-ms MS] [--wait-idle S] [--results PATH]
"""
import argparse
import itertools
import json
import os
import pwd
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import run_kafka_bench as kb  # noqa: E402  (input, broker, accounting: shared with the kafka bench)

ROOT = kb.ROOT
DATA = kb.DATA
OUT = kb.OUT
RESULTS = kb.RESULTS
PIPELINE = ROOT / "pipelines" / "iris-pg-bench.yaml"
DDL = ROOT / "pipelines" / "sql" / "iris_prediction.sql"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
TABLE = "iris_prediction"
COLUMNS = "id, timestamp, iris_class"
POSITIONS = "sluice_positions"
IN_TOPIC = "iris-pg-bench-in"
DELIVERIES = ("at-least-once", "exactly-once")
TARGETS = {"at-least-once": 1 / 2, "exactly-once": 1 / 3}  # of the COPY ceiling, end to end
# The script's Sluice settings unless told otherwise (bench/README.md, "Kafka -> PostgreSQL",
# has the measurements): each batch is a transaction with a durable commit, as in
# pipelines/iris.yaml. 1,024 pays ~8x the commits of 8,192 for the same rows; 32,768 x 4 in
# flight left the server 10% less work than 8,192 x 8 (each sorted batch gives the index longer
# runs of neighbouring keys) and ran 5-10% faster in each round.
BATCH_SIZE = 32768
MAX_IN_FLIGHT = 4
POLL_S = 0.05
WAIT_IDLE_S = 20.0
OTHER_CORES_NOTE = 0.25
# Counting the rows costs a scan of the table: it is done once the table's file has the size of
# the full table as psql \copy left it (the same rows fill the same pages), or, should it end a
# little smaller, when the file is this close to it and stopped growing since the last poll.
COUNT_FROM = 0.97
# Server settings recorded in the results (all at their defaults: nothing is set but the port,
# the socket folder and the listen address).
SETTINGS = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_level",
            "wal_sync_method", "wal_buffers", "wal_writer_delay", "commit_delay",
            "shared_buffers", "max_wal_size", "checkpoint_timeout", "wal_compression",
            "max_parallel_workers_per_gather")

BenchError = kb.BenchError
log = kb.log
rel = kb.rel


# ---- the database ------------------------------------------------------------------------------

def free_loopback_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """A throwaway cluster: Debian's PostgreSQL 15, initdb into a temporary folder, the server on
    a free loopback port with its socket in that folder, every setting at its default (durable:
    fsync and synchronous_commit on). Run as root, the server runs as `postgres`. stop() stops it
    and removes the folder; its log is kept in bench/data/out/pg-server.log."""

    def __init__(self, pg_bin, settings=()):
        """settings: extra server settings, "name=value" each (none: every default)."""
        self.bin = Path(pg_bin)
        self.dir = Path(tempfile.mkdtemp(prefix="sluice-pg-bench-"))
        self.data = self.dir / "data"
        self.log_path = self.dir / "server.log"
        self.port = free_loopback_port()
        self.as_user = []
        self.running = False
        if os.geteuid() == 0:
            os.chown(self.dir, pwd.getpwnam("postgres").pw_uid, -1)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._must([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "sluice",
                    "-E", "UTF8"])
        self._must([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log_path),
                    "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
                    + "".join(f" -c {s}" for s in settings),
                    "-w", "-t", "60", "start"])
        self.running = True
        self.url = f"postgresql://sluice@127.0.0.1:{self.port}/postgres"
        self.postmaster = int((self.data / "postmaster.pid").read_text().split()[0])

    def _must(self, cmd):
        r = subprocess.run(self.as_user + cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise BenchError(f"`{' '.join(cmd)}` failed (exit {r.returncode}):\n"
                             f"{r.stdout[-2000:]}{r.stderr[-2000:]}")

    def cpu_s(self):
        """CPU seconds of the whole server: the postmaster with the backends it has reaped
        (cutime, cstime) and every live child (backends, WAL writer, checkpointer...)."""
        try:
            with open(f"/proc/{self.postmaster}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total = sum(int(x) for x in fields[11:15]) / kb.CLK_TCK
            with open(f"/proc/{self.postmaster}/task/{self.postmaster}/children") as f:
                children = [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            return 0.0
        return total + sum(kb.proc_cpu_s(c) for c in children)

    def stop(self):
        if self.running:
            try:
                self._must([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                            "-t", "60", "stop"])
            except (BenchError, subprocess.TimeoutExpired) as e:
                log(f"pg_ctl stop -m fast failed ({e}); stopping immediately")
                subprocess.run(self.as_user + [str(self.bin / "pg_ctl"), "-D", str(self.data),
                                               "-m", "immediate", "-w", "stop"], timeout=120)
            self.running = False
        try:
            OUT.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.log_path, OUT / "pg-server.log")
        except OSError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class Psql:
    """One psql process kept open: each query is followed by an \\echo of a marker, and its
    output is read up to the marker. Errors come back as PgError."""

    MARK = "__sluice_pg_bench_done__"

    def __init__(self, psql, url):
        self.p = subprocess.Popen([psql, "-X", "-q", "-A", "-t", "-d", url],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        self.buf = b""

    def query(self, sql, timeout_s=120.0):
        """The output lines of `sql` (one statement or several); raises PgError on an error."""
        self.p.stdin.write(f"{sql.rstrip().rstrip(';')};\n\\echo {self.MARK}\n".encode())
        self.p.stdin.flush()
        lines = []
        deadline = time.monotonic() + timeout_s
        fd = self.p.stdout.fileno()
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                text = line.decode(errors="replace")
                if text == self.MARK:
                    errors = [l for l in lines if l.startswith(("ERROR:", "FATAL:", "psql:"))]
                    if errors:
                        raise PgError("\n".join(errors))
                    return [l for l in lines if not l.startswith(("NOTICE:", "WARNING:"))]
                lines.append(text)
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"psql: no answer within {timeout_s:.0f} s to: {sql}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise BenchError(f"psql exited ({self.p.wait()}) during: {sql}\n"
                                     + "\n".join(lines))
                self.buf += chunk

    def value(self, sql):
        out = self.query(sql)
        if not out:
            raise BenchError(f"psql: no result for: {sql}")
        return out[0]

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait(timeout=10)


class PgError(BenchError):
    pass


def server_settings(db, extra=()):
    """The settings of SETTINGS and of `extra` ("name=value" each, as given to the server)."""
    names = ", ".join(f"'{n}'" for n in SETTINGS + tuple(e.split("=", 1)[0] for e in extra))
    out = {}
    for line in db.query(f"SELECT name, setting, coalesce(unit, '') FROM pg_settings "
                         f"WHERE name IN ({names}) ORDER BY name"):
        name, setting, unit = line.split("|")
        out[name] = setting + (f" ({unit})" if unit else "")
    return out


def reset_tables(db):
    """Empty tables and a fresh checkpoint: every side starts from the same state, and no
    checkpoint is due during a run (max_wal_size 1 GB, checkpoint_timeout 5 min)."""
    db.query(f"TRUNCATE {TABLE}")
    db.query(f"DO $$ BEGIN IF to_regclass('{POSITIONS}') IS NOT NULL THEN "
             f"TRUNCATE {POSITIONS}; END IF; END $$")
    db.query("CHECKPOINT")


def wal_lsn(db):
    return db.value("SELECT pg_current_wal_lsn()")


def wal_bytes(db, since):
    return int(db.value(f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{since}')"))


def checkpoints(db):
    return int(db.value("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"))


def table_digest(db):
    """(rows, distinct ids, md5 of the rows in id order as text)."""
    n, d, md5 = db.value(
        f"SELECT count(*), count(DISTINCT id), md5(string_agg(format('%s|%s|%s', id, timestamp, "
        f"iris_class), E'\\n' ORDER BY id)) FROM {TABLE}").split("|")
    return int(n), int(d), md5


def stored_positions(db):
    """(rows, sum of next_offset) of the positions table; (0, 0) when it does not exist yet."""
    try:
        n, s = db.value(f"SELECT count(*), coalesce(sum(next_offset), 0) FROM {POSITIONS}"
                        ).split("|")
        return int(n), int(s)
    except PgError:
        return 0, 0


# ---- the expected rows ---------------------------------------------------------------------------

_ENVELOPE = re.compile(rb'"payload":\{"id":(\d+),"timestamp":(\d+),')
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


def expected_copy_file(sluice, envelopes, records):
    """The rows Sluice writes, as COPY text (id, timestamp, iris_class): the file pipeline's
    predictions in input order, each with the id of its envelope. Each output's timestamp must be
    its envelope's (they all differ), so a row cannot be paired with the wrong id."""
    lines = kb.expected_output(sluice, envelopes, records, sort=False)
    path = DATA / f"pg-expected-{records}.tsv"
    tmp = path.with_suffix(".tmp")
    with open(envelopes, "rb") as src, open(tmp, "w") as dst:
        for n, (envelope, line) in enumerate(zip(src, lines)):
            m = _ENVELOPE.search(envelope)
            if m:
                rid, ms = int(m[1]), int(m[2])
            else:
                payload = json.loads(envelope)["payload"]
                rid, ms = payload["id"], payload["timestamp"]
            out = json.loads(line)
            ts = out["timestamp"]
            micros = (datetime.fromisoformat(ts.rstrip("Z")) - _EPOCH) // _MICROSECOND
            if micros != ms * 1000:
                raise BenchError(f"line {n + 1}: the file pipeline's output {line!r} does not "
                                 f"belong to the envelope with timestamp {ms} (id {rid})")
            dst.write(f"{rid}\t{ts.rstrip('Z').replace('T', ' ')}\t{out['iris_class']}\n")
    tmp.replace(path)
    return path


# ---- the measured runs -------------------------------------------------------------------------

class Meter:
    """CPU of the machine, the server and the broker over one run."""

    def __init__(self, pg, broker):
        self.pg, self.broker = pg, broker
        self.busy0, self.pg0, self.b0 = kb.busy_cpu_s(), pg.cpu_s(), broker.cpu_s()

    def read(self):
        return (kb.busy_cpu_s() - self.busy0, self.pg.cpu_s() - self.pg0,
                self.broker.cpu_s() - self.b0)


def run_copy(psql, pg, db, broker, copy_file, records, wait_idle_s):
    """The ceiling: psql \\copy of the expected rows into the empty table, spawn to exit."""
    reset_tables(db)
    kb.wait_idle(wait_idle_s)
    lsn, ckpt = wal_lsn(db), checkpoints(db)
    cmd = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg.url, "-c",
           f"\\copy {TABLE} ({COLUMNS}) FROM '{copy_file}'"]
    err_path = OUT / "pg-psql-copy.stderr"
    with open(err_path, "wb") as err:
        meter = Meter(pg, broker)
        start = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        status, ru = kb.wait_rusage(p, max(120.0, records / 5_000))
        wall = time.perf_counter() - start
        time.sleep(0.05)  # the postmaster reaps the backend: its CPU time is then counted
        busy, server, bcpu = meter.read()
        window = time.perf_counter() - start
    if ru is None:
        raise BenchError(f"psql \\copy did not finish: {' '.join(cmd)}")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise BenchError(f"psql \\copy failed (exit {code}):\n"
                         f"{err_path.read_text(errors='replace')[-2000:]}")
    cpu = ru.ru_utime + ru.ru_stime
    return {"wall_s": wall, "cpu_s": cpu, "server_cpu_s": server, "broker_cpu_s": bcpu,
            "wal_bytes": wal_bytes(db, lsn), "checkpoints": checkpoints(db) - ckpt,
            "table_bytes": int(db.value(f"SELECT pg_relation_size('{TABLE}')")),
            "cores": (cpu + server) / wall,  # psql and the server
            "other_cores": max(0.0, (busy - cpu - server - bcpu) / window)}


def run_sluice(sluice, pg, db, broker, cfg, records, run, full_bytes, args, extra_env):
    """Sluice from spawn until the table holds every row (exactly-once: until the stored
    positions add up to every record, which commit with the rows); then SIGTERM and a clean
    exit."""
    delivery, batch, in_flight = cfg
    reset_tables(db)
    group = f"iris-pg-bench-{run}-{int(time.time() * 1000)}"
    dead = OUT / f"pg-sluice-{run}.dead-letter.jsonl"
    dead.unlink(missing_ok=True)
    env = dict(os.environ, BENCH_BATCH_SIZE=str(batch), BENCH_MAX_IN_FLIGHT=str(in_flight),
               **extra_env, KAFKA_BROKERS=broker.bootstrap, DATABASE_URL=pg.url,
               BENCH_INPUT_TOPIC=IN_TOPIC, BENCH_GROUP=group, BENCH_DELIVERY=delivery,
               BENCH_DEAD_LETTER=str(dead))
    kb.wait_idle(args.wait_idle)
    lsn, ckpt = wal_lsn(db), checkpoints(db)
    exactly_once = delivery == "exactly-once"
    err_path = OUT / f"pg-sluice-{run}.stderr"
    timeout_s = max(120.0, records / 5_000)
    t_first = t_done = None
    polls = counts = last_size = 0
    with open(err_path, "wb") as err:
        meter = Meter(pg, broker)
        start = time.perf_counter()
        p = subprocess.Popen([sluice, "--log-format", "json", "run", str(PIPELINE)], env=env,
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        try:
            while True:
                if p.poll() is not None:
                    raise BenchError(f"sluice exited early ({p.returncode}):\n"
                                     f"{err_path.read_text(errors='replace')[-3000:]}")
                size = int(db.value(f"SELECT pg_relation_size('{TABLE}')"))
                polls += 1
                now = time.perf_counter()
                if size > 0 and t_first is None:
                    t_first = now
                    scpu_first = kb.proc_cpu_s(p.pid)
                    busy_first, server_first, bcpu_first = meter.read()
                if exactly_once:
                    done = stored_positions(db)[1] >= records
                elif size >= full_bytes or (size >= COUNT_FROM * full_bytes and size == last_size):
                    counts += 1
                    done = int(db.value(f"SELECT count(*) FROM {TABLE}")) >= records
                else:
                    done = False
                last_size = size
                if done:
                    t_done = time.perf_counter()
                    break
                if now - start > timeout_s:
                    raise BenchError(f"sluice: not done after {timeout_s:.0f} s "
                                     f"({rel(err_path)})")
                time.sleep(args.poll_ms / 1000)
            scpu = kb.proc_cpu_s(p.pid)
            busy, server, bcpu = meter.read()
            window = time.perf_counter() - start
            t_stop = time.perf_counter()
            code = kb.stop_process(p, "sluice", timeout_s=30)
            drain_s = time.perf_counter() - t_stop
        finally:
            kb.stop_process(p, "sluice", timeout_s=5)
    text = err_path.read_text(errors="replace")
    if code != 0:
        raise BenchError(f"sluice did not exit cleanly after SIGTERM (exit {code}):\n"
                         f"{text[-3000:]}")
    summary = kb.last_json(text, "records_read")
    if summary is None or int(summary["records_read"]) != records \
            or int(summary["rows_written"]) != records or int(summary["dead_letters"]) != 0:
        raise BenchError(f"sluice's summary does not match {records:,} records: {summary}")
    if dead.exists() and dead.stat().st_size > 0:
        raise BenchError(f"sluice wrote dead letters: {rel(dead)}")
    wall = t_done - start
    return {
        "group": group,
        "wall_s": wall,  # spawn to the last row committed
        "startup_s": t_first - start,  # spawn to the first COPY seen in the table's file
        "steady_s": t_done - t_first,
        "cpu_s": scpu,
        "cpu_steady_s": scpu - scpu_first,
        "server_cpu_s": server,
        "server_cpu_steady_s": server - server_first,
        "broker_cpu_s": bcpu,
        "broker_cpu_steady_s": bcpu - bcpu_first,
        # Cores that Sluice, the server and the broker kept busy from the first row to the last.
        "cores_steady": (scpu - scpu_first + server - server_first + bcpu - bcpu_first) /
                        (t_done - t_first),
        "other_cores_steady": max(0.0, (busy - busy_first - (scpu - scpu_first) -
                                        (server - server_first) - (bcpu - bcpu_first)) /
                                  (t_done - t_first)),
        "wal_bytes": wal_bytes(db, lsn),
        "checkpoints": checkpoints(db) - ckpt,
        "table_bytes": int(db.value(f"SELECT pg_relation_size('{TABLE}')")),
        "other_cores": max(0.0, (busy - scpu - server - bcpu) / window),
        "drain_s": drain_s,
        "polls": polls,
        "counts": counts,
        "self_seconds": float(summary["seconds"]),
    }


def check_table(db, records, expected_md5, exactly_once, partitions):
    n, distinct, md5 = table_digest(db)
    if n != records or distinct != records:
        raise BenchError(f"{TABLE} holds {n:,} rows with {distinct:,} distinct ids, expected "
                         f"{records:,}")
    if md5 != expected_md5:
        raise BenchError(f"{TABLE}: {n:,} rows, but not the expected ones (md5 {md5}, expected "
                         f"{expected_md5})")
    if exactly_once:
        rows, total = stored_positions(db)
        if rows != partitions or total != records:
            raise BenchError(f"{POSITIONS}: {rows} partitions with positions adding up to "
                             f"{total:,}, expected {partitions} and {records:,}")


# ---- main -------------------------------------------------------------------------------------

def int_list(text):
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected integers separated by commas")
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: values must be >= 1")
    return values


def delivery_list(text):
    values = text.split(",")
    for v in values:
        if v not in DELIVERIES:
            raise argparse.ArgumentTypeError(f"{v!r}: expected {' or '.join(DELIVERIES)}")
    return values


def label(cfg):
    delivery, batch, in_flight = cfg
    return f"sluice {delivery}, batch {batch} x {in_flight}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000,
                    help="messages on the input topic, rows in the table (default 1,000,000)")
    ap.add_argument("--runs", type=int, default=3,
                    help="runs of each side; medians are reported (default 3)")
    ap.add_argument("--retries", type=int, default=2,
                    help="times a run is measured again when other processes disturbed it "
                         "(> 0.25 cores busy besides the side measured, the server and the "
                         "broker; default 2)")
    ap.add_argument("--delivery", type=delivery_list, default=list(DELIVERIES),
                    help="Sluice's deliveries to run, comma-separated (default both)")
    ap.add_argument("--batch-size", type=int_list, default=[BATCH_SIZE],
                    help=f"Sluice's batch_size, or several, comma-separated, to compare "
                         f"(default {BATCH_SIZE})")
    ap.add_argument("--max-in-flight", type=int_list, default=[MAX_IN_FLIGHT],
                    help=f"Sluice's max_in_flight, or several (default {MAX_IN_FLIGHT})")
    ap.add_argument("--sluice", default=str(ROOT / "build" / "sluice"),
                    help="the sluice binary (default build/sluice)")
    ap.add_argument("--psql", default="psql", help="the psql binary (default psql on PATH)")
    ap.add_argument("--pg-bin", default=str(PG_BIN),
                    help=f"folder of initdb, pg_ctl and postgres (default {PG_BIN})")
    ap.add_argument("--kcat", default="kcat", help="the kcat binary (default kcat on PATH)")
    ap.add_argument("--no-kcat", action="store_true",
                    help="leave out the reference runs of kcat reading the topic")
    ap.add_argument("--sluice-env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for the Sluice runs, e.g. BENCH_MAX_WAIT_MS=50 "
                         "(see pipelines/iris-pg-bench.yaml; repeatable)")
    ap.add_argument("--pg-setting", action="append", default=[], metavar="NAME=VALUE",
                    help="a server setting for the throwaway cluster, e.g. "
                         "log_autovacuum_min_duration=0 (repeatable; default: every default)")
    ap.add_argument("--poll-ms", type=float, default=POLL_S * 1000,
                    help="how often the end of a Sluice run is checked (default 50)")
    ap.add_argument("--wait-idle", type=float, default=WAIT_IDLE_S, metavar="SECONDS",
                    help="before each run, wait up to this long for the machine to be idle "
                         "(default 20; 0: do not wait)")
    ap.add_argument("--results", default=None, metavar="PATH",
                    help="where to write the results (default bench/results/pg-<time>.json)")
    args = ap.parse_args()
    if args.records < 1000 or args.runs < 1 or args.retries < 0 or args.poll_ms <= 0:
        ap.error("need --records >= 1000, --runs >= 1, --retries >= 0 and --poll-ms > 0")
    kb.WAIT_IDLE_S = args.wait_idle  # kb.run_kcat waits as long
    sluice_env = {}
    for item in args.sluice_env:
        name, eq, value = item.partition("=")
        if not eq or not name:
            ap.error(f"--sluice-env {item!r}: expected NAME=VALUE")
        sluice_env[name] = value
    sluice = str(Path(args.sluice).resolve())
    if not os.access(sluice, os.X_OK):
        sys.exit(f"{args.sluice}: not an executable; build first: cmake -S . -B build "
                 "-DCMAKE_BUILD_TYPE=Release && cmake --build build -j2 --target sluice")
    tools = {}
    for name, hint in ((args.psql, "postgresql-client"), (args.kcat, "kcat")):
        tools[name] = shutil.which(name)
        if not tools[name]:
            sys.exit(f"{name}: not found (Debian: apt-get install {hint})")
    psql, kcat = tools[args.psql], tools[args.kcat]
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not os.access(Path(args.pg_bin) / tool, os.X_OK):
            sys.exit(f"{Path(args.pg_bin) / tool}: not found (Debian: apt-get install "
                     "postgresql-15)")
    for delivery in DELIVERIES:
        v = subprocess.run([sluice, "validate", str(PIPELINE)], cwd=ROOT, capture_output=True,
                           text=True, env=dict(os.environ, BENCH_DELIVERY=delivery))
        if v.returncode != 0:
            sys.exit(f"{rel(PIPELINE)} does not validate:\n{v.stdout}{v.stderr}")
    configs = list(itertools.product(args.delivery, args.batch_size, args.max_in_flight))

    envelopes, _ = kb.ensure_input(args.records, "connect-json")
    size = envelopes.stat().st_size
    msg_bytes = size / args.records - 1
    parts = kb.partitions_for(args.records * (msg_bytes + kb.RECORD_OVERHEAD))
    log(f"input: {rel(envelopes)}, {args.records:,} Connect envelopes of {msg_bytes:.0f} bytes "
        f"on average ({size / 2**20:,.0f} MiB); {parts} partitions")
    OUT.mkdir(parents=True, exist_ok=True)
    log("expected rows: running the file pipeline on the same records ...")
    copy_file = expected_copy_file(sluice, envelopes, args.records)
    log(f"expected rows: {rel(copy_file)} ({copy_file.stat().st_size / 2**20:,.1f} MiB of COPY "
        "text)")

    sluice_ver = subprocess.run([sluice, "--version"], capture_output=True, text=True).stdout
    psql_ver = subprocess.run([psql, "--version"], capture_output=True, text=True).stdout
    load = os.getloadavg()
    pg = broker = db = None
    copy_runs, kcat_runs, group_runs, sluice_runs = [], [], [], {cfg: [] for cfg in configs}
    disturbed_runs = 0
    try:
        pg = Postgres(args.pg_bin, settings=args.pg_setting)
        db = Psql(psql, pg.url)
        db.query(DDL.read_text())
        # This session's count(*) while Sluice runs: one core, not a parallel scan on both.
        db.query("SET max_parallel_workers_per_gather = 0")
        settings = server_settings(db, args.pg_setting)
        log(f"postgres: {pg.url} (data in {pg.dir}); " +
            ", ".join(f"{k}={settings[k]}" for k in ("fsync", "synchronous_commit",
                                                      "full_page_writes", "wal_sync_method")))
        broker = kb.Broker(sluice, [(IN_TOPIC, parts)])
        log(f"broker: sluice dev-kafka at {broker.bootstrap} (pid {broker.p.pid})")
        produced = kb.produce(kcat, broker, envelopes, IN_TOPIC, parts, args.records)

        def measure(name, fn):
            """fn() measured again, up to --retries times, while other processes disturb it."""
            nonlocal disturbed_runs
            for retry in range(args.retries + 1):
                r = fn()
                other = max(r["other_cores"], r.get("other_cores_steady", 0.0))
                if other <= OTHER_CORES_NOTE or retry == args.retries:
                    return r
                disturbed_runs += 1
                log(f"{name}: disturbed (other processes kept {other:.2f} cores busy): "
                    "measuring again")

        expected_md5 = None
        attempt = 0
        for i in range(1, args.runs + 1):
            name = f"run {i}/{args.runs}"
            c = measure(name, lambda: run_copy(psql, pg, db, broker, copy_file, args.records,
                                               args.wait_idle))
            n, distinct, md5 = table_digest(db)
            if n != args.records or distinct != args.records:
                raise BenchError(f"psql \\copy loaded {n:,} rows ({distinct:,} distinct ids), "
                                 f"expected {args.records:,}")
            if expected_md5 is None:
                expected_md5 = md5
            elif md5 != expected_md5:
                raise BenchError("psql \\copy loaded other rows than in the first run")
            copy_runs.append(c)
            log(f"{name}: psql \\copy  {c['wall_s']:6.2f} s {args.records / c['wall_s']:>10,.0f} "
                f"rec/s  cpu {c['cpu_s']:.2f} s  server cpu {c['server_cpu_s']:.2f} s  WAL "
                f"{c['wal_bytes'] / 2**20:.0f} MiB  (others busy: {c['other_cores']:.2f})")
            if not args.no_kcat:
                for side, runs, group in (("kcat -C", kcat_runs, None),
                                          ("kcat -G", group_runs, "kcat-pg-bench")):
                    k = measure(name, lambda: kb.run_kcat(
                        kcat, broker, IN_TOPIC, produced["highs"],
                        group=group and f"{group}-{time.time_ns()}"))
                    runs.append(k)
                    log(f"{name}: {side}     {k['wall_s']:6.2f} s "
                        f"{args.records / k['wall_s']:>10,.0f} rec/s  cpu {k['cpu_s']:.2f} s  "
                        f"broker cpu {k['broker_cpu_s']:.2f} s  (others busy: "
                        f"{k['other_cores']:.2f})")
            for cfg in configs:
                def one():
                    nonlocal attempt
                    attempt += 1
                    return run_sluice(sluice, pg, db, broker, cfg, args.records, attempt,
                                      c["table_bytes"], args, sluice_env)
                r = measure(name, one)
                check_table(db, args.records, expected_md5, cfg[0] == "exactly-once", parts)
                sluice_runs[cfg].append(r)
                log(f"{name}: {label(cfg)}  {r['wall_s']:6.2f} s "
                    f"{args.records / r['wall_s']:>10,.0f} rec/s (start-up {r['startup_s']:.2f} "
                    f"s, then {args.records / r['steady_s']:,.0f} rec/s)  cpu {r['cpu_s']:.2f} s"
                    f"  server cpu {r['server_cpu_s']:.2f} s  WAL {r['wal_bytes'] / 2**20:.0f} "
                    f"MiB  (others busy: {r['other_cores']:.2f}, after start-up "
                    f"{r['other_cores_steady']:.2f}); table checked")
        broker.check_no_drops("at the end")
    except (BenchError, OSError, subprocess.SubprocessError) as e:
        sys.exit(f"error: {e}")
    finally:
        if db is not None:
            db.close()
        if broker is not None:
            broker.stop()
        if pg is not None:
            pg.stop()

    med = lambda runs, k: statistics.median(r[k] for r in runs)
    n = args.records
    ceiling = n / med(copy_runs, "wall_s")
    other = max(max(r["other_cores"], r.get("other_cores_steady", 0.0))
                for r in copy_runs + kcat_runs + group_runs + sum(sluice_runs.values(), []))

    def rounded(runs):
        return [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                for r in runs]

    sides = []
    for cfg, runs in sluice_runs.items():
        rate = n / med(runs, "wall_s")
        steady = statistics.median(n / r["steady_s"] for r in runs)
        sides.append({
            "delivery": cfg[0], "batch_size": cfg[1], "max_in_flight": cfg[2],
            "records_per_s": round(rate), "ratio": round(rate / ceiling, 3),
            "steady_records_per_s": round(steady), "ratio_steady": round(steady / ceiling, 3),
            "target_ratio": round(TARGETS[cfg[0]], 3),
            "target_met": rate / ceiling >= TARGETS[cfg[0]],
            "wall_s_median": round(med(runs, "wall_s"), 3),
            "startup_s_median": round(med(runs, "startup_s"), 3),
            "cores_steady_median": round(med(runs, "cores_steady"), 2),
            "cpu_s_median": round(med(runs, "cpu_s"), 3),
            "server_cpu_s_median": round(med(runs, "server_cpu_s"), 3),
            "broker_cpu_s_median": round(med(runs, "broker_cpu_s"), 3),
            "wal_bytes_median": round(med(runs, "wal_bytes")),
            "runs": rounded(runs)})
    date = datetime.now(timezone.utc)
    result = {
        "benchmark": "pg",
        "date": date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": kb.machine(load, other),
        "sluice_version": sluice_ver.strip(),
        "psql_version": psql_ver.strip(),
        "server_settings": settings,
        "sluice_env": sluice_env,
        "runs": args.runs,
        "records": n,
        "message_bytes": round(msg_bytes, 1),
        "partitions": parts,
        "produce_seconds": produced["seconds"],
        "copy_records_per_s": round(ceiling),
        "outputs_checked": True,
        "disturbed_runs_repeated": disturbed_runs,
        "copy": {"records_per_s": round(ceiling),
                 "wall_s_median": round(med(copy_runs, "wall_s"), 3),
                 "cpu_s_median": round(med(copy_runs, "cpu_s"), 3),
                 "server_cpu_s_median": round(med(copy_runs, "server_cpu_s"), 3),
                 "wal_bytes_median": round(med(copy_runs, "wal_bytes")),
                 "runs": rounded(copy_runs)},
        "kcat": [{"side": side, "records_per_s": round(n / med(runs, "wall_s")),
                  "ratio": round(n / med(runs, "wall_s") / ceiling, 3),
                  "wall_s_median": round(med(runs, "wall_s"), 3),
                  "cpu_s_median": round(med(runs, "cpu_s"), 3),
                  "broker_cpu_s_median": round(med(runs, "broker_cpu_s"), 3),
                  "runs": rounded(runs)}
                 for side, runs in (("kcat -C", kcat_runs), ("kcat -G", group_runs)) if runs],
        "sluice": sides,
    }
    results = Path(args.results) if args.results else \
        RESULTS / f"pg-{date.strftime('%Y%m%dT%H%M%SZ')}.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n")

    print(f"Kafka -> PostgreSQL benchmark, {result['date']}, {os.cpu_count()} CPUs "
          f"({kb.cpu_model()}), median of {args.runs} runs; {n:,} Connect envelopes of "
          f"{msg_bytes:.0f} bytes on {parts} partitions; PostgreSQL "
          f"{settings.get('server_version', '?')}, fsync={settings.get('fsync')}, "
          f"synchronous_commit={settings.get('synchronous_commit')}" +
          "".join(f", sluice with {k}={v}" for k, v in sluice_env.items()))
    print("| side                                      |  wall s |  records/s | vs COPY |"
          "  cpu s | server cpu s | broker cpu s | WAL MiB |")
    print("|-------------------------------------------|--------:|-----------:|--------:|"
          "-------:|-------------:|-------------:|--------:|")

    def row(name, runs, rate=None, cpu="cpu_s", server="server_cpu_s", broker="broker_cpu_s",
            wal="wal_bytes"):
        rate = rate or n / med(runs, "wall_s")
        cell = lambda k, fmt: "" if k is None or k not in runs[0] else format(med(runs, k), fmt)
        wal = "" if wal not in runs[0] else f"{med(runs, wal) / 2**20:.0f}"
        print(f"| {name:<41} | {n / rate:>7.2f} | {rate:>10,.0f} | {rate / ceiling:>6.2f}x | "
              f"{cell(cpu, '.2f'):>6} | {cell(server, '.2f'):>12} | {cell(broker, '.2f'):>12} | "
              f"{wal:>7} |")

    row("psql \\copy (one COPY, one commit)", copy_runs, broker=None)
    if kcat_runs:
        row("kcat -C: reads the topic (no group)", kcat_runs)
        row("kcat -G: reads it in a consumer group", group_runs)
    for cfg, runs in sluice_runs.items():
        row(label(cfg), runs)
        steady = statistics.median(n / r["steady_s"] for r in runs)
        row("  the same, first row to last", runs, rate=steady, cpu="cpu_steady_s",
            server="server_cpu_steady_s", broker="broker_cpu_steady_s", wal=None)
    print()
    met = lambda ok: "met" if ok else "NOT met"
    for s in sides:
        print(f"{s['delivery']:<14} batch {s['batch_size']:>5} x {s['max_in_flight']:<3}: "
              f"{s['ratio']:.2f}x the COPY ceiling end to end (start-up {s['startup_s_median']:.2f}"
              f" s), {s['ratio_steady']:.2f}x after start-up, with {s['cores_steady_median']:.1f} "
              f"cores busy (sluice, server, broker)  "
              f"[target >= {s['target_ratio']:.2f}: {met(s['target_met'])}]")
    print(f"tables:  {n:,} rows per run, count = distinct ids, the expected rows exactly"
          + (", positions add up" if "exactly-once" in args.delivery else ""))
    print(f"results: {rel(results)}")
    if other > OTHER_CORES_NOTE:
        print(f"note: other processes kept up to {other:.2f} of the {os.cpu_count()} cores busy "
              f"during a run: the machine was not idle, figures are pessimistic")


if __name__ == "__main__":
    main()
