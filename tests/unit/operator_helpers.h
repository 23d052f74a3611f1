// Helpers for the per-operator unit tests: running a small pipeline in memory, reading fields of
// the JSON rows it produces, and building input batches for a node.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <simdjson.h>
#include <catch2/catch.hpp>

#include "engine/formats.h"
#include "engine/testing.h"
#include "unit_helpers.h"

namespace sluice::test {

// The minified JSON value of `key` in the JSON object `row` ("<absent>" when it has none).
inline std::string Get(const std::string& row, const std::string& key) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(row);
  simdjson::dom::element doc, value;
  if (parser.parse(padded).get(doc)) return "<not JSON>";
  if (doc[key].get(value)) return "<absent>";
  return simdjson::minify(value);
}

inline double GetDouble(const std::string& row, const std::string& key) {
  return std::stod(Get(row, key));
}

// A planned pipeline and its in-memory run.
struct Running {
  Loaded loaded;
  std::unique_ptr<InMemoryRun> run;

  std::vector<std::string> Rows(const std::string& node) const {
    auto r = run->Rows(node);
    REQUIRE(r.ok());
    return *r;
  }
};

inline Running Start(const std::string& yaml, const std::string& base_dir = kPipelinesDir) {
  Running r{Load(yaml, base_dir), nullptr};
  INFO(r.loaded.Text());
  REQUIRE(r.loaded.plan);
  REQUIRE_FALSE(r.loaded.diags.HasErrors());
  auto built = InMemoryRun::Build(*r.loaded.plan);
  REQUIRE(built.ok());
  r.run = std::move(*built);
  return r;
}

// The first `n` lines of the shipped iris data (Kafka Connect envelopes).
inline std::vector<std::string> IrisLines(size_t n) {
  auto all = Lines(ReadFile(kPipelinesDir + "/data/iris_data.jsonl"));
  all.resize(n);
  return all;
}

// A batch of `node`'s input, decoded from JSON rows.
inline std::shared_ptr<Batch> InputBatch(const Loaded& l, const std::string& node,
                                         const std::vector<std::string>& rows) {
  MemoryDeadLetter dl;
  NodeContext ctx("test", &dl);
  auto decoded =
      MakeFormatDecoder(Format::kJson, l.Node(node).input_schema)->Decode(Raw(rows), ctx);
  REQUIRE(decoded.ok());
  REQUIRE(dl.records().empty());
  return *decoded;
}

inline const std::string kTransforms =
    "name: t\n" + kIrisSourceYaml +
    "transforms:\n"
    "  features: {type: drop-fields, inputs: [iris_data], fields: [id, target]}\n"
    "  pick: {type: select, inputs: [iris_data], fields: [petal_width, id]}\n"
    "  ren: {type: rename, inputs: [iris_data], fields: {sepal_length: sl, target: species}}\n"
    "sinks:\n"
    "  a: {type: stdout, inputs: [features]}\n"
    "  b: {type: stdout, inputs: [pick]}\n"
    "  c: {type: stdout, inputs: [ren]}\n";

}  // namespace sluice::test
