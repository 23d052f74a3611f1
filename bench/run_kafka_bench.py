#!/usr/bin/python3
"""Kafka benchmark: Sluice from topic to topic against kcat consuming the same topic.

The job (pipelines/iris-kafka-bench.yaml): consume iris messages from a topic of the development
broker (`sluice dev-kafka`, librdkafka's mock cluster), decode them against
schemas/iris_data.json, drop id and target, classify with the XGBoost model in models/iris, and
produce {"timestamp", "iris_class"} per record to a second topic, keyed by timestamp; offsets are
committed once the sink has delivered. The reference is kcat, the librdkafka command-line client,
consuming the same input topic in the same run: the rate at which this client library can read
the topic from this broker, which is the ceiling of any librdkafka application here.

What this script does:
  1. generates the input once into bench/data/ (pipelines/data/make_iris_data.py: Kafka Connect
     envelopes, the format of the seed's topic; or, with --format json, plain JSON rows of the
     iris_data schema), exactly --records lines;
  2. starts `sluice dev-kafka` on 127.0.0.1 with the input topic and one output topic per run,
     with enough partitions that the broker's retention (the newest 5 MiB and 100,000 message
     sets per partition) keeps everything: about half of the 5 MiB is used at most;
  3. produces the input with kcat before any timing, and checks every partition's watermarks:
     low 0 everywhere and the highs summing to --records, or it stops (nothing dropped);
  4. --runs times, one side after the other: times kcat consuming the whole topic (spawn to
     exit, `-e`) with assigned partitions, then in a consumer group (-G: the same ~3 s group join
     as Sluice), and times Sluice running the pipeline until every output is on the output topic
     and the group's committed offsets reach the end of every input partition; then stops it with
     SIGTERM. Before each measurement it waits (up to --wait-idle s) for a quiet machine; a run
     in which other processes kept more than 0.25 cores busy is measured again (--retries);
  5. checks every Sluice run: exit status 0, records read, no dead letters, output partitions
     without loss (low watermark 0), and the output topic's messages equal, as a multiset, the
     lines that `sluice run pipelines/iris-bench.yaml` writes for the same records from a file;
  6. prints a table of medians and writes bench/results/kafka-<timestamp>.json.

The end of the Sluice run is watched through the Kafka protocol itself (ListOffsets for the
output topic's high watermarks, OffsetFetch for the group's committed offsets, every
--poll-ms), with a minimal client below: no process is started per poll.

Usage: run_kafka_bench.py [--records N] [--runs K] [--retries R] [--format connect-json|json]
                          [--partitions P] [--out-partitions Q] [--sluice PATH] [--kcat PATH]
                          [--sluice-env NAME=VALUE ...] [--poll-ms MS] [--wait-idle S]
                          [--results PATH]
"""
import argparse
import json
import math
import os
import platform
import signal
import socket
import statistics
import struct
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
PIPELINE = ROOT / "pipelines" / "iris-kafka-bench.yaml"
FILE_PIPELINE = ROOT / "pipelines" / "iris-bench.yaml"  # the expected output, from a file
GENERATOR = ROOT / "pipelines" / "data" / "make_iris_data.py"
PYTHON = "/usr/bin/python3"
IRIS_ROWS = 150

# The development broker keeps the newest 5 MiB per partition (and 100,000 message sets).
# Partitions are chosen so that the expected fill of one is at most half of that; the random
# spread of messages over partitions is a few percent, so the margin is about 2x.
MOCK_PARTITION_BYTES = 5 * 2**20
FILL = 0.5
RECORD_OVERHEAD = 12  # bytes per record in a v2 record batch besides key and value (varints)
OUTPUT_VALUE_BYTES = 60  # {"timestamp":"2026-01-01T00:00:01.006000Z","iris_class":0}
OUTPUT_KEY_BYTES = 27  # 2026-01-01T00:00:01.006000Z

IN_TOPIC = "iris-kafka-bench-in"
OUT_TOPIC = "iris-kafka-bench-out-{}"
POLL_S = 0.025  # --poll-ms
WAIT_IDLE_S = 20.0  # --wait-idle
OTHER_CORES_NOTE = 0.25
TARGET_RATIO = 0.5
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def rel(path):
    try:
        return str(Path(path).relative_to(ROOT))
    except ValueError:
        return str(path)


class BenchError(Exception):
    """A run that cannot be trusted: the script stops (and still stops the processes)."""


# ---- a minimal Kafka protocol client: ListOffsets v1 and OffsetFetch v1 ----------------------

