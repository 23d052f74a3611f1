#!/usr/bin/python3
"""What the order of the keys costs the PostgreSQL server when rows are COPYed into the seed's
table iris_prediction (id SERIAL PRIMARY KEY, timestamp, iris_class).

A throwaway server (bench/run_pg_bench.py's, every setting at its durable default) takes
--records rows in binary COPY batches of --batch-size, one commit each, as the postgres sink
writes them, with the ids in one of these orders:

  ascending     1, 2, 3, ...: the primary key's index grows at its right edge
  kafka         the order the benchmarks' consumers read them: each message on a random one of
                --partitions partitions, read in runs of --run messages per partition
  kafka-sorted  the same batches, each sorted by id before its COPY
  random        a random permutation

Each order is measured --rounds times, the orders alternating, each from an empty table after
a CHECKPOINT. Printed per run: the server's CPU seconds (every server process), wall seconds
and WAL written. Needs Debian's python3-psycopg2 and PostgreSQL 15; run it on an idle machine.

  /usr/bin/python3 bench/pg_key_order.py [--records 1000000] [--rounds 3]
      [--orders kafka,kafka-sorted,ascending]
"""
import argparse
import datetime
import io
import random
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run_pg_bench as pb  # noqa: E402

import psycopg2  # noqa: E402

ORDERS = ("ascending", "kafka", "kafka-sorted", "random")
PG_EPOCH = datetime.datetime(2000, 1, 1)


def id_order(order, n, partitions, run, rnd):
    ids = list(range(1, n + 1))
    if order == "ascending":
        return ids
    if order == "random":
        rnd.shuffle(ids)
        return ids
    parts = [[] for _ in range(partitions)]
    for i in ids:
        parts[rnd.randrange(partitions)].append(i)
    out = []
    for start in range(0, max(len(p) for p in parts), run):
        turn = list(range(partitions))
        rnd.shuffle(turn)
        for p in turn:
            out += parts[p][start:start + run]
    return out


def binary_copy(ids, base_us):
    """PostgreSQL's binary COPY of (id int4, timestamp, iris_class int4) rows."""
    out = io.BytesIO()
    out.write(b"PGCOPY\n\xff\r\n\0" + struct.pack("!ii", 0, 0))
    row = struct.Struct("!hiiiqii")
    for i in ids:
        out.write(row.pack(3, 4, i, 8, base_us + i * 1000, 4, i % 3))
    out.write(struct.pack("!h", -1))
    out.seek(0)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=8192)
    ap.add_argument("--partitions", type=int, default=256)
    ap.add_argument("--run", type=int, default=1600,
                    help="messages read from one partition at a time (kafka orders)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--orders", default="kafka,kafka-sorted,ascending")
    ap.add_argument("--pg-bin", default=str(pb.PG_BIN))
    args = ap.parse_args()
    orders = args.orders.split(",")
    for o in orders:
        if o not in ORDERS:
            ap.error(f"unknown order '{o}'; orders: {', '.join(ORDERS)}")
    base_us = int((datetime.datetime(2026, 1, 1) - PG_EPOCH).total_seconds() * 1e6)
    batches = {}
    for o in orders:
        ids = id_order(o.removesuffix("-sorted"), args.records, args.partitions, args.run,
                       random.Random(7))
        chunks = [ids[i:i + args.batch_size] for i in range(0, len(ids), args.batch_size)]
        if o.endswith("-sorted"):
            chunks = [sorted(c) for c in chunks]
        batches[o] = chunks
    pg = pb.Postgres(args.pg_bin)
    try:
        conn = psycopg2.connect(pg.url)
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute((pb.ROOT / "pipelines/sql/iris_prediction.sql").read_text())
        copy = "COPY iris_prediction (id, timestamp, iris_class) FROM STDIN WITH (FORMAT binary)"
        for r in range(args.rounds):
            for o in orders:
                cur.execute("TRUNCATE iris_prediction")
                cur.execute("CHECKPOINT")
                payloads = [binary_copy(c, base_us) for c in batches[o]]
                cur.execute("SELECT pg_current_wal_lsn()")
                lsn = cur.fetchone()[0]
                cpu0, t0 = pg.cpu_s(), time.perf_counter()
                conn.autocommit = False
                for p in payloads:
                    cur.copy_expert(copy, p)
                    conn.commit()
                conn.autocommit = True
                wall = time.perf_counter() - t0
                time.sleep(0.3)  # the server's background processes finish their share
                cpu = pg.cpu_s() - cpu0
                cur.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (lsn,))
                wal = cur.fetchone()[0] / 2**20
                print(f"round {r + 1}  {o:<13} server cpu {cpu:5.2f} s  wall {wall:5.2f} s  "
                      f"WAL {wal:4.0f} MiB", flush=True)
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
