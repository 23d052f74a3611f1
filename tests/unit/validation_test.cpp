// Planning: graph checks (inputs, sinks as inputs, cycles, unwired nodes, fan-in), schema
// propagation through the operators, and that every problem is collected, not just the first.
#include <catch2/catch.hpp>

#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

// iris_data -> features (drop id, target) -> classify (predict) -> `sink_yaml`.
std::string IrisChain(const std::string& classify_extra = "outputs: {iris_class: label}",
                      const std::string& drop = "[id, target]") {
  return "name: chain\n" + kIrisSourceYaml +
         "transforms:\n"
         "  features: {type: drop-fields, inputs: [iris_data], fields: " +
         drop +
         "}\n"
         "  classify: {type: predict, inputs: [features], model: ../models/iris, " +
         classify_extra +
         "}\n"
         "sinks:\n"
         "  out: {type: stdout, inputs: [classify]}\n";
}

}  // namespace

TEST_CASE("a valid chain plans with no diagnostics", "[validation]") {
  Loaded l = Load(IrisChain());
  INFO(l.Text());
  REQUIRE(l.plan);
  CHECK(l.diags.items().empty());
  for (const auto& n : l.plan->nodes) CHECK(n.ok);
  // Topological order: every node after its inputs.
  REQUIRE(l.plan->topo.size() == 4u);
  std::vector<std::string> order;
  for (int i : l.plan->topo) order.push_back(l.plan->decl.nodes[static_cast<size_t>(i)].name);
  CHECK(order == std::vector<std::string>{"iris_data", "features", "classify", "out"});
}

TEST_CASE("schemas propagate from the source through drop-fields and predict", "[validation]") {
  Loaded l = Load(
      IrisChain("outputs: {iris_class: label, name: class, p_virginica: 'probability:virginica', "
                "p: probability, model: model_name, version: model_version}"));
  INFO(l.Text());
  REQUIRE(l.plan);
  REQUIRE_FALSE(l.diags.HasErrors());
  CHECK(l.Node("iris_data").output_schema->ToString() ==
        "id: int64, timestamp: timestamp, sepal_length: float64, sepal_width: float64, "
        "petal_length: float64, petal_width: float64, target: int64");
  CHECK(l.Node("features").input_schema->ToString() ==
        l.Node("iris_data").output_schema->ToString());
  CHECK(l.Node("features").output_schema->ToString() ==
        "timestamp: timestamp, sepal_length: float64, sepal_width: float64, "
        "petal_length: float64, petal_width: float64");
  const Schema& out = *l.Node("classify").output_schema;
  CHECK(out.ToString() ==
        "timestamp: timestamp, sepal_length: float64, sepal_width: float64, "
        "petal_length: float64, petal_width: float64, iris_class: int64, name: string, "
        "p_virginica: float64, p: float64, model: string, version: string");
  // The sink sees what its input produces.
  CHECK(*l.Node("out").input_schema == out);
}

TEST_CASE("predict names the model input that a dropped field leaves missing", "[validation]") {
  const std::string yaml = IrisChain("outputs: {iris_class: label}", "[id, target, petal_width]");
  Loaded l = Load(yaml);
  INFO(l.Text());
  REQUIRE(l.plan);
  auto errs = l.ErrorsWith("model input 'petal_width'");
  REQUIRE(errs.size() == 1u);
  CHECK_THAT(errs[0].message,
             Catch::StartsWith("predict 'classify': model input 'petal_width' is not a field of "
                               "'features'") &&
                 Catch::EndsWith("(fields: timestamp, sepal_length, sepal_width, petal_length)"));
  // At the `model` value, where the user will look.
  CHECK(errs[0].mark.ToString() == At(yaml, "../models/iris"));
  CHECK(errs[0].node == "classify");
  CHECK(l.diags.ErrorCount() == 1u);
  CHECK_FALSE(l.Node("classify").ok);
  // The sink after a failed node is not planned and adds no second error.
  CHECK_FALSE(l.Node("out").ok);
}

