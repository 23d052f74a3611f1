// Metrics: the registry's Prometheus text format (counters, gauges, histograms, label escaping,
// removal, collectors), the metrics endpoint's address parsing, the population stability index,
// reference profiles, and the drift monitor's window and threshold.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "engine/metrics.h"
#include "engine/metrics_server.h"
#include "engine/model.h"
#include "operators/transforms/predict_monitor.h"
#include "operator_helpers.h"

using namespace sluice;
using namespace sluice::test;

TEST_CASE("metrics render in the Prometheus text format", "[metrics]") {
  MetricsRegistry reg;
  reg.GetCounter("t_rows_total", "rows seen", {{"node", "a"}})->Inc(3);
  reg.GetCounter("t_rows_total", "rows seen", {{"node", "a"}})->Inc(2);  // the same series
  reg.GetCounter("t_rows_total", "rows seen", {{"node", "b\"q\\\n"}})->Inc(0.5);
  reg.GetGauge("t_level", "a level", {})->Set(-1.25);
  Histogram* h = reg.GetHistogram("t_seconds", "durations", {{"node", "a"}}, {0.1, 1});
  h->Observe(0.05);
  h->Observe(0.1);  // bounds are inclusive
  h->Observe(0.5, 3);
  h->Observe(7);
  const std::string text = reg.Render();
  CHECK(text ==
        "# HELP t_level a level\n"
        "# TYPE t_level gauge\n"
        "t_level -1.25\n"
        "# HELP t_rows_total rows seen\n"
        "# TYPE t_rows_total counter\n"
        "t_rows_total{node=\"a\"} 5\n"
        "t_rows_total{node=\"b\\\"q\\\\\\n\"} 0.5\n"
        "# HELP t_seconds durations\n"
        "# TYPE t_seconds histogram\n"
        "t_seconds_bucket{node=\"a\",le=\"0.1\"} 2\n"
        "t_seconds_bucket{node=\"a\",le=\"1\"} 5\n"
        "t_seconds_bucket{node=\"a\",le=\"+Inf\"} 6\n"
        "t_seconds_sum{node=\"a\"} 8.65\n"
        "t_seconds_count{node=\"a\"} 6\n");
}

TEST_CASE("a histogram's local observations add up as if observed one by one", "[metrics]") {
  MetricsRegistry reg;
  Histogram* a = reg.GetHistogram("a", "", {}, DurationBuckets());
  Histogram* b = reg.GetHistogram("b", "", {}, DurationBuckets());
  Histogram::Local local(*b);
  for (double v : {0.0, 0.0002, 0.003, 0.003, 4.0, 1000.0}) {
    a->Observe(v);
    local.Observe(v);
  }
  CHECK(local.empty() == false);
  b->Add(local);
  CHECK(a->Cumulative() == b->Cumulative());
  CHECK(a->Count() == 6u);
  CHECK(b->Sum() == Approx(a->Sum()));
}

TEST_CASE("a removed series stops rendering, and its pointer stays usable", "[metrics]") {
  MetricsRegistry reg;
  Gauge* v1 = reg.GetGauge("t_info", "info", {{"version", "1"}});
  v1->Set(1);
  reg.GetGauge("t_info", "info", {{"version", "2"}})->Set(1);
  reg.Remove("t_info", {{"version", "1"}});
  v1->Set(5);  // still valid memory, no longer exposed
  const std::string text = reg.Render();
  CHECK(text.find("version=\"1\"") == std::string::npos);
  CHECK(text.find("t_info{version=\"2\"} 1\n") != std::string::npos);
  reg.Remove("t_info", {{"version", "2"}});
  CHECK(reg.Render().find("t_info") == std::string::npos);  // no family without series
}

TEST_CASE("collectors run at each rendering until their handle goes", "[metrics]") {
  MetricsRegistry reg;
  int runs = 0;
  {
    auto handle = reg.AddCollector([&] {
      ++runs;
      reg.GetGauge("t_runs", "", {})->Set(runs);
    });
    CHECK(reg.Render().find("t_runs 1\n") != std::string::npos);
    CHECK(reg.Render().find("t_runs 2\n") != std::string::npos);
    MetricsRegistry::Collector moved = std::move(handle);
    CHECK(reg.Render().find("t_runs 3\n") != std::string::npos);
  }
  reg.Render();
  CHECK(runs == 3);
}

