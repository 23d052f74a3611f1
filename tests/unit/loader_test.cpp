// The pipeline loader: environment expansion, relative paths, key and type checks against the
// operator specs, settings and dead_letter, and the file:line:col of every problem.
#include <cstdlib>

#include <catch2/catch.hpp>

#include "engine/pipeline.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

// Parses only (no planning): what the loader alone makes of the text.
std::optional<PipelineDecl> Parse(const std::string& yaml, Diagnostics& diags,
                                  const std::string& base_dir = "/base/pipes") {
  return ParsePipelineText(yaml, kFile, base_dir, Builtins(), diags);
}

const NodeConfig& NodeNamed(const PipelineDecl& decl, const std::string& name) {
  return decl.nodes.at(static_cast<size_t>(decl.IndexOf(name)));
}

std::string AllText(const Diagnostics& diags) {
  std::string out;
  for (const auto& d : diags.items()) out += d.ToString() + "\n";
  return out;
}

// Errors whose message contains `part`.
std::vector<Diagnostic> ErrorsWith(const Diagnostics& diags, std::string_view part) {
  std::vector<Diagnostic> out;
  for (const auto& d : diags.items())
    if (d.severity == Severity::kError && d.message.find(part) != std::string::npos)
      out.push_back(d);
  return out;
}

struct EnvVar {
  EnvVar(const char* name, const char* value) : name_(name) {
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~EnvVar() { ::unsetenv(name_); }
  const char* name_;
};

}  // namespace

TEST_CASE("ExpandEnv expands ${VAR}, ${VAR:-default} and $$", "[loader][env]") {
  EnvVar set("SLUICE_UT_SET", "kafka:9092");
  EnvVar empty("SLUICE_UT_EMPTY", "");
  EnvVar unset("SLUICE_UT_UNSET", nullptr);

  CHECK(*ExpandEnv("${SLUICE_UT_SET}") == "kafka:9092");
  CHECK(*ExpandEnv("tcp://${SLUICE_UT_SET}/x") == "tcp://kafka:9092/x");
  CHECK(*ExpandEnv("${SLUICE_UT_UNSET:-local:1}") == "local:1");
  CHECK(*ExpandEnv("${SLUICE_UT_SET:-local:1}") == "kafka:9092");
  // A variable set to the empty string takes the default, as in the shell's ${VAR:-x}.
  CHECK(*ExpandEnv("${SLUICE_UT_EMPTY:-fallback}") == "fallback");
  CHECK(ExpandEnv("${SLUICE_UT_EMPTY}")->empty());
  CHECK(ExpandEnv("${SLUICE_UT_UNSET:-}")->empty());
  CHECK(*ExpandEnv("price $$5 and $${SLUICE_UT_SET}") == "price $5 and ${SLUICE_UT_SET}");
  CHECK(*ExpandEnv("a lone $ stays") == "a lone $ stays");
  CHECK(*ExpandEnv("${SLUICE_UT_SET}${SLUICE_UT_SET}") == "kafka:9092kafka:9092");

  auto unset_ref = ExpandEnv("${SLUICE_UT_UNSET}");
  REQUIRE_FALSE(unset_ref.ok());
  CHECK(unset_ref.status().code() == StatusCode::kInvalidConfig);
  CHECK_THAT(unset_ref.status().message(),
             Catch::Contains("environment variable 'SLUICE_UT_UNSET' is not set"));
  CHECK_THAT(ExpandEnv("${SLUICE_UT_SET").status().message(), Catch::Contains("unterminated"));
  CHECK_THAT(ExpandEnv("${1BAD}").status().message(),
             Catch::Contains("not a valid environment reference"));
  CHECK_FALSE(ExpandEnv("${}").ok());
}

