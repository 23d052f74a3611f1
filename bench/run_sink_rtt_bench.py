#!/usr/bin/python3
"""Kafka sink benchmark: Sluice producing to a broker a round trip away, against kcat producing
the same messages.

The job (bench/kafka-sink.yaml): the iris flow of pipelines/iris-bench.yaml from a file of
--records Connect envelopes (decode, drop id and target, predict, select) into a kafka sink keyed
by timestamp, with the engine's and the sink's defaults (batches of 1,024). Only the sink talks to
the broker, so what is measured is how the sink copes with the broker's round trip. The
development broker (`sluice dev-kafka`) answers every request --rtt milliseconds late (its
`--fault '0 rtt 1 MS'`, the mock cluster's own RTT setting): 0 is loopback, a few milliseconds a
broker in the same zone, tens one further away.

The reference: kcat -P producing the same messages (the file pipeline's lines, keyed by their
timestamps) to the same broker in the same run, idempotently as the sink does
(enable.idempotence=true, so acks=all) and otherwise with librdkafka's defaults: the rate at
which this client library produces them at that round trip.

For each RTT this script starts a broker with one output topic per side and round; runs --runs
rounds, the sides in turn (the side that goes first rotates); times each side from spawn to
exit; checks that every output topic holds exactly --records messages with every low watermark
0, and that Sluice's are the file pipeline's lines. Several --sluice binaries compare builds side
by side. It prints a table of medians and writes bench/results/kafka-sink-<UTC time>.json.

Usage: run_sink_rtt_bench.py [--records N] [--rtt LIST] [--runs K] [--batch-size N] [--max-in-flight N]
                             [--sluice PATH ...] [--kcat PATH] [--wait-idle S] [--results PATH]
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_kafka_bench as kb  # noqa: E402  (the broker, input and output helpers)

ROOT = kb.ROOT
PIPELINE = ROOT / "bench" / "kafka-sink.yaml"
OUT_PARTITIONS = 64
TOPIC = "kafka-sink-bench-{}-{}"


def child_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def kcat_input(expected, records):
    """The expected messages as kcat -K input: `key<TAB>value` lines, the key the timestamp as
    the sink writes it."""
    path = kb.OUT / f"kafka-sink-kcat-{records}.txt"
    with open(path, "w") as f:
        for line in expected:
            f.write(json.loads(line)["timestamp"] + "\t" + line + "\n")
    return path


def run_side(side, broker, topic, envelopes, kcat_file, batch_size, max_in_flight, kcat):
    env = dict(os.environ)
    if side["kind"] == "kcat":
        cmd = [kcat, "-P", "-b", broker.bootstrap, "-t", topic, "-K", "\t", "-l", str(kcat_file),
               "-X", "enable.idempotence=true"]
    else:
        dead = kb.OUT / "kafka-sink-bench.dead-letter.jsonl"
        dead.unlink(missing_ok=True)
        env.update(KAFKA_BROKERS=broker.bootstrap, BENCH_INPUT=str(envelopes),
                   BENCH_OUTPUT_TOPIC=topic, BENCH_DEAD_LETTER=str(dead),
                   BENCH_BATCH_SIZE=str(batch_size), BENCH_MAX_IN_FLIGHT=str(max_in_flight))
        cmd = [side["path"], "--log-format", "json", "run", str(PIPELINE)]
    cpu0 = child_cpu_s()
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t
    cpu = child_cpu_s() - cpu0
    if r.returncode != 0:
        raise kb.BenchError(f"{side['name']} exited {r.returncode}:\n{r.stderr[-2000:]}")
    if side["kind"] == "sluice":
        summary = kb.last_json(r.stderr, "rows_written") or {}
        if summary.get("dead_letters", 0):
            raise kb.BenchError(f"{side['name']} dead-lettered rows: {summary}")
    return wall, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=200_000, help="messages (default 200,000)")
    ap.add_argument("--rtt", default="0,2,10",
                    help="the broker's round trips to measure, in ms (default 0,2,10)")
    ap.add_argument("--runs", type=int, default=3, help="rounds per RTT (default 3)")
    ap.add_argument("--batch-size", type=int, default=1024,
                    help="Sluice's settings.batch_size (default 1,024, the engine's)")
    ap.add_argument("--max-in-flight", type=int, default=8,
                    help="Sluice's settings.max_in_flight (default 8, the engine's)")
    ap.add_argument("--sluice", action="append", default=[], metavar="PATH",
                    help="a sluice binary (repeatable, to compare builds; default build/sluice)")
    ap.add_argument("--kcat", default="kcat", help="the kcat binary (default kcat on PATH)")
    ap.add_argument("--wait-idle", type=float, default=kb.WAIT_IDLE_S, metavar="SECONDS",
                    help="before each run, wait up to this long for the machine to be idle")
    ap.add_argument("--results", default=None, metavar="PATH",
                    help="where to write the results (default bench/results/kafka-sink-<time>.json)")
    args = ap.parse_args()
    rtts = [int(x) for x in args.rtt.split(",")]
    binaries = args.sluice or [str(ROOT / "build" / "sluice")]
    sides = [{"name": "kcat", "kind": "kcat"}]
    for i, path in enumerate(binaries):
        sides.append({"name": "sluice" if i == 0 else f"sluice#{i + 1}", "kind": "sluice",
                      "path": str(Path(path).resolve())})

    envelopes, _ = kb.ensure_input(args.records, "connect-json")
    kb.log("expected output: running the file pipeline on the same records ...")
    expected = kb.expected_output(binaries[0], envelopes, args.records)
    kcat_file = kcat_input(expected, args.records)
    load = os.getloadavg()
    started = datetime.now(timezone.utc)
    runs = []
    try:
        for rtt in rtts:
            topics = [(TOPIC.format(rtt, f"{s['name'].replace('#', '')}-{k}"), OUT_PARTITIONS)
                      for k in range(args.runs) for s in sides]
            fault = ["--fault", f"0 rtt 1 {rtt}"] if rtt > 0 else []
            broker = kb.Broker(binaries[0], topics, fault)
            try:
                for k in range(args.runs):
                    order = sides[k % len(sides):] + sides[:k % len(sides)]
                    for side in order:
                        topic = TOPIC.format(rtt, f"{side['name'].replace('#', '')}-{k}")
                        kb.wait_idle(args.wait_idle)
                        wall, cpu = run_side(side, broker, topic, envelopes, kcat_file,
                                             args.batch_size, args.max_in_flight, args.kcat)
                        parts = OUT_PARTITIONS
                        if side["kind"] == "sluice":
                            kb.check_output(args.kcat, broker, topic, parts, expected)
                        else:
                            lows = broker.wire.offsets(topic, parts, -2)
                            highs = broker.wire.offsets(topic, parts, -1)
                            if any(lows.values()) or sum(highs.values()) != args.records:
                                raise kb.BenchError(f"kcat left {sum(highs.values()):,} messages "
                                                    f"on {topic}, expected {args.records:,}")
                        broker.check_no_drops(topic)
                        rate = args.records / wall
                        runs.append({"rtt_ms": rtt, "round": k + 1, "side": side["name"],
                                     "seconds": round(wall, 3), "records_per_s": round(rate),
                                     "cpu_s": round(cpu, 2)})
                        kb.log(f"rtt {rtt:>3} ms, round {k + 1}/{args.runs}: {side['name']:<9} "
                               f"{wall:7.2f} s {rate:>11,.0f} rec/s  cpu {cpu:5.2f} s")
            finally:
                broker.stop()
    except kb.BenchError as e:
        kb.log(f"benchmark stopped: {e}")
        sys.exit(1)

    medians = {}
    print(f"\nKafka sink: {args.records:,} iris predictions produced to {OUT_PARTITIONS} partitions "
          f"of the development broker, batches of {args.batch_size:,}, {args.max_in_flight} in "
          f"flight; records/s spawn to exit, "
          f"medians of {args.runs}")
    names = [s["name"] for s in sides]
    print(f"{'rtt':>6}  " + "  ".join(f"{n:>12}" for n in names) + "   sluice / kcat")
    for rtt in rtts:
        m = {n: statistics.median(r["records_per_s"] for r in runs
                                  if r["rtt_ms"] == rtt and r["side"] == n) for n in names}
        medians[str(rtt)] = m
        ratios = ", ".join(f"{m[n] / m['kcat']:.2f}x" for n in names[1:])
        print(f"{rtt:>4}ms  " + "  ".join(f"{m[n]:>12,.0f}" for n in names) + f"   {ratios}")
    results = {
        "benchmark": "kafka-sink", "started": started.isoformat(timespec="seconds"),
        "records": args.records, "batch_size": args.batch_size,
        "max_in_flight": args.max_in_flight, "rtt_ms": rtts,
        "partitions": OUT_PARTITIONS,
        "sides": [{k: v for k, v in s.items() if k != "kind"} for s in sides],
        "machine": kb.machine(load, 0.0), "runs": runs, "medians": medians,
    }
    path = Path(args.results) if args.results else (
        kb.RESULTS / f"kafka-sink-{started.strftime('%Y%m%dT%H%M%SZ')}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"results: {kb.rel(path)}")


if __name__ == "__main__":
    main()
