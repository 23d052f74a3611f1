// Exactly-once from Kafka into PostgreSQL: the sink stores the source's positions with the rows
// in one transaction and the source resumes from them. Kill -9 at random points, a database
// restart, and two processes sharing the partitions must all leave every input in the table
// exactly once. Each test starts its own development broker and PostgreSQL cluster on loopback;
// every wait is bounded.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>
#include <sstream>

#include "tests/integration/postgres.h"

using namespace sluice::testing;

namespace {

// The pipeline: topic `in` (id, pad) into table `t`, exactly-once, small batches so that a run
// is many transactions.
void WritePipeline(const TempDir& dir, const ThrowawayPostgres& pg, const std::string& extra = "") {
  std::ofstream(dir / "schema.json")
      << R"({"type": "object", "properties": {"id": {"type": "integer"}, "pad": {"type": "string"}},
"required": ["id"]})";
  std::ofstream(dir / "p.yaml") << R"(
name: eo
settings: {batch_size: 100}
sources:
  in: {type: kafka, brokers: "${KAFKA_BROKERS}", topic: in, group: eo, schema: schema.json,
       metadata: {partition: part, offset: off},
       properties: {session.timeout.ms: "6000", heartbeat.interval.ms: "500"}}
sinks:
  db: {type: postgres, inputs: [in], url: ")" + pg.url() + R"(", table: t, create: true,
       delivery: exactly-once)" + extra + R"(}
)";
}

// Shell: `rows` prints the table's row count (0 before the table exists), `positions` the sum
// of the stored positions; `produce A B [PAD]` sends ids A..B to topic `in`, spread over its
// partitions.
std::string Helpers(const ThrowawayPostgres& pg) {
  return "rows() { psql -X -At -d '" + pg.url() +
         "' -c 'SELECT count(*) FROM t' 2>/dev/null || echo 0; }\n"
         "positions() { psql -X -At -d '" + pg.url() +
         "' -c 'SELECT coalesce(sum(next_offset), 0) FROM sluice_positions' 2>/dev/null || echo 0; "
         "}\n" + R"SH(
produce() {
  seq $1 $2 | sed "s/.*/{\"id\": &, \"pad\": \"${3:-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx}\"}/" \
    | kcat -P -b "$KAFKA_BROKERS" -t in -X sticky.partitioning.linger.ms=0 -X batch.size=1000000
}
# wait_rows N SECONDS, wait_positions N SECONDS: until the table holds at least N rows, or the
# stored positions add up to N, or the time is up.
wait_rows() {
  end=$(($(date +%s) + $2))
  while [ "$(date +%s)" -lt $end ]; do [ "$(rows)" -ge "$1" ] && return 0; sleep 0.1; done
  return 1
}
wait_positions() {
  end=$(($(date +%s) + $2))
  while [ "$(date +%s)" -lt $end ]; do [ "$(positions)" -ge "$1" ] && return 0; sleep 0.1; done
  return 1
}
)SH";
}

// A script that starts the broker (`broker_args`), runs `before`, starts the pipeline in the
// background (its stderr in a.err), runs `during`, then stops the pipeline and the broker and
// prints "a exit STATUS".
std::string WithPipeline(const TempDir& dir, const ThrowawayPostgres& pg,
                         const std::string& broker_args, const std::string& before,
                         const std::string& during) {
  return StartBroker(dir, broker_args) + Helpers(pg) + before + Sluice() + " run " +
         (dir / "p.yaml") + " 2>" + (dir / "a.err") + " &\na=$!\n" + during + R"SH(
sleep 1
kill -TERM $a
wait $a; echo "a exit $?"
kill -TERM $broker
wait $broker
)SH";
}

void CheckExactlyOnce(const ThrowawayPostgres& pg, int n) {
  // Every input once: as many rows as ids, every id from 1 to n.
  CHECK(pg.Value("SELECT count(*) FROM t") == std::to_string(n));
  CHECK(pg.Value("SELECT count(DISTINCT id) FROM t") == std::to_string(n));
  CHECK(pg.Value("SELECT min(id) || '-' || max(id) FROM t") == "1-" + std::to_string(n));
  // The stored positions are where the topic ends: the sum of next offsets is the message count.
  CHECK(pg.Value("SELECT sum(next_offset) FROM sluice_positions WHERE pipeline = 'eo' AND node = "
                 "'db' AND topic = 'in'") == std::to_string(n));
  // Each row's (partition, offset) is one message.
  CHECK(pg.Value("SELECT count(DISTINCT (part, off)) FROM t") == std::to_string(n));
}

}  // namespace

