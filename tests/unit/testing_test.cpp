// In-memory runs and the pipeline `tests:` cases (engine/testing.h): records and lines injected
// at a node, what reaches each node, and failures that say exactly what differed and where.
#include <simdjson.h>
#include <catch2/catch.hpp>

#include "engine/testing.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

const std::string kPipeline =
    "name: t\n" + kIrisSourceYaml +
    "transforms:\n"
    "  features: {type: drop-fields, inputs: [iris_data], fields: [id, target]}\n"
    "  classify: {type: predict, inputs: [features], model: ../models/iris,\n"
    "             outputs: {iris_class: label, p: 'probability:virginica'}}\n"
    "sinks:\n"
    "  out: {type: stdout, inputs: [classify]}\n";

// A row of iris_data's schema, which is what `features` reads.
const std::string kVirginica =
    "{id: 7, timestamp: '2026-01-01T00:00:00Z', sepal_length: 6.9, sepal_width: 3.1, "
    "petal_length: 5.4, petal_width: 2.1, target: 2}";

const std::string kEnvelope =
    R"('{"schema": {}, "payload": {"id": 1, "timestamp": 0, "sepal_length": 5.1, )"
    R"("sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2, "target": 0}}')";

struct Ran {
  Loaded loaded;
  std::vector<TestCaseResult> results;
};

// Plans kPipeline with `tests` appended and runs its test cases.
Ran RunTests(const std::string& yaml) {
  Ran r{Load(yaml), {}};
  INFO(r.loaded.Text());
  REQUIRE(r.loaded.plan);
  REQUIRE_FALSE(r.loaded.diags.HasErrors());
  r.results = RunPipelineTests(*r.loaded.plan, r.loaded.plan->decl.tests, kFile);
  return r;
}

std::string Failures(const TestCaseResult& r) {
  std::string out = r.name + ":";
  for (const auto& f : r.failures) out += "\n  " + f;
  return out;
}

}  // namespace

TEST_CASE("a test case passes when the rows match", "[testing]") {
  const std::string yaml = kPipeline +
                           "tests:\n"
                           "  - name: virginica\n"
                           "    input: {node: features, records: [" +
                           kVirginica +
                           "]}\n"
                           "    expect:\n"
                           "      - node: classify\n"
                           "        count: 1\n"
                           "        tolerance: 0.5\n"
                           "        records:\n"
                           "          - {iris_class: 2, p: 0.9,\n"
                           "             timestamp: '2026-01-01T01:00:00+01:00'}\n"
                           "    dead_letters: 0\n";
  Ran r = RunTests(yaml);
  REQUIRE(r.results.size() == 1u);
  INFO(Failures(r.results[0]));
  CHECK(r.results[0].name == "virginica");
  CHECK(r.results[0].failures.empty());
  CHECK(r.results[0].mark.ToString() == At(yaml, "name: virginica"));
}

TEST_CASE("a test case fails with the node, row, field and both values", "[testing]") {
  const std::string yaml =
      kPipeline +
      "tests:\n"
      "  - name: wrong class\n"
      "    input: {node: features, records: [" +
      kVirginica +
      "]}\n"
      "    expect:\n"
      "      - node: classify\n"
      "        count: 2\n"
      "        tolerance: 0.000001\n"
      "        records:\n"
      "          - {iris_class: 0, nope: 1, timestamp: '2026-01-01T00:00:01Z'}\n"
      "    dead_letters: 0\n";
  Ran r = RunTests(yaml);
  REQUIRE(r.results.size() == 1u);
  const auto& f = r.results[0].failures;
  INFO(Failures(r.results[0]));
  REQUIRE(f.size() == 4u);
  CHECK(f[0] == At(yaml, "count: 2", 0, 7) + ": node 'classify' has 1 row(s), expected 2");
  CHECK(f[1] == At(yaml, "0, nope") + ": node 'classify' row 1: 'iris_class' is 2, expected 0");
  CHECK_THAT(f[2], Catch::StartsWith(At(yaml, "nope") +
                                     ": node 'classify' row 1: no field 'nope' (row: {"));
  CHECK(f[3] == At(yaml, "'2026-01-01T00:00:01Z'") +
                    ": node 'classify' row 1: 'timestamp' is \"2026-01-01T00:00:00Z\", expected "
                    "\"2026-01-01T00:00:01Z\"");
}