TEST_CASE("the process metrics read /proc", "[metrics]") {
  MetricsRegistry reg;
  auto handle = RegisterProcessMetrics(reg);
  const std::string text = reg.Render();
  for (const char* name : {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
                           "process_start_time_seconds ", "process_open_fds ",
                           "sluice_build_info{version=\""}) {
    INFO(name);
    CHECK(text.find(std::string("\n") + name) != std::string::npos);
  }
  const size_t at = text.find("\nprocess_resident_memory_bytes ");
  CHECK(std::stod(text.substr(at + 31)) > 1e6);
}

TEST_CASE("--metrics-addr takes host:port", "[metrics]") {
  std::string host;
  int port = 0;
  CHECK(SplitHostPort("127.0.0.1:9464", &host, &port));
  CHECK((host == "127.0.0.1" && port == 9464));
  CHECK(SplitHostPort(":9464", &host, &port));
  CHECK(host == "0.0.0.0");
  CHECK(SplitHostPort("[::1]:0", &host, &port));
  CHECK((host == "::1" && port == 0));
  CHECK_FALSE(SplitHostPort("9464", &host, &port));
  CHECK_FALSE(SplitHostPort("localhost:", &host, &port));
  CHECK_FALSE(SplitHostPort("localhost:99999", &host, &port));
  CHECK_FALSE(SplitHostPort("localhost:94x", &host, &port));
  CHECK_FALSE(SplitHostPort("::1:9464", &host, &port));
}

TEST_CASE("the metrics endpoint refuses an address it cannot use", "[metrics]") {
  MetricsRegistry reg;
  Readiness ready;
  auto bad = MetricsServer::Start("9464", reg, ready);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("expected HOST:PORT") != std::string::npos);
  auto first = MetricsServer::Start("127.0.0.1:0", reg, ready);
  REQUIRE(first.ok());
  auto busy = MetricsServer::Start((*first)->address(), reg, ready);
  REQUIRE_FALSE(busy.ok());
  CHECK(busy.status().message().find("cannot listen") != std::string::npos);
}

TEST_CASE("PSI is zero for the expected distribution and grows with the shift", "[metrics][drift]") {
  const std::vector<double> expected = {0.25, 0.25, 0.25, 0.25};
  CHECK(PopulationStabilityIndex(expected, {100, 100, 100, 100}) == Approx(0).margin(1e-12));
  // Σ (a − e) ln(a / e) by hand: a = (0.4, 0.3, 0.2, 0.1).
  const double by_hand = 0.15 * std::log(0.4 / 0.25) + 0.05 * std::log(0.3 / 0.25) +
                         -0.05 * std::log(0.2 / 0.25) + -0.15 * std::log(0.1 / 0.25);
  CHECK(PopulationStabilityIndex(expected, {40, 30, 20, 10}) == Approx(by_hand));
  // An empty bin is floored, not infinite.
  const double empty = PopulationStabilityIndex(expected, {0, 0, 0, 10});
  CHECK(std::isfinite(empty));
  CHECK(empty > 3);
  CHECK(PopulationStabilityIndex(expected, {0, 0, 0, 0}) == 0);
}

namespace {

ModelInfo TwoInputs() {
  ModelInfo info;
  info.inputs = {{"x", TypeId::kFloat64, false}, {"c", TypeId::kString, false}};
  info.classes = {"no", "yes"};
  return info;
}

const char* kProfile = R"({
  "format": "sluice-profile/1", "source": "training set", "rows": 100,
  "features": [
    {"name": "c", "kind": "categorical", "categories": ["a", "b"], "fractions": [0.5, 0.4, 0.1], "missing": 0.0},
    {"name": "x", "kind": "numeric", "edges": [1.0, 2.0], "fractions": [0.3, 0.4, 0.3], "missing": 0.0}
  ],
  "prediction": {"name": "class", "kind": "categorical", "categories": ["no", "yes"], "fractions": [0.9, 0.1, 0.0], "missing": 0.0}
})";

}  // namespace

