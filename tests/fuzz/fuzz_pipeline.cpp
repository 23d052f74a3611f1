// libFuzzer target: the pipeline YAML loader and validator, as `sluice validate` runs them
// (parse, then plan: schemas, types through the graph, model signatures). Relative paths
// resolve against the shipped pipelines' folder, so the seed corpus (pipelines/*.yaml) plans
// with its real schemas and models.
//
// Inputs that name /dev, /proc or /sys are skipped (a schema of /dev/zero would read for ever),
// and so are inputs naming postgres: a postgres source without a schema asks the database at
// planning time.
#include <string>
#include <string_view>

#include "engine/pipeline.h"
#include "operators/builtin.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  static const Registry* registry = [] {
    auto* r = new Registry;
    RegisterBuiltinOperators(*r);
    return r;
  }();
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const char* skip : {"/dev", "/proc", "/sys", "postgres"}) {
    if (text.find(skip) != std::string::npos) return 0;
  }
  Diagnostics diags;
  auto decl = ParsePipelineText(text, "fuzz.yaml", SLUICE_SOURCE_DIR "/pipelines", *registry,
                                diags);
  if (!decl) {
    if (!diags.HasErrors()) __builtin_trap();  // refused without saying why
    return 0;
  }
  auto plan = PlanPipeline(std::move(*decl), diags);
  if (!plan && !diags.HasErrors()) __builtin_trap();
  for (const auto& d : diags.Sorted()) {
    if (d.message.empty()) __builtin_trap();  // every problem says what it is
  }
  return 0;
}