TEST_CASE("numbers compare within the tolerance, relative to the expected value", "[testing]") {
  auto run = [&](const std::string& p, const std::string& tolerance) {
    const std::string yaml = kPipeline +
                             "tests:\n"
                             "  - name: p\n"
                             "    input: {node: features, records: [" +
                             kVirginica +
                             "]}\n"
                             "    expect:\n"
                             "      - {node: classify, count: 1, tolerance: " +
                             tolerance + ", records: [{p: " + p +
                             "}]}\n"
                             "    dead_letters: 0\n";
    Ran r = RunTests(yaml);
    REQUIRE(r.results.size() == 1u);
    return r.results[0].failures;
  };
  CHECK(run("0.5", "0.6").empty());
  auto f = run("0.5", "0.0001");
  REQUIRE(f.size() == 1u);
  CHECK_THAT(f[0], Catch::Contains("row 1: 'p' is 0.") && Catch::EndsWith(", expected 0.5"));
  // A quoted expected value is a string and does not equal a number.
  auto quoted = run("'0.5'", "0.6");
  REQUIRE(quoted.size() == 1u);
  CHECK_THAT(quoted[0], Catch::EndsWith(R"(, expected "0.5")"));
}

TEST_CASE("dead_letters counts the rejected rows, lines go in at a source", "[testing]") {
  const std::string yaml =
      kPipeline +
      "tests:\n"
      "  - name: lines\n"
      "    input:\n"
      "      node: iris_data\n"
      "      lines:\n"
      "        - " +
      kEnvelope +
      "\n"
      "        - 'not json'\n"
      "        - '{\"payload\": {\"id\": 2}}'\n"
      "    expect:\n"
      "      - {node: iris_data, count: 1, tolerance: 0, records: [{id: 1}]}\n"
      "      - {node: classify, count: 1, tolerance: 0,\n"
      "         records: [{iris_class: 0, timestamp: '1970-01-01T00:00:00Z'}]}\n"
      "    dead_letters: 2\n"
      "  - name: wrong count\n"
      "    input: {node: iris_data, lines: ['not json']}\n"
      "    expect: []\n"
      "    dead_letters: 0\n";
  Ran r = RunTests(yaml);
  REQUIRE(r.results.size() == 2u);
  INFO(Failures(r.results[0]));
  INFO(Failures(r.results[1]));
  CHECK(r.results[0].failures.empty());
  REQUIRE(r.results[1].failures.size() == 1u);
  CHECK_THAT(r.results[1].failures[0], Catch::StartsWith(At(yaml, "dead_letters: 0", 0, 14) +
                                                         ": 1 dead letters, expected 0\n"
                                                         "      iris_data: malformed JSON: "));
}

TEST_CASE("a test case naming an unknown node fails, others still run", "[testing]") {
  const std::string yaml = kPipeline +
                           "tests:\n"
                           "  - name: bad node\n"
                           "    input: {node: featurez, records: [" +
                           kVirginica +
                           "]}\n"
                           "    expect: [{node: classifi, count: 0, tolerance: 0, records: []}]\n"
                           "    dead_letters: 0\n"
                           "  - name: good\n"
                           "    input: {node: features, records: [" +
                           kVirginica +
                           "]}\n"
                           "    expect: [{node: classify, count: 1, tolerance: 0, records: []}]\n"
                           "    dead_letters: 0\n";
  Ran r = RunTests(yaml);
  REQUIRE(r.results.size() == 2u);
  const auto& f = r.results[0].failures;
  INFO(Failures(r.results[0]));
  REQUIRE(f.size() == 2u);
  CHECK(f[0] == At(yaml, "{node: featurez") + ": 'featurez' is not a node of this pipeline");
  CHECK(f[1] == At(yaml, "classifi") + ": 'classifi' is not a node of this pipeline");
  // `records: []` means "no rows": the good case's one row is a mismatch.
  REQUIRE(r.results[1].failures.size() == 1u);
  CHECK_THAT(r.results[1].failures[0], Catch::Contains("node 'classify' has 1 row(s), expected 0"));
}