TEST_CASE("postgres exactly-once: kill -9 at random points, every input once",
          "[integration][postgres][exactly-once]") {
  TempDir dir;
  ThrowawayPostgres pg;
  WritePipeline(dir, pg);
  constexpr int kRows = 200000;
  constexpr int kKills = 10;
  // Kill points: a little after the table has grown past what the previous run left, so that
  // each kill lands while batches are being written.
  std::mt19937 rng(Catch::rngSeed());
  std::string kills;
  for (int k = 0; k < kKills; ++k) {
    kills += "kill_after_progress " + std::to_string(std::uniform_int_distribution<>(0, 150)(rng)) +
             "\n";
  }
  const std::string run = Sluice() + " run --quiet " + (dir / "p.yaml") + " 2>>" + (dir / "run.err");
  const std::string script = StartBroker(dir, "-t in:3 --run-seconds 240") + Helpers(pg) +
                             "produce 1 " + std::to_string(kRows) + "\n" + R"SH(
# kill_after_progress MS: start Sluice, wait until it has written rows beyond what was there,
# wait MS more, kill -9.
kill_after_progress() {
  before=$(rows)
  )SH" + run + R"SH( &
  pid=$!
  end=$(($(date +%s) + 60))
  while [ "$(date +%s)" -lt $end ] && [ "$before" -lt )SH" + std::to_string(kRows) + R"SH( ] \
      && [ "$(rows)" -le "$before" ]; do sleep 0.05; done
  sleep "0.$(printf %03d "$1")"
  kill -KILL $pid
  wait $pid 2>/dev/null
  echo "killed at $(rows) rows"
}
)SH" + kills + run + R"SH( &
pid=$!
wait_rows )SH" + std::to_string(kRows) + R"SH( 90
sleep 1
kill -TERM $pid
wait $pid
echo "final run exit $?"
kill -TERM $broker
wait $broker
)SH";
  auto r = Run(script);
  INFO(r.out + r.err + Slurp(dir / "run.err"));
  CHECK(r.out.find("final run exit 0") != std::string::npos);
  // The kills landed mid-stream: at least three left a partly written table.
  int partial = 0;
  std::istringstream lines(r.out);
  for (std::string l; std::getline(lines, l);) {
    if (l.rfind("killed at ", 0) != 0) continue;
    const int at = std::stoi(l.substr(10));
    if (at > 0 && at < kRows) ++partial;
  }
  INFO("kills that left a partly written table: " << partial);
  CHECK(partial >= 3);
  CheckExactlyOnce(pg, kRows);
}

TEST_CASE("postgres exactly-once: the database restarted mid-stream, every input once",
          "[integration][postgres][exactly-once]") {
  TempDir dir;
  ThrowawayPostgres pg;
  WritePipeline(dir, pg);
  constexpr int kRows = 40000;
  const std::string script = StartBroker(dir, "-t in:2 --run-seconds 180") + Helpers(pg) +
                             "produce 1 20000\n" + Sluice() + " run --quiet " + (dir / "p.yaml") +
                             " 2>" + (dir / "run.err") + R"SH( &
pid=$!
wait_rows 1 60
)SH" + pg.StopCommand("fast") + R"SH(
echo "stopped at $(date +%s)"
produce 20001 40000
sleep 3
)SH" + pg.StartCommand() + R"SH(
wait_rows 40000 90
sleep 1
kill -TERM $pid
wait $pid
echo "run exit $?"
kill -TERM $broker
wait $broker
)SH";
  auto r = Run(script);
  const std::string err = Slurp(dir / "run.err");
  INFO(r.out + r.err + err);
  CHECK(r.out.find("run exit 0") != std::string::npos);
  CHECK(err.find("retrying") != std::string::npos);  // the sink paused while the server was down
  CheckExactlyOnce(pg, kRows);
}

