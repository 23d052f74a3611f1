// Compliance: every registered operator has a complete spec, and its example is a node that
// parses and plans in a pipeline. A new operator is checked here without any new test code.
// (docs/operators.md and schemas/pipeline.schema.json freshness are checked elsewhere.)
#include <set>

#include <yaml-cpp/yaml.h>
#include <catch2/catch.hpp>

#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

// A pipeline around `node_yaml` (one node's mapping, in flow style) named `under_test`. The
// examples read from the iris flow's nodes, so those exist: iris_data (a file source of the
// iris schema), features (drop-fields) and classify (predict); and from `rides`, ride events
// with a nested object. A source is tested alone.
std::string Scaffold(const OperatorSpec& spec, const std::string& node_yaml) {
  if (spec.role == Role::kSource) {
    return "name: example\n"
           "sources:\n"
           "  under_test: " +
           node_yaml +
           "\n"
           "sinks:\n"
           "  out: {type: stdout, inputs: [under_test]}\n";
  }
  std::string y = "name: example\n" + kIrisSourceYaml +
                  "  rides: {type: file, path: data/rides.jsonl, format: json,\n"
                  "          schema: ../schemas/ride_event.json}\n"
                  "transforms:\n"
                  "  features: {type: drop-fields, inputs: [iris_data], fields: [id, target]}\n"
                  "  classify: {type: predict, inputs: [features], model: ../models/iris, "
                  "outputs: {iris_class: label}}\n";
  if (spec.role == Role::kTransform) {
    y += "  under_test: " + node_yaml + "\n";
    y += "sinks:\n"
         "  out: {type: stdout, inputs: [under_test]}\n"
         "  rest: {type: stdout, inputs: [classify]}\n"
         "  rides_out: {type: stdout, inputs: [rides]}\n";
  } else {
    y += "sinks:\n  under_test: " + node_yaml + "\n  rides_out: {type: stdout, inputs: [rides]}\n";
  }
  return y;
}

std::string Id(const OperatorSpec& spec) {
  return std::string(RoleName(spec.role)) + " '" + spec.name + "'";
}

}  // namespace

TEST_CASE("the built-in operators are registered by role", "[registry]") {
  const Registry& r = Builtins();
  CHECK(r.Names(Role::kSource) == std::vector<std::string>{"file", "http", "kafka", "postgres"});
  CHECK(r.Names(Role::kTransform) ==
        std::vector<std::string>{"drop-fields", "filter", "flatten", "map", "predict", "rename", "select"});
  CHECK(r.Names(Role::kSink) ==
        std::vector<std::string>{"file", "http", "kafka", "postgres", "sqlite", "stdout"});
  CHECK(r.RolesOf("file") == std::vector<Role>{Role::kSource, Role::kSink});
  CHECK(r.RolesOf("http") == std::vector<Role>{Role::kSource, Role::kSink});
  CHECK(r.RolesOf("postgres") == std::vector<Role>{Role::kSource, Role::kSink});
  CHECK(r.Find(Role::kSink, "drop-fields") == nullptr);
  REQUIRE(r.Find(Role::kTransform, "predict") != nullptr);
  CHECK(r.Find(Role::kTransform, "predict")->name == "predict");
  CHECK(r.All().size() == 17u);
}

TEST_CASE("every operator spec is complete", "[registry][compliance]") {
  for (const OperatorSpec* spec : Builtins().All()) {
    INFO(Id(*spec));
    CHECK_FALSE(spec->summary.empty());
    CHECK(spec->summary.find('\n') == std::string::npos);
    CHECK_FALSE(spec->example.empty());
    switch (spec->role) {
      case Role::kSource: CHECK(spec->make_source); break;
      case Role::kTransform: CHECK(spec->make_transform); break;
      case Role::kSink: CHECK(spec->make_sink); break;
    }
    std::set<std::string> names;
    for (const auto& f : CommonNodeFields(spec->role)) names.insert(f.name);
    for (const ConfigField& f : spec->fields) {
      INFO("field '" << f.name << "'");
      CHECK_FALSE(f.name.empty());
      CHECK_FALSE(f.description.empty());
      CHECK(f.description.find('\n') == std::string::npos);
      CHECK(names.insert(f.name).second);  // unique, and not shadowing type/inputs
      if (f.required) CHECK(f.default_value.empty());
      if (!f.choices.empty() && !f.default_value.empty()) {
        CHECK(std::find(f.choices.begin(), f.choices.end(), f.default_value) != f.choices.end());
      }
    }
  }
  for (Role role : {Role::kSource, Role::kTransform, Role::kSink}) {
    for (const auto& f : CommonNodeFields(role)) CHECK_FALSE(f.description.empty());
  }
}

TEST_CASE("every operator's example is a node of its type that plans", "[registry][compliance]") {
  for (const OperatorSpec* spec : Builtins().All()) {
    INFO(Id(*spec) << " example: " << spec->example);
    YAML::Node example;
    REQUIRE_NOTHROW(example = YAML::Load(spec->example));
    REQUIRE(example.IsMap());
    CHECK(example["type"].as<std::string>() == spec->name);
    const std::string yaml = Scaffold(*spec, spec->example);
    Loaded l = Load(yaml);
    INFO(yaml);
    INFO(l.Text());
    REQUIRE(l.plan);
    CHECK_FALSE(l.diags.HasErrors());
    CHECK(l.Node("under_test").ok);
  }
}

TEST_CASE("every operator rejects an unknown key at its line:col", "[registry][compliance]") {
  for (const OperatorSpec* spec : Builtins().All()) {
    INFO(Id(*spec));
    const std::string& ex = spec->example;
    REQUIRE(ex.back() == '}');
    const std::string yaml = Scaffold(*spec, ex.substr(0, ex.size() - 1) + ", colour: red}");
    Loaded l = Load(yaml);
    INFO(yaml);
    INFO(l.Text());
    auto errs = l.ErrorsWith("unknown key 'colour'");
    REQUIRE(errs.size() == 1u);
    CHECK(errs[0].mark.ToString() == At(yaml, "colour"));
    CHECK(errs[0].node == "under_test");
    CHECK_THAT(errs[0].message, Catch::StartsWith(spec->name + " 'under_test': "));
    CHECK(l.diags.ErrorCount() == 1u);
  }
}

TEST_CASE("every declared default is a valid value for its key", "[registry][compliance]") {
  for (const OperatorSpec* spec : Builtins().All()) {
    YAML::Node node = YAML::Load(spec->example);
    for (const ConfigField& f : spec->fields) {
      if (f.default_value.empty() || node[f.name].IsDefined()) continue;
      INFO(Id(*spec) << " " << f.name << ": " << f.default_value);
      YAML::Node with = YAML::Clone(node);
      if (f.type == ConfigType::kStringList || f.type == ConfigType::kStringMap ||
          f.type == ConfigType::kAny) {
        with[f.name] = YAML::Load(f.default_value);
      } else {
        with[f.name] = f.default_value;
      }
      YAML::Emitter out;
      out << YAML::Flow << with;
      const std::string yaml = Scaffold(*spec, out.c_str());
      Loaded l = Load(yaml);
      INFO(yaml);
      INFO(l.Text());
      CHECK_FALSE(l.diags.HasErrors());
    }
  }
}
