// Loading and planning a pipeline file. Parse turns YAML into node configs (env expanded, keys
// checked against operator specs, no I/O); plan instantiates the operators, checks the graph
// (inputs, cycles, unwired nodes) and propagates schemas from sources to sinks. Both collect every
// problem into Diagnostics rather than stopping at the first.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "engine/config.h"
#include "engine/operator.h"

namespace sluice {

enum class Severity { kError, kWarning };

struct Diagnostic {
  Severity severity = Severity::kError;
  Mark mark;
  std::string node;
  std::string message;           // includes the node prefix where there is one
  std::string ToString() const;  // "file:l:c: error: message"
};

class Diagnostics {
 public:
  void Error(const Mark& mark, std::string node, std::string message);
  void Warning(const Mark& mark, std::string node, std::string message);
  // Adds a status whose message already starts with "file:l:c: ".
  void AddStatus(const Status& status, const Mark& fallback, std::string node);
  bool HasErrors() const;
  size_t ErrorCount() const;
  const std::vector<Diagnostic>& items() const { return items_; }
  // By file, line and column: the order a reader of the file expects.
  std::vector<Diagnostic> Sorted() const;

 private:
  std::vector<Diagnostic> items_;
};

struct PipelineSettings {
  int64_t batch_size = 1024;     // records per batch read from a source
  int64_t max_in_flight = 8;     // batches per source between read and acknowledgement
  std::string dead_letter_path;  // JSONL file for rejected rows
  Mark dead_letter_mark;         // of `dead_letter.path`, or the file alone when defaulted
};

struct PipelineDecl {
  std::string name;
  std::string file;      // as given, for messages
  std::string base_dir;  // folder of the file
  std::shared_ptr<const std::string> text;  // the file's text, for marks inside scalars
  std::string description;
  PipelineSettings settings;
  std::vector<NodeConfig> nodes;  // sources, then transforms, then sinks, in file order
  YAML::Node tests;               // the `tests:` section, if any

  int IndexOf(const std::string& name) const;
};

// Expands ${VAR} and ${VAR:-default} ($$ is a literal $). Unset variables without a default are
// an error.
Result<std::string> ExpandEnv(const std::string& text);

std::optional<PipelineDecl> ParsePipelineFile(const std::string& path, const Registry& registry,
                                              Diagnostics& diags);
std::optional<PipelineDecl> ParsePipelineText(const std::string& text, const std::string& file,
                                              const std::string& base_dir, const Registry& registry,
                                              Diagnostics& diags);

struct PlannedNode {
  const NodeConfig* cfg = nullptr;
  std::unique_ptr<SourceNode> source;
  std::unique_ptr<TransformNode> transform;
  std::unique_ptr<SinkNode> sink;
  std::vector<int> inputs;
  std::vector<int> outputs;
  SchemaPtr input_schema;   // transforms and sinks
  SchemaPtr output_schema;  // sources and transforms
  bool ok = false;          // parsed and planned without error
};

struct Plan {
  PipelineDecl decl;
  std::vector<PlannedNode> nodes;  // same order as decl.nodes
  std::vector<int> topo;           // a topological order of all nodes

  int IndexOf(const std::string& name) const { return decl.IndexOf(name); }
  // Number of distinct paths from node `from` to any sink: how many acknowledgements a batch
  // emitted by `from` needs.
  int SinkPaths(int from) const;
  // Nodes reachable downstream of `from` (sinks and transforms), and the sources upstream of it.
  std::vector<int> Downstream(int from) const;
  std::vector<int> Upstream(int from) const;
  // The sink downstream of source `source` that commits its positions (exactly-once), or -1.
  int PositionsCommittedBy(int source) const;
};

// Plans a parsed pipeline. Returns null only when the graph cannot be formed at all; otherwise
// the plan is returned and diags says whether it is valid.
std::unique_ptr<Plan> PlanPipeline(PipelineDecl decl, Diagnostics& diags);

}  // namespace sluice
