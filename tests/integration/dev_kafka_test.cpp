// The development broker (`sluice dev-kafka`): other Kafka clients (kcat) produce to and consume
// from it on loopback, it warns when a partition drops messages, and it stops cleanly on SIGTERM.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "tests/integration/postgres.h"
#include "tests/integration/process.h"

using namespace sluice::testing;

TEST_CASE("dev-kafka serves kcat, reports dropped messages and stops on SIGTERM",
          "[integration][kafka]") {
  TempDir dir;
  const std::string bs = dir / "bootstrap.txt";
  // One shell script so the broker's whole life is in one bounded command.
  const std::string script = Sluice() + " dev-kafka -t rides:3 -t small:1 --bootstrap-file " + bs +
                             " --watch-ms 200 --run-seconds 60 >" + (dir / "out") + " 2>" +
                             (dir / "err") + R"SH( &
pid=$!
for i in $(seq 1 100); do [ -s )SH" +
                             bs + R"SH( ] && break; sleep 0.1; done
b=$(cat )SH" + bs + R"SH()
seq 1 3000 | kcat -P -b "$b" -t rides
echo "consumed $(timeout 30 kcat -C -b "$b" -t rides -e -o beginning -q | wc -l)"
# 8 MiB into one partition: more than the 5 MiB the broker keeps.
head -c 8388608 /dev/zero | tr '\0' x | fold -w 1023 | kcat -P -b "$b" -t small -X batch.size=200000
sleep 1
kill -TERM $pid
wait $pid
echo "exit $?"
)SH";
  auto r = Run(script);
  INFO(r.out + r.err);
  const std::string out = Slurp(dir / "out");
  const std::string err = Slurp(dir / "err");
  INFO(out + err);
  CHECK(out.rfind("bootstrap: 127.0.0.1:", 0) == 0);
  CHECK(r.out.find("consumed 3000") != std::string::npos);
  CHECK(err.find("topic 'small' partition 0 dropped") != std::string::npos);
  CHECK(err.find("topic 'rides'") == std::string::npos);  // nothing dropped there
  CHECK(r.out.find("exit 0") != std::string::npos);
  CHECK(err.find("dev-kafka: stopped") != std::string::npos);
}

TEST_CASE("dev-kafka rejects a malformed topic", "[integration][kafka]") {
  auto r = Run(Sluice() + " dev-kafka -t rides:zero --run-seconds 1");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--topic 'rides:zero': expected NAME or NAME:PARTITIONS") != std::string::npos);
}

TEST_CASE("the kafka sink delivers every row to the development broker, keyed by a field",
          "[integration][kafka]") {
  TempDir dir;
  const std::string bs = dir / "bootstrap.txt";
  std::ofstream(dir / "p.yaml") << R"(
name: to-kafka
sources:
  iris_data: {type: file, path: )" + Source("pipelines/data/iris_data.jsonl") +
                                       R"(, format: connect-json, schema: )" +
                                       Source("schemas/iris_data.json") + R"(}
transforms:
  features: {type: drop-fields, inputs: [iris_data], fields: [id, target]}
  classify: {type: predict, inputs: [features], model: )" +
                                       Source("models/iris") + R"(, outputs: {iris_class: label}}
  prediction: {type: select, inputs: [classify], fields: [timestamp, iris_class]}
sinks:
  topic: {type: kafka, inputs: [prediction], brokers: "${KAFKA_BROKERS}", topic: iris-predictions, key: timestamp}
dead_letter: {path: dead.jsonl}
)";
  const std::string script = Sluice() + " dev-kafka -t iris-predictions:3 --bootstrap-file " + bs +
                             " --run-seconds 60 >/dev/null 2>" + (dir / "broker.err") + R"SH( &
pid=$!
for i in $(seq 1 100); do [ -s )SH" +
                             bs + R"SH( ] && break; sleep 0.1; done
