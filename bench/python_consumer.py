#!/usr/bin/python3
"""A best-effort Python consumer of the seed's iris flow (bench/run_seed_bench.py).

What a careful engineer writes with Debian's Python packages to do the job of
pipelines/iris-pg-bench.yaml.

Kafka Connect envelopes of iris_data from a topic -> (id, timestamp, iris_class) rows COPYed into
the seed's table iris_prediction, classified in process by the XGBoost model of models/iris, the
group's offsets committed only after the rows they cover are committed in the database
(at-least-once).

How it is made fast:
  - confluent-kafka (librdkafka: fetching runs on its own threads), `consume(num_messages=...)`
    returning up to --batch messages at a time;
  - decoding: every envelope of the topic carries the same schema half, so once the first
    envelope has been decoded whole and checked, the payloads of the envelopes that start with the
    same bytes are cut out and decoded together, one `json.loads` of a JSON array per batch. Any
    envelope that starts otherwise is decoded whole on its own;
  - the features go into one float32 matrix per batch (itemgetter, no per-row Python code) and one
    `Booster.inplace_predict` call (one XGBoost thread: faster than OpenMP at these batch sizes);
  - a batch's rows become one COPY text, timestamps formatted by numpy, and are written with
    psycopg2's `copy_expert` and one commit per batch on a writer thread (psycopg2 releases the GIL
    while libpq sends and while the commit waits for the server), so decoding the next batch
    overlaps writing this one; at most --depth batches wait for the writer;
  - once a batch is committed in the database, the consumer's positions taken right after that
    batch was consumed are committed to Kafka (asynchronously, the last one synchronously).

Every batch is checked: every payload must have the id, timestamp and four measurements, with
integer ids and timestamps and finite measurements; otherwise the batch is checked row by row and
the bad rows are written to --dead-letter with the reason.

It stops after --max-records records (rows written plus dead letters), or when no message came for
--idle-seconds, and prints one JSON line of counts and times to standard error.

Usage: python_consumer.py --brokers B --topic T --group G --db URL [--model DIR]
                          [--max-records N] [--batch N] [--depth N] [--dead-letter PATH]
Debian's python3-confluent-kafka, python3-psycopg2, python3-numpy and python3-xgboost.
"""
import argparse
import gc
import io
import json
import operator
import os
import queue
import sys
import threading
import time

import numpy as np
import psycopg2
import xgboost
from confluent_kafka import Consumer, KafkaError

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
COPY = "COPY iris_prediction (id, timestamp, iris_class) FROM STDIN"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

get_features = operator.itemgetter(*FEATURES)
get_id = operator.itemgetter("id")
get_ts = operator.itemgetter("timestamp")
row_text = "{}\t{}\t{}\n".format


class BadRecord(ValueError):
    pass


class Decoder:
    """Envelope bytes -> payload dicts. Learns the schema half from the first envelope that
    decodes whole into {"schema": {...}, "payload": {...}}."""

    def __init__(self):
        self.prefix = None

    def learn(self, value):
        doc = json.loads(value)
        if not isinstance(doc, dict) or not isinstance(doc.get("payload"), dict):
            return
        cut = value.rfind(b'"payload":')
        if cut < 0 or not value.endswith(b"}"):
            return
        prefix = value[:cut + len(b'"payload":')]
        try:
            payload = json.loads(value[len(prefix):-1])
        except ValueError:
            return
        if payload == doc["payload"] and set(doc) == {"schema", "payload"}:
            self.prefix = prefix

    def batch(self, values):
        """The payloads of `values`, in order; None when the batch must go row by row."""
        if self.prefix is None:
            self.learn(values[0])
            if self.prefix is None:
                return None
        prefix, n = self.prefix, len(self.prefix)
        if not all(map(prefix.__eq__, (v[:n] for v in values))):
            return None
        try:
            docs = json.loads(b"[" + b",".join([v[n:-1] for v in values]) + b"]")
        except ValueError:
            return None
        return docs if len(docs) == len(values) else None

    @staticmethod
    def one(value):
        try:
            doc = json.loads(value)
        except (ValueError, TypeError) as e:
            raise BadRecord(f"not JSON: {e}")
        payload = doc.get("payload") if isinstance(doc, dict) else None
        if not isinstance(payload, dict):
            raise BadRecord("no payload object")
        return payload


def columns(payloads):
    """(features float32 [n, 4], ids list, timestamps ms list) of a batch; raises BadRecord (or
    KeyError, ValueError, TypeError) when any payload is off."""
    x = np.array(list(map(get_features, payloads)), dtype=np.float32)
    ids = list(map(get_id, payloads))
    ts = list(map(get_ts, payloads))
    if x.shape != (len(payloads), len(FEATURES)) or not np.isfinite(x).all():
        raise BadRecord("a measurement is missing, null or not finite")
    if np.array(ids).dtype.kind != "i" or np.array(ts).dtype.kind != "i":
        raise BadRecord("id and timestamp must be integers")
    return x, ids, ts


def check_row(payload):
    for k in FEATURES:
        v = payload.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise BadRecord(f"{k}: expected a finite number, got {v!r}")
    for k in ("id", "timestamp"):
        v = payload.get(k)
        if isinstance(v, bool) or not isinstance(v, int):
            raise BadRecord(f"{k}: expected an integer, got {v!r}")


