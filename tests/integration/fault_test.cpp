// Faults outside Sluice that it must ride out without losing a record. Here: the dead-letter
// file cannot be written (a full disk: its path is a link to /dev/full). The pipeline pauses
// with a clear error instead of dropping the rejected rows, and resumes once the file can be
// written; stopped while paused, it exits failed without committing the batches it could not
// finish, and the next run dead-letters their rows.
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "tests/integration/process.h"

using namespace sluice::testing;

namespace {

constexpr int kGood = 3000;
constexpr int kBad = 10;

// DIR/events.jsonl: kGood records {"id": n} with kBad undecodable ones spread among them.
void WriteEvents(const TempDir& dir) {
  std::ofstream out(dir / "events.jsonl");
  int bad = 0;
  for (int i = 1; i <= kGood; ++i) {
    out << "{\"id\": " << i << "}\n";
    if (i % (kGood / kBad) == 0 && bad < kBad) out << "{\"id\": \"bad " << ++bad << "\"}\n";
  }
  std::ofstream(dir / "s.json")
      << R"({"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]})";
  std::ofstream(dir / "p.yaml")
      << "name: dlq-fault\n"
         "settings: {batch_size: 100}\n"
         "sources:\n"
         "  events: {type: kafka, brokers: \"${KAFKA_BROKERS}\", topic: events, group: dlq, "
         "start: earliest, schema: s.json,\n"
         "          properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: \"500\"}}\n"
         "sinks:\n"
         "  out: {type: file, inputs: [events], path: out.jsonl, mode: append}\n"
         "dead_letter: {path: dl.jsonl}\n";
}

// Shell: the ids in DIR/out.jsonl, distinct.
std::string DistinctIds(const TempDir& dir) {
  return "$(grep -o '[0-9]*' " + (dir / "out.jsonl") + " 2>/dev/null | sort -u | wc -l)";
}

}  // namespace

TEST_CASE("a full disk under the dead-letter file pauses the pipeline; nothing is dropped",
          "[integration][fault][dead-letter]") {
  TempDir dir;
  WriteEvents(dir);
  const std::string d = dir.path().string();
  const std::string script =
      "cd " + d + "\n" + StartBroker(dir, "-t events:1 --run-seconds 120") +
      "trap 'kill -9 $run $broker 2>/dev/null' EXIT\n"
      "kcat -P -b \"$KAFKA_BROKERS\" -t events -X linger.ms=20 < events.jsonl\n"
      "ln -s /dev/full dl.jsonl\n" +
      Sluice() + " run --quiet p.yaml 2> run.err &\nrun=$!\n"
      "for i in $(seq 1 200); do grep -q 'paused until it can be written' run.err && break; "
      "sleep 0.1; done\n"
      "sleep 1\n"
      "kill -0 $run && echo 'running while paused'\n"
      "echo \"rows while paused " + DistinctIds(dir) + "\"\n"
      // Space again: the link now points at a file that can grow.
      "ln -sfn real-dl.jsonl dl.jsonl\n"
      "for i in $(seq 1 300); do [ " + DistinctIds(dir) + " -ge " + std::to_string(kGood) +
      " ] && break; sleep 0.1; done\n"
      "kill -TERM $run; wait $run; echo \"run exit $?\"\n"
      "echo \"rows " + DistinctIds(dir) + "\"\n"
      "echo \"dead letters $(wc -l < real-dl.jsonl)\"\n";
  auto r = Run(script);
  INFO(r.out + r.err + "\n--- run.err\n" + Slurp(dir / "run.err"));
  CHECK(r.out.find("running while paused") != std::string::npos);
  CHECK(r.out.find("rows while paused " + std::to_string(kGood)) == std::string::npos);
  CHECK(r.out.find("run exit 0") != std::string::npos);
  CHECK(r.out.find("rows " + std::to_string(kGood) + "\n") != std::string::npos);
  CHECK(r.out.find("dead letters " + std::to_string(kBad)) != std::string::npos);
  const std::string log = Slurp(dir / "run.err");
  CHECK(log.find("cannot write dead-letter file 'dl.jsonl': No space left on device; the "
                 "pipeline is paused until it can be written (nothing is dropped)") !=
        std::string::npos);
  CHECK(log.find("can be written again; the pipeline resumes") != std::string::npos);
}

TEST_CASE("stopped while the dead-letter file cannot be written: exit 1, and the next run "
          "dead-letters those rows",
          "[integration][fault][dead-letter]") {
  TempDir dir;
  WriteEvents(dir);
  const std::string d = dir.path().string();
  const std::string script =
      "cd " + d + "\n" + StartBroker(dir, "-t events:1 --run-seconds 120") +
      "trap 'kill -9 $run $broker 2>/dev/null' EXIT\n"
      "kcat -P -b \"$KAFKA_BROKERS\" -t events -X linger.ms=20 < events.jsonl\n"
      "ln -s /dev/full dl.jsonl\n" +
      Sluice() + " run --quiet p.yaml 2> run1.err &\nrun=$!\n"
      "for i in $(seq 1 200); do grep -q 'paused until it can be written' run1.err && break; "
      "sleep 0.1; done\n"
      "kill -TERM $run; wait $run; echo \"first exit $?\"\n"
      "ln -sfn real-dl.jsonl dl.jsonl\n" +
      Sluice() + " run --quiet p.yaml 2> run2.err &\nrun=$!\n"
      "for i in $(seq 1 600); do [ " + DistinctIds(dir) + " -ge " + std::to_string(kGood) +
      " ] && [ \"$(wc -l < real-dl.jsonl 2>/dev/null || echo 0)\" -ge " + std::to_string(kBad) +
      " ] && break; sleep 0.1; done\n"
      "kill -TERM $run; wait $run; echo \"second exit $?\"\n"
      "echo \"rows " + DistinctIds(dir) + "\"\n"
      "echo \"dead letters $(grep -o 'bad [0-9]*' real-dl.jsonl | sort -u | wc -l)\"\n";
  auto r = Run(script);
  INFO(r.out + r.err + "\n--- run1.err\n" + Slurp(dir / "run1.err") + "\n--- run2.err\n" +
       Slurp(dir / "run2.err"));
  CHECK(r.out.find("first exit 1") != std::string::npos);
  CHECK(Slurp(dir / "run1.err").find("stopped before the rejected rows could be written: their "
                                     "batches were not acknowledged and will be read again") !=
        std::string::npos);
  CHECK(r.out.find("second exit 0") != std::string::npos);
  CHECK(r.out.find("rows " + std::to_string(kGood) + "\n") != std::string::npos);
  // Every bad record is in the file, each with its reason.
  CHECK(r.out.find("dead letters " + std::to_string(kBad)) != std::string::npos);
}
