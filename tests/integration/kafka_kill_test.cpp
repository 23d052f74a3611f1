// At-least-once from Kafka into Kafka under kill -9: the source commits a position only after
// the sink's delivery reports, so a process killed at any point can repeat messages on the next
// run but never skip one. Ten kills at random points while input is produced and consumed, then
// a run to the end: every input id is on the output topic, whole and from its own message.
// (Exactly-once into Kafka cannot be checked this way on the development broker: it does not
// store the offsets a transaction carries, see docs/dev-kafka.md.) The test starts its own
// development broker on loopback and stops it; every wait is bounded.
#include <catch2/catch.hpp>

#include <cstdio>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "tests/integration/process.h"

using namespace sluice::testing;

namespace {

constexpr int kPartitions = 4;
constexpr int kKills = 10;
constexpr int kChunk = 500;      // ids per produce call
constexpr int kMaxChunks = 200;  // at most 100,000 ids: well inside the broker's retention
constexpr int kBatchRows = 200;  // rows per batch: a run is many produce-and-commit rounds

// Topic `in` ({"id": N}) → map → topic `out`, keyed by id, at-least-once (the default). Each
// output row names the input message it came from (part, off), so a row that is not one
// input's own output is caught. A 3 s session timeout (the tests' usual 6 s halved) lets the
// next process take the partitions of the killed one within the test's budget.
std::string PipelineYaml() {
  return R"(
name: alo
settings: {batch_size: )" + std::to_string(kBatchRows) + R"(}
sources:
  in: {type: kafka, brokers: "${KAFKA_BROKERS}", topic: in, group: alo, schema: schema.json,
       metadata: {partition: part, offset: off},
       properties: {session.timeout.ms: "3000", heartbeat.interval.ms: "300"}}
transforms:
  scored: {type: map, inputs: [in], fields: {double: 'id * 2', tag: 'concat("id-", to_string(id))'}}
sinks:
  out: {type: kafka, inputs: [scored], brokers: "${KAFKA_BROKERS}", topic: out, key: id}
)";
}

// Shell: `hw TOPIC` sums the high watermarks of the topic's partitions; `lows TOPIC` prints the
// low watermarks; `produce A B` sends ids A..B spread over the partitions; `distinct_out` counts
// the distinct keys on `out`.
std::string Helpers() {
  std::string parts;
  for (int p = 0; p < kPartitions; ++p) parts += " -t $1:" + std::to_string(p) + ":$2";
  return "offsets() { kcat -Q -b \"$KAFKA_BROKERS\"" + parts + " | awk '{print $NF}'; }\n" + R"SH(
hw() { offsets $1 -1 | awk '{s += $1} END {print s + 0}'; }
lows() { offsets $1 -2 | tr '\n' ' '; }
produce() {
  seq $1 $2 | sed 's/.*/{"id": &}/' \
    | kcat -P -b "$KAFKA_BROKERS" -t in -X sticky.partitioning.linger.ms=0 -X batch.size=1000000
}
distinct_out() {
  timeout 20 kcat -C -b "$KAFKA_BROKERS" -t out -e -o beginning -q -f '%k\n' | sort -u | wc -l
}
)SH";
}

}  // namespace

TEST_CASE("kafka at-least-once: kill -9 at random points while input arrives, no gaps",
          "[integration][kafka][faults][at-least-once]") {
  TempDir dir;
  std::ofstream(dir / "schema.json")
      << R"({"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]})";
  std::ofstream(dir / "p.yaml") << PipelineYaml();
  // Kill points: 0-400 ms after the output has grown past what the previous runs left. A new
  // process first waits for the killed one's session to expire, while input piles up; it then
  // works through the backlog in a burst, which the kill lands in or just after.
  std::mt19937 rng(Catch::rngSeed());
  std::string kills;
  for (int k = 0; k < kKills; ++k)
    kills += "kill_after_progress " + std::to_string(std::uniform_int_distribution<>(0, 399)(rng)) +
             "\n";
  const std::string run =
      Sluice() + " run --quiet " + (dir / "p.yaml") + " 2>>" + (dir / "run.err");
  const std::string stop_file = dir / "kills_done";
  const std::string partitions = std::to_string(kPartitions);
  const std::string chunk = std::to_string(kChunk);
  const std::string script =
      StartBroker(dir, "-t in:" + partitions + " -t out:" + partitions +
                           " --watch-ms 200 --run-seconds 170") +
      Helpers() + "cd " + dir.path().string() + R"SH(
