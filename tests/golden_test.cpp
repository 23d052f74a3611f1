// Data-driven golden tests: one Catch2 test case per folder under tests/golden/<area>/<case>/,
// registered at start-up. A case holds `pipeline.yaml` and either
//   expected_error.txt  every diagnostic `sluice validate` prints, one per line, or
//   input.jsonl + expected.jsonl  lines fed to the pipeline's source and the rows that reach its
//                                 first sink (in memory, as `sluice test` runs them), with an
//                                 optional expected_dead_letters.txt of "node: reason" lines.
// Set SLUICE_GOLDEN_UPDATE=1 to rewrite the expected files from the current output.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "engine/pipeline.h"
#include "engine/testing.h"
#include "operators/builtin.h"

namespace fs = std::filesystem;
using namespace sluice;

namespace {

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

bool Updating() {
  const char* v = std::getenv("SLUICE_GOLDEN_UPDATE");
  return v && *v && std::string(v) != "0";
}

// Runs in the case's folder so messages carry short, stable paths.
class CaseDir {
 public:
  explicit CaseDir(const fs::path& dir) : old_(fs::current_path()) { fs::current_path(dir); }
  ~CaseDir() { fs::current_path(old_); }

 private:
  fs::path old_;
};

void RunGoldenCase(const fs::path& dir) {
  CaseDir cd(dir);
  Registry registry;
  RegisterBuiltinOperators(registry);
  Diagnostics diags;
  auto decl = ParsePipelineText(ReadFile("pipeline.yaml"), "pipeline.yaml", "", registry, diags);
  std::unique_ptr<Plan> plan;
  if (decl) plan = PlanPipeline(std::move(*decl), diags);
  std::vector<std::string> problems;
  for (const auto& d : diags.Sorted()) problems.push_back(d.ToString());

  if (!fs::exists("input.jsonl")) {
    if (Updating()) {
      std::ofstream("expected_error.txt") << Join(problems);
      return;
    }
    REQUIRE(fs::exists("expected_error.txt"));
    CHECK(Join(problems) == Join(Lines(ReadFile("expected_error.txt"))));
    CHECK(diags.HasErrors());
    return;
  }

  INFO(Join(problems));
  REQUIRE(plan);
  REQUIRE_FALSE(diags.HasErrors());
  int source = -1, sink = -1;
  for (size_t i = 0; i < plan->nodes.size(); ++i) {
    if (plan->nodes[i].cfg->role == Role::kSource && source < 0) source = static_cast<int>(i);
    if (plan->nodes[i].cfg->role == Role::kSink && sink < 0) sink = static_cast<int>(i);
  }
  REQUIRE(source >= 0);
  REQUIRE(sink >= 0);
  auto run = InMemoryRun::Build(*plan);
  REQUIRE(run.ok());
  Status st = (*run)->InjectLines(plan->decl.nodes[source].name, Lines(ReadFile("input.jsonl")));
  REQUIRE(st.ok());
  auto rows = (*run)->Rows(plan->decl.nodes[sink].name);
  REQUIRE(rows.ok());
  std::vector<std::string> dead;
  for (const auto& d : (*run)->dead_letters().records()) dead.push_back(d.node + ": " + d.reason);
  if (Updating()) {
    std::ofstream("expected.jsonl") << Join(*rows);
    if (!dead.empty()) {
      std::ofstream("expected_dead_letters.txt") << Join(dead);
    } else {
      fs::remove("expected_dead_letters.txt");
    }
    return;
  }
  CHECK(Join(*rows) == Join(Lines(ReadFile("expected.jsonl"))));
  std::string expected_dead =
      fs::exists("expected_dead_letters.txt") ? ReadFile("expected_dead_letters.txt") : "";
  CHECK(Join(dead) == Join(Lines(expected_dead)));
}

class GoldenInvoker : public Catch::ITestInvoker {
 public:
  explicit GoldenInvoker(fs::path dir) : dir_(std::move(dir)) {}
  void invoke() const override { RunGoldenCase(dir_); }

 private:
  fs::path dir_;
};

// Catch2 keeps StringRefs to names and tags, so they must outlive the session.
std::vector<std::unique_ptr<std::string>>& Strings() {
  static std::vector<std::unique_ptr<std::string>> s;
  return s;
}
const char* Keep(std::string s) {
  Strings().push_back(std::make_unique<std::string>(std::move(s)));
  return Strings().back()->c_str();
}

const int kRegistered = [] {
  fs::path root = fs::path(SLUICE_SOURCE_DIR) / "tests" / "golden";
  std::vector<fs::path> cases;
  for (const auto& area : fs::directory_iterator(root)) {
    if (!area.is_directory()) continue;
    for (const auto& c : fs::directory_iterator(area.path())) {
      if (c.is_directory() && fs::exists(c.path() / "pipeline.yaml")) cases.push_back(c.path());
    }
  }
  std::sort(cases.begin(), cases.end());
  for (const auto& c : cases) {
    std::string area = c.parent_path().filename().string();
    const char* name = Keep(area + "/" + c.filename().string());
    const char* tags = Keep("[golden][" + area + "]");
    Catch::AutoReg(new GoldenInvoker(c), Catch::SourceLineInfo(Keep(c.string()), 1), "",
                   Catch::NameAndTags{name, tags});
  }
  return static_cast<int>(cases.size());
}();

}  // namespace
