// predict: outputs, dead-lettered rows and config errors, with the iris model.
// The spec examples of every operator are checked in registry_test.cpp.
#include <sqlite3.h>

#include <chrono>
#include <map>
#include <thread>

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

// ---- categorical inputs ----
// tests/data/categorical_model predicts exactly 10 for color "a", 20 for "b", 30 for "c" and 40
// when color is missing; its categories are in the code order c, a, b (not sorted), so a wrong
// encoding shows as a wrong value.

namespace {

const std::string kColorsModel = kSourceDir + "/tests/data/categorical_model";

std::string ColorsSchema(const std::string& color_type, const std::string& x_type = "number") {
  return R"({"type": "object", "properties": {"id": {"type": "integer"}, "color": {"type": )" +
         color_type + R"(}, "x": {"type": ")" + x_type + R"("}}, "required": ["id", "x"]})";
}

std::string ColorsPipeline(const std::string& model, const std::string& extra = "") {
  return "sources:\n"
         "  src: {type: file, path: in.jsonl, schema: s.json}\n"
         "transforms:\n"
         "  score: {type: predict, inputs: [src], model: " +
         model + ", outputs: {y: value}" + extra +
         "}\n"
         "sinks:\n"
         "  out: {type: stdout, inputs: [score]}\n";
}

// A copy of the categorical model in `dir`, with `edit` applied to the text of `file`.
std::string EditedColorsModel(const TempDir& dir, const std::string& file, const std::string& from,
                              const std::string& to) {
  for (const char* f : {"MLmodel", "model.json", "categories.json"}) {
    std::string text = ReadFile(kColorsModel + "/" + f);
    if (f == file) {
      size_t at = text.find(from);
      REQUIRE(at != std::string::npos);
      text.replace(at, from.size(), to);
    }
    dir.Write(std::string("model/") + f, text);
  }
  return dir.File("model");
}

}  // namespace

TEST_CASE("predict encodes a string feature with the categories saved with the model",
          "[operators][predict][categorical]") {
  TempDir dir;
  dir.Write("s.json", ColorsSchema(R"(["string", "null"])"));
  Running r = Start(ColorsPipeline(kColorsModel), dir.path());
  const std::vector<std::string> lines = {
      R"({"id": 1, "color": "a", "x": 0.5})",   R"({"id": 2, "color": "b", "x": 0.5})",
      R"({"id": 3, "color": "c", "x": 0.5})",   R"({"id": 4, "color": "zzz", "x": 0.5})",
      R"({"id": 5, "color": "", "x": 0.5})",    R"({"id": 6, "color": null, "x": 0.5})",
      R"({"id": 7, "color": "A", "x": 0.5})",
  };
  REQUIRE(r.run->InjectLines("src", lines).ok());
  auto rows = r.Rows("score");
  REQUIRE(rows.size() == 6u);
  std::map<std::string, double> y;
  for (const auto& row : rows) y[Get(row, "id")] = GetDouble(row, "y");
  CHECK(y["1"] == 10.0);
  CHECK(y["2"] == 20.0);
  CHECK(y["3"] == 30.0);
  // Categories the model was not trained on are missing values, as pandas encodes them for
  // XGBoost: the tree's default branch, not an error and not some other category's code.
  CHECK(y["4"] == 40.0);
  CHECK(y["5"] == 40.0);
  CHECK(y["7"] == 40.0);  // categories are exact strings
  auto dead = r.run->dead_letters().records();
  REQUIRE(dead.size() == 1u);
  CHECK(dead[0].reason == "feature 'color' is null");
  CHECK(dead[0].input == lines[5]);
}

