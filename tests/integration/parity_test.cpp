// Prediction parity: Sluice's in-process XGBoost predictions on all 150 iris rows equal those of
// python3-xgboost for the same model directory (labels identical, probabilities within 1e-6).
#include <simdjson.h>
#include <catch2/catch.hpp>

#include "engine/pipeline.h"
#include "engine/testing.h"
#include "operators/builtin.h"
#include "tests/integration/process.h"

using namespace sluice;
using namespace sluice::testing;

TEST_CASE("predictions match python3-xgboost on all iris rows", "[integration][parity]") {
  TempDir tmp;
  const std::string csv = tmp / "iris.csv";
  auto dump =
      Run("/usr/bin/python3 " + Source("models/predict_reference.py") + " --dump-iris-csv " + csv);
  REQUIRE(dump.exit_code == 0);
  auto ref = Run("/usr/bin/python3 " + Source("models/predict_reference.py") + " " +
                 Source("models/iris") + " " + csv);
  INFO(ref.err);
  REQUIRE(ref.exit_code == 0);

  std::ofstream(tmp / "schema.json") << R"({"type": "object", "properties": {
      "sepal_length": {"type": "number"}, "sepal_width": {"type": "number"},
      "petal_length": {"type": "number"}, "petal_width": {"type": "number"}},
      "required": ["sepal_length", "sepal_width", "petal_length", "petal_width"]})";
  const std::string yaml = R"(
sources:
  rows: {type: file, path: iris.csv, format: csv, schema: schema.json}
transforms:
  classify:
    type: predict
    inputs: [rows]
    model: )" + Source("models/iris") +
                           R"(
    outputs: {label: label, p0: "probability:0", p1: "probability:1", p2: "probability:2"}
sinks:
  out: {type: stdout, inputs: [classify]}
)";
  Registry registry;
  RegisterBuiltinOperators(registry);
  Diagnostics diags;
  auto decl = ParsePipelineText(yaml, "parity.yaml", tmp.path().string(), registry, diags);
  REQUIRE(decl);
  auto plan = PlanPipeline(std::move(*decl), diags);
  REQUIRE_FALSE(diags.HasErrors());
  auto run = InMemoryRun::Build(*plan);
  REQUIRE(run.ok());
  std::vector<std::string> lines;
  std::stringstream ss(Slurp(csv));
  for (std::string l; std::getline(ss, l);) lines.push_back(l);
  REQUIRE(lines.size() == 151);  // header + 150 rows
  REQUIRE((*run)->InjectLines("rows", lines).ok());
  auto rows = (*run)->Rows("classify");
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 150);

  std::vector<std::string> expected;
  std::stringstream rs(ref.out);
  for (std::string l; std::getline(rs, l);) expected.push_back(l);
  REQUIRE(expected.size() == 150);

  simdjson::dom::parser pa, pb;
  int differing_labels = 0;
  double max_diff = 0;
  for (size_t i = 0; i < 150; ++i) {
    simdjson::padded_string a((*rows)[i]), b(expected[i]);
    simdjson::dom::element ours = pa.parse(a), theirs = pb.parse(b);
    if (int64_t(ours["label"]) != int64_t(theirs["label"])) ++differing_labels;
    auto probs = theirs["probabilities"].get_array();
    const char* names[] = {"p0", "p1", "p2"};
    size_t k = 0;
    for (auto p : probs.value()) {
      max_diff = std::max(max_diff, std::fabs(double(ours[names[k]]) - double(p)));
      ++k;
    }
    REQUIRE(k == 3);
  }
  CHECK(differing_labels == 0);
  CHECK(max_diff <= 1e-6);
}

