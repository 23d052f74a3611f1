// The ride flow of seeds 001 and 003 end to end on the development broker: pipelines/ride.yaml
// as shipped reads generated ride events (plus bad ones) from `ride-events` and writes
// `ride-predictions`. Every message is compared byte for byte, with its key, against what
// tests/integration/ride_expected.py computes with python3-xgboost the way the seed's cloud
// function does (PU_DO from the event, the model's prediction, Python's round()).
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <set>

#include "tests/integration/process.h"

using namespace sluice::testing;

namespace {

constexpr int kEvents = 20000;
constexpr const char* kSeedEvent =
    R"({"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}, "ride_id": 123})";

// Runs `sluice dev-kafka` with the ride topics, produces `events` to ride-events, runs
// pipelines/ride.yaml until `expect` predictions are on ride-predictions (or 60 s pass), stops it
// with SIGTERM and consumes the output topic into `consumed` as "key|value" lines.
CommandResult RunRideFlow(const TempDir& dir, const std::string& events, int expect) {
  const std::string bs = dir / "bootstrap.txt";
  const std::string script = Sluice() + " dev-kafka -t ride-events:4 -t ride-predictions:4 " +
                             "--bootstrap-file " + bs + " --run-seconds 150 >/dev/null 2>" +
                             std::string(dir / "broker.err") + R"SH( &
broker=$!
for i in $(seq 1 100); do [ -s )SH" + bs + R"SH( ] && break; sleep 0.1; done
export KAFKA_BROKERS=$(cat )SH" + bs + R"SH()
export SLUICE_OUT=)SH" + dir.path().string() + R"SH(
kcat -P -b "$KAFKA_BROKERS" -t ride-events -X linger.ms=20 < )SH" + events + R"SH(
)SH" + Sluice() + " --log-format json run " + Source("pipelines/ride.yaml") + " 2>" +
                             std::string(dir / "run.err") + R"SH( &
run=$!
n=0
for i in $(seq 1 120); do
  n=$(timeout 20 kcat -C -b "$KAFKA_BROKERS" -t ride-predictions -e -o beginning -q | wc -l)
  [ "$n" -ge )SH" + std::to_string(expect) + R"SH( ] && break
  sleep 0.5
done
kill -TERM $run
wait $run
echo "run exit $?"
timeout 30 kcat -C -b "$KAFKA_BROKERS" -t ride-predictions -e -o beginning -q -f '%k|%s\n' > )SH" +
                             std::string(dir / "consumed") + R"SH(
kill -TERM $broker
wait $broker
)SH";
  return Run(script);
}

}  // namespace

TEST_CASE("ride.yaml publishes every prediction keyed by ride_id in the seed's exact shape",
          "[integration][kafka][ride]") {
  TempDir dir;
  const std::string events = dir / "events.jsonl";
  // The seed's sample event first, then generated ones.
  std::ofstream(events) << kSeedEvent << "\n";
  auto gen = Run("/usr/bin/python3 " + Source("models/ride_data.py") + " --events " +
                 std::to_string(kEvents - 1) + " --seed 11 --start-id 1000 >> " + events);
  REQUIRE(gen.exit_code == 0);
  auto expected_run = Run("/usr/bin/python3 " + Source("tests/integration/ride_expected.py") +
                          " " + Source("models/ride") + " < " + events);
  INFO(expected_run.err);
  REQUIRE(expected_run.exit_code == 0);
  std::vector<std::string> expected = LinesOf(expected_run.out);
  REQUIRE(expected.size() == static_cast<size_t>(kEvents));

  // Bad events, each dead-lettered with its reason while the rest flow.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"ride": {"PULocationID": 130, "trip_distance": 3.66}, "ride_id": 1})",
       "missing field 'ride.DOLocationID'"},
      {R"({"ride": {"PULocationID": "130", "DOLocationID": 205, "trip_distance": 3.66}, "ride_id": 2})",
       "field 'ride.PULocationID': expected int64, found a string"},
      {R"({"ride": "130_205", "ride_id": 3})", "field 'ride': expected an object"},
      {R"({"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": NaN}, "ride_id": 4})",
       "malformed JSON"},
      {R"({"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}})",
       "missing field 'ride_id'"},
  };
  {
    std::ofstream out(events, std::ios::app);
    for (const auto& [line, reason] : bad) out << line << "\n";
  }

  auto r = RunRideFlow(dir, events, kEvents);
  INFO(r.out + r.err + Slurp(dir / "run.err") + Slurp(dir / "broker.err"));
  CHECK(r.out.find("run exit 0") != std::string::npos);

  std::vector<std::string> consumed = LinesOf(Slurp(dir / "consumed"));
  REQUIRE(consumed.size() == expected.size());
  // Partitions interleave on the way out; within one key there is one message.
  std::sort(consumed.begin(), consumed.end());
  std::sort(expected.begin(), expected.end());
  size_t differ = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    if (consumed[i] != expected[i] && differ++ < 5) {
      INFO("consumed: " << consumed[i] << "\nexpected: " << expected[i]);
      CHECK(consumed[i] == expected[i]);
    }
  }
  CHECK(differ == 0u);
  // The seed's sample event, in the seed's shape.
  CHECK(std::count_if(consumed.begin(), consumed.end(), [](const std::string& l) {
          return l.rfind("123|{\"model\":\"ride_duration_prediction_model\",\"version\":1,"
                         "\"prediction\":{\"ride_duration\":",
                         0) == 0 &&
                 l.ends_with(",\"ride_id\":123}}");
        }) == 1);

  const std::string dead = Slurp(dir / "ride.dead-letter.jsonl");
  CHECK(LinesOf(dead).size() == bad.size());
  for (const auto& [line, reason] : bad) {
    INFO(reason);
    CHECK(dead.find(reason) != std::string::npos);
  }
  CHECK(Slurp(dir / "run.err").find("\"rows_written\":" + std::to_string(kEvents)) !=
        std::string::npos);
}
