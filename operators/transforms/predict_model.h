// Loading one version of an in-process XGBoost model for a planned pipeline: the booster, the
// encoding of its categorical inputs, and the checks that the version fits the pipeline (the
// same inputs by name and type, the same classes). predict loads its first version with this,
// and every later one it picks up from the registry while running.
//
// Threading: a LoadedModel is immutable once built and shared by concurrent batches; XGBoost's
// in-place prediction on one booster is thread-safe.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <xgboost/c_api.h>

#include "engine/model.h"
#include "engine/status.h"
#include "engine/types.h"
#include "operators/transforms/predict_monitor.h"
#include "operators/transforms/tree_ensemble.h"

namespace sluice {

// XGBoost's last error, without the native stack trace that follows its first line.
std::string LastXgbError();

class Booster {
 public:
  ~Booster();
  static Result<std::shared_ptr<Booster>> Load(const std::string& path);
  BoosterHandle handle() const { return handle_; }
  // The number of features the model was trained on.
  size_t NumFeatures() const;
  // The feature types saved with the model ("c" categorical, "q" or "float" numeric); empty
  // when the model has none.
  std::vector<std::string> FeatureTypes() const;
  // XGBoost's in-place prediction of `n` rows of NumFeatures() float32 values (row-major, NaN
  // missing): `width` values per row in `out`.
  Status Predict(const float* rows, size_t n, std::vector<float>* out, size_t* width) const;

 private:
  BoosterHandle handle_ = nullptr;
};

// A categorical input's encoding: category → code, as a float because that is what the feature
// matrix holds (codes below 2^24 are exact; ModelInfo refuses more categories).
using CategoryCodes = std::unordered_map<std::string, float>;

// One loaded model version: what a batch is scored with. Immutable once built.
struct LoadedModel {
  std::shared_ptr<Booster> booster;
  // The booster's trees compiled for Sluice's own evaluator, which scores the batches when it
  // reproduces XGBoost's answers exactly (checked at load); null when XGBoost scores them.
  std::shared_ptr<const TreeEnsemble> trees;
  ModelInfo info;
  std::vector<size_t> features;  // input column of each signature input
  std::vector<std::shared_ptr<const CategoryCodes>> codes;  // per input; null when numeric
  // The model's reference profile, for drift monitoring; null when it has none (or it could not
  // be read: a warning is logged, the model still serves).
  std::shared_ptr<const ReferenceProfile> profile;
  // Per input, for a categorical one with a profile: the profile's bin of each category code,
  // so the drift monitor bins the codes already computed instead of hashing the strings again.
  std::vector<std::vector<uint32_t>> profile_bin_of_code;
};

// Compiles `booster` for Sluice's tree evaluator and checks it answers exactly as XGBoost does on
// rows that exercise every split; null, with the reason in `why_not`, when it is refused or
// differs.
std::shared_ptr<const TreeEnsemble> CompileChecked(const Booster& booster, std::string* why_not);

// Loads the model in `dir` for a pipeline planned against `planned` and its `input` schema: the
// version must take the same inputs (by name and type, in any order) and, when outputs name
// classes, have the same classes; otherwise it does not fit the pipeline and is refused.
Result<std::shared_ptr<const LoadedModel>> LoadForPipeline(const std::string& dir,
                                                           const ModelInfo& planned,
                                                           const Schema& input,
                                                           bool uses_classes);

}  // namespace sluice
