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