// The ride model's PU_DO is categorical: Sluice encodes it with the categories saved beside the
// model, python3-xgboost sees it as a pandas categorical with the same categories. Held-out rows
// from the generator with a seed other than training's, plus strings the generator never makes,
// cover categories of the model, zone pairs outside them (rare or never seen in training: both
// missing values) and malformed keys.
TEST_CASE("ride predictions with a categorical input match python3-xgboost",
          "[integration][parity]") {
  TempDir tmp;
  const std::string features = tmp / "features.jsonl";
  auto gen = Run("/usr/bin/python3 " + Source("models/ride_data.py") +
                 " --features 3000 --seed 7 -o " + features);
  INFO(gen.err);
  REQUIRE(gen.exit_code == 0);
  std::vector<std::string> lines;
  {
    std::stringstream ss(Slurp(features));
    for (std::string l; std::getline(ss, l);) lines.push_back(l);
  }
  REQUIRE(lines.size() == 3000);
  for (const char* extra : {
           R"({"PU_DO": "0_0", "trip_distance": 2.5})",
           R"({"PU_DO": "266_1", "trip_distance": 7.25})",
           R"({"PU_DO": "", "trip_distance": 1.0})",
           R"({"PU_DO": "130_205 ", "trip_distance": 3.66})",
           R"({"PU_DO": "130-205", "trip_distance": 3.66})",
           R"({"PU_DO": "not a zone pair", "trip_distance": 0.1})",
           R"({"PU_DO": "1_1", "trip_distance": 59.99})",
       })
    lines.push_back(extra);
  {
    std::ofstream out(features);
    for (const auto& l : lines) out << l << '\n';
  }
  auto ref = Run("/usr/bin/python3 " + Source("models/predict_reference.py") + " --ride " +
                 Source("models/ride") + " " + features);
  INFO(ref.err);
  REQUIRE(ref.exit_code == 0);

  std::ofstream(tmp / "schema.json") << R"({"type": "object", "properties": {
      "PU_DO": {"type": "string"}, "trip_distance": {"type": "number"}},
      "required": ["PU_DO", "trip_distance"]})";
  const std::string yaml = R"(
sources:
  rows: {type: file, path: features.jsonl, schema: schema.json}
transforms:
  predict: {type: predict, inputs: [rows], model: )" +
                           Source("models/ride") + R"(, outputs: {duration: value}}
sinks:
  out: {type: stdout, inputs: [predict]}
)";
  Registry registry;
  RegisterBuiltinOperators(registry);
  Diagnostics diags;
  auto decl = ParsePipelineText(yaml, "ride_parity.yaml", tmp.path().string(), registry, diags);
  REQUIRE(decl);
  auto plan = PlanPipeline(std::move(*decl), diags);
  REQUIRE_FALSE(diags.HasErrors());
  auto run = InMemoryRun::Build(*plan);
  REQUIRE(run.ok());
  REQUIRE((*run)->InjectLines("rows", lines).ok());
  auto rows = (*run)->Rows("predict");
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == lines.size());
  CHECK((*run)->dead_letters().count() == 0u);

  std::vector<std::string> expected;
  std::stringstream rs(ref.out);
  for (std::string l; std::getline(rs, l);) expected.push_back(l);
  REQUIRE(expected.size() == lines.size());

  simdjson::dom::parser pa, pb;
  size_t encoded = 0, differing = 0;
  double max_diff = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    simdjson::padded_string a((*rows)[i]), b(expected[i]);
    simdjson::dom::element ours = pa.parse(a), theirs = pb.parse(b);
    const double diff = std::fabs(double(ours["duration"]) - double(theirs["value"]));
    max_diff = std::max(max_diff, diff);
    if (diff > 1e-5) {
      if (++differing <= 5) UNSCOPED_INFO(lines[i] << ": " << (*rows)[i] << " vs " << expected[i]);
    }
    if (bool(theirs["encoded"])) ++encoded;
  }
  // The rows exercise both paths: categories of the model and values outside them.
  CHECK(encoded >= 1000);
  CHECK(lines.size() - encoded >= 500);
  CHECK(differing == 0);
  CHECK(max_diff <= 1e-5);
}

