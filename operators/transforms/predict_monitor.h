// Model monitoring for predict: the population stability index (PSI) of each model input and of
// the predictions over a sliding window of recent rows, against the reference profile saved with
// the model (profile.json, written by models/train.py; docs/models.md#reference-profiles).
// Exported as sluice_feature_psi / sluice_prediction_psi / sluice_drift_threshold_exceeded; a
// crossing of the threshold is logged once, as is the way back.
//
// Threading: Bin* are const and run on any thread; DriftMonitor::Add locks, and is called once
// per batch by concurrent batches of a predict node.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/metrics.h"
#include "engine/model.h"
#include "engine/status.h"

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
  // `labels`: pipeline and node; `model`: "name vversion", for the log.
  DriftMonitor(std::shared_ptr<const ReferenceProfile> profile, DriftConfig config,
               MetricLabels labels, std::string model);
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

}  // namespace sluice