TEST_CASE("predict checks categorical inputs when validating",
          "[operators][predict][categorical]") {
  TempDir dir;
  dir.Write("s.json", ColorsSchema(R"("string")"));
  SECTION("a string input without a category encoding") {
    const std::string model =
        EditedColorsModel(dir, "MLmodel", "  categories: categories.json\n", "");
    const std::string yaml = ColorsPipeline(model);
    Loaded l = Load(yaml, dir.path());
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].mark.ToString() == At(yaml, model));
    CHECK(l.Errors()[0].message ==
          "predict 'score': model input 'color' is a string, but the model saves no category "
          "encoding for it: XGBoost takes category codes, so the training categories must be "
          "saved with the model (a JSON file named by metadata.categories in MLmodel, e.g. "
          "{\"color\": [...]})");
  }
  SECTION("a numeric field wired to a string input") {
    dir.Write("s.json", ColorsSchema(R"("integer")"));
    const std::string yaml = ColorsPipeline(kColorsModel);
    Loaded l = Load(yaml, dir.path());
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].mark.ToString() == At(yaml, kColorsModel));
    CHECK(l.Errors()[0].message ==
          "predict 'score': model input 'color' is string in the model's signature but field "
          "'color' of 'src' is int64");
  }
  SECTION("a string field wired to a numeric input") {
    dir.Write("s.json", ColorsSchema(R"("string")", "string"));
    Loaded l = Load(ColorsPipeline(kColorsModel), dir.path());
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].message ==
          "predict 'score': model input 'x' is float64 in the model's signature but field 'x' "
          "of 'src' is string");
  }
  SECTION("kserve-v2 cannot send a string") {
    const std::string yaml =
        ColorsPipeline(kColorsModel, ", backend: kserve-v2, url: 'http://127.0.0.1:1'");
    Loaded l = Load(yaml, dir.path());
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].mark.ToString() == At(yaml, "kserve-v2"));
    CHECK_THAT(l.Errors()[0].message,
               Catch::Contains("model input 'color' is a string, but backend 'kserve-v2' sends "
                               "the features as one numeric tensor"));
  }
  SECTION("mlflow sends strings, so needs no encoding") {
    const std::string model =
        EditedColorsModel(dir, "MLmodel", "  categories: categories.json\n", "");
    Loaded l = Load(ColorsPipeline(model, ", backend: mlflow, url: 'http://127.0.0.1:1'"),
                    dir.path());
    INFO(l.Text());
    CHECK_FALSE(l.diags.HasErrors());
  }
  SECTION("a broken category encoding") {
    struct Case {
      std::string from, to, message;
    };
    for (const Case& c : std::vector<Case>{
             {"\"color\"", "\"colour\"",
              "'colour' is not an input of the model (inputs: color, x)"},
             {"\"color\"", "\"x\"",
              "input 'x' has categories but is float64 in the signature; categories encode "
              "string inputs"},
             {"\"a\"", "\"c\"", "category 'c' of 'color' appears twice"},
             {"\"a\"", "7", "category 1 of 'color' is 7, not a string"},
         }) {
      INFO(c.to);
      TempDir d;
      d.Write("s.json", ColorsSchema(R"("string")"));
      const std::string model = EditedColorsModel(d, "categories.json", c.from, c.to);
      Loaded l = Load(ColorsPipeline(model), d.path());
      REQUIRE(l.diags.ErrorCount() == 1u);
      CHECK_THAT(l.Errors()[0].message, Catch::EndsWith(c.message));
    }
  }
  SECTION("a model file whose feature is numeric refuses to build") {
    const std::string model =
        EditedColorsModel(dir, "model.json", R"("feature_types":["c","q"])",
                          R"("feature_types":["q","q"])");
    Loaded l = Load(ColorsPipeline(model), dir.path());
    REQUIRE_FALSE(l.diags.HasErrors());
    auto run = InMemoryRun::Build(*l.plan);
    REQUIRE_FALSE(run.ok());
    CHECK_THAT(run.status().message(),
               Catch::Contains("model input 'color' is a string with a category encoding, but "
                               "the model file treats feature 0 as numeric (type 'q')"));
  }
}