TEST_CASE("predict rejects a non-numeric feature with both types named", "[validation]") {
  // A schema whose petal_width is a string: the model needs a number.
  TempDir dir;
  dir.Write("s.json", R"({"type": "object", "properties": {
      "sepal_length": {"type": "number"}, "sepal_width": {"type": "number"},
      "petal_length": {"type": "number"}, "petal_width": {"type": "string"}},
      "required": ["sepal_length"]})");
  const std::string yaml =
      "sources:\n"
      "  src: {type: file, path: in.jsonl, schema: s.json}\n"
      "transforms:\n"
      "  classify: {type: predict, inputs: [src], model: " +
      kIrisModel +
      "}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [classify]}\n";
  Loaded l = Load(yaml, dir.path());
  INFO(l.Text());
  auto errs = l.ErrorsWith(
      "model input 'petal_width' is float64 in the model's signature but "
      "field 'petal_width' of 'src' is string");
  CHECK(errs.size() == 1u);
}

TEST_CASE("an unknown input is reported at the list item with a suggestion", "[validation]") {
  const std::string yaml = "name: t\n" + kIrisSourceYaml +
                           "sinks:\n"
                           "  out: {type: stdout, inputs: [iris_dta]}\n";
  Loaded l = Load(yaml);
  INFO(l.Text());
  REQUIRE(l.diags.ErrorCount() == 1u);
  const Diagnostic d = l.Errors()[0];
  CHECK(d.message ==
        "stdout 'out': input 'iris_dta' is not a node of this pipeline (did you mean "
        "'iris_data'?)");
  CHECK(d.mark.ToString() == At(yaml, "iris_dta"));
  // The source now feeds nothing: a warning, not an error.
  CHECK(l.Warnings().size() == 1u);
}

TEST_CASE("a sink cannot be an input", "[validation]") {
  const std::string yaml = "name: t\n" + kIrisSourceYaml +
                           "sinks:\n"
                           "  a: {type: stdout, inputs: [iris_data]}\n"
                           "  b: {type: stdout, inputs: [a]}\n";
  Loaded l = Load(yaml);
  INFO(l.Text());
  auto errs = l.ErrorsWith("input 'a' is a sink; sinks have no output");
  REQUIRE(errs.size() == 1u);
  CHECK(errs[0].mark.ToString() == At(yaml, "[a]", 0, 1));  // at the item
  CHECK(l.diags.ErrorCount() == 1u);
}

TEST_CASE("an input listed twice is an error", "[validation]") {
  const std::string yaml = "name: t\n" + kIrisSourceYaml +
                           "sinks:\n"
                           "  a: {type: stdout, inputs: [iris_data, iris_data]}\n";
  Loaded l = Load(yaml);
  auto errs = l.ErrorsWith("input 'iris_data' is listed twice");
  REQUIRE(errs.size() == 1u);
  CHECK(errs[0].mark.ToString() == At(yaml, "iris_data]"));
}

TEST_CASE("every node of a cycle is reported", "[validation]") {
  const std::string yaml = "name: t\n" + kIrisSourceYaml +
                           "transforms:\n"
                           "  a: {type: select, inputs: [c], fields: [id]}\n"
                           "  b: {type: select, inputs: [a], fields: [id]}\n"
                           "  c: {type: select, inputs: [b], fields: [id]}\n"
                           "sinks:\n"
                           "  out: {type: stdout, inputs: [iris_data]}\n";
  Loaded l = Load(yaml);
  INFO(l.Text());
  REQUIRE(l.plan);
  for (std::string name : {"a", "b", "c"}) {
    INFO(name);
    std::vector<Diagnostic> mine;
    for (const auto& d : l.ErrorsWith("is part of a cycle"))
      if (d.node == name) mine.push_back(d);
    REQUIRE(mine.size() == 1u);
    CHECK_THAT(mine[0].message, Catch::StartsWith("select '" + name + "': is part of a cycle (") &&
                                    Catch::Contains("a -> b -> c"));
    // At the node's mapping.
    CHECK(mine[0].mark.ToString() == At(yaml, "  " + name + ": {type: select", 0, 5));
  }
  CHECK(l.diags.ErrorCount() == 3u);
  CHECK(l.plan->topo.size() == 2u);  // the source and its sink
}