TEST_CASE("'tests' that is not a list is one failure", "[testing]") {
  Ran r = RunTests(kPipeline + "tests: {name: x}\n");
  REQUIRE(r.results.size() == 1u);
  REQUIRE(r.results[0].failures.size() == 1u);
  CHECK(r.results[0].failures[0] == "'tests' must be a list of test cases");
}

TEST_CASE("InMemoryRun routes injected rows and rejects bad targets", "[testing]") {
  Loaded l = Load(kPipeline);
  REQUIRE_FALSE(l.diags.HasErrors());
  auto built = InMemoryRun::Build(*l.plan);
  REQUIRE(built.ok());
  InMemoryRun& run = **built;
  CHECK_THAT(run.InjectLines("features", {"{}"}).message(),
             Catch::Equals("'features' is not a source of this pipeline"));
  CHECK_THAT(run.InjectRecords("nope", {"{}"}).message(),
             Catch::Equals("'nope' is not a node of this pipeline"));
  CHECK_FALSE(run.Rows("nope").ok());
  // Rows are seen by every node downstream of the injection point, and not upstream.
  REQUIRE(run.InjectRecords("features", {YamlToJson(YAML::Load(kVirginica))}).ok());
  CHECK(run.Rows("iris_data")->empty());
  CHECK(run.Rows("features")->size() == 1u);
  CHECK(run.Rows("out")->size() == 1u);
  CHECK(*run.Rows("out") == *run.Rows("classify"));
  // Records injected at a sink reach it unchanged.
  REQUIRE(run.InjectRecords("out", *run.Rows("classify")).ok());
  CHECK(run.Rows("out")->size() == 2u);
  // A record that does not fit the schema is dead-lettered at the injection node.
  REQUIRE(run.InjectRecords("features", {R"({"id": 1, "sepal_length": 1})"}).ok());
  REQUIRE(run.dead_letters().records().size() == 1u);
  CHECK(run.dead_letters().records()[0].node == "features");
  CHECK(run.dead_letters().records()[0].reason == "missing field 'timestamp'");
}

TEST_CASE("InjectLines gives a csv source its header line", "[testing]") {
  TempDir dir;
  dir.Write("s.json", kNullableFeaturesSchema);
  Loaded l = Load(
      "sources:\n"
      "  src: {type: file, path: in.csv, format: csv, schema: s.json}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [src]}\n",
      dir.path());
  INFO(l.Text());
  REQUIRE_FALSE(l.diags.HasErrors());
  auto built = InMemoryRun::Build(*l.plan);
  REQUIRE(built.ok());
  REQUIRE((*built)->InjectLines("src", {"petal_width,id", "0.2,1", "oops,2"}).ok());
  CHECK(*(*built)->Rows("src") ==
        std::vector<std::string>{R"({"id":1,"sepal_length":null,"sepal_width":null,)"
                                 R"("petal_length":null,"petal_width":0.2})"});
  auto dead = (*built)->dead_letters().records();
  REQUIRE(dead.size() == 1u);
  CHECK(dead[0].input == "oops,2");
  CHECK(dead[0].reason == "field 'petal_width': expected float64, found 'oops'");
}

TEST_CASE("InMemoryRun needs a valid plan", "[testing]") {
  Loaded l = Load("name: t\n" + kIrisSourceYaml +
                  "sinks:\n"
                  "  out: {type: stdout, inputs: [iris_dat]}\n");
  REQUIRE(l.plan);
  auto built = InMemoryRun::Build(*l.plan);
  REQUIRE_FALSE(built.ok());
  CHECK(built.status().message() == "node 'out' is not valid");
}

