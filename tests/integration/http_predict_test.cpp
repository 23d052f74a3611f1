// predict against a real model server: tests/integration/model_server.py (FastAPI + uvicorn,
// Debian's python3) serves models/iris on a free loopback port through the seed's `POST /predict`,
// MLflow's /invocations and KServe V2's infer. Each test starts its own server, runs the `sluice`
// binary on a file of the shipped iris data, and kills every process it started (a shell trap
// covers early exits); every wait is bounded.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "tests/integration/process.h"

using namespace sluice::testing;

namespace {

std::string StartServer(const TempDir& dir, const std::string& args) {
  return StartModelServer(dir, Source("models/iris"), args);
}

// A pipeline: the shipped iris envelopes → predict → (id, iris_class) lines in `out`.
std::string Pipeline(const TempDir& dir, const std::string& name, const std::string& predict,
                     const std::string& input = "", const std::string& settings = "") {
  return "name: " + name + "\n" + settings + "sources:\n  iris_data: {type: file, path: " +
         (input.empty() ? Source("pipelines/data/iris_data.jsonl") : input) +
         ", format: connect-json, schema: " + Source("schemas/iris_data.json") +
         "}\ntransforms:\n  classify:\n    type: predict\n    inputs: [iris_data]\n    model: " +
         Source("models/iris") + "\n" + predict +
         "  prediction: {type: select, inputs: [classify], fields: [id, iris_class]}\n"
         "sinks:\n  out: {type: file, inputs: [prediction], path: " +
         (dir / (name + ".jsonl")) + "}\ndead_letter: {path: " + (dir / (name + ".dead.jsonl")) +
         "}\n";
}

// id → iris_class of an output file; REQUIREs every id once.
std::map<int, int> Classes(const std::string& path) {
  static const std::regex kRow(R"(^\{"id":(\d+),"iris_class":(\d+)\}$)");
  std::map<int, int> out;
  for (const auto& line : LinesOf(Slurp(path))) {
    std::smatch m;
    INFO(line);
    REQUIRE(std::regex_match(line, m, kRow));
    REQUIRE(out.emplace(std::stoi(m[1]), std::stoi(m[2])).second);
  }
  return out;
}

const char* kRunFunction = R"SH(
# run NAME: runs the pipeline NAME.yaml, prints its exit code and time.
run() {
  start=$(date +%s%N)
  )SH";

std::string RunFunction(const TempDir& dir) {
  return std::string(kRunFunction) + Sluice() + " run --quiet " + dir.path().string() +
         "/$1.yaml 2>>" + (dir / "run.err") +
         "\n  echo \"$1 exit $? in $((($(date +%s%N) - start) / 1000000)) ms\"\n}\n";
}

const std::string kXgboost = "    outputs: {iris_class: label}\n";

}  // namespace

TEST_CASE("http predict: mlflow, kserve-v2 and json backends classify every row as xgboost does",
          "[integration][http]") {
  TempDir dir;
  std::ofstream(dir / "xgb.yaml") << Pipeline(dir, "xgb", kXgboost);
  std::ofstream(dir / "mlflow.yaml") << Pipeline(
      dir, "mlflow",
      "    backend: mlflow\n    url: http://127.0.0.1:${PORT}\n    max_batch_rows: 256\n" +
          kXgboost);
  std::ofstream(dir / "kserve.yaml")
      << Pipeline(dir, "kserve",
                  "    backend: kserve-v2\n    url: http://127.0.0.1:${PORT}/\n"
                  "    datatype: FP32\n" + kXgboost);
  std::ofstream(dir / "json.yaml") << Pipeline(
      dir, "json",
      "    backend: json\n    url: http://127.0.0.1:${PORT}/predict\n    concurrency: 32\n"
      "    headers: {Authorization: \"Bearer ${TOKEN:-test}\"}\n"
      "    outputs: {iris_class: iris_class}\n");
  auto r = Run(StartServer(dir, "") + RunFunction(dir) + "run xgb\nrun mlflow\nrun kserve\nrun json\n");
  INFO(r.out + r.err + Slurp(dir / "run.err") + Slurp(dir / "server.log"));
  WARN(r.out);  // run times per backend, for the log
  for (const char* name : {"xgb", "mlflow", "kserve", "json"})
    CHECK(r.out.find(std::string(name) + " exit 0 in") != std::string::npos);
  const auto expected = Classes(dir / "xgb.jsonl");
  REQUIRE(expected.size() == 1500u);
  const size_t bad_input = LinesOf(Slurp(dir / "xgb.dead.jsonl")).size();
  CHECK(bad_input == 4u);
  for (const char* name : {"mlflow", "kserve", "json"}) {
    INFO(name);
    CHECK(Classes(dir / (std::string(name) + ".jsonl")) == expected);
    // The same rows as in process are dead-lettered (bad input), none for the server.
    const std::string dead = Slurp(dir / (std::string(name) + ".dead.jsonl"));
    CHECK(LinesOf(dead).size() == bad_input);
    CHECK(dead.find("model server") == std::string::npos);
  }
}

