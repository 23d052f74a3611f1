// The metrics endpoint of `sluice run --metrics-addr` against real traffic: records, dead
// letters, predictions and readiness from an http source; a shifted input stream raising the
// population stability index; Kafka consumer lag per partition on the development broker; Debian's
// Prometheus scraping the endpoint and answering queries; and the shipped Grafana dashboards and
// alert rules using only metric names that /metrics serves (tests/check_dashboards.py).
#include <catch2/catch.hpp>

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/process.h"

using namespace sluice::testing;

namespace {

// The sum of the samples of `name` whose labels include every `want` (`node="out"`); NaN when
// there is none.
double Sample(const std::string& text, const std::string& name,
              const std::vector<std::string>& want = {}) {
  double sum = 0;
  bool found = false;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#' || line.rfind(name, 0) != 0) continue;
    const char after = line.size() > name.size() ? line[name.size()] : '\0';
    if (after != '{' && after != ' ') continue;
    const size_t space = line.rfind(' ');
    const std::string labels = line.substr(name.size(), space - name.size());
    bool all = true;
    for (const auto& w : want) all = all && labels.find(w) != std::string::npos;
    if (!all) continue;
    sum += std::stod(line.substr(space + 1));
    found = true;
  }
  return found ? sum : NAN;
}

const char* kIrisSchema = R"({
  "type": "object",
  "properties": {
    "sepal_length": {"type": "number"}, "sepal_width": {"type": "number"},
    "petal_length": {"type": "number"}, "petal_width": {"type": "number"}
  },
  "required": ["sepal_length", "sepal_width", "petal_length", "petal_width"]
})";

// Writes DIR/normal{0,1,2}.jsonl (the 1,500 good iris rows of the shipped data, 500 a file) and
// DIR/shifted{0,1,2}.jsonl (the same rows with petal_length 2.5 cm longer).
std::string WriteIrisBodies(const TempDir& dir) {
  std::ofstream(dir / "iris.json") << kIrisSchema;
  return "/usr/bin/python3 - " + Source("pipelines/data/iris_data.jsonl") + " " +
         dir.path().string() + R"SH( <<'PY'
import json, math, sys
keys = ("sepal_length", "sepal_width", "petal_length", "petal_width")
rows = []
for line in open(sys.argv[1]):
    try:
        p = json.loads(line)["payload"]
        r = {k: float(p[k]) for k in keys}
    except (ValueError, KeyError, TypeError):
        continue
    if all(math.isfinite(v) for v in r.values()):
        rows.append(r)
assert len(rows) == 1500, len(rows)
for i in range(3):
    part = rows[i * 500:(i + 1) * 500]
    with open(f"{sys.argv[2]}/normal{i}.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in part)
    with open(f"{sys.argv[2]}/shifted{i}.jsonl", "w") as f:
        f.writelines(json.dumps(dict(r, petal_length=r["petal_length"] + 2.5)) + "\n" for r in part)
PY
)SH";
}

// Shell: a free loopback port in $1's variable.
const char* kFreePort =
    "free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); "
    "s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])'; }\n";

// What a run of the shifted-stream scenario left: the shell's output, Sluice's JSON log, and
// the metrics scraped after the normal rows (m1) and after the shifted ones (m2).
struct ShiftedRun {
  CommandResult r;
  std::string log, m1, m2;
};

