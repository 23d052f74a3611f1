#include "operators/transforms/tree_ensemble.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include <fmt/format.h>
#include <simdjson.h>

namespace sluice {

namespace {

using simdjson::dom::array;
using simdjson::dom::element;

// XGBoost writes NaN (the threshold of a categorical split) and Infinity as bare words, which
// JSON does not have. NaN becomes null, the only value it can stand for here; an infinite value
// makes the model one this evaluator refuses.
std::string WithoutBareWords(std::string_view in, bool* infinite) {
  std::string out;
  out.reserve(in.size());
  bool in_string = false;
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < in.size()) {
        out.push_back(in[++i]);
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (in.compare(i, 3, "NaN") == 0) {
      out += "null";
      i += 2;
      continue;
    } else if (in.compare(i, 8, "Infinity") == 0) {
      *infinite = true;
    }
    out.push_back(c);
  }
  return out;
}

// A number XGBoost keeps as a string parameter ("5E-1", "3").
bool ParamFloat(element params, const char* key, float* out) {
  std::string_view s;
  if (params[key].get_string().get(s)) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool ParamInt(element params, const char* key, int64_t* out) {
  std::string_view s;
  if (params[key].get_string().get(s)) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool Ints(element tree, const char* key, std::vector<int64_t>* out) {
  array a;
  if (tree[key].get_array().get(a)) return false;
  out->clear();
  for (element v : a) {
    int64_t x;
    if (v.get_int64().get(x)) {
      bool b;  // default_left is written as booleans by some versions
      if (v.get_bool().get(b)) return false;
      x = b ? 1 : 0;
    }
    out->push_back(x);
  }
  return true;
}

// Floats as XGBoost holds them; null (a bare NaN in the file) is NaN. A number beyond float's
// range fails: XGBoost would hold an infinity, which the evaluator refuses.
bool Floats(element tree, const char* key, std::vector<float>* out) {
  array a;
  if (tree[key].get_array().get(a)) return false;
  out->clear();
  for (element v : a) {
    double x;
    if (v.is_null()) {
      x = std::numeric_limits<double>::quiet_NaN();
    } else if (v.get_double().get(x) || std::fabs(x) > std::numeric_limits<float>::max()) {
      return false;
    }
    out->push_back(static_cast<float>(x));
  }
  return true;
}

// XGBoost's categorical values: an integer below 2^24, as a float.
constexpr float kMaxCategory = 16777216.0f;
// Wider models are left to XGBoost: a block's columns and the probe rows grow with the width,
// a block's margins with the classes.
constexpr int64_t kMaxFeatures = 16384;
constexpr int64_t kMaxClasses = 65536;
// The categories' bit sets, in 32-bit words (16 MiB); a model that needs more is left to XGBoost.
constexpr size_t kMaxCategoryWords = size_t{1} << 22;

}  // namespace

std::unique_ptr<TreeEnsemble> TreeEnsemble::Compile(std::string_view model_json,
                                                    std::string* why_not) {
  auto refuse = [&](std::string reason) -> std::unique_ptr<TreeEnsemble> {
    if (why_not) *why_not = std::move(reason);
    return nullptr;
  };
  bool infinite = false;
  const std::string text = WithoutBareWords(model_json, &infinite);
  if (infinite) return refuse("the model holds an infinite value");
  simdjson::dom::parser parser;
  element doc;
  if (parser.parse(text).get(doc)) return refuse("the model's JSON does not parse");
  element learner, booster, model, params;
  std::string_view objective, booster_name;
  if (doc["learner"].get(learner) || learner["objective"]["name"].get_string().get(objective) ||
      learner["gradient_booster"].get(booster) ||
      booster["name"].get_string().get(booster_name) ||
      learner["learner_model_param"].get(params)) {
    return refuse("the model's JSON is not an XGBoost learner");
  }
  if (booster_name != "gbtree") {
    return refuse(fmt::format("booster '{}' (only gbtree is compiled)", booster_name));
  }
  if (booster["model"].get(model)) return refuse("the booster has no model");

  auto out = std::unique_ptr<TreeEnsemble>(new TreeEnsemble());
  out->objective_ = std::string(objective);
  float base_score = 0.5f;
  int64_t num_class = 0, num_feature = 0, num_target = 1;
  if (!ParamFloat(params, "base_score", &base_score) ||
      !ParamInt(params, "num_class", &num_class) ||
      !ParamInt(params, "num_feature", &num_feature)) {
    return refuse("the model's learner_model_param is incomplete");
  }
  if (params["num_target"].error() == simdjson::SUCCESS &&
      !ParamInt(params, "num_target", &num_target)) {
    return refuse("the model's num_target is not a number");
  }
  if (num_target != 1) return refuse(fmt::format("{} targets (only one is compiled)", num_target));
  if (num_feature <= 0 || num_feature > kMaxFeatures) {
    return refuse(fmt::format("{} features (at most {} are compiled)", num_feature, kMaxFeatures));
  }
  out->num_features_ = static_cast<size_t>(num_feature);
  // The initial margin and the transform of each objective, as XGBoost 1.7's objectives define
  // them (ProbToMargin and PredTransform).
  if (objective == "multi:softprob") {
    if (num_class < 2 || num_class > kMaxClasses) {
      return refuse(fmt::format("multi:softprob with {} classes", num_class));
    }
    out->width_ = static_cast<size_t>(num_class);
    out->transform_ = Transform::kSoftmax;
    out->base_margin_ = base_score;
  } else if (objective == "reg:squarederror") {
    out->transform_ = Transform::kIdentity;
    out->base_margin_ = base_score;
  } else if (objective == "binary:logistic" || objective == "reg:logistic") {
    if (!(base_score > 0.0f && base_score < 1.0f)) return refuse("base_score outside (0, 1)");
    out->transform_ = Transform::kSigmoid;
    out->base_margin_ = -std::log(1.0f / base_score - 1.0f);
  } else {
    return refuse(fmt::format("objective '{}' is not one the evaluator reproduces", objective));
  }
  if (out->width_ == 1 && num_class > 1) return refuse("classes on a one-output objective");

  element gb_params;
  std::string_view leaf_vector = "0";
  if (model["gbtree_model_param"].get(gb_params) == simdjson::SUCCESS) {
    if (gb_params["size_leaf_vector"].get_string().get(leaf_vector)) leaf_vector = "0";
  }
  if (leaf_vector != "0") return refuse("vector leaves (only scalar leaves are compiled)");
  std::vector<int64_t> tree_info;
  array trees;
  if (!Ints(model, "tree_info", &tree_info) || model["trees"].get_array().get(trees)) {
    return refuse("the model has no trees");
  }

  std::vector<int64_t> left, right, feature, default_left, split_type, cat_nodes, cat_segments,
      cat_sizes, categories;
  std::vector<float> conditions;
  size_t t = 0;
  for (element tree : trees) {
    if (t >= tree_info.size()) return refuse("tree_info is shorter than the trees");
    if (tree_info[t] < 0 || static_cast<size_t>(tree_info[t]) >= out->width_) {
      return refuse(fmt::format("tree {} adds to output {} of {}", t, tree_info[t], out->width_));
    }
    std::string_view tree_leaf_vector = "0";
    if (tree["tree_param"]["size_leaf_vector"].get_string().get(tree_leaf_vector)) {
      tree_leaf_vector = "0";
    }
    if (tree_leaf_vector != "0") return refuse("vector leaves (only scalar leaves are compiled)");
    if (!Ints(tree, "left_children", &left) || !Ints(tree, "right_children", &right) ||
        !Ints(tree, "split_indices", &feature) || !Ints(tree, "default_left", &default_left) ||
        !Floats(tree, "split_conditions", &conditions)) {
      return refuse(
          fmt::format("tree {} is incomplete or holds a number beyond float's range", t));
    }
    const size_t n = left.size();
    if (n == 0 || right.size() != n || feature.size() != n || default_left.size() != n ||
        conditions.size() != n) {
      return refuse(fmt::format("tree {} has arrays of different lengths", t));
    }
    split_type.assign(n, 0);
    if (tree["split_type"].error() == simdjson::SUCCESS) {
      if (!Ints(tree, "split_type", &split_type) || split_type.size() != n) {
        return refuse(fmt::format("tree {} has a bad split_type", t));
      }
    }
    cat_nodes.clear();
    if (tree["categories_nodes"].error() == simdjson::SUCCESS) {
      if (!Ints(tree, "categories_nodes", &cat_nodes) ||
          !Ints(tree, "categories_segments", &cat_segments) ||
          !Ints(tree, "categories_sizes", &cat_sizes) || !Ints(tree, "categories", &categories) ||
          cat_segments.size() != cat_nodes.size() || cat_sizes.size() != cat_nodes.size()) {
        return refuse(fmt::format("tree {} has bad categories", t));
      }
    }
    const size_t base = out->nodes_.size();
    out->nodes_.resize(base + n);
    std::vector<uint8_t> reached(n, 0);
    // Walks from the root so that every node is checked once and a malformed tree (a cycle, a
    // child out of range) is refused rather than followed.
    std::vector<int64_t> stack{0};
    while (!stack.empty()) {
      const int64_t i = stack.back();
      stack.pop_back();
      if (i < 0 || static_cast<size_t>(i) >= n || reached[i]) {
        return refuse(fmt::format("tree {} is not a tree", t));
      }
      reached[i] = 1;
      Node& node = out->nodes_[base + i];
      node.value = conditions[i];
      node.cats = ~0u;
      node.default_right = default_left[i] ? 0 : 1;
      node.read = 0;
      if (left[i] == -1) {
        node.feature = -1;
        node.child[0] = node.child[1] = static_cast<int32_t>(base + i);
        continue;
      }
      // XGBoost takes the right child as the left one's neighbour.
      if (right[i] != left[i] + 1) return refuse(fmt::format("tree {}: unpaired children", t));
      if (feature[i] < 0 || feature[i] >= num_feature) {
        return refuse(fmt::format("tree {} splits on feature {} of {}", t, feature[i],
                                  num_feature));
      }
      node.feature = static_cast<int32_t>(feature[i]);
      node.read = node.feature;
      node.child[0] = static_cast<int32_t>(base + left[i]);
      node.child[1] = static_cast<int32_t>(base + right[i]);
      if (split_type[i] == 1) {
        auto at = std::find(cat_nodes.begin(), cat_nodes.end(), i);
        if (at == cat_nodes.end()) return refuse(fmt::format("tree {}: a split without categories", t));
        const size_t c = static_cast<size_t>(at - cat_nodes.begin());
        const int64_t beg = cat_segments[c], size = cat_sizes[c];
        if (beg < 0 || size < 0 || static_cast<size_t>(beg + size) > categories.size()) {
          return refuse(fmt::format("tree {} has bad categories", t));
        }
        int64_t max_cat = -1;
        for (int64_t j = beg; j < beg + size; ++j) {
          if (categories[j] < 0 || categories[j] >= static_cast<int64_t>(kMaxCategory)) {
            return refuse(fmt::format("tree {} names category {}", t, categories[j]));
          }
          max_cat = std::max(max_cat, categories[j]);
        }
        CatSet set{static_cast<uint32_t>(out->cat_words_.size()),
                   static_cast<uint32_t>((max_cat + 1 + 31) / 32)};
        if (out->cat_words_.size() + set.words > kMaxCategoryWords) {
          return refuse("the categorical splits' sets are too large");
        }
        out->cat_words_.resize(out->cat_words_.size() + set.words, 0);
        for (int64_t j = beg; j < beg + size; ++j) {
          out->cat_words_[set.begin + categories[j] / 32] |= 1u << (categories[j] % 32);
        }
        node.cats = static_cast<uint32_t>(out->cat_sets_.size());
        out->cat_sets_.push_back(set);
      } else if (split_type[i] != 0) {
        return refuse(fmt::format("tree {} has split type {}", t, split_type[i]));
      } else if (std::isnan(node.value)) {
        return refuse(fmt::format("tree {} has a numeric split without a threshold", t));
      }
      stack.push_back(left[i]);
      stack.push_back(right[i]);
    }
    if (std::count(reached.begin(), reached.end(), 1) != static_cast<ptrdiff_t>(n)) {
      // Nodes no path reaches: XGBoost's deleted nodes. Harmless, but unlike any tree XGBoost
      // writes after training; refuse rather than guess.
      return refuse(fmt::format("tree {} has unreachable nodes", t));
    }
    out->trees_.push_back(Tree{static_cast<int32_t>(base), static_cast<uint32_t>(tree_info[t]),
                               0, 0, 0, 0, 0, false});
    ++t;
  }
  if (t == 0) return refuse("the model has no trees");
  if (t != tree_info.size()) return refuse("tree_info is longer than the trees");
  if (out->nodes_.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return refuse("too many nodes");
  }
  out->PlanLeafSets();
  return out;
}

// XGBoost's categorical rule (common::Decision): a category in the split's set goes right;
// anything else, including a negative value, one of 2^24 or more and one beyond the set's
// words, goes left. A fraction is cut to its integer part.
bool TreeEnsemble::CatRight(const Node& node, float v) const {
  if (v < 0.0f || v >= kMaxCategory) return false;
  const CatSet& set = cat_sets_[node.cats];
  const uint32_t cat = static_cast<uint32_t>(static_cast<int32_t>(v));
  const uint32_t word = cat / 32;
  if (word >= set.words) return false;
  return (cat_words_[set.begin + word] >> (cat % 32)) & 1u;
}

namespace {
constexpr size_t kBlock = 64;  // rows scored together
constexpr size_t kLanes = 4;   // rows per leaf-set step: one SSE register
using Floats4 = float __attribute__((vector_size(kLanes * sizeof(float))));
using Ints4 = int32_t __attribute__((vector_size(kLanes * sizeof(int32_t))));
}  // namespace

size_t TreeEnsemble::num_leaf_set_trees() const {
  return static_cast<size_t>(
      std::count_if(trees_.begin(), trees_.end(), [](const Tree& t) { return t.by_leaf_sets; }));
}

void TreeEnsemble::PlanLeafSets() {
  for (Tree& tree : trees_) {
    // The depth, for walking in step.
    std::vector<std::pair<int32_t, uint32_t>> path{{tree.root, 0}};
    while (!path.empty()) {
      const auto [i, depth] = path.back();
      path.pop_back();
      tree.depth = std::max(tree.depth, depth);
      if (nodes_[i].feature < 0) continue;
      path.emplace_back(nodes_[i].child[0], depth + 1);
      path.emplace_back(nodes_[i].child[1], depth + 1);
    }
    // Leaves and categorical splits, without recursion: a tree may be deep.
    size_t leaves = 0;
    bool categorical = false;
    std::vector<int32_t> stack{tree.root};
    while (!stack.empty() && leaves <= 32) {
      const Node& node = nodes_[stack.back()];
      stack.pop_back();
      if (node.feature < 0) {
        ++leaves;
        continue;
      }
      categorical = categorical || node.cats != ~0u;
      stack.push_back(node.child[0]);
      stack.push_back(node.child[1]);
    }
    if (leaves > 32 || categorical) continue;
    // Numbers the leaves left to right; a split's left subtree holds a run of them. At most 32
    // leaves: the recursion is at most 31 deep.
    tree.tests_begin = static_cast<uint32_t>(tests_.size());
    tree.leaves_begin = static_cast<uint32_t>(leaves_.size());
    auto number = [&](auto&& self, int32_t i) -> std::pair<uint32_t, uint32_t> {
      const Node& node = nodes_[i];
      if (node.feature < 0) {
        const uint32_t at = static_cast<uint32_t>(leaves_.size() - tree.leaves_begin);
        leaves_.push_back(node.value);
        return {at, at};
      }
      const auto [lo, mid] = self(self, node.child[0]);
      const auto [mid_right, hi] = self(self, node.child[1]);
      (void)mid_right;
      const uint32_t count = mid - lo + 1;
      const uint32_t left = count == 32 ? ~0u : ((1u << count) - 1u) << lo;
      tests_.push_back(Test{node.value, node.feature, ~left, node.default_right != 0});
      return {lo, hi};
    };
    number(number, tree.root);
    tree.tests_end = static_cast<uint32_t>(tests_.size());
    auto first_right = std::stable_partition(tests_.begin() + tree.tests_begin, tests_.end(),
                                             [](const Test& t) { return !t.nan_right; });
    tree.tests_nan_left = static_cast<uint32_t>(first_right - (tests_.begin() + tree.tests_begin));
    tree.by_leaf_sets = true;
  }
}

void TreeEnsemble::WalkInStep(const Tree& tree, const float* rows, size_t n,
                              float* margins) const {
  const Node* nodes = nodes_.data();
  const size_t k = num_features_;
  int32_t at[kBlock];
  for (size_t r = 0; r < n; ++r) at[r] = tree.root;
  for (uint32_t level = 0; level < tree.depth; ++level) {
    for (size_t r = 0; r < n; ++r) {
      const Node& node = nodes[at[r]];
      const float v = rows[r * k + node.read];
      const bool missing = std::isnan(v);
      bool right = !(v < node.value);
      if (node.cats != ~0u && !missing) right = CatRight(node, v);
      right = missing ? node.default_right : right;
      at[r] = node.child[right];  // a leaf's children are itself
    }
  }
  float* m = margins + tree.group * kBlock;
  for (size_t r = 0; r < n; ++r) m[r] += nodes[at[r]].value;
}

void TreeEnsemble::PredictBlock(const float* rows, size_t n, float* margins,
                                float* columns) const {
  const size_t k = num_features_;
  if (!tests_.empty()) {
    // Column by column, padded to whole steps, for the leaf-set trees.
    const size_t padded = (n + kLanes - 1) / kLanes * kLanes;
    for (size_t f = 0; f < k; ++f) {
      float* col = columns + f * kBlock;
      for (size_t r = 0; r < n; ++r) col[r] = rows[r * k + f];
      for (size_t r = n; r < padded; ++r) col[r] = 0.0f;
    }
  }
  // Tree by tree, so each tree stays in cache while the block's rows pass through it; each
  // row's margin gains the trees' leaves in tree order, as XGBoost adds them.
  for (const Tree& tree : trees_) {
    if (!tree.by_leaf_sets) {
      WalkInStep(tree, rows, n, margins);
      continue;
    }
    const Test* tests = tests_.data() + tree.tests_begin;
    const size_t num_tests = tree.tests_end - tree.tests_begin;
    const float* leaves = leaves_.data() + tree.leaves_begin;
    // Test by test over the whole block, so each test is loaded once per block.
    const size_t steps = (n + kLanes - 1) / kLanes;
    Ints4 candidates[kBlock / kLanes];
    for (size_t g = 0; g < steps; ++g) candidates[g] = Ints4{} - 1;  // every leaf
    // A row that goes right loses the left subtree's leaves: `keep | went_left` clears them.
    // A missing value compares false both ways: `x < t` sends it right, `!(x >= t)` left. The
    // tests are stored with those that send missing values left first.
    for (size_t j = 0; j < num_tests; ++j) {
      const Test& test = tests[j];
      const float* col = columns + test.feature * kBlock;
      const Floats4 threshold = Floats4{} + test.threshold;
      const Ints4 keep = Ints4{} + static_cast<int32_t>(test.keep);
      if (j < tree.tests_nan_left) {
        for (size_t g = 0; g < steps; ++g) {
          Floats4 x;
          std::memcpy(&x, col + g * kLanes, sizeof x);
          candidates[g] &= keep | ~(x >= threshold);
        }
      } else {
        for (size_t g = 0; g < steps; ++g) {
          Floats4 x;
          std::memcpy(&x, col + g * kLanes, sizeof x);
          candidates[g] &= keep | (x < threshold);
        }
      }
    }
    // The leftmost candidate is each row's leaf; a set is never empty (bit 31 is only set by a
    // 32nd leaf). Four rows' leaves are added at once: four float additions, as one by one.
    float* acc = margins + tree.group * kBlock;
    for (size_t g = 0; g < steps; ++g) {
      const Ints4 c = candidates[g] | static_cast<int32_t>(0x80000000u);
      const Floats4 leaf = {leaves[__builtin_ctz(static_cast<uint32_t>(c[0]))],
                            leaves[__builtin_ctz(static_cast<uint32_t>(c[1]))],
                            leaves[__builtin_ctz(static_cast<uint32_t>(c[2]))],
                            leaves[__builtin_ctz(static_cast<uint32_t>(c[3]))]};
      Floats4 sum;
      std::memcpy(&sum, acc + g * kLanes, sizeof sum);
      sum += leaf;
      std::memcpy(acc + g * kLanes, &sum, sizeof sum);
    }
  }
}

void TreeEnsemble::Predict(const float* rows, size_t n, float* out) const {
  const size_t k = num_features_;
  const size_t w = width_;
  // Per block: the features column by column (for the leaf-set trees) and the margins output
  // by output, each padded to whole steps.
  std::vector<float> columns(tests_.empty() ? 0 : k * kBlock);
  std::vector<float> margins(w * kBlock);
  for (size_t b = 0; b < n; b += kBlock) {
    const size_t m = std::min(kBlock, n - b);
    std::fill(margins.begin(), margins.end(), base_margin_);
    PredictBlock(rows + b * k, m, margins.data(), columns.data());
    for (size_t r = 0; r < m; ++r) {
      for (size_t j = 0; j < w; ++j) out[(b + r) * w + j] = margins[j * kBlock + r];
    }
  }
  switch (transform_) {
    case Transform::kIdentity:
      break;
    case Transform::kSigmoid:
      // common::Sigmoid: the exponent capped so that expf cannot overflow.
      for (size_t r = 0; r < n; ++r) {
        const float x = std::min(-out[r], 88.7f);
        const float denom = expf(x) + 1.0f + 1e-16f;
        out[r] = 1.0f / denom;
      }
      break;
    case Transform::kSoftmax:
      // common::Softmax: the largest margin subtracted, the sum taken in double.
      for (size_t r = 0; r < n; ++r) {
        float* p = out + r * w;
        float wmax = p[0];
        for (size_t j = 1; j < w; ++j) wmax = fmaxf(p[j], wmax);
        double wsum = 0.0;
        for (size_t j = 0; j < w; ++j) {
          p[j] = expf(p[j] - wmax);
          wsum += p[j];
        }
        for (size_t j = 0; j < w; ++j) p[j] /= static_cast<float>(wsum);
      }
      break;
  }
}

std::vector<float> TreeEnsemble::ProbeRows(size_t max_rows, uint64_t seed) const {
  const size_t k = num_features_;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::mt19937_64 seed_rng(seed ^ 0x9e3779b97f4a7c15ull);
  // Per feature: the values worth trying.
  std::vector<std::vector<float>> values(k);
  for (const Node& node : nodes_) {
    if (node.feature < 0) continue;
    auto& v = values[node.feature];
    if (node.cats != ~0u) {
      const CatSet& set = cat_sets_[node.cats];
      // The codes the set's words cover and the two past them; for a large set, the first
      // thousand and its categories at random.
      const uint32_t past = set.words * 32;
      for (uint32_t c = 0; c <= std::min(past + 1, 1024u); ++c) v.push_back(static_cast<float>(c));
      v.push_back(static_cast<float>(past));
      v.push_back(static_cast<float>(past + 1));
      for (int i = 0; i < 64 && past > 1024; ++i) {
        v.push_back(static_cast<float>(seed_rng() % past));
      }
      v.push_back(-1.0f);
      v.push_back(0.5f);
      v.push_back(kMaxCategory);
    } else {
      v.push_back(node.value);
      v.push_back(std::nextafter(node.value, -inf));
      v.push_back(std::nextafter(node.value, inf));
    }
  }
  for (auto& v : values) {
    v.push_back(nan);
    v.push_back(0.0f);
    std::sort(v.begin(), v.end(), [](float a, float b) {
      return std::isnan(a) ? false : std::isnan(b) ? true : a < b;
    });
    v.erase(std::unique(v.begin(), v.end(),
                        [](float a, float b) {
                          return std::memcmp(&a, &b, sizeof a) == 0;
                        }),
            v.end());
  }
  std::mt19937_64 rng(seed);
  auto pick = [&](size_t f) { return values[f][rng() % values[f].size()]; };
  std::vector<float> rows;
  // Every value of every feature at least once (while rows last), the others at random.
  for (size_t f = 0; f < k; ++f) {
    for (float v : values[f]) {
      if (rows.size() / k >= max_rows) return rows;
      for (size_t g = 0; g < k; ++g) rows.push_back(g == f ? v : pick(g));
    }
  }
  while (rows.size() / k < max_rows) {
    for (size_t g = 0; g < k; ++g) rows.push_back(pick(g));
  }
  return rows;
}

}  // namespace sluice