TEST_CASE("environment references are expanded in node values before type checks",
          "[loader][env]") {
  EnvVar repeat("SLUICE_UT_REPEAT", "3");
  EnvVar table("SLUICE_UT_TABLE", "preds");
  EnvVar unset("SLUICE_UT_UNSET", nullptr);
  const std::string yaml =
      "name: env\n"
      "sources:\n"
      "  src:\n"
      "    type: file\n"
      "    path: data/in.jsonl\n"
      "    schema: s.json\n"
      "    repeat: ${SLUICE_UT_REPEAT}\n"
      "sinks:\n"
      "  db:\n"
      "    type: sqlite\n"
      "    inputs: [src]\n"
      "    path: ${SLUICE_UT_UNSET:-out}/x.db\n"
      "    table: ${SLUICE_UT_TABLE}_$$1\n";
  Diagnostics diags;
  auto decl = Parse(yaml, diags);
  INFO(AllText(diags));
  REQUIRE(decl);
  CHECK_FALSE(diags.HasErrors());
  CHECK(NodeNamed(*decl, "src").Int("repeat") == 3);
  CHECK(NodeNamed(*decl, "db").String("table") == "preds_$1");
  CHECK(NodeNamed(*decl, "db").Path("path") == "/base/pipes/out/x.db");
}

TEST_CASE("an expanded value that has the wrong type is rejected", "[loader][env]") {
  EnvVar repeat("SLUICE_UT_REPEAT", "often");
  const std::string yaml =
      "sources:\n"
      "  src: {type: file, path: in.jsonl, schema: s.json, repeat: '${SLUICE_UT_REPEAT}'}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [src]}\n";
  Diagnostics diags;
  Parse(yaml, diags);
  auto errs = ErrorsWith(diags, "'repeat' must be an integer, found 'often'");
  INFO(AllText(diags));
  REQUIRE(errs.size() == 1u);
  CHECK(errs[0].mark.ToString() == At(yaml, "'${SLUICE_UT_REPEAT}'"));
}

TEST_CASE("an unset variable is an error at the scalar's line:col", "[loader][env]") {
  EnvVar unset("SLUICE_UT_UNSET", nullptr);
  const std::string yaml =
      "name: env\n"
      "sources:\n"
      "  src:\n"
      "    type: file\n"
      "    path: ${SLUICE_UT_UNSET}/in.jsonl\n"
      "    schema: s.json\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [src]}\n";
  Diagnostics diags;
  Parse(yaml, diags);
  INFO(AllText(diags));
  auto errs = ErrorsWith(diags, "environment variable 'SLUICE_UT_UNSET' is not set");
  REQUIRE(errs.size() == 1u);
  CHECK(errs[0].mark.ToString() == At(yaml, "${SLUICE_UT_UNSET}"));
  CHECK(errs[0].mark.ToString() == "pipeline.yaml:5:11");
  CHECK(errs[0].ToString().rfind("pipeline.yaml:5:11: error: ", 0) == 0);
}

TEST_CASE("relative paths resolve against the pipeline file's folder", "[loader][paths]") {
  const std::string yaml =
      "sources:\n"
      "  src: {type: file, path: data/in.jsonl, schema: ../schemas/s.json}\n"
      "sinks:\n"
      "  a: {type: file, inputs: [src], path: /abs/out.jsonl}\n"
      "  b: {type: file, inputs: [src], path: ./out/./b.jsonl}\n"
      "dead_letter: {path: dl/rejects.jsonl}\n";
  Diagnostics diags;
  auto decl = Parse(yaml, diags, "/base/pipes");
  INFO(AllText(diags));
  REQUIRE(decl);
  CHECK_FALSE(diags.HasErrors());
  CHECK(NodeNamed(*decl, "src").Path("path") == "/base/pipes/data/in.jsonl");
  CHECK(NodeNamed(*decl, "src").Path("schema") == "/base/schemas/s.json");
  CHECK(NodeNamed(*decl, "a").Path("path") == "/abs/out.jsonl");
  CHECK(NodeNamed(*decl, "b").Path("path") == "/base/pipes/out/b.jsonl");
  CHECK(decl->settings.dead_letter_path == "/base/pipes/dl/rejects.jsonl");
  // "-" is standard input, never a file beside the pipeline.
  CHECK(ResolvePath("/base/pipes", "-") == "-");

  SECTION("ParsePipelineFile takes the folder of the file") {
    TempDir dir;
    std::string file = dir.Write("sub/p.yaml", yaml);
    Diagnostics d2;
    auto from_file = ParsePipelineFile(file, Builtins(), d2);
    REQUIRE(from_file);
    CHECK(from_file->file == file);
    CHECK(NodeNamed(*from_file, "src").Path("path") == dir.path() + "/sub/data/in.jsonl");
    CHECK(NodeNamed(*from_file, "src").Path("schema") == dir.path() + "/schemas/s.json");
    CHECK(from_file->settings.dead_letter_path == dir.path() + "/sub/dl/rejects.jsonl");
    // The pipeline's name defaults to the file's stem.
    CHECK(from_file->name == "p");
  }
}