class KafkaWire:
    """Just enough of the Kafka wire protocol to read watermarks and committed offsets from a
    one-broker cluster (every partition's leader and the group coordinator are that broker).
    Request header v1; both requests and responses are of the non-flexible versions."""

    def __init__(self, bootstrap, timeout_s=5.0):
        host, port = bootstrap.split(",")[0].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.corr = 0

    def close(self):
        self.sock.close()

    def _recv(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise BenchError("the broker closed the connection")
            buf += chunk
        return bytes(buf)

    def _call(self, api_key, version, body):
        self.corr += 1
        client = b"sluice-kafka-bench"
        msg = struct.pack(">hhih", api_key, version, self.corr, len(client)) + client + body
        self.sock.sendall(struct.pack(">i", len(msg)) + msg)
        (size,) = struct.unpack(">i", self._recv(4))
        data = self._recv(size)
        if struct.unpack_from(">i", data)[0] != self.corr:
            raise BenchError("Kafka response out of order")
        return _Reader(data, 4)

    @staticmethod
    def _str(s):
        b = s.encode()
        return struct.pack(">h", len(b)) + b

    def offsets(self, topic, partitions, which):
        """{partition: offset}: which = -1 for the high watermark (end), -2 for the low one."""
        body = struct.pack(">ii", -1, 1) + self._str(topic) + struct.pack(">i", partitions)
        body += b"".join(struct.pack(">iq", p, which) for p in range(partitions))
        r = self._call(2, 1, body)  # ListOffsets v1
        out = {}
        for _ in range(r.i32()):
            r.str()
            for _ in range(r.i32()):
                p, err, _ts, off = r.i32(), r.i16(), r.i64(), r.i64()
                if err:
                    raise BenchError(f"ListOffsets {topic} [{p}]: error {err}")
                out[p] = off
        return out

    def committed(self, group, topic, partitions):
        """{partition: committed offset, -1 when none}."""
        body = self._str(group) + struct.pack(">i", 1) + self._str(topic)
        body += struct.pack(">i", partitions)
        body += b"".join(struct.pack(">i", p) for p in range(partitions))
        r = self._call(9, 1, body)  # OffsetFetch v1
        out = {}
        for _ in range(r.i32()):
            r.str()
            for _ in range(r.i32()):
                p, off = r.i32(), r.i64()
                r.str()
                err = r.i16()
                if err:
                    raise BenchError(f"OffsetFetch {group} {topic} [{p}]: error {err}")
                out[p] = off
        return out


class _Reader:
    def __init__(self, data, pos):
        self.data, self.pos = data, pos

    def _take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def i16(self):
        return self._take(">h")

    def i32(self):
        return self._take(">i")

    def i64(self):
        return self._take(">q")

    def str(self):
        n = self.i16()
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s


# ---- machine and process accounting --------------------------------------------------------

def busy_cpu_s():
    """CPU seconds the whole machine has spent busy since boot (all processes, all cores)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (fields[0] + fields[1] + fields[2] + sum(fields[5:8])) / CLK_TCK


def wait_idle(limit_s):
    """Waits (up to limit_s) for a second in which the machine is < 0.15 cores busy. The idle
    development broker itself uses next to nothing."""
    if limit_s <= 0:
        return
    deadline = time.monotonic() + limit_s
    while True:
        b0, t0 = busy_cpu_s(), time.monotonic()
        time.sleep(1.0)
        if (busy_cpu_s() - b0) / (time.monotonic() - t0) < 0.15:
            return
        if time.monotonic() >= deadline:
            log(f"warning: the machine did not become idle within {limit_s:.0f} s; running anyway")
            return


def proc_cpu_s(pid):
    """User + system CPU seconds of a live process (all its threads), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def machine(load, other_cores):
    """The machine block of every benchmark's JSON: cores, CPU, kernel, memory, the load average
    before the run, and the most other processes kept busy during it."""
    return {"cpus": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "loadavg_before": [round(x, 2) for x in load],
            "other_cores_max": round(other_cores, 2)}


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def stop_process(p, name, timeout_s=15.0):
    """SIGTERM, then SIGKILL after timeout_s; returns the exit code (None if it was killed)."""
    if p is None or p.poll() is not None:
        return None if p is None else p.returncode
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        log(f"{name} (pid {p.pid}) did not stop within {timeout_s:.0f} s of SIGTERM: killing it")
        p.kill()
        p.wait(timeout=10)
        return None


# ---- input -----------------------------------------------------------------------------------

def iso_ms(ms):
    t = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def ensure_input(records, fmt):
    """Returns (envelopes path, input path): exactly `records` Connect envelopes and, for
    --format json, the same rows as plain JSON objects (timestamps as ISO 8601 strings)."""
    DATA.mkdir(parents=True, exist_ok=True)
    envelopes = DATA / f"kafka-iris-connect-json-{records}.jsonl"
    if not (envelopes.exists() and count_lines(envelopes) == records):
        repeat = max(1, math.ceil(records / IRIS_ROWS))
        full = DATA / f"kafka-iris-r{repeat}.jsonl.tmp"
        log(f"input: generating {records:,} Connect envelopes ...")
        subprocess.run([PYTHON, str(GENERATOR), "--repeat", str(repeat), "--bad", "0",
                        "--out", str(full)], check=True, timeout=600)
        tmp = envelopes.with_suffix(".tmp")
        with open(full, "rb") as src, open(tmp, "wb") as dst:
            for n, line in enumerate(src):
                if n == records:
                    break
                dst.write(line)
        full.unlink()
        tmp.replace(envelopes)
    if fmt == "connect-json":
        return envelopes, envelopes
    rows = DATA / f"kafka-iris-json-{records}.jsonl"
    if not (rows.exists() and count_lines(rows) == records):
        log(f"input: converting to {records:,} JSON rows ...")
        tmp = rows.with_suffix(".tmp")
        with open(envelopes) as src, open(tmp, "w") as dst:
            for line in src:
                payload = json.loads(line)["payload"]
                payload["timestamp"] = iso_ms(payload["timestamp"])
                dst.write(json.dumps(payload, separators=(",", ":")) + "\n")
        tmp.replace(rows)
    return envelopes, rows


def count_lines(path):
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b"\n")
    return n