TEST_CASE("a node downstream of a cycle is not reported as part of it", "[validation]") {
  // Regression: nodes that only read from a cycle were once reported as part of it.
  const std::string yaml = "name: t\n" + kIrisSourceYaml +
                           "transforms:\n"
                           "  a: {type: select, inputs: [c], fields: [id]}\n"
                           "  b: {type: select, inputs: [a], fields: [id]}\n"
                           "  c: {type: select, inputs: [b], fields: [id]}\n"
                           "sinks:\n"
                           "  out: {type: stdout, inputs: [c]}\n"
                           "  raw: {type: stdout, inputs: [iris_data]}\n";
  Loaded l = Load(yaml);
  INFO(l.Text());
  auto cycle = l.ErrorsWith("is part of a cycle");
  CHECK(cycle.size() == 3u);
  for (const auto& d : cycle) {
    CHECK(d.node != "out");
    CHECK_THAT(d.message, !Catch::Contains("out"));
  }
}

TEST_CASE("a node nothing reads from is a warning, not an error", "[validation]") {
  const std::string yaml = "name: t\n" + kIrisSourceYaml +
                           "transforms:\n"
                           "  unused: {type: drop-fields, inputs: [iris_data], fields: [id]}\n"
                           "sinks:\n"
                           "  out: {type: stdout, inputs: [iris_data]}\n";
  Loaded l = Load(yaml);
  INFO(l.Text());
  CHECK_FALSE(l.diags.HasErrors());
  REQUIRE(l.Warnings().size() == 1u);
  const Diagnostic w = l.Warnings()[0];
  CHECK(w.node == "unused");
  CHECK(w.message == "drop-fields 'unused': nothing reads from this node; its output is discarded");
  CHECK(w.ToString().find(": warning: ") != std::string::npos);
  CHECK(w.mark.ToString() == At(yaml, "{type: drop-fields"));
  // The unused node is still planned (its config is still checked).
  CHECK(l.Node("unused").ok);
}

TEST_CASE("fan-in needs the same schema from every input", "[validation]") {
  const std::string yaml = "name: t\n" + kIrisSourceYaml +
                           "transforms:\n"
                           "  no_id: {type: drop-fields, inputs: [iris_data], fields: [id]}\n"
                           "  same: {type: select, inputs: [iris_data], fields: [id]}\n"
                           "  also: {type: select, inputs: [iris_data], fields: [id]}\n"
                           "sinks:\n"
                           "  mixed: {type: stdout, inputs: [iris_data, no_id]}\n"
                           "  merged: {type: stdout, inputs: [same, also]}\n";
  Loaded l = Load(yaml);
  INFO(l.Text());
  auto errs = l.ErrorsWith("inputs have different schemas");
  REQUIRE(errs.size() == 1u);
  CHECK(errs[0].node == "mixed");
  CHECK_THAT(errs[0].message,
             Catch::StartsWith("stdout 'mixed': inputs have different schemas: 'iris_data' has "
                               "(id: int64, timestamp: timestamp,") &&
                 Catch::Contains("but 'no_id' has (timestamp: timestamp,") &&
                 Catch::EndsWith("fan-in needs the same fields and types"));
  CHECK(errs[0].mark.ToString() == At(yaml, "no_id]"));
  CHECK(l.diags.ErrorCount() == 1u);
  CHECK(l.Node("merged").ok);
  CHECK(l.Node("merged").input_schema->ToString() == "id: int64");
}

TEST_CASE("independent mistakes are all collected", "[validation]") {
  const std::string yaml = "name: t\n" + kIrisSourceYaml +
                           "transforms:\n"
                           "  features: {type: drop-fields, inputs: [iris_data], fields: [id],\n"
                           "             colour: red}\n"
                           "  pick: {type: select, inputs: [iris_data], fields: [sepal_lenght]}\n"
                           "sinks:\n"
                           "  out: {type: stdout, inputs: [features, pikc]}\n"
                           "  out2: {type: stdout, inputs: [pick]}\n"
                           "sinks_extra: 1\n";
  Loaded l = Load(yaml);
  INFO(l.Text());
  REQUIRE(l.plan);
  CHECK(l.diags.ErrorCount() == 4u);
  CHECK(l.ErrorsWith("unknown key 'colour'").size() == 1u);
  CHECK(l.ErrorsWith("'sepal_lenght' is not a field of 'iris_data'; did you mean "
                     "'sepal_length'?")
            .size() == 1u);
  CHECK(l.ErrorsWith("input 'pikc' is not a node of this pipeline (did you mean 'pick'?)").size() ==
        1u);
  CHECK(l.ErrorsWith("unknown top-level key 'sinks_extra'").size() == 1u);
}

