#!/usr/bin/python3
"""Seed 000's data subscriber (MLOps for MLE, chapter 8, "Stream"), as the seed writes it, for
bench/run_seed_bench.py.

For each message of the Kafka Connect topic of iris_data: a kafka-python KafkaConsumer hands it
over, already decoded by `value_deserializer=lambda x: loads(x)`; the subscriber prints it, drops
`id` and `target` from the payload, takes `timestamp` out, sends the four measurements to the
model API with one `requests.post(url, json=..., headers=...)` (a new HTTP connection per call, as
`requests.post` without a session makes), and writes the answer with one INSERT into
iris_prediction(timestamp, iris_class) and one commit, as the seed's insert_data does. `id` is the
table's SERIAL, not the message's.

Three things differ from the seed's text, none of which changes the work done per message:
  - the seed's two bugs are fixed: the body of subscribe_data sits inside the `for` loop, and
    insert_data takes its arguments and calls `db_connect.cursor()`;
  - the timestamp: Kafka Connect's JSON converter writes a Timestamp column as epoch milliseconds,
    which the seed's INSERT would hand to PostgreSQL as '1767225600000' (refused); it is turned
    into the UTC time it stands for first;
  - the run is bounded for the benchmark: it stops after --max-messages messages, or
    --max-seconds after the first message, or when no message came for --idle-seconds; it then
    closes the consumer (kafka-python commits the group's offsets, as its auto-commit does every
    5 s while running) and prints one JSON line of counts and times to standard error.

The prints go where standard output goes (the benchmark sends it to /dev/null). To show where the
time goes, the JSON line also gives the seconds spent waiting for the consumer's next message,
in `requests.post` and in the database's commits, measured by wrappers around the consumer, around
`requests.post` and around the connection's commit; the seed's functions are unchanged.

Usage: seed_subscriber.py --brokers B --topic T --group G --db URL --api URL
                          [--max-messages N] [--max-seconds S] [--idle-seconds S]
Debian's python3-kafka, python3-requests and python3-psycopg2.
"""
import argparse
import json
import sys
import time
from datetime import datetime, timedelta
from json import loads

import psycopg2
import psycopg2.extensions
import requests
from kafka import KafkaConsumer

EPOCH = datetime(1970, 1, 1)
SPENT = {"kafka_first_s": 0.0, "kafka_next_s": 0.0, "requests_post_s": 0.0, "db_commit_s": 0.0}


def timed(fn, key):
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[key] += time.perf_counter() - t
    return wrapper


class TimedConnection(psycopg2.extensions.connection):
    def commit(self):
        t = time.perf_counter()
        try:
            return super().commit()
        finally:
            SPENT["db_commit_s"] += time.perf_counter() - t


class TimedConsumer:
    """Iterates the consumer, timing each wait for the next message."""

    def __init__(self, consumer):
        self.it = iter(consumer)
        self.first = True

    def __iter__(self):
        return self

    def __next__(self):
        t = time.perf_counter()
        try:
            return next(self.it)
        finally:
            # The first wait is the group's join: start-up, not a message's.
            SPENT["kafka_first_s" if self.first else "kafka_next_s"] += time.perf_counter() - t
            self.first = False


def create_table(db_connect):
    create_table_query = """
    CREATE TABLE IF NOT EXISTS iris_prediction (
        id SERIAL PRIMARY KEY,
        timestamp timestamp,
        iris_class int
    );"""
    print(create_table_query)
    with db_connect.cursor() as cur:
        cur.execute(create_table_query)
        db_connect.commit()


def insert_data(db_connect, data):
    insert_row_query = f"""
    INSERT INTO iris_prediction (timestamp, iris_class) VALUES ('{data["timestamp"]}', {data["iris_class"]});
    """
    print(insert_row_query)
    with db_connect.cursor() as cur:
        cur.execute(insert_row_query)
        db_connect.commit()


class Bound:
    """The benchmark's bound on the seed's endless loop, and its clock."""

    def __init__(self, max_messages, max_seconds):
        self.max_messages, self.max_seconds = max_messages, max_seconds
        self.count = 0
        self.first = self.last = None

    def done(self):
        self.count += 1
        self.last = time.monotonic()
        if self.first is None:
            self.first = self.last
        return self.count >= self.max_messages or self.last - self.first >= self.max_seconds


def subscribe_data(db_connect, consumer, api_url, bound):
    for msg in consumer:
        print(
            f"Topic : {msg.topic}\n"
            f"Partition : {msg.partition}\n"
            f"Offset : {msg.offset}\n"
            f"Key : {msg.key}\n"
            f"Value : {msg.value}\n",
        )
        msg.value["payload"].pop("id")
        msg.value["payload"].pop("target")
        ts = msg.value["payload"].pop("timestamp")
        ts = EPOCH + timedelta(milliseconds=ts)  # Connect's Timestamp: epoch milliseconds

        response = requests.post(
            url=api_url,
            json=msg.value["payload"],
            headers={"Content-Type": "application/json"},
        ).json()
        response["timestamp"] = ts
        insert_data(db_connect, response)
        if bound.done():
            return


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", default="postgres-source-iris_data")
    ap.add_argument("--group", default="iris-data-consumer-group")
    ap.add_argument("--db", required=True, help="libpq URL of the target database")
    ap.add_argument("--api", required=True, help="the model API's predict URL")
    ap.add_argument("--max-messages", type=int, default=20_000)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument("--idle-seconds", type=float, default=15.0)
    args = ap.parse_args()
    t0 = time.monotonic()

    db_connect = psycopg2.connect(args.db, connection_factory=TimedConnection)
    create_table(db_connect)

    consumer = KafkaConsumer(
        args.topic,
        bootstrap_servers=args.brokers,
        auto_offset_reset="earliest",
        group_id=args.group,
        value_deserializer=lambda x: loads(x),
        consumer_timeout_ms=int(args.idle_seconds * 1000),
    )
    bound = Bound(args.max_messages, args.max_seconds)
    requests.post = timed(requests.post, "requests_post_s")
    SPENT["db_commit_s"] = 0.0  # create_table's commit is not a row's
    subscribe_data(db_connect, TimedConsumer(consumer), args.api, bound)
    t_last = time.monotonic()
    consumer.close()  # commits the consumed offsets (enable_auto_commit, the default)
    db_connect.close()
    t_end = time.monotonic()
    first = bound.first if bound.first is not None else t_last
    print(json.dumps({
        "messages": bound.count,
        "startup_s": round(first - t0, 4),       # start to the first row committed
        "steady_s": round(t_last - first, 4),    # first row committed to the last
        "seconds": round(t_end - t0, 4),
        "records_per_s_steady": round((bound.count - 1) / (t_last - first), 2)
        if bound.count > 1 and t_last > first else None,
        **{k: round(v, 4) for k, v in SPENT.items()},
    }), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