def partitions_for(total_bytes):
    """The smallest power of two of partitions that keeps each at most FILL of the broker's
    per-partition limit of 5 MiB. (Its limit of 100,000 message sets is far off: kcat and the
    kafka sink batch hundreds of messages per set.)"""
    p = 1
    while total_bytes / p > FILL * MOCK_PARTITION_BYTES:
        p *= 2
    return p


def expected_output(sluice, envelopes, records, sort=True):
    """The lines the file pipeline (pipelines/iris-bench.yaml) writes for the same records: the
    Kafka sink's messages must be the same lines (same encoder), in any order. Sorted, or with
    sort=False in the input's order (the file pipeline keeps it)."""
    out = OUT / f"kafka-expected-{records}.jsonl"
    dead = Path(f"{out}.dead-letter.jsonl")
    out.unlink(missing_ok=True)
    dead.unlink(missing_ok=True)
    env = dict(os.environ, BENCH_INPUT=str(envelopes), BENCH_OUTPUT=str(out), BENCH_REPEAT="1")
    r = subprocess.run([sluice, "--log-format", "json", "run", str(FILE_PIPELINE)], env=env,
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise BenchError(f"the file pipeline failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
    lines = out.read_text().splitlines()
    if len(lines) != records or dead.exists():
        raise BenchError(f"the file pipeline wrote {len(lines):,} rows for {records:,} records")
    return sorted(lines) if sort else lines


# ---- the broker ----------------------------------------------------------------------------

class Broker:
    def __init__(self, sluice, topics, extra=()):
        OUT.mkdir(parents=True, exist_ok=True)
        self.addr_file = OUT / "kafka-bootstrap.addr"
        self.addr_file.unlink(missing_ok=True)
        self.err_path = OUT / "kafka-dev-broker.stderr"
        cmd = [sluice, "dev-kafka", "--bootstrap-file", str(self.addr_file), "--watch-ms", "5000"]
        for name, parts in topics:
            cmd += ["-t", f"{name}:{parts}"]
        cmd += list(extra)  # e.g. --fault '0 rtt 1 10'
        self.err = open(self.err_path, "wb")
        self.p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.err, cwd=ROOT)
        deadline = time.monotonic() + 15
        while not self.addr_file.exists():
            if self.p.poll() is not None:
                raise BenchError(f"dev-kafka exited ({self.p.returncode}):\n{self.stderr()}")
            if time.monotonic() > deadline:
                raise BenchError("dev-kafka wrote no bootstrap address within 15 s")
            time.sleep(0.05)
        self.bootstrap = self.addr_file.read_text().strip()
        self.wire = KafkaWire(self.bootstrap)

    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def check_no_drops(self, when):
        """The broker's own watcher warns as soon as a low watermark moves."""
        if "dropped" in self.stderr():
            raise BenchError(f"the development broker dropped messages ({when}):\n"
                             + "\n".join(l for l in self.stderr().splitlines() if "dropped" in l))

    def cpu_s(self):
        return proc_cpu_s(self.p.pid)

    def stop(self):
        try:
            self.wire.close()
        except Exception:
            pass
        stop_process(self.p, "dev-kafka")
        self.err.close()


def produce(kcat, broker, path, topic, partitions, records):
    """Produces every line of `path` with kcat, each message to a random partition (no sticky
    partitioning: it would fill a few partitions in turn), in large batches (the broker's fetch
    returns one batch per partition per request), then checks the watermarks."""
    cmd = [kcat, "-P", "-b", broker.bootstrap, "-t", topic, "-l", str(path),
           "-X", "sticky.partitioning.linger.ms=0", "-X", "linger.ms=100",
           "-X", "batch.num.messages=10000", "-X", "queue.buffering.max.messages=1000000"]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise BenchError(f"kcat -P failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
    lows = broker.wire.offsets(topic, partitions, -2)
    highs = broker.wire.offsets(topic, partitions, -1)
    moved = {p: lo for p, lo in lows.items() if lo != 0}
    total = sum(highs[p] - lows[p] for p in highs)
    if moved or sum(highs.values()) != records or total != records:
        raise BenchError(f"after producing {records:,} messages: {total:,} on the topic, "
                         f"{sum(highs.values()):,} produced, low watermarks moved on "
                         f"{len(moved)} partition(s) {dict(list(moved.items())[:5])}: the broker "
                         "dropped messages; use more --partitions")
    broker.check_no_drops("after producing")
    log(f"produce: {records:,} messages with kcat in {dt:.1f} s ({records / dt:,.0f} msg/s); "
        f"watermarks: low 0 on all {partitions} partitions, highs sum to {total:,} "
        f"(min {min(highs.values()):,}, max {max(highs.values()):,} per partition)")
    return {"seconds": round(dt, 3), "highs": highs}


# ---- the measured runs -------------------------------------------------------------------------

def run_kcat(kcat, broker, topic, highs, group=None):
    """kcat consuming the whole topic to its end; checks that it reached the high watermark of
    every partition. fetch.wait.max.ms=5: the mock broker answers a fetch that finds no new data
    only after fetch.wait.max.ms (default 500), which is how the end of a partition is seen; it
    has no effect while data flows."""
    wait_idle(WAIT_IDLE_S)
    if group:
        cmd = [kcat, "-b", broker.bootstrap, "-G", group, "-X", "auto.offset.reset=earliest"]
    else:
        cmd = [kcat, "-C", "-b", broker.bootstrap, "-o", "beginning"]
    cmd += ["-e", "-X", "fetch.wait.max.ms=5"]
    cmd += [topic] if group else ["-t", topic]
    err_path = OUT / "kafka-kcat.stderr"
    with open(err_path, "wb") as err:
        busy0, bcpu0 = busy_cpu_s(), broker.cpu_s()
        start = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        status, ru = wait_rusage(p, 600)
        wall = time.perf_counter() - start
        busy, bcpu = busy_cpu_s() - busy0, broker.cpu_s() - bcpu0
    if ru is None:
        raise BenchError(f"kcat did not finish within 600 s: {' '.join(cmd)}")
    code = os.waitstatus_to_exitcode(status)
    text = err_path.read_text(errors="replace")
    if code != 0:
        raise BenchError(f"kcat failed (exit {code}):\n{text[-2000:]}")
    # "% Reached end of topic T [p] at offset X"
    ends = {}
    for line in text.splitlines():
        if "Reached end of topic" in line:
            part = int(line.split("[", 1)[1].split("]", 1)[0])
            ends[part] = int(line.split("at offset ", 1)[1].split(":")[0].split()[0])
    if ends != highs:
        missing = [p for p in highs if ends.get(p) != highs[p]]
        raise BenchError(f"kcat did not reach the end of {len(missing)} partition(s), e.g. "
                         f"{missing[:5]}")
    cpu = ru.ru_utime + ru.ru_stime
    return {"wall_s": wall, "cpu_s": cpu, "broker_cpu_s": bcpu,
            "other_cores": max(0.0, (busy - cpu - bcpu) / wall)}


def wait_rusage(p, timeout_s):
    """Waits for p (polling every 2 ms, up to timeout_s) and returns (status, rusage); kills
    it and returns (None, None) on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return status, ru
        time.sleep(0.002)
    p.kill()
    p.wait(timeout=10)
    return None, None


def run_sluice(sluice, broker, args, run, in_highs, out_topic, out_parts, extra_env):
    """Sluice from spawn until every output is on the output topic and the group's committed
    offsets are at the end of every input partition; then SIGTERM and a clean exit."""
    records = args.records
    group = f"iris-kafka-bench-{run}-{int(time.time())}"
    dead = OUT / f"kafka-sluice-{run}.dead-letter.jsonl"
    dead.unlink(missing_ok=True)
    env = dict(os.environ, **extra_env, KAFKA_BROKERS=broker.bootstrap,
               BENCH_INPUT_TOPIC=IN_TOPIC, BENCH_OUTPUT_TOPIC=out_topic, BENCH_GROUP=group,
               BENCH_FORMAT=args.format, BENCH_DEAD_LETTER=str(dead))
    wait_idle(WAIT_IDLE_S)
    wire = broker.wire
    err_path = OUT / f"kafka-sluice-{run}.stderr"
    timeout_s = max(60.0, records / 10_000)
    t_first = first_count = t_out = t_done = None
    polls = 0
    with open(err_path, "wb") as err:
        busy0, bcpu0 = busy_cpu_s(), broker.cpu_s()
        start = time.perf_counter()
        p = subprocess.Popen([sluice, "--log-format", "json", "run", str(PIPELINE)], env=env,
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        try:
            while True:
                if p.poll() is not None:
                    raise BenchError(f"sluice exited early ({p.returncode}):\n"
                                     f"{err_path.read_text(errors='replace')[-3000:]}")
                out = sum(wire.offsets(out_topic, out_parts, -1).values())
                now = time.perf_counter()
                polls += 1
                if out > 0 and t_first is None:
                    t_first, first_count = now, out
                    scpu_first, bcpu_first = proc_cpu_s(p.pid), broker.cpu_s()
                if out >= records and t_out is None:
                    t_out = now
                if t_out is not None:
                    committed = wire.committed(group, IN_TOPIC, len(in_highs))
                    now = time.perf_counter()
                    if committed == in_highs:
                        t_done = now
                        break
                if now - start > timeout_s:
                    raise BenchError(f"sluice: not done after {timeout_s:.0f} s: {out:,} of "
                                     f"{records:,} outputs")
                time.sleep(POLL_S)
            scpu = proc_cpu_s(p.pid)
            bcpu_now = broker.cpu_s()
            bcpu, bcpu_steady = bcpu_now - bcpu0, bcpu_now - bcpu_first
            busy = busy_cpu_s() - busy0
            t_stop = time.perf_counter()
            code = stop_process(p, "sluice", timeout_s=30)
            drain_s = time.perf_counter() - t_stop
        finally:
            stop_process(p, "sluice", timeout_s=5)
    text = err_path.read_text(errors="replace")
    if code != 0:
        raise BenchError(f"sluice did not exit cleanly after SIGTERM (exit {code}):\n"
                         f"{text[-3000:]}")
    summary = last_json(text, "records_read")
    if summary is None or int(summary["records_read"]) != records \
            or int(summary["rows_written"]) != records or int(summary["dead_letters"]) != 0:
        raise BenchError(f"sluice's summary does not match {records:,} records: {summary}")
    wall = t_done - start
    steady = t_done - t_first
    return {
        "group": group,
        "wall_s": wall,  # spawn to last commit
        "startup_s": t_first - start,  # spawn to the first output on the topic
        "steady_s": steady,
        "steady_records": records - first_count,
        "outputs_done_s": t_out - start,
        "commit_lag_s": t_done - t_out,
        "cpu_s": scpu,
        "cpu_steady_s": scpu - scpu_first,
        "broker_cpu_s": bcpu,
        "broker_cpu_steady_s": bcpu_steady,
        "other_cores": max(0.0, (busy - scpu - bcpu) / wall),
        "drain_s": drain_s,
        "polls": polls,
        "self_seconds": float(summary["seconds"]),
    }


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


def check_output(kcat, broker, out_topic, out_parts, expected):
    """The output topic holds exactly the expected messages: none dropped by the broker (low
    watermarks 0), as many as records (no duplicates), and the same lines as the file pipeline's."""
    lows = broker.wire.offsets(out_topic, out_parts, -2)
    highs = broker.wire.offsets(out_topic, out_parts, -1)
    total = sum(highs.values())
    if any(lows.values()):
        raise BenchError(f"the broker dropped outputs on {out_topic}: use more --out-partitions")
    if total != len(expected):
        raise BenchError(f"{out_topic} holds {total:,} messages, expected {len(expected):,}")
    path = OUT / "kafka-output.jsonl"
    with open(path, "wb") as f:
        r = subprocess.run([kcat, "-C", "-b", broker.bootstrap, "-t", out_topic, "-o", "beginning",
                            "-e", "-q", "-X", "fetch.wait.max.ms=5", "-f", "%s\n"],
                           stdout=f, stderr=subprocess.PIPE, timeout=600)
    if r.returncode != 0:
        raise BenchError(f"kcat reading {out_topic} failed: {r.stderr[-2000:]!r}")
    got = sorted(path.read_text().splitlines())
    if got != expected:
        diff = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), None)
        raise BenchError(f"{out_topic}: {len(got):,} messages differ from the file pipeline's "
                         f"{len(expected):,} lines (first difference in sorted order at "
                         f"{diff}: {got[diff] if diff is not None else ''!r})")
    path.unlink()


