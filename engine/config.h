// Node configuration as the loader hands it to operators: the YAML mapping of one node, with
// `${VAR}` already expanded, every key checked against the operator's declared spec, and the
// file:line:col of every value kept for error messages.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "engine/status.h"

namespace sluice {

// A place in a pipeline file, 1-based.
struct Mark {
  std::string file;
  int line = 0;
  int column = 0;

  static Mark Of(const std::string& file, const YAML::Node& node);
  std::string ToString() const;  // "file:line:col", or "file" when line is unknown
};

enum class Role { kSource, kTransform, kSink };
const char* RoleName(Role role);

// The types a config key can have; they drive validation, docs and the JSON Schema.
enum class ConfigType {
  kString,
  kInt,
  kFloat,
  kBool,
  kPath,        // a string resolved against the pipeline file's folder
  kStringList,  // [a, b]
  kStringMap,   // {key: value}
  kAny,         // structured; the operator checks it
};
const char* ConfigTypeName(ConfigType type);

struct ConfigField {
  std::string name;
  ConfigType type = ConfigType::kString;
  bool required = false;
  std::string default_value;         // as YAML text; empty when none
  std::string description;           // one line
  std::vector<std::string> choices;  // allowed values of a string, when closed
};

struct OperatorSpec;

class NodeConfig {
 public:
  std::string name;  // the node's key in its section
  std::string type;  // the operator name
  std::string pipeline;  // the pipeline's name (its `name`, or the file's stem)
  Role role = Role::kTransform;
  Mark mark;             // where the node's mapping starts
  std::string base_dir;  // folder of the pipeline file, for relative paths
  std::vector<std::string> inputs;
  std::vector<Mark> input_marks;
  YAML::Node node;  // the node's mapping, env-expanded
  // The pipeline file's text as read, so a message can point inside a scalar (an expression).
  std::shared_ptr<const std::string> source_text;
  const OperatorSpec* spec = nullptr;
  bool keys_ok = true;  // every key known and of its declared type

  bool Has(const std::string& key) const;
  // Typed getters: the loader has checked types, so these only fall back to the spec default.
  std::string String(const std::string& key) const;
  int64_t Int(const std::string& key) const;
  double Float(const std::string& key) const;
  bool Bool(const std::string& key) const;
  std::vector<std::string> StringList(const std::string& key) const;
  std::vector<std::pair<std::string, std::string>> StringMap(const std::string& key) const;
  // A path key resolved against the pipeline file's folder.
  std::string Path(const std::string& key) const;
  // The key's YAML value; a null node when absent.
  YAML::Node Raw(const std::string& key) const {
    return Has(key) ? YAML::Node(node[key]) : YAML::Node();
  }

  // Where a key's value is, or the node itself when the key is absent.
  Mark MarkOf(const std::string& key) const;
  // "file:l:c: <type> '<name>': <message>" as an invalid-config status.
  Status Error(const std::string& key, const std::string& message) const;
  std::string Prefix() const;  // "<type> '<name>'"

 private:
  const ConfigField* FieldSpec(const std::string& key) const;
};

// Resolve `path` against `base_dir` unless it is absolute.
std::string ResolvePath(const std::string& base_dir, const std::string& path);

// Creates the folder an output file will be written in, if it does not exist yet.
Status EnsureParentDir(const std::string& path);
// `sluice validate --connect`: whether this process could write `path` (an existing file must
// be writable; otherwise the nearest existing folder on its way, under which the rest would be
// created, must be). Touches nothing. Returns what it found, or the problem.
Result<std::string> CheckWritable(const std::string& path);

}  // namespace sluice