TEST_CASE("a missing pipeline file is an error naming it", "[loader]") {
  Diagnostics diags;
  CHECK_FALSE(ParsePipelineFile("/nonexistent/sluice/p.yaml", Builtins(), diags));
  REQUIRE(diags.ErrorCount() == 1u);
  CHECK_THAT(diags.items()[0].message, Catch::Contains("'/nonexistent/sluice/p.yaml'"));
}

TEST_CASE("an unknown top-level key is reported at the key with a suggestion", "[loader]") {
  const std::string yaml =
      "name: t\n"
      "sources:\n"
      "  src: {type: file, path: in.jsonl, schema: s.json}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [src]}\n"
      "setings: {batch_size: 10}\n";
  Diagnostics diags;
  Parse(yaml, diags);
  INFO(AllText(diags));
  REQUIRE(diags.ErrorCount() == 1u);
  const Diagnostic& d = diags.items()[0];
  CHECK(d.mark.ToString() == At(yaml, "setings"));
  CHECK_THAT(d.message, Catch::StartsWith("unknown top-level key 'setings'") &&
                            Catch::Contains("(did you mean 'settings'?)"));
}

TEST_CASE("an unknown node key is reported at the key with a suggestion", "[loader]") {
  const std::string yaml =
      "sources:\n"
      "  src: {type: file, path: in.jsonl, schema: s.json}\n"
      "transforms:\n"
      "  features:\n"
      "    type: drop-fields\n"
      "    inputs: [src]\n"
      "    feilds: [id]\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [features]}\n";
  Diagnostics diags;
  Parse(yaml, diags);
  INFO(AllText(diags));
  auto unknown = ErrorsWith(diags, "unknown key 'feilds'");
  REQUIRE(unknown.size() == 1u);
  CHECK(unknown[0].mark.ToString() == At(yaml, "feilds"));
  CHECK(unknown[0].mark.ToString() == "pipeline.yaml:7:5");
  CHECK(unknown[0].node == "features");
  CHECK_THAT(unknown[0].message,
             Catch::StartsWith("drop-fields 'features': unknown key 'feilds'") &&
                 Catch::Contains("(did you mean 'fields'?)") &&
                 Catch::Contains("(keys: fields, type, inputs)"));
  // The misspelt key also leaves the required one missing, reported at the node.
  auto missing = ErrorsWith(diags, "missing required key 'fields'");
  REQUIRE(missing.size() == 1u);
  CHECK(missing[0].mark.ToString() == At(yaml, "type: drop-fields"));
  CHECK(diags.ErrorCount() == 2u);
}