// Pipeline `metrics-test`: an http source → predict `classify` (models/iris, its reference
// profile; `predict` adds the node's other keys) → a file. It posts the 1,500 good iris rows, one
// bad body, scrapes /metrics, posts the 1,500 rows shifted, scrapes again, and stops Sluice with
// SIGTERM. `prelude` runs first (a model server).
ShiftedRun RunShiftedStream(const TempDir& dir, const std::string& predict,
                            const std::string& prelude = "") {
  const std::string d = dir.path().string();
  std::ofstream(dir / "p.yaml")
      << "name: metrics-test\n"
         "settings: {batch_size: 250}\n"
         "sources:\n"
         "  rows: {type: http, address: \"127.0.0.1:${PUSH_PORT}\", format: json, schema: "
         "iris.json}\n"
         "transforms:\n"
         "  classify: {type: predict, inputs: [rows], model: " +
             Source("models/iris") + ", " + predict +
             ", drift_window: 1000, drift_min_rows: 500}\n"
             "sinks:\n"
             "  out: {type: file, inputs: [classify], path: out.jsonl}\n"
             "dead_letter: {path: dead.jsonl}\n";
  const std::string post =
      "curl -s -o /dev/null -w '%{http_code}\\n' -H 'Content-Type: application/json' "
      "--data-binary";
  const std::string script =
      WriteIrisBodies(dir) + kFreePort + "export PUSH_PORT=$(free_port)\n" + prelude + Sluice() +
      " --log-format json run --metrics-addr 127.0.0.1:0 " + d + "/p.yaml 2>" + d +
      "/run.err &\nrun=$!\n" + "trap 'kill -9 $run $server 2>/dev/null' EXIT\n" +
      WaitMetricsAddr(d + "/run.err") + R"SH(
echo "healthz $(curl -s -o /dev/null -w '%{http_code}' http://$MADDR/healthz)"
for i in $(seq 1 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' http://$MADDR/readyz)
  [ "$code" = 200 ] && break
  sleep 0.1
done
echo "readyz $code"
for b in normal0 normal1 normal2; do echo "post $()SH" + post + " @" + d + R"SH(/$b.jsonl http://127.0.0.1:$PUSH_PORT/)"; done
echo "post bad $()SH" + post + R"SH( 'not json' http://127.0.0.1:$PUSH_PORT/)"
curl -s http://$MADDR/metrics > )SH" + d + R"SH(/metrics1.txt
for b in shifted0 shifted1 shifted2; do echo "post $()SH" + post + " @" + d + R"SH(/$b.jsonl http://127.0.0.1:$PUSH_PORT/)"; done
curl -s http://$MADDR/metrics > )SH" + d + R"SH(/metrics2.txt
kill -TERM $run
wait $run
echo "run exit $?"
)SH";
  ShiftedRun out{Run(script), Slurp(dir / "run.err"), Slurp(dir / "metrics1.txt"),
                 Slurp(dir / "metrics2.txt")};
  return out;
}

}  // namespace