export KAFKA_BROKERS=$(cat )SH" +
                             bs + R"SH()
)SH" + Sluice() + " --log-format json run " +
                             (dir / "p.yaml") + " 2>" + (dir / "run.err") + R"SH(
echo "run exit $?"
timeout 30 kcat -C -b "$KAFKA_BROKERS" -t iris-predictions -e -o beginning -q -f '%k|%s\n' > )SH" +
                             (dir / "consumed") + R"SH(
kill -TERM $pid
wait $pid
)SH";
  auto r = Run(script);
  INFO(r.out + r.err + Slurp(dir / "run.err") + Slurp(dir / "broker.err"));
  CHECK(r.out.find("run exit 0") != std::string::npos);
  const std::string consumed = Slurp(dir / "consumed");
  CHECK(std::count(consumed.begin(), consumed.end(), '\n') == 1500);
  // The first record of the data set, keyed by its timestamp.
  CHECK(consumed.find(
            "2026-01-01T00:00:00Z|{\"timestamp\":\"2026-01-01T00:00:00Z\",\"iris_class\":0}") !=
        std::string::npos);
  CHECK(Slurp(dir / "run.err").find("\"rows_written\":1500") != std::string::npos);
}

TEST_CASE("the kafka source reads every message once and commits only what the sinks wrote",
          "[integration][kafka]") {
  TempDir dir;
  const std::string bs = dir / "bootstrap.txt";
  std::ofstream(dir / "p.yaml") << R"(
name: from-kafka
sources:
  iris_data: {type: kafka, brokers: "${KAFKA_BROKERS}", topic: iris, group: g1,
              # A member that is gone holds its partitions until its session times out.
              properties: {session.timeout.ms: "6000", heartbeat.interval.ms: "500"},
              format: connect-json, schema: )" +
                                       Source("schemas/iris_data.json") + R"(}
transforms:
  features: {type: drop-fields, inputs: [iris_data], fields: [id, target]}
  classify: {type: predict, inputs: [features], model: )" +
                                       Source("models/iris") + R"(, outputs: {iris_class: label}}
sinks:
  out: {type: file, inputs: [classify], path: "${OUT}", mode: append}
dead_letter: {path: dead.jsonl}
)";
  // Runs the pipeline until its output has $2 lines (or 40 s pass), then stops it with SIGTERM.
  const std::string script = Sluice() + " dev-kafka -t iris:3 --bootstrap-file " + bs +
                             " --run-seconds 200 >/dev/null 2>" + (dir / "broker.err") + R"SH( &
broker=$!
for i in $(seq 1 100); do [ -s )SH" +
                             bs + R"SH( ] && break; sleep 0.1; done
export KAFKA_BROKERS=$(cat )SH" +
                             bs + R"SH()
export OUT=)SH" + (dir / "out.jsonl") +
                             R"SH(
touch "$OUT"
run_until() {
  )SH" + Sluice() + " --log-format json run " +
                             (dir / "p.yaml") + R"SH( 2>>)SH" + (dir / "run.err") + R"SH( &
  pid=$!
  for i in $(seq 1 400); do [ "$(wc -l < "$OUT")" -ge "$1" ] && break; sleep 0.1; done
  sleep "${2:-0}"
  kill -TERM $pid
  wait $pid
  echo "run exit $? at $(wc -l < "$OUT") rows"
}
kcat -P -b "$KAFKA_BROKERS" -t iris < )SH" +
                             Source("pipelines/data/iris_data.jsonl") +
                             R"SH(
run_until 1500
# Same group again: everything was committed, so nothing is read twice.
run_until 1500 6
head -n 20 )SH" + Source("pipelines/data/iris_data.jsonl") +
                             R"SH( | kcat -P -b "$KAFKA_BROKERS" -t iris