TEST_CASE("a value of the wrong type is reported at the value", "[loader]") {
  struct Case {
    std::string node_yaml;  // goes under `transforms:` or `sources:` as given
    std::string value;      // the offending value, as written
    std::string message;
  };
  const std::string head = "sources:\n";
  const std::vector<Case> cases = {
      {"  src: {type: file, path: in.jsonl, schema: s.json, repeat: abc}\n", "abc",
       "file 'src': 'repeat' must be an integer, found 'abc'"},
      {"  src: {type: file, path: in.jsonl, schema: s.json, repeat: 1.5}\n", "1.5",
       "'repeat' must be an integer, found '1.5'"},
      {"  src: {type: file, path: in.jsonl, schema: s.json, csv_header: maybe}\n", "maybe",
       "'csv_header' must be true or false, found 'maybe'"},
      {"  src: {type: file, path: [a, b], schema: s.json}\n", "[a, b]",
       "'path' must be a string, found a list"},
      {"  src: {type: file, path: in.jsonl, schema: s.json, format: jsn}\n", "jsn",
       "'format' must be one of json, connect-json, csv, string, dataframe-split, found 'jsn' "
       "(did you mean 'json'?)"},
      {"  src: {type: file, path: in.jsonl, schema: s.json}\ntransforms:\n"
       "  t: {type: drop-fields, inputs: [src], fields: {a: b}}\n",
       "{a: b}", "drop-fields 't': 'fields' must be a list of strings, found a mapping"},
      {"  src: {type: file, path: in.jsonl, schema: s.json}\ntransforms:\n"
       "  t: {type: drop-fields, inputs: [src], fields: [a, [b]]}\n",
       "[b]]", "'fields' must be a list of strings, but item 2 is a list"},
      {"  src: {type: file, path: in.jsonl, schema: s.json}\ntransforms:\n"
       "  t: {type: predict, inputs: [src], model: m, outputs: [label]}\n",
       "[label]", "'outputs' must be a mapping of strings, found a list"},
      {"  src: {type: file, path: in.jsonl, schema: s.json}\ntransforms:\n"
       "  t: {type: rename, inputs: [src], fields: {a: [b]}}\n",
       "[b]}", "'fields' must be a mapping of strings, but the value of 'a' is a list"},
  };
  for (const auto& c : cases) {
    const std::string yaml = head + c.node_yaml + "sinks:\n  out: {type: stdout, inputs: [src]}\n";
    Diagnostics diags;
    Parse(yaml, diags);
    INFO(yaml);
    INFO(AllText(diags));
    auto errs = ErrorsWith(diags, c.message);
    REQUIRE(errs.size() == 1u);
    CHECK(errs[0].mark.ToString() == At(yaml, c.value));
  }
}

TEST_CASE("a key with a wrong value is reported once, not again by the operator", "[loader]") {
  // A node with bad keys is not planned: its operator would read the bad value through the
  // typed getter (Int("repeat") -> 0) and add "'repeat' must be at least 1" at the same place.
  const std::string yaml =
      "sources:\n"
      "  src: {type: file, path: data/iris_data.jsonl, schema: ../schemas/iris_data.json,\n"
      "        repeat: abc}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [src]}\n";
  Loaded l = Load(yaml);
  INFO(l.Text());
  CHECK(l.ErrorsWith("'repeat' must be an integer, found 'abc'").size() == 1u);
  CHECK(l.diags.ErrorCount() == 1u);
}

TEST_CASE("a missing required key is reported at the node", "[loader]") {
  const std::string yaml =
      "sources:\n"
      "  src: {type: file, schema: s.json}\n"
      "sinks:\n"
      "  out: {type: stdout}\n";
  Diagnostics diags;
  Parse(yaml, diags);
  INFO(AllText(diags));
  auto path = ErrorsWith(diags, "file 'src': missing required key 'path'");
  REQUIRE(path.size() == 1u);
  CHECK(path[0].mark.ToString() == At(yaml, "{type: file"));
  CHECK_THAT(path[0].message, Catch::Contains("(file to read;"));
  auto inputs = ErrorsWith(diags, "stdout 'out': missing required key 'inputs'");
  REQUIRE(inputs.size() == 1u);
  CHECK(inputs[0].mark.ToString() == At(yaml, "{type: stdout"));
  CHECK(diags.ErrorCount() == 2u);
}