TEST_CASE("select reports unknown and repeated fields", "[validation][select]") {
  SECTION("unknown field, at its list item") {
    const std::string yaml =
        "name: t\n" + kIrisSourceYaml +
        "transforms:\n"
        "  pick: {type: select, inputs: [iris_data], fields: [id, petal_widht]}\n"
        "sinks:\n"
        "  out: {type: stdout, inputs: [pick]}\n";
    Loaded l = Load(yaml);
    INFO(l.Text());
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].message ==
          "select 'pick': 'petal_widht' is not a field of 'iris_data'; did you mean "
          "'petal_width'? (fields: id, timestamp, sepal_length, sepal_width, petal_length, "
          "petal_width, target)");
    CHECK(l.Errors()[0].mark.ToString() == At(yaml, "petal_widht"));
  }
  SECTION("selected twice") {
    Loaded l = Load("name: t\n" + kIrisSourceYaml +
                    "transforms:\n"
                    "  pick: {type: select, inputs: [iris_data], fields: [id, target, id]}\n"
                    "sinks:\n"
                    "  out: {type: stdout, inputs: [pick]}\n");
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].message == "select 'pick': 'id' is selected twice");
  }
}

TEST_CASE("drop-fields reports unknown fields and dropping everything",
          "[validation][drop-fields]") {
  SECTION("unknown field") {
    const std::string yaml = "name: t\n" + kIrisSourceYaml +
                             "transforms:\n"
                             "  d: {type: drop-fields, inputs: [iris_data], fields: [ID]}\n"
                             "sinks:\n"
                             "  out: {type: stdout, inputs: [d]}\n";
    Loaded l = Load(yaml);
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK_THAT(l.Errors()[0].message,
               Catch::StartsWith("drop-fields 'd': 'ID' is not a field of 'iris_data'; did you "
                                 "mean 'id'?"));
    CHECK(l.Errors()[0].mark.ToString() == At(yaml, "ID"));
  }
  SECTION("every field") {
    Loaded l = Load("name: t\n" + kIrisSourceYaml +
                    "transforms:\n"
                    "  d: {type: drop-fields, inputs: [iris_data], fields: [id, timestamp, "
                    "sepal_length, sepal_width, petal_length, petal_width, target]}\n"
                    "sinks:\n"
                    "  out: {type: stdout, inputs: [d]}\n");
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK_THAT(l.Errors()[0].message, Catch::Contains("drops every field"));
  }
}

TEST_CASE("rename reports unknown fields, empty and clashing names", "[validation][rename]") {
  auto with = [](const std::string& fields) {
    return "name: t\n" + kIrisSourceYaml +
           "transforms:\n"
           "  r: {type: rename, inputs: [iris_data], fields: " +
           fields +
           "}\n"
           "sinks:\n"
           "  out: {type: stdout, inputs: [r]}\n";
  };
  SECTION("ok") {
    Loaded l = Load(with("{id: row_id, target: label}"));
    INFO(l.Text());
    REQUIRE_FALSE(l.diags.HasErrors());
    CHECK(l.Node("r").output_schema->ToString() ==
          "row_id: int64, timestamp: timestamp, sepal_length: float64, sepal_width: float64, "
          "petal_length: float64, petal_width: float64, label: int64");
  }
  SECTION("swapping two names is allowed") {
    Loaded l = Load(with("{sepal_length: sepal_width, sepal_width: sepal_length}"));
    INFO(l.Text());
    CHECK_FALSE(l.diags.HasErrors());
  }
  SECTION("unknown field") {
    const std::string yaml = with("{idd: row_id}");
    Loaded l = Load(yaml);
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK_THAT(l.Errors()[0].message,
               Catch::StartsWith("rename 'r': 'idd' is not a field of 'iris_data'; did you mean "
                                 "'id'?"));
  }
  SECTION("clash") {
    Loaded l = Load(with("{id: target}"));
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].message == "rename 'r': two fields would be named 'target'");
  }
  SECTION("empty new name") {
    const std::string yaml = with("{id: ''}");
    Loaded l = Load(yaml);
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].message == "rename 'r': the new name of 'id' is empty");
  }
  SECTION("nothing to rename") {
    Loaded l = Load(with("{}"));
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK_THAT(l.Errors()[0].message, Catch::Contains("names no field to rename"));
  }
}