TEST_CASE("metrics: counts, readiness, predictions, and drift raised by a shifted stream",
          "[integration][metrics]") {
  TempDir dir;
  const ShiftedRun run = RunShiftedStream(dir, "outputs: {iris_class: class}");
  const CommandResult& r = run.r;
  const std::string& log = run.log;
  INFO(r.out + r.err + "\n--- run.err\n" + log);
  CHECK(r.out.find("healthz 200") != std::string::npos);
  CHECK(r.out.find("readyz 200") != std::string::npos);
  CHECK(r.out.find("post bad 400") != std::string::npos);
  CHECK(LinesOf(r.out).size() > 0);
  size_t ok_posts = 0;
  for (const auto& l : LinesOf(r.out)) ok_posts += l == "post 200";
  CHECK(ok_posts == 6u);
  CHECK(r.out.find("run exit 0") != std::string::npos);

  const std::string& m1 = run.m1;
  INFO("--- metrics1\n" + m1);
  const std::string p = "pipeline=\"metrics-test\"";
  CHECK(Sample(m1, "sluice_node_records_in_total", {p, "node=\"rows\"", "role=\"source\""}) ==
        1501);
  CHECK(Sample(m1, "sluice_node_records_out_total", {p, "node=\"rows\""}) == 1500);
  CHECK(Sample(m1, "sluice_node_dead_letters_total", {p, "node=\"rows\""}) == 1);
  CHECK(Sample(m1, "sluice_node_records_out_total", {p, "node=\"out\"", "role=\"sink\""}) == 1500);
  CHECK(Sample(m1, "sluice_end_to_end_latency_seconds_count", {p, "node=\"out\""}) == 1500);
  CHECK(Sample(m1, "sluice_end_to_end_latency_seconds_bucket", {p, "node=\"out\"", "le=\"+Inf\""}) ==
        1500);
  CHECK(Sample(m1, "sluice_node_batch_duration_seconds_count", {p, "node=\"classify\""}) >= 6);
  CHECK(Sample(m1, "sluice_predictions_total", {p, "node=\"classify\""}) == 1500);
  CHECK(Sample(m1, "sluice_model_info",
               {p, "node=\"classify\"", "model=\"iris\"", "version=\"1\""}) == 1);
  CHECK(Sample(m1, "sluice_pipeline_ready", {p}) == 1);
  CHECK(Sample(m1, "sluice_source_in_flight_limit", {p, "node=\"rows\""}) > 0);
  CHECK(Sample(m1, "sluice_node_retries_total", {p, "node=\"out\""}) == 0);
  CHECK(Sample(m1, "process_resident_memory_bytes") > 1e6);
  // The stream the model was trained on: every PSI is small, no flag is up.
  for (const char* f : {"sepal_length", "sepal_width", "petal_length", "petal_width"}) {
    INFO(f);
    const std::string feature = std::string("feature=\"") + f + "\"";
    CHECK(Sample(m1, "sluice_feature_psi", {p, feature}) < 0.05);
    CHECK(Sample(m1, "sluice_drift_threshold_exceeded", {p, feature}) == 0);
  }
  CHECK(Sample(m1, "sluice_prediction_psi", {p}) < 0.05);

  // 1,500 rows with petal_length 2.5 cm longer: the window (1,000 rows) holds only them.
  const std::string& m2 = run.m2;
  INFO("--- metrics2\n" + m2);
  CHECK(Sample(m2, "sluice_feature_psi", {p, "feature=\"petal_length\""}) > 1);
  CHECK(Sample(m2, "sluice_drift_threshold_exceeded", {p, "feature=\"petal_length\""}) == 1);
  CHECK(Sample(m2, "sluice_feature_psi", {p, "feature=\"sepal_width\""}) < 0.05);
  CHECK(Sample(m2, "sluice_drift_threshold_exceeded", {p, "feature=\"sepal_width\""}) == 0);
  CHECK(Sample(m2, "sluice_predictions_total", {p}) == 3000);

  // Structured logs: every line is a JSON object naming the pipeline; the drift warning names
  // the node and the feature.
  simdjson::dom::parser parser;
  size_t lines = 0, unnamed = 0, drift = 0;
  for (const auto& line : LinesOf(log)) {
    ++lines;
    simdjson::padded_string padded(line);
    simdjson::dom::element doc;
    std::string_view pipeline, level, feature, node;
    REQUIRE_FALSE(parser.parse(padded).get(doc));
    if (doc["pipeline"].get(pipeline) || pipeline != "metrics-test") ++unnamed;
    if (!doc["level"].get(level) && level == "warn" && !doc["feature"].get(feature) &&
        feature == "petal_length" && !doc["node"].get(node) && node == "classify")
      ++drift;
  }
  CHECK(lines > 3u);
  CHECK(unnamed == 0u);
  CHECK(drift == 1u);
}

