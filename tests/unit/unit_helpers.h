// Helpers shared by the unit tests: the built-in registry, parsing and planning pipeline text,
// locating a token's line:col in that text (so marks are checked against the text, not against
// hand-counted numbers), temporary folders, and raw records for decoders.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "engine/batch.h"
#include "engine/pipeline.h"
#include "operators/builtin.h"

namespace sluice::test {

inline const std::string kSourceDir = SLUICE_SOURCE_DIR;
inline const std::string kPipelinesDir = kSourceDir + "/pipelines";
inline const std::string kIrisSchema = kSourceDir + "/schemas/iris_data.json";
inline const std::string kIrisModel = kSourceDir + "/models/iris";
inline const std::string kFile = "pipeline.yaml";  // the file name pipeline text is parsed as

inline const Registry& Builtins() {
  static const Registry* registry = [] {
    auto* r = new Registry;
    RegisterBuiltinOperators(*r);
    return r;
  }();
  return *registry;
}

// A fresh folder under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("sluice-unit-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string path() const { return path_.string(); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  std::string Write(const std::string& name, const std::string& content) const {
    std::string p = File(name);
    std::filesystem::create_directories(std::filesystem::path(p).parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

 private:
  std::filesystem::path path_;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) out.push_back(line);
  return out;
}

// "pipeline.yaml:L:C" of the `nth` occurrence of `needle` in `text`, moved `skip` characters
// further (1-based, as marks are).
inline std::string At(const std::string& text, std::string_view needle, int nth = 0,
                      size_t skip = 0) {
  size_t pos = text.find(needle);
  for (int i = 0; i < nth && pos != std::string::npos; ++i) pos = text.find(needle, pos + 1);
  if (pos == std::string::npos) return "<'" + std::string(needle) + "' not in the text>";
  pos += skip;
  int line = 1, col = 1;
  for (size_t i = 0; i < pos; ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return kFile + ":" + std::to_string(line) + ":" + std::to_string(col);
}

// The result of parsing and planning pipeline text.
struct Loaded {
  Diagnostics diags;
  std::unique_ptr<Plan> plan;  // null when parsing failed

  std::vector<Diagnostic> Errors() const { return Of(Severity::kError); }
  std::vector<Diagnostic> Warnings() const { return Of(Severity::kWarning); }
  // Every diagnostic, one per line: for INFO() so a failing check shows what was reported.
  std::string Text() const {
    std::string out;
    for (const auto& d : diags.items()) out += d.ToString() + "\n";
    return out.empty() ? "(no diagnostics)" : out;
  }
  // The errors whose message contains `part`.
  std::vector<Diagnostic> ErrorsWith(std::string_view part) const {
    std::vector<Diagnostic> out;
    for (const auto& d : Errors())
      if (d.message.find(part) != std::string::npos) out.push_back(d);
    return out;
  }
  const PlannedNode& Node(const std::string& name) const {
    return plan->nodes.at(static_cast<size_t>(plan->IndexOf(name)));
  }
  const NodeConfig& Config(const std::string& name) const {
    return plan->decl.nodes.at(static_cast<size_t>(plan->IndexOf(name)));
  }

 private:
  std::vector<Diagnostic> Of(Severity s) const {
    std::vector<Diagnostic> out;
    for (const auto& d : diags.items())
      if (d.severity == s) out.push_back(d);
    return out;
  }
};

inline Loaded Load(const std::string& yaml, const std::string& base_dir = kPipelinesDir) {
  Loaded out;
  auto decl = ParsePipelineText(yaml, kFile, base_dir, Builtins(), out.diags);
  if (decl) out.plan = PlanPipeline(std::move(*decl), out.diags);
  return out;
}

// Raw records as a source would read them: positions 1..n, origin "test", and room after the
// last record as the file source leaves it.
inline std::shared_ptr<RawRecords> Raw(const std::vector<std::string>& lines,
                                       const std::string& header = "") {
  auto raw = std::make_shared<RawRecords>();
  raw->origin = "test";
  raw->header = header;
  raw->offsets.push_back(0);
  int64_t pos = 0;
  for (const auto& l : lines) raw->Add(l, ++pos);
  raw->data.reserve(raw->data.size() + 64);
  return raw;
}

// One iris_data row as a JSON object (every field of schemas/iris_data.json).
inline std::string IrisRow(int id, double sl, double sw, double pl, double pw, int target = 0) {
  std::ostringstream s;
  s << R"({"id":)" << id << R"(,"timestamp":"2026-01-01T00:00:0)" << (id % 10) << R"(Z")"
    << R"(,"sepal_length":)" << sl << R"(,"sepal_width":)" << sw << R"(,"petal_length":)" << pl
    << R"(,"petal_width":)" << pw << R"(,"target":)" << target << "}";
  return s.str();
}

// The iris source and the feature/classify chain most planning tests build on; paths are
// relative to pipelines/, as in the shipped pipelines.
inline const std::string kIrisSourceYaml =
    "sources:\n"
    "  iris_data: {type: file, path: data/iris_data.jsonl, format: connect-json,\n"
    "              schema: ../schemas/iris_data.json}\n";

// A JSON Schema with the four iris features, all nullable, plus an id.
inline const std::string kNullableFeaturesSchema = R"({
  "type": "object",
  "properties": {
    "id": {"type": "integer"},
    "sepal_length": {"type": ["number", "null"]},
    "sepal_width": {"type": ["number", "null"]},
    "petal_length": {"type": ["number", "null"]},
    "petal_width": {"type": ["number", "null"]}
  },
  "required": ["id"]
})";

}  // namespace sluice::test
