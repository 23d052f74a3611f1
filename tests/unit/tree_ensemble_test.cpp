// Sluice's tree evaluator against XGBoost itself: every answer bit for bit, on the repository's
// models, on models pushed to extreme margins, and the models it must refuse.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <xgboost/c_api.h>
#include <catch2/catch.hpp>

#include "operators/transforms/predict_model.h"
#include "operators/transforms/tree_ensemble.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

// A booster loaded from JSON text, for models edited by a test.
struct JsonBooster {
  std::shared_ptr<Booster> booster;
  explicit JsonBooster(const std::string& json) {
    TempDir dir;
    auto loaded = Booster::Load(dir.Write("model.json", json));
    REQUIRE(loaded.ok());
    booster = *loaded;
  }
  std::vector<float> Predict(const std::vector<float>& rows, size_t k) const {
    std::vector<float> out;
    size_t width = 0;
    REQUIRE(booster->NumFeatures() == k);
    REQUIRE(booster->Predict(rows.data(), rows.size() / k, &out, &width).ok());
    return out;
  }
};

std::string ModelJson(const std::string& name) {
  auto booster = Booster::Load(kSourceDir + "/models/" + name + "/model.json");
  REQUIRE(booster.ok());
  bst_ulong len = 0;
  const char* json = nullptr;
  REQUIRE(XGBoosterSaveModelToBuffer((*booster)->handle(), R"({"format": "json"})", &len,
                                     &json) == 0);
  return std::string(json, len);
}

// Rows of `k` features: uniform over [lo, hi), a tenth of the values missing, and some whole
// numbers (category codes).
std::vector<float> RandomRows(size_t n, size_t k, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> value(lo, hi);
  std::vector<float> rows(n * k);
  for (float& v : rows) {
    const uint32_t kind = rng() % 10;
    v = kind == 0   ? std::numeric_limits<float>::quiet_NaN()
        : kind == 1 ? static_cast<float>(rng() % 20)
                    : value(rng);
  }
  return rows;
}

// The rows' answers, the same bits from both.
void CheckSame(const TreeEnsemble& trees, const JsonBooster& xgb, const std::vector<float>& rows) {
  const size_t k = trees.num_features();
  const std::vector<float> expected = xgb.Predict(rows, k);
  std::vector<float> got(rows.size() / k * trees.width());
  trees.Predict(rows.data(), rows.size() / k, got.data());
  REQUIRE(got.size() == expected.size());
  size_t differ = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &expected[i], sizeof(float)) != 0) {
      if (differ++ < 3) {
        UNSCOPED_INFO("value " << i << ": XGBoost " << expected[i] << ", Sluice " << got[i]);
      }
    }
  }
  CHECK(differ == 0);
}

// Multiplies every leaf value of every tree by `factor`: margins far beyond a model's own.
std::string ScaleLeaves(const std::string& json, float factor) {
  std::string out;
  size_t at = 0;
  for (;;) {
    const size_t left = json.find("\"left_children\":[", at);
    const size_t cond = json.find("\"split_conditions\":[", at);
    if (left == std::string::npos || cond == std::string::npos) break;
    // The tree's leaves: a left child of -1.
    std::vector<bool> leaf;
    const char* p = json.c_str() + left + std::strlen("\"left_children\":[");
    while (*p != ']') {
      char* end = nullptr;
      leaf.push_back(std::strtol(p, &end, 10) == -1);
      p = *end == ',' ? end + 1 : end;
    }
    const size_t begin = cond + std::strlen("\"split_conditions\":[");
    const size_t close = json.find(']', begin);
    out.append(json, at, begin - at);
    size_t i = 0, pos = begin;
    while (pos < close) {
      size_t comma = json.find(',', pos);
      if (comma == std::string::npos || comma > close) comma = close;
      const std::string token = json.substr(pos, comma - pos);
      if (i < leaf.size() && leaf[i]) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.9g", std::strtof(token.c_str(), nullptr) * factor);
        out += buf;
      } else {
        out += token;
      }
      if (comma < close) out += ',';
      pos = comma + 1;
      ++i;
    }
    at = close;
  }
  out.append(json, at, std::string::npos);
  return out;
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("compiled trees answer as XGBoost does on the repository's models",
          "[predict][trees]") {
  for (const char* name : {"iris", "ride", "fraud"}) {
    INFO("model " << name);
    const std::string json = ModelJson(name);
    std::string why;
    auto trees = TreeEnsemble::Compile(json, &why);
    INFO(why);
    REQUIRE(trees);
    JsonBooster xgb(json);
    const size_t k = trees->num_features();
    // Every threshold and the floats beside it, every category, missing values.
    CheckSame(*trees, xgb, trees->ProbeRows(20000, 7));
    // Blocks and steps cut anywhere: one row, a partial step, a block and one more.
    for (size_t n : {1, 3, 63, 64, 65, 1000}) {
      INFO(n << " rows");
      CheckSame(*trees, xgb, RandomRows(n, k, -1.0f, 10.0f, static_cast<uint32_t>(n)));
    }
    CheckSame(*trees, xgb, RandomRows(5000, k, -1e4f, 1e4f, 11));
  }
  // The iris trees are small and numeric: all scored by leaf sets. Trees with categorical
  // splits are walked.
  std::string why;
  CHECK(TreeEnsemble::Compile(ModelJson("iris"), &why)->num_leaf_set_trees() == 150);
  auto fraud = TreeEnsemble::Compile(ModelJson("fraud"), &why);
  CHECK(fraud->num_leaf_set_trees() < fraud->num_trees());
}