TEST_CASE("metrics: a remote model server's predictions and drift are counted as in process",
          "[integration][metrics][http]") {
  // The drift warnings of a run's JSON log, by feature.
  auto drift_warnings = [](const std::string& log) {
    simdjson::dom::parser parser;
    std::vector<std::string> out;
    for (const auto& line : LinesOf(log)) {
      simdjson::padded_string padded(line);
      simdjson::dom::element doc;
      std::string_view level, feature;
      if (parser.parse(padded).get(doc)) continue;
      if (!doc["level"].get(level) && level == "warn" && !doc["feature"].get(feature))
        out.emplace_back(feature);
    }
    return out;
  };
  const std::string p = "pipeline=\"metrics-test\"";
  const std::string node = "node=\"classify\"";

  SECTION("mlflow: scores, counted by class, and the predictions' drift") {
    TempDir dir;
    const ShiftedRun run = RunShiftedStream(
        dir, "backend: mlflow, url: \"http://127.0.0.1:${PORT}\", outputs: {iris_class: class}",
        StartModelServer(dir, Source("models/iris"), ""));
    INFO(run.r.out + run.r.err + "\n--- run.err\n" + run.log + "\n--- server.log\n" +
         Slurp(dir / "server.log") + "\n--- metrics1\n" + run.m1 + "\n--- metrics2\n" + run.m2);
    REQUIRE(run.r.out.find("run exit 0") != std::string::npos);
    CHECK(Sample(run.m1, "sluice_model_info", {p, node, "model=\"iris\"", "version=\"1\""}) == 1);
    // Each class's count is the number of rows written with that class.
    std::map<std::string, int> written;
    for (const auto& line : LinesOf(Slurp(dir / "out.jsonl"))) {
      const size_t at = line.find("\"iris_class\":\"");
      REQUIRE(at != std::string::npos);
      const size_t from = at + 14;
      ++written[line.substr(from, line.find('"', from) - from)];
    }
    REQUIRE(written.size() == 3u);
    int total = 0;
    for (const auto& [name, count] : written) {
      INFO(name);
      total += count;
      CHECK(Sample(run.m2, "sluice_predictions_total", {p, node, "class=\"" + name + "\""}) ==
            count);
    }
    CHECK(total == 3000);
    CHECK(Sample(run.m1, "sluice_predictions_total", {p, node}) == 1500);
    CHECK(Sample(run.m1, "sluice_feature_psi", {p, "feature=\"petal_length\""}) < 0.05);
    CHECK(Sample(run.m1, "sluice_prediction_psi", {p}) < 0.05);
    CHECK(Sample(run.m2, "sluice_feature_psi", {p, "feature=\"petal_length\""}) > 1);
    CHECK(Sample(run.m2, "sluice_drift_threshold_exceeded", {p, "feature=\"petal_length\""}) ==
          1);
    CHECK(Sample(run.m2, "sluice_feature_psi", {p, "feature=\"sepal_width\""}) < 0.05);
    const auto warned = drift_warnings(run.log);
    CHECK(std::count(warned.begin(), warned.end(), "petal_length") == 1);
    // One request a batch, each answered at once: every attempt timed, none failed.
    const double ok = Sample(run.m2, "sluice_http_requests_total", {p, node, "outcome=\"ok\""});
    CHECK(ok >= 12);
    CHECK(Sample(run.m2, "sluice_http_requests_total", {p, node, "outcome=\"failed\""}) == 0);
    CHECK(Sample(run.m2, "sluice_http_request_duration_seconds_count", {p, node}) == ok);
    CHECK(Sample(run.m2, "sluice_http_circuit_open", {p, node}) == 0);
  }

  SECTION("json: the answers are not scores; the inputs' drift is still monitored") {
    TempDir dir;
    const ShiftedRun run = RunShiftedStream(
        dir,
        "backend: json, url: \"http://127.0.0.1:${PORT}/predict\", "
        "outputs: {iris_class: iris_class}",
        StartModelServer(dir, Source("models/iris"), ""));
    INFO(run.r.out + run.r.err + "\n--- run.err\n" + run.log + "\n--- server.log\n" +
         Slurp(dir / "server.log") + "\n--- metrics1\n" + run.m1 + "\n--- metrics2\n" + run.m2);
    REQUIRE(run.r.out.find("run exit 0") != std::string::npos);
    CHECK(LinesOf(Slurp(dir / "out.jsonl")).size() == 3000u);
    CHECK(Sample(run.m1, "sluice_model_info", {p, node, "model=\"iris\"", "version=\"1\""}) == 1);
    CHECK(std::isnan(Sample(run.m2, "sluice_predictions_total", {p, node})));
    CHECK(std::isnan(Sample(run.m2, "sluice_prediction_psi", {p, node})));
    CHECK(Sample(run.m1, "sluice_feature_psi", {p, "feature=\"petal_length\""}) < 0.05);
    CHECK(Sample(run.m2, "sluice_feature_psi", {p, "feature=\"petal_length\""}) > 1);
    CHECK(Sample(run.m2, "sluice_drift_threshold_exceeded", {p, "feature=\"petal_length\""}) ==
          1);
    const auto warned = drift_warnings(run.log);
    CHECK(std::count(warned.begin(), warned.end(), "petal_length") == 1);
    CHECK(std::count(warned.begin(), warned.end(), "prediction") == 0);
    // One request a record.
    CHECK(Sample(run.m1, "sluice_http_requests_total", {p, node, "outcome=\"ok\""}) == 1500);
    CHECK(Sample(run.m2, "sluice_http_requests_total", {p, node, "outcome=\"ok\""}) == 3000);
    CHECK(Sample(run.m2, "sluice_http_request_duration_seconds_count", {p, node}) == 3000);
  }
}