TEST_CASE("a source whose schema file is missing is an error at `schema`", "[validation]") {
  const std::string yaml =
      "sources:\n"
      "  src: {type: file, path: in.jsonl, schema: nowhere.json}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [src]}\n";
  Loaded l = Load(yaml, "/nonexistent-sluice-dir");
  INFO(l.Text());
  REQUIRE(l.diags.ErrorCount() == 1u);
  CHECK(l.Errors()[0].mark.ToString() == At(yaml, "nowhere.json"));
  CHECK_THAT(l.Errors()[0].message,
             Catch::Contains("cannot read schema file '/nonexistent-sluice-dir/nowhere.json'"));
}

TEST_CASE("SinkPaths counts the acknowledgements a batch needs", "[validation][plan]") {
  const std::string yaml = "name: t\n" + kIrisSourceYaml +
                           "transforms:\n"
                           "  a: {type: select, inputs: [iris_data], fields: [id]}\n"
                           "  b: {type: select, inputs: [iris_data], fields: [id]}\n"
                           "sinks:\n"
                           "  direct: {type: stdout, inputs: [iris_data]}\n"
                           "  both: {type: stdout, inputs: [a, b]}\n"
                           "  only_a: {type: stdout, inputs: [a]}\n";
  Loaded l = Load(yaml);
  INFO(l.Text());
  REQUIRE(l.plan);
  REQUIRE_FALSE(l.diags.HasErrors());
  // iris_data -> direct; -> a -> both, only_a; -> b -> both.
  CHECK(l.plan->SinkPaths(l.plan->IndexOf("iris_data")) == 4);
  CHECK(l.plan->SinkPaths(l.plan->IndexOf("a")) == 2);
  CHECK(l.plan->SinkPaths(l.plan->IndexOf("b")) == 1);
  CHECK(l.plan->SinkPaths(l.plan->IndexOf("both")) == 1);
  // Outputs are wired both ways.
  CHECK(l.Node("a").outputs.size() == 2u);
  CHECK(l.Node("both").inputs.size() == 2u);
}

TEST_CASE("diagnostics sort by file, line and column, keeping ties in order", "[validation]") {
  Diagnostics d;
  d.Error(Mark{"b.yaml", 1, 1}, "", "b");
  d.Warning(Mark{"a.yaml", 9, 2}, "", "a9:2");
  d.Error(Mark{"a.yaml", 3, 7}, "", "a3:7 first");
  d.Error(Mark{"a.yaml", 3, 7}, "", "a3:7 second");
  d.Error(Mark{"a.yaml", 3, 1}, "", "a3:1");
  std::vector<std::string> order;
  for (const auto& x : d.Sorted()) order.push_back(x.message);
  CHECK(order == std::vector<std::string>{"a3:1", "a3:7 first", "a3:7 second", "a9:2", "b"});
  CHECK(d.items()[0].message == "b");  // items() keeps the order of discovery
  CHECK(d.ErrorCount() == 4u);
}

TEST_CASE("AddStatus splits a leading file:line:col off the message", "[validation]") {
  Diagnostics d;
  const Mark fallback{"p.yaml", 2, 3};
  d.AddStatus(Status::InvalidConfig("p.yaml:7:9: select 's': bad"), fallback, "s");
  d.AddStatus(Status::InvalidConfig("no location here"), fallback, "s");
  d.AddStatus(Status::InvalidConfig("other.yaml:1:1: elsewhere"), fallback, "s");
  REQUIRE(d.items().size() == 3u);
  CHECK(d.items()[0].ToString() == "p.yaml:7:9: error: select 's': bad");
  CHECK(d.items()[1].ToString() == "p.yaml:2:3: error: no location here");
  CHECK(d.items()[2].ToString() == "p.yaml:2:3: error: other.yaml:1:1: elsewhere");
}