TEST_CASE("predict takes a registered model by models:/ name; its identity is the registry's",
          "[operators][predict][model-registry]") {
  TempDir reg;
  for (const char* v : {"1", "2"}) {
    std::filesystem::create_directories(reg.File(std::string("iris/") + v));
    std::filesystem::copy(kIrisModel, reg.File(std::string("iris/") + v),
                          std::filesystem::copy_options::recursive);
  }
  reg.Write("iris/aliases/champion", "2\n");
  auto pipeline = [&](const std::string& model, const std::string& extra = "") {
    return "name: p\n" + kIrisSourceYaml +
           "transforms:\n"
           "  features: {type: drop-fields, inputs: [iris_data], fields: [id, target]}\n"
           "  classify: {type: predict, inputs: [features], model: \"" + model + "\", registry: " +
           reg.path() + extra +
           ", outputs: {iris_class: label, model: model_name, version: model_version}}\n"
           "sinks:\n"
           "  out: {type: stdout, inputs: [classify]}\n";
  };
  for (const auto& [uri, version] : std::vector<std::pair<std::string, std::string>>{
           {"models:/iris@champion", "2"}, {"models:/iris/latest", "2"}, {"models:/iris/1", "1"}}) {
    INFO(uri);
    Running r = Start(pipeline(uri));
    REQUIRE(r.run->InjectLines("iris_data", IrisLines(2)).ok());
    auto rows = r.Rows("classify");
    REQUIRE(rows.size() == 2u);
    CHECK(Get(rows[0], "iris_class") == "0");
    CHECK(Get(rows[0], "model") == "\"iris\"");
    CHECK(Get(rows[0], "version") == "\"" + version + "\"");
  }
  // Errors are at the `model` key, with what the registry has.
  const std::string bad = pipeline("models:/iris@staging");
  Loaded l = Load(bad);
  auto errs = l.ErrorsWith("has no alias 'staging' (aliases: champion)");
  REQUIRE(errs.size() == 1u);
  CHECK(errs[0].mark.ToString() == At(bad, "\"models:/iris@staging\""));
  Loaded typo = Load(pipeline("models:/iris/one"));
  CHECK(typo.ErrorsWith("'one' is neither a version number nor 'latest'").size() == 1u);
  // `registry` with a model directory is a mistake.
  const std::string dir_model =
      "name: p\n" + kIrisSourceYaml +
      "transforms:\n"
      "  classify: {type: predict, inputs: [iris_data], model: ../models/iris, registry: /tmp}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [classify]}\n";
  CHECK(Load(dir_model).ErrorsWith("`registry` is for `model: models:/<name>...` names").size() ==
        1u);
}

TEST_CASE("predict follows a models:/ name: new versions and alias moves swap in between batches",
          "[operators][predict][model-registry]") {
  TempDir reg;
  auto publish = [&](const std::string& version) {
    // As a publisher should: copy under a temporary name, then rename into place.
    const std::string tmp = reg.File("iris/." + version);
    std::filesystem::create_directories(tmp);
    std::filesystem::copy(kIrisModel, tmp, std::filesystem::copy_options::recursive);
    std::filesystem::rename(tmp, reg.File("iris/" + version));
  };
  auto point = [&](const std::string& version) {
    reg.Write("iris/aliases/.champion", version + "\n");
    std::filesystem::rename(reg.File("iris/aliases/.champion"), reg.File("iris/aliases/champion"));
  };
  publish("1");
  point("1");
  Running r = Start(
      "name: p\n" + kIrisSourceYaml +
      "transforms:\n"
      "  features: {type: drop-fields, inputs: [iris_data], fields: [id, target]}\n"
      "  classify: {type: predict, inputs: [features], model: \"models:/iris@champion\", "
      "registry: " + reg.path() +
      ", reload_interval_ms: 20, outputs: {iris_class: label, version: model_version}}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [classify]}\n");
  // Feeds a batch at a time until a row carries `version` (bounded: 10 s), and checks every
  // row of every batch is scored by one version and none is lost.
  size_t fed = 0;
  auto until_version = [&](const std::string& version) {
    for (int i = 0; i < 500; ++i) {
      REQUIRE(r.run->InjectLines("iris_data", IrisLines(3)).ok());
      fed += 3;
      auto rows = r.Rows("classify");
      REQUIRE(rows.size() == fed);
      const std::string v = Get(rows.back(), "version");
      CHECK(Get(rows[rows.size() - 3], "version") == v);
      if (v == "\"" + version + "\"") return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  };
  CHECK(until_version("1"));
  publish("2");
  point("2");
  CHECK(until_version("2"));
  // A version that does not fit the pipeline (another input name) is refused; 2 keeps serving.
  publish("3");
  {
    std::string mlmodel = ReadFile(reg.File("iris/3/MLmodel"));
    const std::string from = "\"name\": \"petal_width\"";
    mlmodel.replace(mlmodel.find(from), from.size(), "\"name\": \"petal_area\"");
    reg.Write("iris/3/MLmodel", mlmodel);
  }
  point("3");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // many reload intervals
  REQUIRE(r.run->InjectLines("iris_data", IrisLines(3)).ok());
  fed += 3;
  auto rows = r.Rows("classify");
  CHECK(Get(rows.back(), "version") == "\"2\"");
  // Rolling back is moving the alias back.
  point("1");
  CHECK(until_version("1"));
  CHECK(r.run->dead_letters().count() == 0u);
  for (const auto& row : r.Rows("classify")) CHECK(Get(row, "iris_class") == "0");
}
