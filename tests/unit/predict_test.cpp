// predict: outputs, dead-lettered rows and config errors, with the iris model.
// The spec examples of every operator are checked in registry_test.cpp.
#include <sqlite3.h>

#include <simdjson.h>
#include <catch2/catch.hpp>

#include "engine/formats.h"
#include "engine/testing.h"
#include "operator_helpers.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

std::string PredictPipeline(const std::string& outputs) {
  return "name: p\n" + kIrisSourceYaml +
         "transforms:\n"
         "  features: {type: drop-fields, inputs: [iris_data], fields: [id, target]}\n"
         "  classify: {type: predict, inputs: [features], model: ../models/iris,\n"
         "             outputs: " +
         outputs +
         "}\n"
         "sinks:\n"
         "  out: {type: stdout, inputs: [classify]}\n";
}

}  // namespace

TEST_CASE("predict labels the first iris rows as setosa", "[operators][predict]") {
  Running r = Start(PredictPipeline("{iris_class: label}"));
  REQUIRE(r.run->InjectLines("iris_data", IrisLines(5)).ok());
  auto rows = r.Rows("classify");
  REQUIRE(rows.size() == 5u);
  for (const auto& row : rows) CHECK(Get(row, "iris_class") == "0");
  // The features pass through untouched, with the prediction last.
  CHECK(
      rows[0] ==
      R"({"timestamp":"2026-01-01T00:00:00Z","sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2,"iris_class":0})");
  CHECK(r.run->dead_letters().count() == 0u);
}

TEST_CASE("predict outputs: label, class, probabilities, model name and version",
          "[operators][predict]") {
  Running r = Start(PredictPipeline(
      "{label: label, cls: class, p: probability, p_setosa: 'probability:0', "
      "p_versicolor: 'probability:versicolor', p_virginica: 'probability:virginica', "
      "model: model_name, version: model_version}"));
  REQUIRE(r.run
              ->InjectRecords("iris_data",
                              {IrisRow(1, 5.1, 3.5, 1.4, 0.2), IrisRow(2, 6.9, 3.1, 5.4, 2.1),
                               IrisRow(3, 5.9, 2.8, 4.3, 1.3)})
              .ok());
  auto rows = r.Rows("classify");
  REQUIRE(rows.size() == 3u);
  const std::vector<std::string> labels = {"0", "2", "1"};
  const std::vector<std::string> names = {"\"setosa\"", "\"virginica\"", "\"versicolor\""};
  const std::vector<std::string> per_class = {"p_setosa", "p_versicolor", "p_virginica"};
  for (size_t i = 0; i < rows.size(); ++i) {
    INFO(rows[i]);
    CHECK(Get(rows[i], "label") == labels[i]);
    CHECK(Get(rows[i], "cls") == names[i]);
    CHECK(Get(rows[i], "model") == "\"iris\"");
    CHECK(Get(rows[i], "version") == "\"1\"");
    double sum = 0;
    for (const auto& k : per_class) sum += GetDouble(rows[i], k);
    CHECK(sum == Approx(1.0).epsilon(1e-5));
    // The probability of the predicted class is the largest of the three.
    const double p = GetDouble(rows[i], "p");
    CHECK(p == Approx(GetDouble(rows[i], per_class[std::stoul(labels[i])])));
    for (const auto& k : per_class) CHECK(p >= GetDouble(rows[i], k));
    CHECK(p > 0.5);
  }
  CHECK(GetDouble(rows[1], "p_virginica") > 0.5);
  CHECK(GetDouble(rows[0], "p_virginica") < 0.1);
}