TEST_CASE("node types are checked against the registry and the section", "[loader]") {
  const std::string yaml =
      "sources:\n"
      "  src: {type: fiel, path: in.jsonl, schema: s.json}\n"
      "transforms:\n"
      "  t: {type: sqlite, inputs: [src]}\n"
      "  u: 5\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [t]}\n";
  Diagnostics diags;
  Parse(yaml, diags);
  INFO(AllText(diags));
  auto unknown = ErrorsWith(diags, "node 'src': unknown source type 'fiel', did you mean 'file'?");
  REQUIRE(unknown.size() == 1u);
  CHECK(unknown[0].mark.ToString() == At(yaml, "fiel"));
  CHECK_THAT(unknown[0].message, Catch::Contains("(known sources: file, http, kafka, postgres)"));
  auto role = ErrorsWith(diags, "node 't': 'sqlite' is a sink, not a transform");
  REQUIRE(role.size() == 1u);
  CHECK(role[0].mark.ToString() == At(yaml, "sqlite"));
  auto scalar = ErrorsWith(diags, "node 'u' must be a mapping with a 'type' key, found a scalar");
  REQUIRE(scalar.size() == 1u);
  CHECK(scalar[0].mark.ToString() == At(yaml, "5"));
  CHECK(diags.ErrorCount() == 3u);
}

TEST_CASE("a node without a type is an error at the node", "[loader]") {
  // Regression: a node without `type` once made the whole file fail with yaml-cpp's
  // "invalid node" and no line:col.
  const std::string yaml =
      "sources:\n"
      "  src: {type: file, path: in.jsonl, schema: s.json}\n"
      "transforms:\n"
      "  v: {inputs: [src], fields: [id]}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [v]}\n";
  Diagnostics diags;
  std::optional<PipelineDecl> decl;
  CHECK_NOTHROW(decl = Parse(yaml, diags));
  INFO(AllText(diags));
  CHECK(decl.has_value());
  auto no_type = ErrorsWith(diags,
                            "node 'v' has no 'type' (one of: drop-fields, filter, flatten, "
                            "map, predict, rename, select)");
  REQUIRE(no_type.size() == 1u);
  CHECK(no_type[0].mark.ToString() == At(yaml, "{inputs"));
  CHECK(diags.ErrorCount() == 1u);
}

TEST_CASE("a node name used twice is an error at the second use", "[loader]") {
  SECTION("across sections") {
    const std::string yaml =
        "sources:\n"
        "  data: {type: file, path: in.jsonl, schema: s.json}\n"
        "sinks:\n"
        "  data: {type: stdout, inputs: [data]}\n";
    Diagnostics diags;
    auto decl = Parse(yaml, diags);
    INFO(AllText(diags));
    auto errs = ErrorsWith(diags, "node name 'data' is used twice");
    REQUIRE(errs.size() == 1u);
    CHECK(errs[0].mark.ToString() == At(yaml, "data:", 1));
  }
  SECTION("within one section (yaml-cpp keeps duplicate keys): reported once, as a key") {
    const std::string yaml =
        "sources:\n"
        "  data: {type: file, path: in.jsonl, schema: s.json}\n"
        "  data: {type: file, path: other.jsonl, schema: s.json}\n"
        "sinks:\n"
        "  out: {type: stdout, inputs: [data]}\n";
    Diagnostics diags;
    Parse(yaml, diags);
    INFO(AllText(diags));
    auto errs = ErrorsWith(diags, "key 'data' is given twice in this mapping (first at 2:3)");
    REQUIRE(errs.size() == 1u);
    CHECK(diags.ErrorCount() == 1u);
    CHECK(errs[0].mark.ToString() == "pipeline.yaml:3:3");
  }
}