TEST_CASE("a reference profile is read in the signature's order and binned", "[metrics][drift]") {
  TempDir dir;
  ModelInfo info = TwoInputs();
  info.profile_path = dir.Write("profile.json", kProfile);
  auto p = LoadReferenceProfile(info);
  REQUIRE(p.ok());
  const ReferenceProfile& profile = **p;
  REQUIRE(profile.features.size() == 2u);
  const ProfileBins& x = profile.features[0];
  CHECK(x.name == "x");
  CHECK(x.BinOf(0.5) == 0u);
  CHECK(x.BinOf(1.0) == 0u);  // (−inf, 1]
  CHECK(x.BinOf(1.5) == 1u);
  CHECK(x.BinOf(2.0) == 1u);
  CHECK(x.BinOf(2.0001) == 2u);
  const ProfileBins& c = profile.features[1];
  CHECK(c.BinOf(std::string_view("b")) == 1u);
  CHECK(c.BinOf(std::string_view("never seen")) == 2u);  // the rest
  CHECK(profile.prediction.size() == 3u);
}

TEST_CASE("a value falls in the bin (e[i-1], e[i]] with few edges and with many",
          "[metrics][drift]") {
  // Up to 32 edges are counted, more are searched: both must give the same bins.
  for (const size_t num_edges : {size_t{3}, size_t{32}, size_t{33}, size_t{200}}) {
    ProfileBins bins;
    for (size_t i = 1; i <= num_edges; ++i) bins.edges.push_back(static_cast<double>(i) * 10);
    INFO(num_edges << " edges");
    CHECK(bins.BinOf(-1e300) == 0u);
    CHECK(bins.BinOf(10.0) == 0u);
    CHECK(bins.BinOf(std::nextafter(10.0, 11.0)) == 1u);
    CHECK(bins.BinOf(25.0) == 2u);
    CHECK(bins.BinOf(30.0) == 2u);
    CHECK(bins.BinOf(static_cast<double>(num_edges) * 10) == num_edges - 1);
    CHECK(bins.BinOf(static_cast<double>(num_edges) * 10 + 0.5) == num_edges);
    CHECK(bins.BinOf(std::numeric_limits<double>::infinity()) == num_edges);
  }
}

TEST_CASE("a reference profile that does not fit the model is refused with the reason",
          "[metrics][drift]") {
  TempDir dir;
  ModelInfo info = TwoInputs();
  auto refused = [&](const std::string& text) {
    info.profile_path = dir.Write("profile.json", text);
    auto p = LoadReferenceProfile(info);
    REQUIRE_FALSE(p.ok());
    return p.status().message();
  };
  std::string base = kProfile;
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = base;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  CHECK(refused("{}").find("expected a reference profile") != std::string::npos);
  CHECK(refused(with("\"name\": \"x\"", "\"name\": \"y\"")).find("no bins for the model input 'x'") !=
        std::string::npos);
  CHECK(refused(with("[0.3, 0.4, 0.3]", "[0.3, 0.7]")).find("2 fractions for 3 bins") !=
        std::string::npos);
  CHECK(refused(with("[1.0, 2.0]", "[2.0, 1.0]")).find("edges must be increasing") !=
        std::string::npos);
  CHECK(refused(with("[\"no\", \"yes\"]", "[\"yes\", \"no\"]")).find("the model's classes") !=
        std::string::npos);
  CHECK(refused(with("\"kind\": \"numeric\", \"edges\": [1.0, 2.0]",
                       "\"kind\": \"categorical\", \"categories\": [\"p\", \"q\"]"))
            .find("is categorical in the profile but float64 in the signature") !=
        std::string::npos);
  info.profile_path = dir.File("missing.json");
  auto missing = LoadReferenceProfile(info);
  CHECK(missing.status().message().find("cannot be read") != std::string::npos);
}