run_until 1520
kill -TERM $broker
wait $broker
)SH";
  auto r = Run(script);
  INFO(r.out + r.err + Slurp(dir / "run.err") + Slurp(dir / "broker.err"));
  CHECK(r.out.find("run exit 0 at 1500 rows\nrun exit 0 at 1500 rows\nrun exit 0 at 1520 rows") !=
        std::string::npos);
  const std::string dead = Slurp(dir / "dead.jsonl");
  CHECK(std::count(dead.begin(), dead.end(), '\n') == 4);
  CHECK(dead.find("\"origin\":\"iris\",\"partition\":") != std::string::npos);
}

TEST_CASE("pipelines/iris-replay.yaml then iris.yaml: file to the seed's topic to predictions",
          "[integration][kafka][demo]") {
  TempDir dir;
  ThrowawayPostgres pg;
  pg.Sql(Slurp(Source("pipelines/sql/iris_prediction.sql")));
  const std::string psql = "psql -X -At -d '" + pg.url() + "' -c ";
  const std::string bs = dir / "bootstrap.txt";
  const std::string script = Sluice() +
                             " dev-kafka -t postgres-source-iris_data:2 -t iris-predictions:2 " +
                             "--bootstrap-file " + bs + " --run-seconds 90 >/dev/null 2>" +
                             (dir / "broker.err") +
                             R"SH( &
broker=$!
for i in $(seq 1 100); do [ -s )SH" +
                             bs + R"SH( ] && break; sleep 0.1; done
export KAFKA_BROKERS=$(cat )SH" +
                             bs + R"SH() SLUICE_OUT=)SH" + dir.path().string() +
                             " DATABASE_URL=" + pg.url() + R"SH(
# The seed's chain with Sluice alone: replay the envelopes verbatim, then classify them.
)SH" + Sluice() + " run --quiet " + Source("pipelines/iris-replay.yaml") +
                             R"SH( 2>)SH" + (dir / "replay.err") + R"SH(
echo "replay exit $?"
timeout 30 kcat -C -b "$KAFKA_BROKERS" -t postgres-source-iris_data -e -o beginning -q \
  | sort | md5sum > )SH" + (dir / "topic.md5") + R"SH(
sort )SH" + Source("pipelines/data/iris_data.jsonl") +
                             R"SH( | md5sum > )SH" + (dir / "file.md5") + R"SH(
)SH" + Sluice() + " --log-format json run " +
                             Source("pipelines/iris.yaml") + " 2>" + (dir / "run.err") + R"SH( &
pid=$!
for i in $(seq 1 400); do
  n=$()SH" + psql + R"SH('SELECT count(*) FROM iris_prediction' 2>/dev/null || echo 0)
  [ "$n" -ge 1500 ] && break
  sleep 0.1
done
kill -TERM $pid
wait $pid
echo "run exit $?"
echo "table $()SH" + psql + R"SH('SELECT count(*) FROM iris_prediction')"
kill -TERM $broker
wait $broker
)SH";
  auto r = Run(script);
  INFO(r.out + r.err + Slurp(dir / "run.err") + Slurp(dir / "broker.err"));
  CHECK(r.out.find("replay exit 0") != std::string::npos);
  // Every envelope reached the topic byte for byte, malformed ones included.
  CHECK(Slurp(dir / "topic.md5") == Slurp(dir / "file.md5"));
  CHECK(r.out.find("run exit 0") != std::string::npos);
  CHECK(r.out.find("table 1500") != std::string::npos);
  // The seed's table: one row per envelope, keyed by the source row's id, the timestamp in UTC
  // and the class the in-process model gives (checked against the file by the parity tests).
  CHECK(pg.Value("SELECT count(DISTINCT id) FROM iris_prediction") == "1500");
  CHECK(pg.Value("SELECT count(*) FROM iris_prediction WHERE iris_class NOT IN (0, 1, 2) OR "
                 "timestamp IS NULL") == "0");
  CHECK(pg.Value("SELECT sum(next_offset) FROM sluice_positions WHERE pipeline = 'iris'") ==
        "1504");
  // The first envelope's row: its epoch-millisecond timestamp stored as that UTC time.
  std::smatch m;
  const std::string first = Slurp(Source("pipelines/data/iris_data.jsonl"));
  REQUIRE(std::regex_search(first, m, std::regex(R"re("payload":\{"id":(\d+),"timestamp":(\d+))re")));
  CHECK(pg.Value("SELECT timestamp = to_timestamp(" + m[2].str() +
                 " / 1000.0) AT TIME ZONE 'UTC' FROM iris_prediction WHERE id = " + m[1].str()) ==
        "t");
  const std::string dead = Slurp(dir / "iris.dead-letter.jsonl");
  CHECK(std::count(dead.begin(), dead.end(), '\n') == 4);
}