TEST_CASE("http predict: kserve-v2 rows carry the model version the server answered with",
          "[integration][http]") {
  TempDir dir;
  // Two nodes against a server that serves version 7: one without a model directory, one with
  // models/iris, whose MLmodel says version 1. The server's answer names the version that
  // scored the rows, so both carry 7.
  const std::string predict =
      "    backend: kserve-v2\n    url: http://127.0.0.1:${PORT}\n"
      "    outputs: {iris_class: label, version: model_version}\n";
  std::ofstream(dir / "versions.yaml")
      << "name: versions\nsources:\n  iris_data: {type: file, path: " +
             Source("pipelines/data/iris_data.jsonl") +
             ", format: connect-json, schema: " + Source("schemas/iris_data.json") +
             "}\ntransforms:\n"
             "  bare:\n    type: predict\n    inputs: [iris_data]\n    model_name: iris\n"
             "    features: [sepal_length, sepal_width, petal_length, petal_width]\n" + predict +
             "  with_dir:\n    type: predict\n    inputs: [iris_data]\n    model: " +
             Source("models/iris") + "\n" + predict +
             "  bare_out: {type: select, inputs: [bare], fields: [id, iris_class, version]}\n"
             "  dir_out: {type: select, inputs: [with_dir], fields: [id, iris_class, version]}\n"
             "sinks:\n"
             "  bare_file: {type: file, inputs: [bare_out], path: " + (dir / "bare.jsonl") + "}\n"
             "  dir_file: {type: file, inputs: [dir_out], path: " + (dir / "dir.jsonl") + "}\n"
             "dead_letter: {path: " + (dir / "dead.jsonl") + "}\n";
  auto r = Run(StartServer(dir, "--model-version 7") + RunFunction(dir) + "run versions\n");
  INFO(r.out + r.err + Slurp(dir / "run.err") + Slurp(dir / "server.log"));
  CHECK(r.out.find("versions exit 0 in") != std::string::npos);
  static const std::regex kRow(R"re(^\{"id":\d+,"iris_class":[0-2],"version":"(.*)"\}$)re");
  for (const char* file : {"bare.jsonl", "dir.jsonl"}) {
    INFO(file);
    const auto lines = LinesOf(Slurp(dir / file));
    CHECK(lines.size() == 1500u);
    std::set<std::string> versions;
    for (const auto& line : lines) {
      std::smatch m;
      INFO(line);
      REQUIRE(std::regex_match(line, m, kRow));
      versions.insert(m[1]);
    }
    CHECK(versions == std::set<std::string>{"7"});
  }
}

TEST_CASE("http predict: a model server killed mid-run pauses the pipeline; nothing is lost",
          "[integration][http][faults]") {
  TempDir dir;
  std::ofstream(dir / "xgb.yaml") << Pipeline(dir, "xgb", kXgboost);
  std::ofstream(dir / "json.yaml") << Pipeline(
      dir, "json",
      "    backend: json\n    url: http://127.0.0.1:${PORT}/predict\n    concurrency: 4\n"
      "    timeout_ms: 2000\n    retries: 2\n    retry_backoff_ms: 50\n"
      "    breaker_failures: 3\n    breaker_cooldown_ms: 300\n"
      "    outputs: {iris_class: iris_class}\n",
      "", "settings: {batch_size: 50, max_in_flight: 4}\n");
  const std::string out = dir / "json.jsonl";
  auto r = Run(StartServer(dir, "--delay-ms 5") + RunFunction(dir) + "run xgb\n" +
               // The run in the background; the server is killed once rows flow.
               "touch " + out + "\n" + Sluice() + " run --quiet " + (dir / "json.yaml") + " 2>>" +
               (dir / "run.err") + " &\npid=$!\n" +
               "for i in $(seq 1 300); do [ \"$(wc -l < " + out +
               ")\" -ge 200 ] && break; sleep 0.05; done\n"
               "kill -9 $server\nwait $server 2>/dev/null\necho \"killed at $(wc -l < " +
               out + ") rows\"\nsleep 3\necho \"after 3 s down: $(wc -l < " + out + ") rows\"\n" +
               StartServer(dir, "--delay-ms 5 --port $PORT") +
               "for i in $(seq 1 600); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done\n"
               "kill -TERM $pid 2>/dev/null\nwait $pid\necho \"json exit $?\"\n");
  const std::string err = Slurp(dir / "run.err");
  INFO(r.out + r.err + err + Slurp(dir / "server.log"));
  WARN(r.out);
  CHECK(r.out.find("json exit 0") != std::string::npos);
  std::smatch m;
  REQUIRE(std::regex_search(r.out, m, std::regex(R"(killed at (\d+) rows)")));
  const int killed_at = std::stoi(m[1]);
  CHECK(killed_at >= 200);
  CHECK(killed_at < 1500);  // the outage really came mid-run
  REQUIRE(std::regex_search(r.out, m, std::regex(R"(after 3 s down: (\d+) rows)")));
  CHECK(std::stoi(m[1]) < 1500);  // paused while the server was down
  // The pause was the runner retrying, and the breaker opened.
  CHECK(err.find("transform 'classify'") != std::string::npos);
  CHECK(err.find("retrying in") != std::string::npos);
  CHECK(err.find("circuit open") != std::string::npos);
  const auto expected = Classes(dir / "xgb.jsonl");
  REQUIRE(expected.size() == 1500u);
  CHECK(Classes(out) == expected);
  const std::string dead = Slurp(dir / "json.dead.jsonl");
  CHECK(LinesOf(dead).size() == LinesOf(Slurp(dir / "xgb.dead.jsonl")).size());
  CHECK(dead.find("model server") == std::string::npos);
}