class Writer(threading.Thread):
    """COPY and commit each batch on its own connection; reports the Kafka positions of each
    committed batch on `done`."""

    def __init__(self, url, depth):
        super().__init__(name="copy-writer", daemon=True)
        self.conn = psycopg2.connect(url)
        self.todo = queue.Queue(maxsize=depth)
        self.done = queue.Queue()
        self.error = None
        self.rows = 0

    def run(self):
        try:
            with self.conn.cursor() as cur:
                while True:
                    item = self.todo.get()
                    if item is None:
                        return
                    text, rows, positions = item
                    if rows:
                        cur.copy_expert(COPY, io.BytesIO(text.encode()), size=1 << 20)
                        self.conn.commit()
                        self.rows += rows
                    self.done.put(positions)
        except Exception as e:  # reported to the main thread, which stops
            self.error = e
            self.done.put(None)

    def put(self, item):
        while True:
            if self.error is not None:
                raise RuntimeError(f"writer: {self.error}")
            try:
                self.todo.put(item, timeout=0.5)
                return
            except queue.Full:
                continue


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", default="postgres-source-iris_data")
    ap.add_argument("--group", default="iris-python-consumer")
    ap.add_argument("--db", required=True, help="libpq URL of the target database")
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "iris", "model.json"))
    ap.add_argument("--max-records", type=int, default=0, help="stop after this many (0: never)")
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--batch", type=int, default=10_000, help="messages per consume() and COPY")
    ap.add_argument("--depth", type=int, default=2, help="batches waiting for the writer")
    ap.add_argument("--dead-letter", default="python-consumer.dead-letter.jsonl")
    args = ap.parse_args()
    t0 = time.monotonic()
    gc.freeze()  # the interpreter's and the libraries' objects: never scanned again

    booster = xgboost.Booster()
    booster.load_model(args.model)
    booster.set_param({"nthread": 1})
    writer = Writer(args.db, args.depth)
    writer.start()
    consumer = Consumer({
        "bootstrap.servers": args.brokers,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
    })
    assignment = []

    def on_assign(c, partitions):
        assignment[:] = partitions

    consumer.subscribe([args.topic], on_assign=on_assign)
    decoder = Decoder()
    dead = None
    consumed = dead_letters = batches = row_batches = 0
    t_first = None
    last_msg = time.monotonic()
    sent = [0, 0]  # batches handed to the writer, batches it has committed

    def commit_done(block=False):
        """Commits to Kafka the positions of the batches the writer has committed."""
        latest = None
        while True:
            try:
                positions = writer.done.get(timeout=5.0) if block else writer.done.get_nowait()
            except queue.Empty:
                break
            if positions is None:
                raise RuntimeError(f"writer: {writer.error}")
            latest = positions
            sent[1] += 1
            if block and sent[1] == sent[0]:
                break
        if latest:
            consumer.commit(offsets=latest, asynchronous=not block)

    try:
        while not args.max_records or consumed < args.max_records:
            want = args.batch if not args.max_records else min(args.batch,
                                                               args.max_records - consumed)
            msgs = consumer.consume(num_messages=want, timeout=0.1)
            commit_done()
            if not msgs:
                if t_first is not None and time.monotonic() - last_msg > args.idle_seconds:
                    break
                continue
            last_msg = time.monotonic()
            if t_first is None:
                t_first = last_msg
            values = [m.value() for m in msgs if m.error() is None]
            if len(values) != len(msgs):
                for m in msgs:
                    err = m.error()
                    if err is not None and err.code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(f"consume: {err}")
            if not values:
                continue
            consumed += len(values)
            batches += 1
            good = None
            payloads = decoder.batch(values)
            if payloads is not None:
                try:
                    good = columns(payloads)
                except (BadRecord, KeyError, ValueError, TypeError):
                    good = None
            if good is None:  # row by row: keep the good rows, dead-letter the others
                row_batches += 1
                keep = []
                for v in values:
                    try:
                        p = decoder.one(v)
                        check_row(p)
                        keep.append(p)
                    except (BadRecord, KeyError, ValueError, TypeError) as e:
                        if dead is None:
                            dead = open(args.dead_letter, "a")
                        dead.write(json.dumps({"error": str(e), "value": v.decode(
                            errors="replace") if v is not None else None}) + "\n")
                        dead_letters += 1
                good = columns(keep) if keep else None
            if good is not None:
                x, ids, ts = good
                label = booster.inplace_predict(x).argmax(axis=1)
                stamps = np.datetime_as_string(np.array(ts, dtype="datetime64[ms]")).tolist()
                text = "".join(map(row_text, ids, stamps, label.tolist()))
                rows = len(ids)
            else:
                text, rows = "", 0
            positions = [tp for tp in consumer.position(assignment) if tp.offset >= 0]
            sent[0] += 1
            writer.put((text, rows, positions))
        writer.put(None)
        while sent[1] < sent[0]:
            commit_done(block=True)
            if writer.error is not None:
                raise RuntimeError(f"writer: {writer.error}")
        writer.join()
        t_last = time.monotonic()
    finally:
        consumer.close()
        if dead is not None:
            dead.close()
    t_end = time.monotonic()
    first = t_first if t_first is not None else t_last
    print(json.dumps({
        "records_read": consumed,
        "rows_written": writer.rows,
        "dead_letters": dead_letters,
        "batches": batches,
        "batches_row_by_row": row_batches,
        "startup_s": round(first - t0, 4),   # start to the first message in hand
        "steady_s": round(t_last - first, 4),  # first message to the last commit
        "seconds": round(t_end - t0, 4),
    }), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