TEST_CASE("the drift monitor exports PSI over its window and flags a shift", "[metrics][drift]") {
  TempDir dir;
  ModelInfo info = TwoInputs();
  info.profile_path = dir.Write("profile.json", kProfile);
  auto profile = LoadReferenceProfile(info);
  REQUIRE(profile.ok());
  DriftConfig config;
  config.window_rows = 1000;
  config.min_rows = 500;
  config.threshold = 0.2;
  const MetricLabels labels = {{"pipeline", "unit-drift"}, {"node", "score"}};
  DriftMonitor monitor(*profile, config, labels, "m v1");
  MetricsRegistry& reg = Metrics();
  auto gauge = [&](const char* name, const std::string& feature) {
    MetricLabels l = labels;
    if (!feature.empty()) l.emplace_back("feature", feature);
    return reg.GetGauge(name, "", l)->Value();
  };
  // A batch of 100 rows: x spread like the profile (30/40/30); c as the profile (50/40/10),
  // or all 'b' when shifted; predictions 90 no, 10 yes.
  auto batch = [&](bool shifted) {
    std::vector<uint64_t> counts = monitor.NewCounts();
    uint64_t* x = counts.data() + monitor.Offset(0);
    x[0] = 30, x[1] = 40, x[2] = 30;
    uint64_t* c = counts.data() + monitor.Offset(1);
    if (shifted) {
      c[1] = 100;
    } else {
      c[0] = 50, c[1] = 40, c[2] = 10;
    }
    uint64_t* p = counts.data() + monitor.PredictionOffset();
    p[0] = 90, p[1] = 10;
    monitor.Add(std::move(counts), 100);
  };
  for (int i = 0; i < 4; ++i) batch(false);
  CHECK(std::isnan(gauge("sluice_feature_psi", "x")));  // 400 rows: below min_rows
  for (int i = 0; i < 6; ++i) batch(false);
  CHECK(gauge("sluice_feature_psi", "x") == Approx(0).margin(1e-9));
  CHECK(gauge("sluice_feature_psi", "c") == Approx(0).margin(1e-9));
  CHECK(gauge("sluice_prediction_psi", "") == Approx(0).margin(1e-9));
  CHECK(gauge("sluice_drift_threshold_exceeded", "c") == 0);
  // Ten shifted batches fill the window of 1,000 rows: the old rows leave it.
  for (int i = 0; i < 10; ++i) batch(true);
  const double shifted = PopulationStabilityIndex({0.5, 0.4, 0.1}, {0, 1000, 0});
  CHECK(gauge("sluice_feature_psi", "c") == Approx(shifted));
  CHECK(gauge("sluice_drift_threshold_exceeded", "c") == 1);
  CHECK(gauge("sluice_drift_threshold_exceeded", "x") == 0);
  CHECK(gauge("sluice_drift_threshold_exceeded", "prediction") == 0);
  // Back to normal: the flag drops once the window has moved on.
  for (int i = 0; i < 10; ++i) batch(false);
  CHECK(gauge("sluice_feature_psi", "c") == Approx(0).margin(1e-9));
  CHECK(gauge("sluice_drift_threshold_exceeded", "c") == 0);
}

TEST_CASE("a batch's tally counts predictions and drift bins once, at Commit",
          "[metrics][drift][predict]") {
  TempDir dir;
  ModelInfo info = TwoInputs();
  info.profile_path = dir.Write("profile.json", kProfile);
  auto profile = LoadReferenceProfile(info);
  REQUIRE(profile.ok());
  const MetricLabels labels = {{"pipeline", "unit-tally"}, {"node", "score"}};
  PredictionMetrics metrics(info.classes, profile->get(), labels);
  DriftConfig config;
  config.min_rows = 1;
  DriftMonitor monitor(*profile, config, labels, "m v1");
  auto by_class = [&](const char* c) {
    MetricLabels l = labels;
    l.emplace_back("class", c);
    return Metrics().GetCounter("sluice_predictions_total", "", l)->Value();
  };
  // Four rows: x 0.5, 1.5, 1.5, 3; c "a", "b", "b", "z"; scores as a model server answers them
  // (class indices) and as a binary model's probabilities.
  auto x = std::make_shared<Column>(TypeId::kFloat64);
  for (double v : {0.5, 1.5, 1.5, 3.0}) x->AppendDouble(v);
  auto c = std::make_shared<Column>(TypeId::kString);
  for (const char* v : {"a", "b", "b", "z"}) c->AppendString(v);
  PredictionTally tally(&metrics, &monitor);
  const double direct[] = {1, 0};
  tally.AddPredictions(direct, 2, 1, true);
  const float probability[] = {0.9f, 0.2f};
  tally.AddPredictions(&probability[0], 1, 1, false);
  tally.AddPredictions(&probability[1], 1, 1, false);
  tally.AddFeature(0, *x, 4);
  tally.AddFeature(1, *c, 4);
  CHECK(by_class("yes") == 0);  // nothing before Commit
  tally.Commit(4);
  CHECK(by_class("no") == 2);
  CHECK(by_class("yes") == 2);
  auto psi = [&](const std::string& feature) {
    MetricLabels l = labels;
    l.emplace_back("feature", feature);
    return Metrics().GetGauge("sluice_feature_psi", "", l)->Value();
  };
  CHECK(psi("x") == Approx(PopulationStabilityIndex({0.3, 0.4, 0.3}, {1, 2, 1})));
  CHECK(psi("c") == Approx(PopulationStabilityIndex({0.5, 0.4, 0.1}, {1, 2, 1})));
  CHECK(Metrics().GetGauge("sluice_prediction_psi", "", labels)->Value() ==
        Approx(PopulationStabilityIndex({0.9, 0.1, 0.0}, {2, 2, 0})));

  // Without classes the predictions are values; without a monitor nothing is binned.
  const MetricLabels value_labels = {{"pipeline", "unit-tally"}, {"node", "value"}};
  PredictionMetrics values({}, nullptr, value_labels);
  PredictionTally value_tally(&values, nullptr);
  const double v[] = {3.5};
  value_tally.AddPredictions(v, 1, 1, true);
  CHECK(value_tally.FeatureCounts(0) == nullptr);
  value_tally.Commit(1);
  Histogram* h = Metrics().GetHistogram("sluice_prediction_value", "", value_labels, {});
  CHECK(h->Count() == 1u);
  CHECK(h->Sum() == 3.5);
}