// The fraud flow's features as map expressions (docs/models.md) and the fraud model in process,
// against models/fraud_data.py's feature code and python3-xgboost on generated transactions.
TEST_CASE("fraud features and probabilities match the Python reference", "[integration][parity]") {
  TempDir tmp;
  const std::string csv = tmp / "tx.csv";
  auto gen = Run("/usr/bin/python3 " + Source("models/fraud_data.py") +
                 " --rows 4000 --seed 21 --csv > " + csv);
  REQUIRE(gen.exit_code == 0);
  auto ref = Run("/usr/bin/python3 " + Source("models/predict_reference.py") + " --fraud " +
                 Source("models/fraud") + " " + csv);
  INFO(ref.err);
  REQUIRE(ref.exit_code == 0);

  std::ofstream(tmp / "schema.json") << R"({"type": "object", "properties": {
      "trans_date_trans_time": {"type": "string", "format": "date-time"},
      "category": {"type": "string"}, "amt": {"type": "number"}, "gender": {"type": "string"},
      "lat": {"type": "number"}, "long": {"type": "number"}, "city_pop": {"type": "integer"},
      "dob": {"type": "string"}, "merch_lat": {"type": "number"}, "merch_long": {"type": "number"}},
      "required": ["trans_date_trans_time", "category", "amt", "gender", "lat", "long",
                   "city_pop", "dob", "merch_lat", "merch_long"]})";
  const std::string yaml = R"(
sources:
  tx: {type: file, path: tx.csv, format: csv, schema: schema.json}
transforms:
  features:
    type: map
    inputs: [tx]
    fields:
      hour: hour(trans_date_trans_time)
      age: days_between(to_timestamp(dob), trans_date_trans_time) / 365.25
      distance_km: haversine_km(lat, long, merch_lat, merch_long)
      gender_f: if(gender == "F", 1, 0)
  score: {type: predict, inputs: [features], model: )" +
                           Source("models/fraud") + R"(, outputs: {p: "probability:fraud"}}
sinks:
  out: {type: stdout, inputs: [score]}
)";
  Registry registry;
  RegisterBuiltinOperators(registry);
  Diagnostics diags;
  auto decl = ParsePipelineText(yaml, "fraud_parity.yaml", tmp.path().string(), registry, diags);
  REQUIRE(decl);
  auto plan = PlanPipeline(std::move(*decl), diags);
  for (const auto& d : diags.items()) UNSCOPED_INFO(d.ToString());
  REQUIRE_FALSE(diags.HasErrors());
  auto run = InMemoryRun::Build(*plan);
  REQUIRE(run.ok());
  std::vector<std::string> lines = LinesOf(Slurp(csv));  // the header first
  REQUIRE((*run)->InjectLines("tx", lines).ok());
  lines.erase(lines.begin());
  auto rows = (*run)->Rows("score");
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == lines.size());
  CHECK((*run)->dead_letters().count() == 0u);
  std::vector<std::string> expected = LinesOf(ref.out);
  REQUIRE(expected.size() == lines.size());

  simdjson::dom::parser pa, pb;
  size_t frauds = 0, differing = 0;
  double max_p = 0, max_distance = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    simdjson::padded_string a((*rows)[i]), b(expected[i]);
    simdjson::dom::element ours = pa.parse(a), theirs = pb.parse(b);
    simdjson::dom::element f = theirs["features"];
    bool same = int64_t(ours["hour"]) == int64_t(f["hour"]) &&
                double(ours["age"]) == double(f["age"]) &&
                int64_t(ours["gender_f"]) == int64_t(f["gender_f"]);
    // numpy's and the C library's sin/cos may round the last bit differently.
    const double d = std::fabs(double(ours["distance_km"]) - double(f["distance_km"]));
    max_distance = std::max(max_distance, d / std::max(1.0, double(f["distance_km"])));
    const double dp = std::fabs(double(ours["p"]) - double(theirs["probability"]));
    max_p = std::max(max_p, dp);
    if (!same || dp > 1e-6) {
      if (++differing <= 5) UNSCOPED_INFO((*rows)[i] << " vs " << expected[i]);
    }
    if (double(theirs["probability"]) > 0.5) ++frauds;
  }
  CHECK(differing == 0);
  CHECK(max_p <= 1e-6);
  CHECK(max_distance <= 1e-12);
  CHECK(frauds >= 5);  // the rows exercise the fraud side of the model too
}