TEST_CASE("metrics: Kafka lag per partition, scraped by Prometheus; dashboards use served names",
          "[integration][metrics][kafka][prometheus]") {
  TempDir dir;
  const std::string d = dir.path().string();
  constexpr int kRides = 2000;
  std::ofstream(dir / "p.yaml")
      << "name: metrics-kafka\n"
         "settings: {batch_size: 100}\n"
         "sources:\n"
         "  rides: {type: kafka, brokers: \"${KAFKA_BROKERS}\", topic: rides, group: metrics, "
         "start: earliest, format: json, schema: " +
             Source("schemas/ride_event.json") +
             "}\n"
             "transforms:\n"
             "  features:\n"
             "    type: map\n"
             "    inputs: [rides]\n"
             "    fields:\n"
             "      PU_DO: concat(to_string(ride.PULocationID), \"_\", "
             "to_string(ride.DOLocationID))\n"
             "      trip_distance: ride.trip_distance\n"
             "  duration: {type: predict, inputs: [features], model: " +
             Source("models/ride") +
             ", outputs: {minutes: value}}\n"
             "sinks:\n"
             // A sink that takes its time (five posts of a batch each a second): the lag is
             // there to be seen for about four seconds.
             "  hook: {type: http, inputs: [duration], url: \"http://127.0.0.1:${HOOK_PORT}/h\", "
             "format: json, batch: true, max_message_bytes: 100000, rate_limit_per_s: 5}\n"
             "dead_letter: {path: dead.jsonl}\n";
  // A classifier too, in a process of its own, so that every metric the dashboards use is
  // served by one or the other.
  std::ofstream(dir / "iris.yaml")
      << "name: metrics-iris\n"
         "sources:\n"
         "  rows: {type: file, path: " +
             Source("pipelines/data/iris_data.jsonl") +
             ", format: connect-json, schema: " + Source("schemas/iris_data.json") +
             ", repeat: 100000}\n"
             "transforms:\n"
             "  features: {type: drop-fields, inputs: [rows], fields: [id, target]}\n"
             "  classify: {type: predict, inputs: [features], model: " +
             Source("models/iris") +
             ", outputs: {iris_class: class}}\n"
             "sinks:\n"
             "  out: {type: file, inputs: [classify], path: /dev/null}\n"
             "dead_letter: {path: iris.dead.jsonl}\n";
  std::ofstream(dir / "prometheus.yml") << "global: {scrape_interval: 1s}\n"
                                           "scrape_configs:\n"
                                           "  - job_name: sluice\n"
                                           "    static_configs: [{targets: [\"MADDR\"]}]\n";
  const std::string query = "curl -s -G http://127.0.0.1:$PROM_PORT/api/v1/query --data-urlencode";
  const std::string lag_sum =
      "curl -s http://$MADDR/metrics | awk '/^sluice_kafka_consumer_lag\\{/ {s += $NF; n++} END "
      "{print (n ? s : -1)}'";
  const std::string hook_out =
      "curl -s http://$MADDR/metrics | awk '/^sluice_node_records_out_total\\{.*node=\"hook\"/ "
      "{print $NF}'";
  const std::string script =
      std::string(kFreePort) + "set -u\n" +
      "/usr/bin/python3 " + Source("tests/integration/webhook_receiver.py") + " --port-file " + d +
      "/hook_port --log " + d + "/posts.jsonl 2>" + d + "/hook.err &\nhook=$!\n" +
      StartBroker(dir, "-t rides:4 --run-seconds 200") +
      "trap 'kill -9 $run $prom $hook $broker 2>/dev/null' EXIT\nrun=; prom=\n" +
      "for i in $(seq 1 100); do [ -s " + d + "/hook_port ] && break; sleep 0.1; done\n" +
      "export HOOK_PORT=$(cat " + d + "/hook_port) PROM_PORT=$(free_port)\n" +
      Sluice() + " run --quiet --metrics-addr 127.0.0.1:0 " + d + "/p.yaml 2>" + d +
      "/run.err &\nrun=$!\n" + WaitMetricsAddr(d + "/run.err") + "sed -i \"s/MADDR/$MADDR/\" " +
      d + "/prometheus.yml\n" + "prometheus --config.file=" + d +
      "/prometheus.yml --storage.tsdb.path=" + d +
      "/tsdb --web.listen-address=127.0.0.1:$PROM_PORT >" + d + "/prom.log 2>&1 &\nprom=$!\n" +
      // The events arrive once Prometheus scrapes, so that it sees the backlog too.
      "for i in $(seq 1 300); do " + query + " 'query=up{job=\"sluice\"}' | grep -q '\"1\"\\]' "
      "&& break; sleep 0.1; done\n" +
      "/usr/bin/python3 " + Source("models/ride_data.py") + " --events " + std::to_string(kRides) +
      " --seed 3 | kcat -P -b \"$KAFKA_BROKERS\" -t rides -X linger.ms=20\n" +

      // The lag while the sink works through the backlog, then none once it is written.
      "max=0\nfor i in $(seq 1 300); do\n  l=$(" + lag_sum +
      ")\n  [ \"${l%.*}\" -gt \"$max\" ] && max=${l%.*}\n  o=$(" + hook_out +
      ")\n  [ \"${o:-0}\" = " + std::to_string(kRides) +
      " ] && [ \"$l\" = 0 ] && break\n  sleep 0.1\ndone\n"
      "echo \"lag max $max\"\necho \"lag end $l\"\necho \"hook out $o\"\n" +
      "curl -s http://$MADDR/metrics > " + d + "/metrics.txt\n" +
      // Prometheus has scraped the end state, and kept the lag it saw on the way.
      "for i in $(seq 1 200); do\n  " + query +
      " 'query=sluice_node_records_out_total{node=\"hook\"}' > " + d +
      "/prom_out.json\n  grep -q '\"" + std::to_string(kRides) +
      "\"' " + d + "/prom_out.json && break\n  sleep 0.2\ndone\n" + query +
      " 'query=max_over_time(sluice_kafka_consumer_lag[10m])' > " + d + "/prom_lag.json\n" +
      query + " 'query=up{job=\"sluice\"}' > " + d + "/prom_up.json\n" +
      "kill -TERM $run; wait $run; echo \"run exit $?\"\n"
      "kill -TERM $prom; wait $prom\n" +
      Sluice() + " run --quiet --metrics-addr 127.0.0.1:0 " + d + "/iris.yaml 2>" + d +
      "/iris.err &\nrun=$!\n" + WaitMetricsAddr(d + "/iris.err") +
      "for i in $(seq 1 100); do curl -s http://$MADDR/metrics > " + d +
      "/iris_metrics.txt; grep -q '^sluice_predictions_total.* [1-9]' " + d +
      "/iris_metrics.txt && break; sleep 0.1; done\n"
      "kill -TERM $run; wait $run; echo \"iris exit $?\"\n"
      "/usr/bin/python3 " + Source("tests/check_dashboards.py") + " " + Source("") + " " + d +
      "/metrics.txt " + d + "/iris_metrics.txt > " + d +
      "/dashboards.out 2>&1; echo \"dashboards exit $?\"\n";
  auto r = Run(script);
  const std::string metrics = Slurp(dir / "metrics.txt");
  INFO(r.out + r.err + "\n--- run.err\n" + Slurp(dir / "run.err") + "\n--- prom.log (tail)\n" +
       Slurp(dir / "prom.log").substr(0, 3000) + "\n--- dashboards\n" +
       Slurp(dir / "dashboards.out"));
  CHECK(r.out.find("run exit 0") != std::string::npos);
  CHECK(r.out.find("hook out " + std::to_string(kRides)) != std::string::npos);
  CHECK(r.out.find("lag end 0") != std::string::npos);
  // At most the whole topic behind, and something behind while the sink was busy.
  int lag_max = -1;
  for (const auto& l : LinesOf(r.out))
    if (l.rfind("lag max ", 0) == 0) lag_max = std::stoi(l.substr(8));
  CHECK(lag_max > 0);
  CHECK(lag_max <= kRides);

  INFO("--- metrics\n" + metrics);
  const std::string p = "pipeline=\"metrics-kafka\"";
  // A lag series for each of the four partitions, all at zero at the end.
  for (int part = 0; part < 4; ++part) {
    INFO("partition " << part);
    CHECK(Sample(metrics, "sluice_kafka_consumer_lag",
                 {p, "node=\"rides\"", "topic=\"rides\"",
                  "partition=\"" + std::to_string(part) + "\""}) == 0);
  }
  CHECK(Sample(metrics, "sluice_prediction_value_count", {p, "node=\"duration\""}) == kRides);
  CHECK(r.out.find("iris exit 0") != std::string::npos);
  CHECK(Sample(Slurp(dir / "iris_metrics.txt"), "sluice_predictions_total",
               {"pipeline=\"metrics-iris\""}) > 0);
  CHECK(Sample(metrics, "sluice_end_to_end_latency_seconds_count", {p, "node=\"hook\""}) == kRides);
  // PU_DO's profile is of the training zones; the generator draws from the same world.
  CHECK(Sample(metrics, "sluice_feature_psi", {p, "node=\"duration\"", "feature=\"trip_distance\""}) <
        0.1);
  CHECK(Sample(metrics, "sluice_feature_psi", {p, "node=\"duration\"", "feature=\"PU_DO\""}) < 0.1);
  CHECK(Sample(metrics, "sluice_prediction_psi", {p, "node=\"duration\""}) < 0.1);

  // Read back through Prometheus's HTTP API.
  simdjson::dom::parser parser;
  auto results = [&](const std::string& file) {
    simdjson::padded_string text(Slurp(dir / file));
    simdjson::dom::element doc;
    std::vector<double> values;
    std::string_view status;
    if (parser.parse(text).get(doc) || doc["status"].get(status) || status != "success")
      return values;
    for (auto item : doc["data"]["result"].get_array()) {
      std::string_view v;
      if (!item["value"].at(1).get(v)) values.push_back(std::stod(std::string(v)));
    }
    return values;
  };
  CHECK(results("prom_up.json") == std::vector<double>{1});
  CHECK(results("prom_out.json") == std::vector<double>{kRides});
  std::vector<double> lags = results("prom_lag.json");
  CHECK(lags.size() == 4u);
  double scraped_max = 0;
  for (double v : lags) scraped_max = std::max(scraped_max, v);
  CHECK(scraped_max > 0);

  CHECK(r.out.find("dashboards exit 0") != std::string::npos);
}