TEST_CASE("invalid YAML is an error with its line:col", "[loader]") {
  SECTION("a tab in indentation") {
    const std::string yaml =
        "name: t\n"
        "sources:\n"
        "\tsrc: {type: file}\n";
    Diagnostics diags;
    CHECK_FALSE(Parse(yaml, diags));
    REQUIRE(diags.ErrorCount() == 1u);
    CHECK(diags.items()[0].mark.line == 3);
    CHECK_THAT(diags.items()[0].message, Catch::StartsWith("invalid YAML: "));
  }
  SECTION("a map value where none may be") {
    const std::string yaml = "name: t\nsources: a: b\n";
    Diagnostics diags;
    CHECK_FALSE(Parse(yaml, diags));
    REQUIRE(diags.ErrorCount() == 1u);
    CHECK(diags.items()[0].mark.ToString() == "pipeline.yaml:2:11");
    CHECK(diags.items()[0].message == "invalid YAML: illegal map value");
  }
  SECTION("not a mapping at all") {
    Diagnostics diags;
    CHECK_FALSE(Parse("- a\n- b\n", diags));
    REQUIRE(diags.ErrorCount() == 1u);
    CHECK_THAT(diags.items()[0].message,
               Catch::Contains("a pipeline file is a mapping with 'sources'"));
  }
}

TEST_CASE("sources and sinks are required, transforms are not", "[loader]") {
  Diagnostics diags;
  auto decl = Parse("name: empty\n", diags);
  REQUIRE(decl);
  CHECK(diags.ErrorCount() == 2u);
  CHECK(ErrorsWith(diags, "missing 'sources'").size() == 1u);
  CHECK(ErrorsWith(diags, "missing 'sinks'").size() == 1u);
  CHECK(ErrorsWith(diags, "transforms").empty());
}

TEST_CASE("settings are validated", "[loader][settings]") {
  const std::string tail =
      "sources:\n"
      "  src: {type: file, path: in.jsonl, schema: s.json}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [src]}\n";
  SECTION("defaults") {
    Diagnostics diags;
    auto decl = Parse("name: demo\n" + tail, diags);
    REQUIRE(decl);
    CHECK(decl->settings.batch_size == 1024);
    CHECK(decl->settings.max_in_flight == 8);
    // Named after the pipeline. (Which folder it lands in by default is not pinned here.)
    CHECK_THAT(decl->settings.dead_letter_path, Catch::EndsWith("demo.dead-letter.jsonl"));
  }
  SECTION("values in range are taken") {
    Diagnostics diags;
    auto decl = Parse("settings: {batch_size: 500, max_in_flight: 1000000}\n" + tail, diags);
    REQUIRE(decl);
    INFO(AllText(diags));
    CHECK_FALSE(diags.HasErrors());
    CHECK(decl->settings.batch_size == 500);
    CHECK(decl->settings.max_in_flight == 1000000);
  }
  SECTION("out of range or not an integer") {
    for (std::string bad : {"0", "-5", "1000001", "abc", "2.5", "[1]"}) {
      const std::string yaml = "settings:\n  batch_size: " + bad + "\n" + tail;
      Diagnostics diags;
      auto decl = Parse(yaml, diags);
      INFO(yaml);
      INFO(AllText(diags));
      REQUIRE(decl);
      REQUIRE(diags.ErrorCount() == 1u);
      CHECK_THAT(diags.items()[0].message,
                 Catch::StartsWith("settings: 'batch_size' must be an integer from 1 to 1000000, "
                                   "found "));
      CHECK(diags.items()[0].mark.ToString() == "pipeline.yaml:2:15");
      CHECK(decl->settings.batch_size == 1024);
    }
  }
  SECTION("unknown key") {
    const std::string yaml = "settings: {batch_sise: 10}\n" + tail;
    Diagnostics diags;
    Parse(yaml, diags);
    REQUIRE(diags.ErrorCount() == 1u);
    CHECK(diags.items()[0].mark.ToString() == At(yaml, "batch_sise"));
    CHECK_THAT(diags.items()[0].message,
               Catch::Contains("unknown key 'batch_sise' (did you mean 'batch_size'?)"));
  }
  SECTION("not a mapping") {
    Diagnostics diags;
    Parse("settings: 5\n" + tail, diags);
    REQUIRE(diags.ErrorCount() == 1u);
    CHECK(diags.items()[0].message == "'settings' must be a mapping, found a scalar");
  }
}