TEST_CASE("http predict: a model server slower than the timeout, then hung, pauses the pipeline; "
          "nothing is dead-lettered or lost",
          "[integration][http][faults]") {
  TempDir dir;
  // Every hundredth record (ids 50, 150, ...) without a sepal width: predict dead-letters it
  // without calling the server, so batches retried while the server is slow hold such rows,
  // which must be dead-lettered once, not once per attempt.
  std::string data;
  int nulls = 0;
  for (const auto& line : LinesOf(Slurp(Source("pipelines/data/iris_data.jsonl")))) {
    std::string l = line;
    std::smatch id;
    if (std::regex_search(l, id, std::regex(R"("payload":\{"id":(\d+),)")) &&
        std::stoi(id[1]) % 100 == 50) {
      l = std::regex_replace(l, std::regex(R"("sepal_width":[0-9.]+)"), "\"sepal_width\":null");
      ++nulls;
    }
    data += l + "\n";
  }
  REQUIRE(nulls == 15);
  std::ofstream(dir / "in.jsonl") << data;
  // The shipped schema with sepal_width nullable, so the nulls reach predict.
  const std::string shipped = Slurp(Source("schemas/iris_data.json"));
  const std::string nullable = std::regex_replace(
      shipped, std::regex(R"("sepal_width": \{\s*"type": "number")"),
      R"("sepal_width": {"type": ["number", "null"])");
  REQUIRE(nullable != shipped);
  std::ofstream(dir / "schema.json") << nullable;
  auto with_schema = [&](std::string yaml) {
    const std::string from = "schema: " + Source("schemas/iris_data.json");
    const size_t at = yaml.find(from);
    REQUIRE(at != std::string::npos);
    return yaml.replace(at, from.size(), "schema: " + (dir / "schema.json"));
  };
  std::ofstream(dir / "xgb.yaml") << with_schema(Pipeline(dir, "xgb", kXgboost, dir / "in.jsonl"));
  // One request per batch (mlflow), so a request that times out fails its batch's Process and
  // the runner's retries show in the log. (With the json backend's request per record, a batch
  // outlasts a short fault in the client's own retries.)
  constexpr int kBatchRows = 25, kInFlight = 4;
  std::ofstream(dir / "mlflow.yaml") << with_schema(Pipeline(
      dir, "mlflow",
      "    backend: mlflow\n    url: http://127.0.0.1:${PORT}\n"
      "    timeout_ms: 500\n    retries: 1\n    retry_backoff_ms: 50\n"
      "    breaker_failures: 3\n    breaker_cooldown_ms: 300\n" +
          kXgboost,
      dir / "in.jsonl",
      "settings: {batch_size: " + std::to_string(kBatchRows) +
          ", max_in_flight: " + std::to_string(kInFlight) + "}\n"));
  const std::string out = dir / "mlflow.jsonl";
  // Once rows flow, the server answers in 1.5 s (the timeout is 0.5 s) for 4 s, then in 0.1 s
  // again; once more rows flow, it is stopped (SIGSTOP: connections are accepted, nothing is
  // answered) for 4 s, then continued. The run ends by itself at the end of its file.
  auto r = Run(StartServer(dir, "--delay-ms 100") + RunFunction(dir) + "run xgb\ntouch " + out +
               "\nrows() { wc -l < " + out + "; }\n" + R"SH(
wait_rows() {
  for i in $(seq 1 300); do [ "$(rows)" -ge "$1" ] && break; kill -0 $pid || break; sleep 0.05; done
}
delay() { curl -sf -X PUT "http://127.0.0.1:$PORT/delay?ms=$1" >/dev/null && echo "delay $1 ms"; }
)SH" + Sluice() + " run --quiet " + (dir / "mlflow.yaml") + " 2>>" + (dir / "run.err") + R"SH( &
pid=$!
wait_rows 150
delay 1500
a=$(rows); sleep 4; b=$(rows)
echo "slow: $a to $b rows"
delay 100
wait_rows $((b + 150))
kill -STOP $server
a=$(rows); sleep 4; b=$(rows)
echo "stopped: $a to $b rows"
kill -CONT $server
for i in $(seq 1 600); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -TERM $pid 2>/dev/null
wait $pid
echo "mlflow exit $?"
)SH");
  const std::string err = Slurp(dir / "run.err");
  INFO(r.out + r.err + err + Slurp(dir / "server.log"));
  WARN(r.out);
  CHECK(r.out.find("mlflow exit 0") != std::string::npos);
  CHECK(r.out.find("delay 1500 ms") != std::string::npos);
  CHECK(r.out.find("delay 100 ms") != std::string::npos);
  const auto expected = Classes(dir / "xgb.jsonl");
  REQUIRE(expected.size() == 1500u - nulls);
  // Each fault came mid-run, and the pipeline paused through it: at most the batches in flight
  // were written after the server stopped answering in time.
  for (const char* phase : {"slow", "stopped"}) {
    std::smatch m;
    INFO(phase);
    REQUIRE(std::regex_search(r.out, m,
                              std::regex(std::string(phase) + R"(: (\d+) to (\d+) rows)")));
    const int before = std::stoi(m[1]), after = std::stoi(m[2]);
    CHECK(before >= 150);
    CHECK(after < static_cast<int>(expected.size()));
    CHECK(after - before <= kBatchRows * kInFlight);
  }
  CHECK(err.find("transform 'classify'") != std::string::npos);
  CHECK(err.find("retrying in") != std::string::npos);
  // Every row once, classified as in process; the same rows dead-lettered, each once.
  CHECK(Classes(out) == expected);
  const auto dead = LinesOf(Slurp(dir / "mlflow.dead.jsonl"));
  const auto xgb_dead = LinesOf(Slurp(dir / "xgb.dead.jsonl"));
  CHECK(xgb_dead.size() == 4u + nulls);
  CHECK(std::set<std::string>(dead.begin(), dead.end()).size() == dead.size());
  CHECK(dead.size() == xgb_dead.size());
  CHECK(Slurp(dir / "mlflow.dead.jsonl").find("model server") == std::string::npos);
  CHECK(std::count_if(dead.begin(), dead.end(), [](const std::string& l) {
          return l.find(R"("reason":"feature 'sepal_width' is null")") != std::string::npos;
        }) == nulls);
}