# Input arrives throughout the kills: a chunk every 0.3 s until the last kill, then no more.
(
  n=0
  while [ ! -f )SH" + stop_file + " ] && [ $n -lt " + std::to_string(kMaxChunks) + R"SH( ]; do
    produce $((n * )SH" + chunk + " + 1)) $(((n + 1) * " + chunk + R"SH())
    n=$((n + 1))
    sleep 0.3
  done
  echo $((n * )SH" + chunk + R"SH()) > produced.txt
) &
producer=$!
# kill_after_progress MS: start Sluice, wait until the output grows, wait MS more, kill -9.
kill_after_progress() {
  before=$(hw out)
  )SH" + run + R"SH( &
  pid=$!
  end=$(($(date +%s) + 30))
  while [ "$(date +%s)" -lt $end ] && [ "$(hw out)" -le "$before" ]; do sleep 0.05; done
  sleep "0.$(printf %03d "$1")"
  kill -KILL $pid
  wait $pid 2>/dev/null
  echo "killed at $(hw out) out (from $before), $(hw in) in"
}
)SH" + kills + "touch " + stop_file + R"SH(
wait $producer
n=$(cat produced.txt)
echo "produced $n"
)SH" + run + R"SH( &
pid=$!
end=$(($(date +%s) + 60))
while [ "$(date +%s)" -lt $end ] && [ "$(distinct_out)" -lt "$n" ]; do sleep 1; done
kill -TERM $pid
wait $pid
echo "final run exit $?"
echo "in lows $(lows in)"
echo "out lows $(lows out)"
timeout 30 kcat -C -b "$KAFKA_BROKERS" -t in -e -o beginning -q -f '%p %o %s\n' > in.txt
timeout 30 kcat -C -b "$KAFKA_BROKERS" -t out -e -o beginning -q -f '%k|%s\n' > out.txt
kill -TERM $broker
wait $broker
)SH";
  auto r = Run(script);
  const std::string broker_err = Slurp(dir / "broker.err");
  INFO(r.out + r.err + Slurp(dir / "run.err") + broker_err);
  CHECK(r.out.find("final run exit 0") != std::string::npos);

  std::smatch m;
  REQUIRE(std::regex_search(r.out, m, std::regex(R"(produced (\d+))")));
  const int n = std::stoi(m[1]);
  REQUIRE(n >= 20 * kChunk);  // input kept arriving while the kills went on

  // The broker dropped nothing: every partition of both topics still starts at offset 0.
  const std::string zeros = [] {
    std::string s;
    for (int p = 0; p < kPartitions; ++p) s += "0 ";
    return s;
  }();
  CHECK(r.out.find("in lows " + zeros) != std::string::npos);
  CHECK(r.out.find("out lows " + zeros) != std::string::npos);
  CHECK(broker_err.find("dropped") == std::string::npos);

  // Every kill came after the process had produced output.
  int progressed = 0;
  std::istringstream killed(r.out);
  for (std::string l; std::getline(killed, l);) {
    long out = 0, before = 0, in = 0;
    if (std::sscanf(l.c_str(), "killed at %ld out (from %ld), %ld in", &out, &before, &in) == 3 &&
        out > before)
      ++progressed;
  }
  CHECK(progressed == kKills);

  // Input: (partition, offset) → id; each id once.
  std::map<std::pair<int, long>, int> input;
  std::set<int> input_ids;
  for (const auto& line : LinesOf(Slurp(dir / "in.txt"))) {  // P O {"id": N}
    int p = 0, id = 0;
    long o = 0;
    REQUIRE(std::sscanf(line.c_str(), "%d %ld {\"id\": %d}", &p, &o, &id) == 3);
    input[{p, o}] = id;
    input_ids.insert(id);
  }
  REQUIRE(input.size() == static_cast<size_t>(n));
  REQUIRE(input_ids.size() == static_cast<size_t>(n));

  // Output: every message is one input's own output, whole; every input id is there.
  static const std::regex kRow(
      R"re(^(\d+)\|\{"id":(\d+),"part":(\d+),"off":(\d+),"double":(\d+),"tag":"id-(\d+)"\}$)re");
  std::map<int, int> copies;
  size_t messages = 0, malformed = 0;
  std::string first_malformed;
  for (const auto& line : LinesOf(Slurp(dir / "out.txt"))) {
    ++messages;
    std::smatch row;
    bool ok = std::regex_match(line, row, kRow);
    if (ok) {
      const int id = std::stoi(row[2]);
      auto it = input.find({std::stoi(row[3]), std::stol(row[4])});
      ok = std::stoi(row[1]) == id && std::stol(row[5]) == 2L * id && std::stoi(row[6]) == id &&
           it != input.end() && it->second == id;
      if (ok) ++copies[id];
    }
    if (!ok && malformed++ == 0) first_malformed = line;
  }
  std::vector<int> missing;
  for (int id : input_ids)
    if (!copies.count(id)) missing.push_back(id);
  const size_t duplicates = messages - malformed - copies.size();
  WARN("at-least-once under " << kKills << " kills: " << n << " inputs, " << messages
                              << " output messages, " << duplicates << " duplicates");
  INFO("first malformed: " << first_malformed);
  CHECK(malformed == 0u);
  INFO("missing " << missing.size() << " (first " << (missing.empty() ? 0 : missing[0]) << ")");
  CHECK(missing.empty());
  CHECK(copies.size() == static_cast<size_t>(n));
  CHECK(messages >= static_cast<size_t>(n));
}
