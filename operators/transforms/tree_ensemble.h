// A gradient-boosted tree ensemble taken from an XGBoost model and scored by Sluice itself.
//
// XGBoost's CPU predictor walks each row through each tree with per-row bookkeeping (a feature
// vector filled and cleared per row, per-block buffers); for the small, many-tree models of
// streaming inference that bookkeeping costs more than the trees. This evaluator keeps the trees
// as flat node arrays and takes a block of 64 rows through one tree at a time, without a branch
// the CPU must guess per row and node:
//  - a tree of at most 32 leaves without categorical splits is scored by leaf sets, four rows at
//    a time (QuickScorer, Lucchese et al., SIGIR 2015): each split a row goes right at removes
//    the leaves of its left subtree from a 32-bit set of candidates, and the row's leaf is the
//    leftmost one that remains;
//  - other trees are walked by the block's rows in step, one level at a time, a leaf leading
//    to itself.
//
// It reproduces XGBoost 1.7's CPU predictor exactly, not approximately: the same float
// comparisons (`x < threshold` goes left, a missing value takes the default branch, XGBoost's
// categorical rule), leaf values summed in float in tree order onto the same base margin, and the
// same output transform (softmax, sigmoid) through the same libm calls. What it cannot
// reproduce it refuses (`Compile` says why), and XGBoost scores that model instead:
//  - boosters other than gbtree (gblinear, dart's dropout weights);
//  - vector leaves (multi-target trees);
//  - objectives other than those listed in `Compile`.
// predict also checks each compiled model against XGBoost on probe rows before serving it
// (CompileChecked in predict_model.h), so a difference falls back to XGBoost instead of
// changing an answer.
//
// Threading: immutable once built; Predict may run on any number of threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

class TreeEnsemble {
 public:
  // Builds the ensemble from XGBoost's JSON model (the text XGBoosterSaveModelToBuffer writes
  // with {"format": "json"}; bare NaN and Infinity as XGBoost writes them are accepted). Returns
  // null, with the reason in `why_not`, when the model is one this evaluator does not reproduce.
  static std::unique_ptr<TreeEnsemble> Compile(std::string_view model_json, std::string* why_not);

  size_t num_features() const { return num_features_; }
  // Values per row in Predict's output: the classes of a multi-class model, otherwise 1.
  size_t width() const { return width_; }
  size_t num_trees() const { return trees_.size(); }
  // Trees scored by leaf sets rather than walked in step.
  size_t num_leaf_set_trees() const;
  const std::string& objective() const { return objective_; }

  // Scores `n` rows of `num_features()` float32 features (row-major; NaN is missing) into
  // `out`, `n * width()` values: what XGBoost's in-place prediction returns for them.
  void Predict(const float* rows, size_t n, float* out) const;

  // Rows that exercise every split of the model: each threshold itself, the floats just below
  // and above it, missing values, every category a categorical split names and the codes around
  // them. Row-major, `num_features()` per row; at most `max_rows` rows.
  std::vector<float> ProbeRows(size_t max_rows, uint64_t seed) const;

 private:
  struct Node {
    float value;        // a split's threshold, or a leaf's value
    int32_t feature;    // the split's feature; -1 for a leaf
    int32_t child[2];   // left, right (indices into nodes_)
    uint32_t cats;      // categorical split: index into cat_sets_, else ~0u
    uint8_t default_right;  // a missing value goes right
    int32_t read;       // the feature a lockstep walk reads: the split's, 0 for a leaf
  };
  struct CatSet {
    uint32_t begin;  // into cat_words_
    uint32_t words;  // 32-bit words in the bit set
  };

  // A split of a tree scored by leaf sets: a row that goes right loses `keep`'s zero bits.
  struct Test {
    float threshold;
    int32_t feature;
    uint32_t keep;          // ~(the leaves of the left subtree)
    bool nan_right;         // a missing value goes right
  };
  struct Tree {
    int32_t root;           // in nodes_
    uint32_t group;         // the output it adds to
    uint32_t tests_begin;   // in tests_ (leaf-set trees)
    uint32_t tests_end;
    uint32_t tests_nan_left;  // the first this many tests send a missing value left
    uint32_t leaves_begin;  // in leaves_: the leaf values, left to right
    uint32_t depth;         // splits on the longest path from the root
    bool by_leaf_sets;
  };

  void PredictBlock(const float* rows, size_t n, float* margins, float* columns) const;
  void WalkInStep(const Tree& tree, const float* rows, size_t n, float* margins) const;
  bool CatRight(const Node& node, float v) const;
  // Adds leaf-set scoring to trees that qualify; called once by Compile.
  void PlanLeafSets();

  std::vector<Node> nodes_;
  std::vector<Tree> trees_;
  std::vector<Test> tests_;
  std::vector<float> leaves_;
  std::vector<CatSet> cat_sets_;
  std::vector<uint32_t> cat_words_;
  size_t num_features_ = 0;
  size_t width_ = 1;
  float base_margin_ = 0.0f;
  enum class Transform { kIdentity, kSoftmax, kSigmoid } transform_ = Transform::kIdentity;
  std::string objective_;
};

}  // namespace sluice