TEST_CASE("compiled trees answer as XGBoost does at extreme margins", "[predict][trees]") {
  // Softmax whose smaller exponentials underflow to zero, and a sigmoid at its cap.
  for (auto [name, factor] : {std::pair{"iris", 400.0f}, std::pair{"fraud", 300.0f},
                              std::pair{"ride", -1e30f}}) {
    INFO("model " << name << ", leaves times " << factor);
    const std::string json = ScaleLeaves(ModelJson(name), factor);
    std::string why;
    auto trees = TreeEnsemble::Compile(json, &why);
    INFO(why);
    REQUIRE(trees);
    JsonBooster xgb(json);
    CheckSame(*trees, xgb, trees->ProbeRows(5000, 3));
    CheckSame(*trees, xgb, RandomRows(2000, trees->num_features(), -1.0f, 10.0f, 5));
  }
}

TEST_CASE("CompileChecked serves the repository's models and says why when it cannot",
          "[predict][trees]") {
  auto booster = Booster::Load(kSourceDir + "/models/iris/model.json");
  REQUIRE(booster.ok());
  std::string why;
  auto trees = CompileChecked(**booster, &why);
  REQUIRE(trees);
  CHECK(trees->width() == 3);
  CHECK(trees->objective() == "multi:softprob");
}

TEST_CASE("models the evaluator does not reproduce are refused with a reason",
          "[predict][trees]") {
  const std::string iris = ModelJson("iris");
  struct Case {
    std::string json;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {Replace(iris, "\"multi:softprob\"", "\"multi:softmax\""), "multi:softmax"},
      {Replace(iris, "\"name\":\"gbtree\"", "\"name\":\"dart\""), "dart"},
      {Replace(iris, "\"num_target\":\"1\"", "\"num_target\":\"2\""), "2 targets"},
      // A split whose children are the root and itself.
      {Replace(Replace(iris, "\"left_children\":[1,-1,-1", "\"left_children\":[1,0,-1"),
               "\"right_children\":[2,-1,-1", "\"right_children\":[2,1,-1"),
       "not a tree"},
      {Replace(iris, "\"right_children\":[2,", "\"right_children\":[7,"), "unpaired"},
      {Replace(iris, "\"split_indices\":[2,", "\"split_indices\":[9,"), "feature 9 of 4"},
      {Replace(iris, "\"split_indices\":[2,", "\"split_indices\":[-3,"), "feature -3"},
      {Replace(iris, "\"tree_info\":[0,", "\"tree_info\":[3,"), "output 3 of 3"},
      {Replace(iris, "\"split_conditions\":[", "\"split_conditions\":[Infinity,"), "infinite"},
      {Replace(iris, "\"split_conditions\":[", "\"split_conditions\":[1e300,"), "beyond float"},
      {Replace(iris, "\"num_class\":\"3\"", "\"num_class\":\"100000\""), "100000 classes"},
      {iris.substr(0, iris.size() / 2), "does not parse"},
      {"", "does not parse"},
      {"[]", "not an XGBoost learner"},
  };
  for (const Case& c : cases) {
    INFO("expected reason: " << c.reason);
    std::string why;
    CHECK_FALSE(TreeEnsemble::Compile(c.json, &why));
    CHECK_THAT(why, Catch::Contains(c.reason));
  }
}