TEST_CASE("kill -9 mid-stream, restart in the same group: every message has an output",
          "[integration][kafka][faults]") {
  TempDir dir;
  const std::string bs = dir / "bootstrap.txt";
  std::ofstream(dir / "p.yaml") << R"(
name: crash
sources:
  iris_data: {type: kafka, brokers: "${KAFKA_BROKERS}", topic: iris, group: crash,
              properties: {session.timeout.ms: "6000", heartbeat.interval.ms: "500"},
              format: connect-json, schema: )" +
                                       Source("schemas/iris_data.json") + R"(}
transforms:
  ids: {type: select, inputs: [iris_data], fields: [id]}
sinks:
  out: {type: file, inputs: [ids], path: "${OUT}", mode: append}
settings: {batch_size: 256}
dead_letter: {path: dead.jsonl}
)";
  // 9,000 envelopes spread over 3 partitions (about 2 MiB each: under the broker's 5 MiB).
  const std::string script = Sluice() + " dev-kafka -t iris:3 --bootstrap-file " + bs +
                             " --run-seconds 110 >/dev/null 2>" + (dir / "broker.err") + R"SH( &
broker=$!
for i in $(seq 1 100); do [ -s )SH" +
                             bs + R"SH( ] && break; sleep 0.1; done
export KAFKA_BROKERS=$(cat )SH" +
                             bs + R"SH() OUT=)SH" + (dir / "out.jsonl") + R"SH(
touch "$OUT"
/usr/bin/python3 )SH" + Source("pipelines/data/make_iris_data.py") +
                             R"SH( --repeat 60 |
  kcat -P -b "$KAFKA_BROKERS" -t iris -X linger.ms=20 -X sticky.partitioning.linger.ms=0
distinct() { sort -u "$OUT" | wc -l; }
)SH" + Sluice() + " run --quiet " +
                             (dir / "p.yaml") + " 2>>" + (dir / "run.err") + R"SH( &
pid=$!
for i in $(seq 1 1500); do [ "$(wc -l < "$OUT")" -ge 2000 ] && break; sleep 0.02; done
kill -9 $pid
wait $pid
echo "killed at $(wc -l < "$OUT") rows"
)SH" + Sluice() + " run --quiet " +
                             (dir / "p.yaml") + " 2>>" + (dir / "run.err") + R"SH( &
pid=$!
for i in $(seq 1 400); do [ "$(distinct)" -ge 9000 ] && break; sleep 0.1; done
sleep 1
kill -TERM $pid
wait $pid
echo "restart exit $?"
echo "rows $(wc -l < "$OUT") distinct $(distinct)"
kill -TERM $broker
wait $broker
)SH";
  auto r = Run(script);
  INFO(r.out + r.err + Slurp(dir / "run.err") + Slurp(dir / "broker.err"));
  CHECK(r.out.find("restart exit 0") != std::string::npos);
  // Every id from 1 to 9,000 is there at least once: duplicates are allowed, gaps are not.
  CHECK(r.out.find("distinct 9000") != std::string::npos);
  CHECK(Slurp(dir / "broker.err").find("dropped") == std::string::npos);
  CHECK(Slurp(dir / "run.err").find("still had batches in flight") == std::string::npos);
  std::set<std::string> ids;
  std::stringstream ss(Slurp(dir / "out.jsonl"));
  size_t rows = 0;
  for (std::string line; std::getline(ss, line); ++rows) ids.insert(line);
  CHECK(ids.size() == 9000u);
  CHECK(ids.count("{\"id\":1}") == 1u);
  CHECK(ids.count("{\"id\":9000}") == 1u);
  WARN("duplicates after kill -9: " << rows - ids.size());
}

