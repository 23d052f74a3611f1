#!/usr/bin/python3
"""The latency benchmark's producer: iris Kafka Connect envelopes at a fixed, paced rate.

Each message is the envelope pipelines/data/make_iris_data.py writes (the schema half of
JsonConverter for the iris_data table, then the payload), for ids counting up from 1, the four
measurements and target cycling through the 150 iris rows, and the payload's timestamp the time
the message is sent (epoch milliseconds, Connect's Timestamp). Messages have no key, as the JDBC
source connector's.

Two phases:
  warm-up   one message every --warmup-interval-ms until the process gets SIGUSR1 (the driver
            sends it once the pipeline has written its first rows: the consumer group has
            joined); these ids are marked as warm-up;
  measured  --rate messages per second for --seconds, paced on the monotonic clock: before each
            short sleep the producer sends every message that is due by now, so the offered load
            is the rate itself, not what the consumer can take.

For every message the wall-clock time (CLOCK_REALTIME, microseconds) right before produce() is
recorded; at the end the times go to --times (little-endian int64 per id, index 0 = id 1) and one
JSON line with the counts and the achieved rate to standard error.

Usage: latency_producer.py --brokers B --topic T --times PATH [--rate R] [--seconds S]
                           [--linger-ms MS] [--warmup-interval-ms MS] [--warmup-max-s S]
"""
import argparse
import array
import json
import signal
import sys
import time
from pathlib import Path

from confluent_kafka import KafkaException, Producer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pipelines" / "data"))
from make_iris_data import FEATURES, SCHEMA, dumps  # noqa: E402  (the envelope's schema half)

go = False


def on_go(_sig, _frame):
    global go
    go = True


def iris_rows():
    from sklearn.datasets import load_iris
    iris = load_iris()
    return [(list(map(float, x)), int(y)) for x, y in zip(iris.data, iris.target)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--times", required=True, help="output: send time (µs) per id")
    ap.add_argument("--rate", type=float, default=10_000.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--linger-ms", type=float, default=5.0,
                    help="the producer's linger.ms (default 5, librdkafka's own)")
    ap.add_argument("--warmup-interval-ms", type=float, default=20.0)
    ap.add_argument("--warmup-max-s", type=float, default=120.0)
    args = ap.parse_args()
    signal.signal(signal.SIGUSR1, on_go)

    # The envelope up to the payload's id, and each iris row's payload after the timestamp:
    # the same bytes json.dumps gives for the whole envelope (checked below).
    head = '{"schema":' + dumps(SCHEMA) + ',"payload":{"id":'
    tails = []
    rows = iris_rows()
    for x, y in rows:
        p = {"id": 0, "timestamp": 0, **dict(zip(FEATURES, x)), "target": y}
        tails.append(dumps(p).split(',"timestamp":0', 1)[1])
    check = {"id": 7, "timestamp": 1767225600123, **dict(zip(FEATURES, rows[6][0])),
             "target": rows[6][1]}
    assert f'{head}7,"timestamp":1767225600123{tails[6]}}}' == \
        dumps({"schema": SCHEMA, "payload": check})

    errors = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(str(err))

    producer = Producer({
        "bootstrap.servers": args.brokers,
        "linger.ms": args.linger_ms,
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 2_000_000,
        "message.timeout.ms": 300_000,
        "log_level": 3,
    })
    times = array.array("q")
    produce = producer.produce
    topic = args.topic
    now_us = lambda: time.time_ns() // 1000  # noqa: E731
    n_tails = len(tails)

    def send(i):
        t = now_us()
        produce(topic, f'{head}{i},"timestamp":{t // 1000}{tails[(i - 1) % n_tails]}}}'.encode(),
                on_delivery=delivered)
        times.append(t)

    # Warm-up: a trickle until the driver says go.
    i = 0
    deadline = time.monotonic() + args.warmup_max_s
    while not go:
        i += 1
        send(i)
        producer.poll(0)
        if time.monotonic() > deadline:
            sys.exit(f"latency producer: no go signal within {args.warmup_max_s:.0f} s")
        time.sleep(args.warmup_interval_ms / 1000)
    warmup = i

    # Measured: paced at --rate for --seconds.
    total = int(round(args.rate * args.seconds))
    sent = 0
    late_max = 0.0  # how far behind schedule the producer ever was (s)
    t0 = time.monotonic()
    while sent < total:
        now = time.monotonic()
        due = min(total, int((now - t0) * args.rate) + 1)
        if due - sent > 1:
            late_max = max(late_max, (due - 1 - sent) / args.rate)
        while sent < due:
            sent += 1
            try:
                send(warmup + sent)
            except BufferError:
                producer.poll(0.01)
                sent -= 1
        producer.poll(0)
        next_at = t0 + sent / args.rate
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(max(pause, 0.0002))
    t_end = time.monotonic()
    w0, w_end = times[warmup], times[-1]
    left = producer.flush(60)
    if left:
        errors.append(f"{left} messages still queued after 60 s")
    Path(args.times).write_bytes(times.tobytes())
    summary = {
        "warmup_messages": warmup,
        "measured_messages": sent,
        "first_measured_id": warmup + 1,
        "last_id": warmup + sent,
        "rate_target": args.rate,
        "seconds_target": args.seconds,
        "seconds": round(t_end - t0, 4),
        # first to last send of the measured phase, by the recorded send times
        "rate_achieved": round((sent - 1) / max((w_end - w0) / 1e6, 1e-9), 1),
        "late_max_s": round(late_max, 6),
        "delivery_errors": len(errors),
        "first_errors": errors[:5],
        "linger_ms": args.linger_ms,
    }
    print(json.dumps(summary), file=sys.stderr, flush=True)
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KafkaException as e:
        sys.exit(f"latency producer: {e}")
