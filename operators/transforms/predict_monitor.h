// Model monitoring for predict, for every backend (in process and remote): the predictions by
// class or by value, and the population stability index (PSI) of each model input and of the
// predictions over a sliding window of recent rows, against the reference profile saved with
// the model (profile.json, written by models/train.py; docs/models.md#reference-profiles).
// Exported as sluice_predictions_total / sluice_prediction_value, and sluice_feature_psi /
// sluice_prediction_psi / sluice_drift_threshold_exceeded; a crossing of the threshold is logged
// once, as is the way back.
//
// Threading: Bin* are const and run on any thread; a PredictionTally belongs to one batch and
// one thread; DriftMonitor::Add locks, and is called once per batch by concurrent batches of a
// predict node; the metrics' counters are atomic.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/metrics.h"
#include "engine/model.h"
#include "engine/status.h"
#include "operators/transforms/predict_outputs.h"

namespace sluice {

// The bins of one profiled quantity and their expected fractions.
struct ProfileBins {
  std::string name;
  bool categorical = false;
  std::vector<double> edges;  // numeric: interior cut points; bin i holds (e[i-1], e[i]]
  std::unordered_map<std::string, size_t> category_bin;  // categorical; the last bin: the rest
  std::vector<double> expected;                          // fraction per bin

  size_t size() const { return expected.size(); }
  size_t BinOf(double v) const;            // numeric
  size_t BinOf(std::string_view v) const;  // categorical
};

struct ReferenceProfile {
  std::vector<ProfileBins> features;  // in the order of the model's signature inputs
  ProfileBins prediction;             // a classifier's class index, or a regressor's value
};

// Reads `info.profile_path`; its features must be the model's inputs, its prediction bins the
// model's classes (classifier) or numeric (regressor).
Result<std::shared_ptr<const ReferenceProfile>> LoadReferenceProfile(const ModelInfo& info);

// PSI = Σ (a − e)·ln(a / e) over the bins, with both fractions floored at 1e-4 so that an empty
// bin stays finite. `actual` are counts.
double PopulationStabilityIndex(const std::vector<double>& expected,
                                const std::vector<uint64_t>& actual);

struct DriftConfig {
  int64_t window_rows = 10000;  // the window: the most recent rows, in whole batches
  int64_t min_rows = 1000;      // no PSI before the window holds this many
  double threshold = 0.2;
};

class DriftMonitor {
 public:
  // `labels`: pipeline and node; `model`: "name vversion", for the log. Without `predictions`
  // (a model server whose answers are not scores) only the inputs are monitored.
  DriftMonitor(std::shared_ptr<const ReferenceProfile> profile, DriftConfig config,
               MetricLabels labels, std::string model, bool predictions = true);
  const ReferenceProfile& profile() const { return *profile_; }

  // One batch's counts: bin b of feature f at counts[offset(f) + b], the prediction's bins last.
  std::vector<uint64_t> NewCounts() const { return std::vector<uint64_t>(width_, 0); }
  size_t Offset(size_t feature) const { return offsets_[feature]; }
  size_t PredictionOffset() const { return offsets_.back(); }
  void Add(std::vector<uint64_t> counts, uint64_t rows);

 private:
  void Publish(size_t i, const std::string& name, const std::vector<double>& expected,
               size_t offset, Gauge* psi, Gauge* exceeded);

  std::shared_ptr<const ReferenceProfile> profile_;
  DriftConfig config_;
  std::string node_;
  std::string model_;
  std::vector<size_t> offsets_;  // per feature, then the prediction's
  size_t width_ = 0;
  std::vector<Gauge*> feature_psi_, feature_exceeded_;
  Gauge* prediction_psi_ = nullptr;
  Gauge* prediction_exceeded_ = nullptr;

  std::mutex mu_;
  struct Block {
    std::vector<uint64_t> counts;
    uint64_t rows;
  };
  std::deque<Block> window_;
  std::vector<uint64_t> totals_;
  uint64_t rows_ = 0;
  std::vector<bool> above_;  // per feature, then the prediction
};

// A predict node's counts of its predictions: sluice_predictions_total by class for a model that
// names its classes, otherwise sluice_prediction_value (bucketed by the profile's prediction
// edges when there are some).
class PredictionMetrics {
 public:
  PredictionMetrics(const std::vector<std::string>& classes, const ReferenceProfile* profile,
                    const MetricLabels& labels);

 private:
  friend class PredictionTally;
  std::vector<Counter*> per_class_;  // by class index
  Histogram* values_ = nullptr;      // when there are no classes
};

// One batch's predictions and drift bins, gathered on one thread without locks and added to the
// metrics and to the drift monitor at once by Commit. Either may be null.
class PredictionTally {
 public:
  PredictionTally(const PredictionMetrics* metrics, DriftMonitor* monitor);

  // `n` rows of scores, `width` a row, as AppendPrediction reads them.
  template <typename T>
  void AddPredictions(const T* rows, size_t n, size_t width, bool direct) {
    if (!by_class_.empty()) {
      const size_t classes = by_class_.size();
      const size_t binned = prediction_bins_ ? prediction_bins_->size() : 0;
      for (size_t r = 0; r < n; ++r) {
        const size_t label = PredictedLabel(rows + r * width, width, direct);
        if (label < classes) ++by_class_[label];
        if (label + 1 < binned) ++counts_[prediction_at_ + label];
      }
    } else if (values_) {
      for (size_t r = 0; r < n; ++r) {
        const double v = static_cast<double>(rows[r * width]);
        values_->Observe(v);
        if (prediction_bins_) ++counts_[prediction_at_ + prediction_bins_->BinOf(v)];
      }
    }
  }
  // Bins the first `rows` values of `c` as the profile's input `j` (signature order).
  void AddFeature(size_t j, const Column& c, size_t rows);
  // The drift counts of input `j`, for a caller that bins it itself; null without a monitor.
  uint64_t* FeatureCounts(size_t j);
  // Adds everything gathered; `rows` is the number of rows scored.
  void Commit(uint64_t rows);

 private:
  const PredictionMetrics* metrics_;
  DriftMonitor* monitor_;
  std::vector<uint64_t> by_class_;
  std::optional<Histogram::Local> values_;
  std::vector<uint64_t> counts_;  // the drift monitor's, when there is one
  const ProfileBins* prediction_bins_ = nullptr;
  size_t prediction_at_ = 0;
};

}  // namespace sluice
