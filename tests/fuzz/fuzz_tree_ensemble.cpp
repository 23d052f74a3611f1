// libFuzzer target: predict's tree compiler. The input is taken as an XGBoost JSON model; a model
// that compiles scores its own probe rows (every threshold, missing values, every category).
// A refusal must say why. The JSON comes from XGBoost itself when predict loads a model, but
// XGBoost accepts models it did not write, so the compiler is not trusted to see only its own.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "operators/transforms/tree_ensemble.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  std::string why;
  auto trees = sluice::TreeEnsemble::Compile(json, &why);
  if (!trees) {
    if (why.empty()) __builtin_trap();  // refused without saying why
    return 0;
  }
  const std::vector<float> rows = trees->ProbeRows(64, 7);
  const size_t n = rows.size() / trees->num_features();
  if (n != 64 || rows.size() % trees->num_features() != 0) __builtin_trap();
  std::vector<float> out(n * trees->width());
  trees->Predict(rows.data(), n, out.data());
  return 0;
}