TEST_CASE("a batch_size beyond int64 is an error, not an exception", "[loader][settings]") {
  // Regression: an integer beyond int64 once threw std::out_of_range out of the loader.
  const std::string yaml =
      "settings: {batch_size: 99999999999999999999}\n"
      "sources:\n"
      "  src: {type: file, path: in.jsonl, schema: s.json}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [src]}\n";
  Diagnostics diags;
  std::optional<PipelineDecl> decl;
  CHECK_NOTHROW(decl = Parse(yaml, diags));
  CHECK(ErrorsWith(diags, "'batch_size' must be an integer from 1 to 1000000").size() == 1u);
}

TEST_CASE("dead_letter is validated", "[loader][settings]") {
  const std::string tail =
      "sources:\n"
      "  src: {type: file, path: in.jsonl, schema: s.json}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [src]}\n";
  SECTION("path resolves against the pipeline's folder") {
    Diagnostics diags;
    auto decl = Parse("dead_letter: {path: ../dl.jsonl}\n" + tail, diags, "/base/pipes");
    REQUIRE(decl);
    CHECK_FALSE(diags.HasErrors());
    CHECK(decl->settings.dead_letter_path == "/base/dl.jsonl");
  }
  SECTION("unknown key") {
    const std::string yaml = "dead_letter: {file: x.jsonl}\n" + tail;
    Diagnostics diags;
    Parse(yaml, diags);
    REQUIRE(diags.ErrorCount() == 1u);
    CHECK(diags.items()[0].mark.ToString() == At(yaml, "file:"));
    CHECK(diags.items()[0].message == "dead_letter: unknown key 'file' (keys: path)");
  }
  SECTION("empty path") {
    const std::string yaml = "dead_letter: {path: ''}\n" + tail;
    Diagnostics diags;
    Parse(yaml, diags);
    REQUIRE(diags.ErrorCount() == 1u);
    CHECK(diags.items()[0].message == "dead_letter: 'path' must be a file name, found ''");
  }
  SECTION("not a mapping") {
    Diagnostics diags;
    Parse("dead_letter: out.jsonl\n" + tail, diags);
    REQUIRE(diags.ErrorCount() == 1u);
    CHECK_THAT(diags.items()[0].message, Catch::Contains("'dead_letter' must be a mapping"));
  }
}

TEST_CASE("an inputs list that is empty is an error", "[loader]") {
  const std::string yaml =
      "sources:\n"
      "  src: {type: file, path: in.jsonl, schema: s.json}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: []}\n";
  Diagnostics diags;
  Parse(yaml, diags);
  INFO(AllText(diags));
  auto errs = ErrorsWith(diags, "'inputs' is empty");
  REQUIRE(errs.size() == 1u);
  CHECK(errs[0].mark.ToString() == At(yaml, "[]"));
}

TEST_CASE("a single input may be written as a string", "[loader]") {
  const std::string yaml =
      "sources:\n"
      "  src: {type: file, path: in.jsonl, schema: s.json}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: src}\n";
  Diagnostics diags;
  auto decl = Parse(yaml, diags);
  REQUIRE(decl);
  CHECK_FALSE(diags.HasErrors());
  CHECK(NodeNamed(*decl, "out").inputs == std::vector<std::string>{"src"});
  CHECK(NodeNamed(*decl, "out").input_marks.at(0).ToString() == At(yaml, "src}"));
}
