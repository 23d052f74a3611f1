// Scoring benchmark: Sluice's compiled trees against XGBoost's in-place prediction, on the same
// rows of each shipped model, in batches as predict scores them, on one thread. Every answer is
// compared bit for bit before anything is timed.
//
//   build/bench/predict_bench [--rows N] [--batch N] [--repeat N] [models...]
//
// Prints a table (rows/s of each, the ratio) and, with --json PATH, writes it as JSON.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "operators/transforms/predict_model.h"
#include "operators/transforms/tree_ensemble.h"

using namespace sluice;

namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Rows drawn from the model's own thresholds and categories (with some missing values), so
// that every branch is taken.
std::vector<float> Rows(const TreeEnsemble& trees, size_t n) {
  std::vector<float> pool = trees.ProbeRows(4096, 1);
  const size_t k = trees.num_features();
  std::vector<float> rows(n * k);
  std::mt19937 rng(2);
  for (size_t r = 0; r < n; ++r) {
    for (size_t j = 0; j < k; ++j) rows[r * k + j] = pool[(rng() % (pool.size() / k)) * k + j];
  }
  return rows;
}

}  // namespace

int main(int argc, char** argv) {
  size_t total = 1000000, batch = 8192;
  int repeat = 3;
  std::string json_path;
  std::vector<std::string> models;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--rows" && i + 1 < argc) total = std::stoul(argv[++i]);
    else if (a == "--batch" && i + 1 < argc) batch = std::stoul(argv[++i]);
    else if (a == "--repeat" && i + 1 < argc) repeat = std::stoi(argv[++i]);
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a.rfind("--", 0) == 0) {
      std::fprintf(stderr, "usage: predict_bench [--rows N] [--batch N] [--repeat N] [--json PATH] [model dirs...]\n");
      return 2;
    } else models.push_back(a);
  }
  if (models.empty()) {
    for (const char* m : {"iris", "ride", "fraud"}) models.push_back(std::string(SLUICE_SOURCE_DIR) + "/models/" + m);
  }
  std::string json = "[";
  std::printf("| model | trees | leaf-set trees | XGBoost rows/s | Sluice rows/s | Sluice ÷ XGBoost |\n");
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  for (const std::string& dir : models) {
    auto booster = Booster::Load(dir + "/model.json");
    if (!booster.ok()) {
      std::fprintf(stderr, "%s\n", booster.status().message().c_str());
      return 1;
    }
    std::string why;
    auto trees = CompileChecked(**booster, &why);
    if (!trees) {
      std::fprintf(stderr, "%s: not compiled: %s\n", dir.c_str(), why.c_str());
      return 1;
    }
    const size_t k = trees->num_features(), w = trees->width();
    const std::vector<float> rows = Rows(*trees, batch);
    std::vector<float> expected, got(batch * w);
    size_t width = 0;
    if (!(*booster)->Predict(rows.data(), batch, &expected, &width).ok() ||
        (trees->Predict(rows.data(), batch, got.data()),
         std::memcmp(expected.data(), got.data(), got.size() * sizeof(float)) != 0)) {
      std::fprintf(stderr, "%s: the answers differ\n", dir.c_str());
      return 1;
    }
    const size_t batches = std::max<size_t>(1, total / batch);
    double best_xgb = 1e9, best_ours = 1e9;
    for (int rep = 0; rep < repeat; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      for (size_t b = 0; b < batches; ++b) (void)(*booster)->Predict(rows.data(), batch, &expected, &width);
      best_xgb = std::min(best_xgb, Seconds(t0));
      t0 = std::chrono::steady_clock::now();
      for (size_t b = 0; b < batches; ++b) trees->Predict(rows.data(), batch, got.data());
      best_ours = std::min(best_ours, Seconds(t0));
    }
    const double n = static_cast<double>(batches * batch);
    const std::string name = dir.substr(dir.find_last_of('/') + 1);
    std::printf("| %s | %zu | %zu | %.0f | %.0f | %.2fx |\n", name.c_str(), trees->num_trees(),
                trees->num_leaf_set_trees(), n / best_xgb, n / best_ours, best_xgb / best_ours);
    json += fmt::format(R"({}{{"model": "{}", "features": {}, "trees": {}, "leaf_set_trees": {}, "rows": {}, "batch": {}, "xgboost_rows_per_s": {:.0f}, "sluice_rows_per_s": {:.0f}, "ratio": {:.3f}}})",
                        json.size() > 1 ? ", " : "", name, k, trees->num_trees(),
                        trees->num_leaf_set_trees(), batches * batch, batch, n / best_xgb,
                        n / best_ours, best_xgb / best_ours);
  }
  json += "]\n";
  if (!json_path.empty()) {
    FILE* f = std::fopen(json_path.c_str(), "w");
    if (!f) return 1;
    std::fputs(json.c_str(), f);
    std::fclose(f);
  }
  return 0;
}