TEST_CASE("http predict: a record the server refuses (400) is dead-lettered with its message",
          "[integration][http]") {
  TempDir dir;
  // Record 7 with a sepal length no iris has: the server answers 400 for it alone.
  std::string data;
  int changed = 0;
  for (const auto& line : LinesOf(Slurp(Source("pipelines/data/iris_data.jsonl")))) {
    std::string l = line;
    if (l.find("\"payload\":{\"id\":7,") != std::string::npos) {
      l = std::regex_replace(l, std::regex(R"("sepal_length":[0-9.]+)"), "\"sepal_length\":99.0");
      ++changed;
    }
    data += l + "\n";
  }
  REQUIRE(changed == 1);
  std::ofstream(dir / "in.jsonl") << data;
  std::ofstream(dir / "json.yaml") << Pipeline(
      dir, "json",
      "    backend: json\n    url: http://127.0.0.1:${PORT}/predict\n    concurrency: 32\n"
      "    outputs: {iris_class: iris_class}\n",
      dir / "in.jsonl");
  auto r = Run(StartServer(dir, "") + RunFunction(dir) + "run json\n");
  INFO(r.out + r.err + Slurp(dir / "run.err") + Slurp(dir / "server.log"));
  CHECK(r.out.find("json exit 0 in") != std::string::npos);
  const auto rows = Classes(dir / "json.jsonl");
  CHECK(rows.size() == 1499u);
  CHECK(rows.count(7) == 0u);
  CHECK(rows.count(6) == 1u);
  CHECK(rows.count(8) == 1u);
  std::vector<std::string> refused;
  for (const auto& line : LinesOf(Slurp(dir / "json.dead.jsonl")))
    if (line.find("model server") != std::string::npos) refused.push_back(line);
  REQUIRE(refused.size() == 1u);
  CHECK(refused[0].find(R"("node":"classify")") != std::string::npos);
  CHECK(refused[0].find(R"x("reason":"model server: HTTP 400: sepal_length 99.0 is out of range )x"
                        R"x((0..50.0 cm)")x") != std::string::npos);
  CHECK(refused[0].find(R"(\"id\":7,)") != std::string::npos);  // the original bytes
}
