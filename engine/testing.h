// In-memory execution of a pipeline's decoders and transforms, with no reader and no sink
// opened: what `sluice test` and the golden tests use to push records in at one node and see
// what reaches another, predictions included, with no server running.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/dead_letter.h"
#include "engine/pipeline.h"

namespace sluice {

class InMemoryRun {
 public:
  // Builds the decoders and transform runtimes of a valid plan.
  static Result<std::unique_ptr<InMemoryRun>> Build(Plan& plan);

  // Sends raw records (lines in the source's format) into a source node.
  Status InjectLines(const std::string& node, const std::vector<std::string>& lines);
  // Sends rows, as JSON objects, into any node: for a source they are rows of its output
  // schema; for a transform or sink, rows of its input schema.
  Status InjectRecords(const std::string& node, const std::vector<std::string>& json_objects);

  // Rows that left `node` (sources and transforms) or reached it (sinks), as JSON objects in
  // schema order.
  Result<std::vector<std::string>> Rows(const std::string& node) const;
  const MemoryDeadLetter& dead_letters() const { return dead_letters_; }

 private:
  explicit InMemoryRun(Plan& plan) : plan_(plan) {}
  Status Deliver(int node, const BatchPtr& batch);
  Status Emit(int node, const BatchPtr& batch);

  Plan& plan_;
  MemoryDeadLetter dead_letters_;
  std::vector<std::unique_ptr<NodeContext>> contexts_;
  std::vector<std::unique_ptr<Decoder>> decoders_;
  std::vector<std::unique_ptr<TransformRuntime>> transforms_;
  std::map<int, std::vector<BatchPtr>> seen_;
};

struct TestCaseResult {
  std::string name;
  Mark mark;
  std::vector<std::string> failures;  // empty when the case passed
};

// Runs the `tests:` cases of a planned pipeline (see docs/testing.md for the format).
std::vector<TestCaseResult> RunPipelineTests(Plan& plan, const YAML::Node& tests,
                                             const std::string& file);

// Converts a YAML value to JSON text: quoted scalars are strings; plain scalars are numbers,
// booleans or null when they read as such.
std::string YamlToJson(const YAML::Node& node);

}  // namespace sluice