TEST_CASE("two processes in one group share the partitions; one stops, the other takes over",
          "[integration][kafka][faults]") {
  TempDir dir;
  const std::string bs = dir / "bootstrap.txt";
  std::ofstream(dir / "p.yaml") << R"(
name: pair
sources:
  iris_data: {type: kafka, brokers: "${KAFKA_BROKERS}", topic: iris, group: pair,
              properties: {session.timeout.ms: "6000", heartbeat.interval.ms: "500"},
              format: connect-json, schema: )" +
                                       Source("schemas/iris_data.json") + R"(}
transforms:
  ids: {type: select, inputs: [iris_data], fields: [id]}
sinks:
  out: {type: file, inputs: [ids], path: "${OUT}", mode: append}
settings: {batch_size: 128}
dead_letter: {path: dead.jsonl}
)";
  // One worker thread each: a rebalance waiting for in-flight batches must not hold up the only
  // thread that could finish them.
  const std::string run = Sluice() + " run --quiet --threads 1 " + (dir / "p.yaml");
  const std::string script = Sluice() + " dev-kafka -t iris:4 --bootstrap-file " + bs +
                             " --run-seconds 110 >/dev/null 2>" + (dir / "broker.err") + R"SH( &
broker=$!
for i in $(seq 1 100); do [ -s )SH" +
                             bs + R"SH( ] && break; sleep 0.1; done
export KAFKA_BROKERS=$(cat )SH" +
                             bs + R"SH()
cd )SH" + dir.path().string() +
                             R"SH(
touch a.jsonl b.jsonl
OUT=a.jsonl )SH" + run + R"SH( 2>>run.err & a=$!
OUT=b.jsonl )SH" + run + R"SH( 2>>run.err & b=$!
sleep 8   # both members joined and got their share of the partitions
/usr/bin/python3 )SH" + Source("pipelines/data/make_iris_data.py") +
                             R"SH( --repeat 30 |
  kcat -P -b "$KAFKA_BROKERS" -t iris -X linger.ms=20 -X sticky.partitioning.linger.ms=0
for i in $(seq 1 300); do [ $(cat a.jsonl b.jsonl | wc -l) -ge 2000 ] && break; sleep 0.05; done
echo "shares a=$(wc -l < a.jsonl) b=$(wc -l < b.jsonl)"
kill -TERM $a; wait $a; echo "a exit $?"
/usr/bin/python3 )SH" + Source("pipelines/data/make_iris_data.py") +
                             R"SH( --repeat 30 |
  sed 's/"id":\([0-9]*\)/"id":10000\1/' |
  kcat -P -b "$KAFKA_BROKERS" -t iris -X linger.ms=20 -X sticky.partitioning.linger.ms=0
for i in $(seq 1 400); do [ $(cat a.jsonl b.jsonl | sort -u | wc -l) -ge 9000 ] && break; sleep 0.1; done
kill -TERM $b; wait $b; echo "b exit $?"
echo "distinct $(cat a.jsonl b.jsonl | sort -u | wc -l) rows $(cat a.jsonl b.jsonl | wc -l) b=$(wc -l < b.jsonl)"
kill -TERM $broker
wait $broker
)SH";
  auto r = Run(script);
  INFO(r.out + r.err + Slurp(dir / "run.err") + Slurp(dir / "broker.err"));
  CHECK(r.out.find("a exit 0") != std::string::npos);
  CHECK(r.out.find("b exit 0") != std::string::npos);
  // 4,500 ids from the first round, 4,500 (prefixed with 10000) from the second, all read.
  CHECK(r.out.find("distinct 9000") != std::string::npos);
  CHECK(Slurp(dir / "broker.err").find("dropped") == std::string::npos);
}