TEST_CASE("predict dead-letters a row with a null feature and scores the others",
          "[operators][predict]") {
  TempDir dir;
  dir.Write("s.json", kNullableFeaturesSchema);
  const std::string yaml =
      "sources:\n"
      "  src: {type: file, path: in.jsonl, schema: s.json}\n"
      "transforms:\n"
      "  classify: {type: predict, inputs: [src], model: " +
      kIrisModel +
      ", outputs: {c: label}}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [classify]}\n";
  Running r = Start(yaml, dir.path());
  const std::vector<std::string> lines = {
      R"({"id": 1, "sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": null})",
      R"({"id": 2, "sepal_length": 6.9, "sepal_width": 3.1, "petal_length": 5.4, "petal_width": 2.1})",
      R"({"id": 3, "sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4})",
  };
  REQUIRE(r.run->InjectLines("src", lines).ok());
  auto rows = r.Rows("classify");
  REQUIRE(rows.size() == 1u);
  CHECK(Get(rows[0], "id") == "2");
  CHECK(Get(rows[0], "c") == "2");
  auto dead = r.run->dead_letters().records();
  REQUIRE(dead.size() == 2u);
  CHECK(dead[0].node == "classify");
  CHECK(dead[0].reason == "feature 'petal_width' is null");
  CHECK(dead[0].input == lines[0]);
  CHECK(dead[0].position == 1);
  CHECK(dead[0].origin == "test");
  CHECK(dead[1].input == lines[2]);
  CHECK(dead[1].position == 3);

  SECTION("a batch where every row is bad yields no rows, not an error") {
    REQUIRE(r.run->InjectLines("src", {lines[0]}).ok());
    CHECK(r.Rows("classify").size() == 1u);  // still only the earlier good row
    CHECK(r.run->dead_letters().count() == 3u);
  }
}

TEST_CASE("predict config errors", "[operators][predict]") {
  SECTION("unknown output kind") {
    const std::string yaml = PredictPipeline("{iris_class: lable}");
    Loaded l = Load(yaml);
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK_THAT(l.Errors()[0].message,
               Catch::StartsWith("predict 'classify': output 'iris_class': unknown kind 'lable'") &&
                   Catch::EndsWith("(kinds: label, class, probability, probability:<class>, "
                                   "value, model_name, model_version)"));
    CHECK(l.Errors()[0].mark.ToString() == At(yaml, "{iris_class: lable}"));
  }
  SECTION("unknown class") {
    Loaded l = Load(PredictPipeline("{p: 'probability:rose'}"));
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].message ==
          "predict 'classify': output 'p': unknown class 'rose' (classes: setosa, versicolor, "
          "virginica)");
  }
  SECTION("class index out of range") {
    Loaded l = Load(PredictPipeline("{p: 'probability:3'}"));
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK_THAT(l.Errors()[0].message, Catch::Contains("unknown class '3'"));
  }
  SECTION("output already a field") {
    Loaded l = Load(PredictPipeline("{sepal_length: label}"));
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK_THAT(l.Errors()[0].message,
               Catch::Contains("output 'sepal_length' is already a field of 'features'"));
  }
  SECTION("missing model directory") {
    const std::string yaml =
        "name: p\n" + kIrisSourceYaml +
        "transforms:\n"
        "  classify: {type: predict, inputs: [iris_data], model: ../models/nope}\n"
        "sinks:\n"
        "  out: {type: stdout, inputs: [classify]}\n";
    Loaded l = Load(yaml);
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].mark.ToString() == At(yaml, "../models/nope"));
    CHECK_THAT(l.Errors()[0].message,
               Catch::Contains("model directory '" + kSourceDir + "/models/nope' does not exist"));
  }
  SECTION("default output is `prediction: label`") {
    Loaded l = Load("name: p\n" + kIrisSourceYaml +
                    "transforms:\n"
                    "  f: {type: drop-fields, inputs: [iris_data], fields: [id, target]}\n"
                    "  classify: {type: predict, inputs: [f], model: ../models/iris}\n"
                    "sinks:\n"
                    "  out: {type: stdout, inputs: [classify]}\n");
    REQUIRE_FALSE(l.diags.HasErrors());
    const Schema& s = *l.Node("classify").output_schema;
    CHECK(s.field(s.size() - 1) == Field{"prediction", TypeId::kInt64, false});
  }
  SECTION("unknown key") {
    const std::string yaml = "name: p\n" + kIrisSourceYaml +
                             "transforms:\n"
                             "  classify:\n"
                             "    type: predict\n"
                             "    inputs: [iris_data]\n"
                             "    modle: ../models/iris\n"
                             "sinks:\n"
                             "  out: {type: stdout, inputs: [classify]}\n";
    Loaded l = Load(yaml);
    auto errs = l.ErrorsWith("unknown key 'modle' (did you mean 'model'?)");
    REQUIRE(errs.size() == 1u);
    CHECK(errs[0].mark.ToString() == At(yaml, "modle"));
  }
}

// ---- file source ----