TEST_CASE("YamlToJson: plain scalars are typed, quoted ones are strings", "[testing]") {
  auto j = [](const std::string& yaml) { return YamlToJson(YAML::Load(yaml)); };
  CHECK(j("1") == "1");
  CHECK(j("-2.5e3") == "-2.5e3");
  CHECK(j("'1'") == R"("1")");
  CHECK(j("\"true\"") == R"("true")");
  CHECK(j("true") == "true");
  CHECK(j("null") == "null");
  CHECK(j("~") == "null");
  CHECK(j("abc") == R"("abc")");
  CHECK(j("0x1F") == R"("0x1F")");
  CHECK(j("nan") == R"("nan")");
  CHECK(j("inf") == R"("inf")");
  CHECK(j("{a: [1, 'x', {b: null}], c: say \"hi\"}") ==
        R"({"a":[1,"x",{"b":null}],"c":"say \"hi\""})");
}

TEST_CASE("YamlToJson always writes valid JSON for plain numbers", "[testing]") {
  // Regression: YAML numbers outside JSON's grammar (.5, +1, 1., 007) were once passed
  // through verbatim, making invalid JSON.
  simdjson::dom::parser parser;
  for (std::string yaml : {".5", "+1", "1.", "007", "-.5e1"}) {
    const std::string json = YamlToJson(YAML::Load(yaml));
    INFO(yaml << " -> " << json);
    simdjson::padded_string padded(json);
    simdjson::dom::element e;
    CHECK_FALSE(parser.parse(padded).get(e));
  }
}

TEST_CASE("a test case with only its required keys runs", "[testing]") {
  // Regression: optional keys read through const operator[] got yaml-cpp's invalid node, whose
  // accessors throw ("invalid test case: invalid node; first invalid key: tolerance").
  const std::string yaml = kPipeline +
                           "tests:\n"
                           "  - name: minimal\n"
                           "    input: {node: features, records: [" +
                           kVirginica +
                           "]}\n"
                           "    expect:\n"
                           "      - {node: classify, records: [{iris_class: 2}]}\n";
  Ran r = RunTests(yaml);
  REQUIRE(r.results.size() == 1u);
  INFO(Failures(r.results[0]));
  CHECK(r.results[0].failures.empty());
}

TEST_CASE("a single expectation may be written as a mapping", "[testing]") {
  // Regression: `expect = seq` on a yaml-cpp node rebinds the shared node, so the sequence
  // contained itself ("invalid test case: invalid node; first invalid key: node").
  const std::string yaml = kPipeline +
                           "tests:\n"
                           "  - name: mapping\n"
                           "    input: {node: features, records: [" +
                           kVirginica +
                           "]}\n"
                           "    expect: {node: classify, count: 1, tolerance: 0,\n"
                           "             records: [{iris_class: 2}]}\n"
                           "    dead_letters: 0\n";
  Ran r = RunTests(yaml);
  REQUIRE(r.results.size() == 1u);
  INFO(Failures(r.results[0]));
  CHECK(r.results[0].failures.empty());
  // Running the cases leaves the plan's `tests` tree as it was: the same results again.
  auto again = RunPipelineTests(*r.loaded.plan, r.loaded.plan->decl.tests, kFile);
  REQUIRE(again.size() == 1u);
  CHECK(again[0].failures.empty());
  CHECK(r.loaded.plan->decl.tests[0]["expect"].IsMap());
}

TEST_CASE("a test case without a name is named by its position", "[testing]") {
  // Regression: without `name`, yaml-cpp's InvalidNode escaped RunPipelineTests and `sluice
  // test` exited with an internal error.
  const std::string yaml = kPipeline +
                           "tests:\n"
                           "  - input: {node: features, records: [" +
                           kVirginica +
                           "]}\n"
                           "    expect: [{node: classify, count: 1, tolerance: 0, records: []}]\n"
                           "    dead_letters: 0\n";
  Ran r;
  REQUIRE_NOTHROW(r = RunTests(yaml));
  REQUIRE(r.results.size() == 1u);
  CHECK(r.results[0].name == "case 1");
}