TEST_CASE("predict bins a categorical input by its codes as the profile bins its strings",
          "[metrics][drift][predict]") {
  const std::string model_dir = kSourceDir + "/models/ride";
  auto info = LoadModelInfo(model_dir);
  REQUIRE(info.ok());
  auto profile = LoadReferenceProfile(*info);
  REQUIRE(profile.ok());
  const ProfileBins& pu_do = (*profile)->features[0];
  REQUIRE(pu_do.name == "PU_DO");
  // A category the model knows but the profile keeps in its last bin, with the unseen ones.
  std::string known_rare;
  for (const auto& c : info->categories.at("PU_DO")) {
    if (!pu_do.category_bin.count(c)) {
      known_rare = c;
      break;
    }
  }
  REQUIRE_FALSE(known_rare.empty());
  const std::string top = "106_106";
  REQUIRE(pu_do.BinOf(std::string_view(top)) == 0u);

  TempDir dir;
  dir.Write("s.json", R"({"type": "object", "properties": {"PU_DO": {"type": "string"},
    "trip_distance": {"type": "number"}}, "required": ["PU_DO", "trip_distance"]})");
  Running r = Start("name: drift-unit\n"
                    "sources:\n"
                    "  src: {type: file, path: in.jsonl, schema: s.json}\n"
                    "transforms:\n"
                    "  score: {type: predict, inputs: [src], model: " +
                        model_dir +
                        ", outputs: {m: value}, drift_min_rows: 1, drift_window: 100}\n"
                        "sinks:\n"
                        "  out: {type: stdout, inputs: [score]}\n",
                    dir.path());
  std::vector<std::string> lines;
  for (int i = 0; i < 10; ++i) {
    lines.push_back(R"({"PU_DO": ")" + top + R"(", "trip_distance": 1.0})");
    lines.push_back(R"({"PU_DO": ")" + known_rare + R"(", "trip_distance": 1.0})");
    lines.push_back(R"({"PU_DO": "999_999", "trip_distance": 10.0})");
  }
  REQUIRE(r.run->InjectLines("src", lines).ok());
  REQUIRE(r.Rows("score").size() == 30u);
  std::vector<uint64_t> pu_do_counts(pu_do.size(), 0);
  pu_do_counts[0] = 10;
  pu_do_counts.back() = 20;
  const ProfileBins& distance = (*profile)->features[1];
  std::vector<uint64_t> distance_counts(distance.size(), 0);
  distance_counts[distance.BinOf(1.0)] = 20;
  distance_counts[distance.BinOf(10.0)] = 10;
  auto psi = [](const std::string& feature) {
    return Metrics()
        .GetGauge("sluice_feature_psi", "",
                  {{"pipeline", "drift-unit"}, {"node", "score"}, {"feature", feature}})
        ->Value();
  };
  CHECK(psi("PU_DO") == Approx(PopulationStabilityIndex(pu_do.expected, pu_do_counts)));
  CHECK(psi("trip_distance") ==
        Approx(PopulationStabilityIndex(distance.expected, distance_counts)));
  CHECK(Metrics()
            .GetHistogram("sluice_prediction_value", "", {{"pipeline", "drift-unit"}, {"node", "score"}},
                          {})
            ->Count() == 30u);
}