# ---- main -------------------------------------------------------------------------------------

def main():
    global POLL_S, WAIT_IDLE_S
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000,
                    help="messages on the input topic (default 1,000,000)")
    ap.add_argument("--runs", type=int, default=3,
                    help="runs of each side; medians are reported (default 3)")
    ap.add_argument("--format", choices=["connect-json", "json"], default="connect-json",
                    help="input messages: Kafka Connect envelopes (default, ~650 bytes, the "
                         "seed's topic) or plain JSON rows of schemas/iris_data.json (~150 bytes)")
    ap.add_argument("--partitions", type=int, default=0,
                    help="input partitions (default: enough for the broker to keep everything)")
    ap.add_argument("--out-partitions", type=int, default=0,
                    help="output partitions (default: enough for the broker to keep everything)")
    ap.add_argument("--sluice", default=str(ROOT / "build" / "sluice"),
                    help="the sluice binary (default build/sluice)")
    ap.add_argument("--kcat", default="kcat", help="the kcat binary (default kcat on PATH)")
    ap.add_argument("--sluice-env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for the Sluice runs, e.g. BENCH_BATCH_SIZE=4096 "
                         "(see pipelines/iris-kafka-bench.yaml; repeatable)")
    ap.add_argument("--retries", type=int, default=2,
                    help="times a run is measured again when other processes disturbed it "
                         "(> 0.25 cores busy besides the broker and the side measured; default 2)")
    ap.add_argument("--poll-ms", type=float, default=POLL_S * 1000,
                    help="how often the end of a Sluice run is checked (default 25)")
    ap.add_argument("--wait-idle", type=float, default=WAIT_IDLE_S, metavar="SECONDS",
                    help="before each run, wait up to this long for the machine to be idle "
                         "(default 20; 0: do not wait)")
    ap.add_argument("--results", default=None, metavar="PATH",
                    help="where to write the results (default bench/results/kafka-<time>.json)")
    args = ap.parse_args()
    if args.records < 1000 or args.runs < 1 or args.retries < 0 or args.partitions < 0 \
            or args.out_partitions < 0:
        ap.error("need --records >= 1000, --runs >= 1, --retries, --partitions and "
                 "--out-partitions >= 0")
    POLL_S, WAIT_IDLE_S = args.poll_ms / 1000, args.wait_idle
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
    kcat = subprocess.run(["sh", "-c", f"command -v {args.kcat}"], capture_output=True,
                          text=True).stdout.strip()
    if not kcat:
        sys.exit(f"{args.kcat}: not found (Debian: apt-get install kcat)")
    for fmt in ("connect-json", "json"):
        v = subprocess.run([sluice, "validate", str(PIPELINE)], cwd=ROOT, capture_output=True,
                           text=True, env=dict(os.environ, BENCH_FORMAT=fmt))
        if v.returncode != 0:
            sys.exit(f"{rel(PIPELINE)} does not validate:\n{v.stdout}{v.stderr}")

    envelopes, path = ensure_input(args.records, args.format)
    size = path.stat().st_size
    msg_bytes = size / args.records - 1  # without the newline
    in_bytes = args.records * (msg_bytes + RECORD_OVERHEAD)
    parts = args.partitions or partitions_for(in_bytes)
    out_bytes = args.records * (OUTPUT_VALUE_BYTES + OUTPUT_KEY_BYTES + RECORD_OVERHEAD)
    out_parts = args.out_partitions or partitions_for(out_bytes)
    fill = in_bytes / parts / MOCK_PARTITION_BYTES
    log(f"input: {rel(path)}, {args.records:,} {args.format} messages of {msg_bytes:.0f} bytes "
        f"on average ({size / 2**20:,.0f} MiB); {parts} input partitions (~{fill:.0%} of the "
        f"broker's 5 MiB each), {out_parts} output partitions")
    OUT.mkdir(parents=True, exist_ok=True)
    log("expected output: running the file pipeline on the same records ...")
    expected = expected_output(sluice, envelopes, args.records)

    sluice_ver = subprocess.run([sluice, "--version"], capture_output=True, text=True).stdout
    kcat_ver = subprocess.run([kcat, "-V"], capture_output=True, text=True).stdout
    kcat_ver = next((l for l in kcat_ver.splitlines() if "librdkafka" in l), kcat_ver.strip())
    load = os.getloadavg()
    attempts = args.runs * (args.retries + 1)  # each Sluice attempt gets its own output topic
    out_topics = [OUT_TOPIC.format(i) for i in range(1, attempts + 1)]
    broker = None
    kcat_runs, group_runs, sluice_runs = [], [], []
    disturbed_runs = 0
    try:
        broker = Broker(sluice, [(IN_TOPIC, parts)] + [(t, out_parts) for t in out_topics])
        log(f"broker: sluice dev-kafka at {broker.bootstrap} (pid {broker.p.pid})")
        produced = produce(kcat, broker, path, IN_TOPIC, parts, args.records)
        highs = produced["highs"]
        attempt = 0
        for i in range(1, args.runs + 1):
            for retry in range(args.retries + 1):
                # The three sides one after the other, so that drift on the machine hits all.
                attempt += 1
                name = f"run {i}/{args.runs}" + (f" (again, {retry + 1})" if retry else "")
                k = run_kcat(kcat, broker, IN_TOPIC, highs)
                log(f"{name}: kcat        {k['wall_s']:6.2f} s  "
                    f"{args.records / k['wall_s']:>10,.0f} rec/s  cpu {k['cpu_s']:.2f} s  "
                    f"broker cpu {k['broker_cpu_s']:.2f} s  (others busy: {k['other_cores']:.2f})")
                g = run_kcat(kcat, broker, IN_TOPIC, highs,
                             group=f"kcat-bench-{attempt}-{int(time.time())}")
                log(f"{name}: kcat -G     {g['wall_s']:6.2f} s  "
                    f"{args.records / g['wall_s']:>10,.0f} rec/s  cpu {g['cpu_s']:.2f} s  "
                    f"broker cpu {g['broker_cpu_s']:.2f} s  (others busy: {g['other_cores']:.2f})")
                topic = out_topics[attempt - 1]
                r = run_sluice(sluice, broker, args, attempt, highs, topic, out_parts, sluice_env)
                log(f"{name}: sluice      {r['wall_s']:6.2f} s  "
                    f"{args.records / r['wall_s']:>10,.0f} rec/s  (start-up {r['startup_s']:.2f} s, "
                    f"then {r['steady_records'] / r['steady_s']:,.0f} rec/s; commits "
                    f"{r['commit_lag_s'] * 1000:.0f} ms after the last output)  cpu {r['cpu_s']:.2f} s"
                    f"  broker cpu {r['broker_cpu_s']:.2f} s  (others busy: {r['other_cores']:.2f})")
                check_output(kcat, broker, topic, out_parts, expected)
                log(f"{name}: output checked: {args.records:,} messages on {topic}, none "
                    "dropped, the same as the file pipeline's")
                other = max(x["other_cores"] for x in (k, g, r))
                if other <= OTHER_CORES_NOTE or retry == args.retries:
                    break
                disturbed_runs += 1
                log(f"{name}: disturbed (other processes kept {other:.2f} cores busy): "
                    "measuring all three again")
            kcat_runs.append(k)
            group_runs.append(g)
            sluice_runs.append(r)
        broker.check_no_drops("at the end")
    except (BenchError, OSError) as e:
        sys.exit(f"error: {e}")
    finally:
        if broker is not None:
            broker.stop()

    med = lambda runs, k: statistics.median(r[k] for r in runs)
    n = args.records
    kc = n / med(kcat_runs, "wall_s")
    kg = n / med(group_runs, "wall_s")
    sl = n / med(sluice_runs, "wall_s")
    ss = statistics.median(r["steady_records"] / r["steady_s"] for r in sluice_runs)
    startup = med(sluice_runs, "startup_s")
    other = max(r["other_cores"] for r in kcat_runs + group_runs + sluice_runs)

    def summary(runs, rate):
        return {"records_per_s": round(rate),
                "wall_s_median": round(med(runs, "wall_s"), 3),
                "cpu_s_median": round(med(runs, "cpu_s"), 3),
                "broker_cpu_s_median": round(med(runs, "broker_cpu_s"), 3),
                "runs": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                         for r in runs]}

    date = datetime.now(timezone.utc)
    result = {
        "benchmark": "kafka",
        "date": date.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(load, other),
        "sluice_version": sluice_ver.strip(),
        "kcat_version": kcat_ver,
        "sluice_env": sluice_env,
        "runs": args.runs,
        "records": n,
        "format": args.format,
        "message_bytes": round(msg_bytes, 1),
        "input_mib": round(size / 2**20, 1),
        "partitions": parts,
        "output_partitions": out_parts,
        "partition_fill": round(fill, 3),
        "produce_seconds": produced["seconds"],
        "kcat_records_per_s": round(kc),
        "kcat_group_records_per_s": round(kg),
        "sluice_records_per_s": round(sl),
        "sluice_steady_records_per_s": round(ss),
        "sluice_startup_s": round(startup, 3),
        "ratio": round(sl / kc, 3),
        "ratio_vs_kcat_group": round(sl / kg, 3),
        "ratio_steady": round(ss / kc, 3),
        "target_ratio": TARGET_RATIO,
        "outputs_checked": True,
        "disturbed_runs_repeated": disturbed_runs,
        "detail": {"kcat": summary(kcat_runs, kc), "kcat_group": summary(group_runs, kg),
                   "sluice": summary(sluice_runs, sl)},
    }
    results = Path(args.results) if args.results else \
        RESULTS / f"kafka-{date.strftime('%Y%m%dT%H%M%SZ')}.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n")

    print(f"kafka benchmark, {result['date']}, {os.cpu_count()} CPUs ({cpu_model()}), median of "
          f"{args.runs} runs; {n:,} {args.format} messages of {msg_bytes:.0f} bytes, "
          f"{parts} partitions in, {out_parts} out" +
          "".join(f", sluice with {k}={v}" for k, v in sluice_env.items()))
    print("| side                                  |    wall s |  records/s | vs kcat |"
          "   cpu s | broker cpu s |")
    print("|---------------------------------------|----------:|-----------:|--------:|"
          "--------:|-------------:|")

    def row(name, wall, rate, cpu, bcpu):
        print(f"| {name:<37} | {wall:>9.2f} | {rate:>10,.0f} | {rate / kc:>6.2f}x | "
              f"{cpu:>7.2f} | {bcpu:>12.2f} |")

    row("kcat -C (assigned partitions)", med(kcat_runs, "wall_s"), kc, med(kcat_runs, "cpu_s"),
        med(kcat_runs, "broker_cpu_s"))
    row("kcat -G (consumer group)", med(group_runs, "wall_s"), kg, med(group_runs, "cpu_s"),
        med(group_runs, "broker_cpu_s"))
    row("sluice, spawn to last commit", med(sluice_runs, "wall_s"), sl,
        med(sluice_runs, "cpu_s"), med(sluice_runs, "broker_cpu_s"))
    row("sluice, first output to last commit", med(sluice_runs, "steady_s"), ss,
        med(sluice_runs, "cpu_steady_s"), med(sluice_runs, "broker_cpu_steady_s"))
    print()
    met = lambda ok: "met" if ok else "NOT met"
    print(f"sluice / kcat:        {sl / kc:.2f}x spawn to last commit (start-up {startup:.2f} s: "
          f"the group join), {ss / kc:.2f}x after start-up  "
          f"[target >= {TARGET_RATIO}: {met(sl / kc >= TARGET_RATIO)}]")
    print(f"sluice / kcat -G:     {sl / kg:.2f}x (both join a consumer group)")
    print(f"outputs:              {n:,} messages per run, the file pipeline's lines, none dropped")
    print(f"results:              {rel(results)}")
    if other > OTHER_CORES_NOTE:
        print(f"note: other processes kept up to {other:.2f} of the {os.cpu_count()} cores busy "
              f"during a run: the machine was not idle, figures are pessimistic")


if __name__ == "__main__":
    main()