TEST_CASE("postgres exactly-once: two processes share the partitions, every input once",
          "[integration][postgres][exactly-once]") {
  TempDir dir;
  ThrowawayPostgres pg;
  WritePipeline(dir, pg);
  constexpr int kRows = 30000;
  // The second process joins while the first is writing: the partitions move between them
  // (batches of the first may still be in flight when the second starts on a partition).
  const std::string run = Sluice() + " run --quiet " + (dir / "p.yaml");
  const std::string script = StartBroker(dir, "-t in:4 --run-seconds 180") + Helpers(pg) +
                             "produce 1 15000\n" + run + " 2>" + (dir / "a.err") + R"SH( &
a=$!
wait_rows 1 60
)SH" + run + " 2>" + (dir / "b.err") + R"SH( &
b=$!
produce 15001 30000
wait_rows 30000 90
sleep 1
kill -TERM $a $b
wait $a; echo "a exit $?"
wait $b; echo "b exit $?"
kill -TERM $broker
wait $broker
)SH";
  auto r = Run(script);
  INFO(r.out + r.err + Slurp(dir / "a.err") + Slurp(dir / "b.err"));
  CHECK(r.out.find("a exit 0") != std::string::npos);
  CHECK(r.out.find("b exit 0") != std::string::npos);
  CheckExactlyOnce(pg, kRows);
}

TEST_CASE("postgres exactly-once: positions another writer moved between two batches are read "
          "again, every input once",
          "[integration][postgres][exactly-once]") {
  // The sink checks the positions it stored last in the statement that moves them on. Here
  // another writer (psql, as a second process of the pipeline would) commits the rows of
  // offsets 1000-1499 and their position while the pipeline is running and past offset 1000:
  // the pipeline's next batches must find that and skip those rows, not write them again.
  TempDir dir;
  ThrowawayPostgres pg;
  WritePipeline(dir, pg);
  const std::string other_writer =
      "psql -X -q -v ON_ERROR_STOP=1 -d '" + pg.url() +
      "' -c \"BEGIN; INSERT INTO t (id, pad, part, off) SELECT g + 1, 'other', 0, g FROM "
      "generate_series(1000, 1499) g; UPDATE sluice_positions SET next_offset = 1500 WHERE "
      "pipeline = 'eo' AND node = 'db' AND topic = 'in' AND \\\"partition\\\" = 0; COMMIT;\"\n";
  auto r = Run(WithPipeline(dir, pg, "-t in:1 --run-seconds 120", "produce 1 1000\n",
                            "wait_rows 1000 60 || echo 'first rows missing'\n" + other_writer +
                                "echo \"other writer $?\"\nproduce 1001 2000\n"
                                "wait_rows 2000 60 || echo 'last rows missing'\n"));
  const std::string err = Slurp(dir / "a.err");
  INFO(r.out + r.err + err);
  CHECK(r.out.find("other writer 0") != std::string::npos);
  CHECK(r.out.find("a exit 0") != std::string::npos);
  CHECK(err.find("rows were written before") != std::string::npos);
  CheckExactlyOnce(pg, 2000);
  CHECK(pg.Value("SELECT count(*) FROM t WHERE pad = 'other'") == "500");
}

TEST_CASE("postgres exactly-once: an upsert whose straight copy a known key refuses is merged, "
          "every message once",
          "[integration][postgres][exactly-once]") {
  // Batches of new keys are copied straight into the table; a batch with a key already there is
  // refused by the key's index, rolled back, and written again through the merge, with the
  // positions moved once.
  TempDir dir;
  ThrowawayPostgres pg;
  WritePipeline(dir, pg, ", mode: upsert, key: [id]");
  auto r = Run(WithPipeline(dir, pg, "-t in:2 --run-seconds 120", "produce 1 500\n",
                            "wait_rows 500 60 || echo 'first rows missing'\nproduce 251 750 b\n"
                            "wait_positions 1000 60 || echo 'positions missing'\n"));
  const std::string err = Slurp(dir / "a.err");
  INFO(r.out + r.err + err);
  CHECK(r.out.find("a exit 0") != std::string::npos);
  CHECK(pg.Value("SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || min(id) || '-' || "
                 "max(id) FROM t") == "750 750 1-750");
  // The second run of each key won: ids 251-750 carry "b", the first 250 their first pad.
  CHECK(pg.Value("SELECT count(*) FROM t WHERE pad = 'b'") == "500");
  CHECK(pg.Value("SELECT min(id) FROM t WHERE pad = 'b'") == "251");
  // Every message once in the positions: 1,000 messages in all.
  CHECK(pg.Value("SELECT sum(next_offset) FROM sluice_positions") == "1000");
}
