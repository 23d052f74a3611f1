#include "operators/transforms/predict_monitor.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <simdjson.h>

#include "engine/log.h"

namespace sluice {

namespace {

constexpr double kFloor = 1e-4;

// One entry of profile.json: {"name", "kind", "edges" | "categories", "fractions"}.
Status ReadBins(simdjson::dom::element e, const std::string& where, ProfileBins* out) {
  std::string_view name, kind;
  simdjson::dom::array fractions;
  if (e["name"].get(name) || e["kind"].get(kind) || e["fractions"].get(fractions)) {
    return Status::InvalidConfig(
        fmt::format("{}: every entry needs name, kind and fractions", where));
  }
  out->name = std::string(name);
  for (auto f : fractions) {
    double v;
    if (f.get(v) || !std::isfinite(v) || v < 0)
      return Status::InvalidConfig(fmt::format("{}: '{}': fractions must be numbers >= 0", where,
                                               out->name));
    out->expected.push_back(v);
  }
  size_t bins = 0;
  if (kind == "numeric") {
    simdjson::dom::array edges;
    if (e["edges"].get(edges))
      return Status::InvalidConfig(fmt::format("{}: '{}': a numeric entry needs edges", where,
                                               out->name));
    for (auto x : edges) {
      double v;
      if (x.get(v) || (!out->edges.empty() && v <= out->edges.back()))
        return Status::InvalidConfig(
            fmt::format("{}: '{}': edges must be increasing numbers", where, out->name));
      out->edges.push_back(v);
    }
    bins = out->edges.size() + 1;
  } else if (kind == "categorical") {
    out->categorical = true;
    simdjson::dom::array cats;
    if (e["categories"].get(cats))
      return Status::InvalidConfig(fmt::format(
          "{}: '{}': a categorical entry needs categories", where, out->name));
    for (auto c : cats) {
      std::string_view v;
      if (c.get(v))
        return Status::InvalidConfig(
            fmt::format("{}: '{}': categories must be strings", where, out->name));
      out->category_bin.emplace(std::string(v), out->category_bin.size());
    }
    bins = out->category_bin.size() + 1;
  } else {
    return Status::InvalidConfig(fmt::format(
        "{}: '{}': kind must be numeric or categorical, not '{}'", where, out->name, kind));
  }
  if (out->expected.size() != bins) {
    return Status::InvalidConfig(fmt::format("{}: '{}': {} fractions for {} bins", where,
                                             out->name, out->expected.size(), bins));
  }
  return Status::Ok();
}

}  // namespace

size_t ProfileBins::BinOf(double v) const {
  // Profiles have about ten edges: counting them has no branch to mispredict, where a binary
  // search mispredicts about once per value (it was ~5% of a Kafka -> PostgreSQL run's CPU).
  constexpr size_t kCountUpTo = 32;
  if (edges.size() > kCountUpTo) {
    return static_cast<size_t>(std::lower_bound(edges.begin(), edges.end(), v) - edges.begin());
  }
  size_t bin = 0;
  for (const double e : edges) bin += e < v;
  return bin;
}

size_t ProfileBins::BinOf(std::string_view v) const {
  auto it = category_bin.find(std::string(v));
  return it == category_bin.end() ? category_bin.size() : it->second;
}

Result<std::shared_ptr<const ReferenceProfile>> LoadReferenceProfile(const ModelInfo& info) {
  const std::string& path = info.profile_path;
  simdjson::padded_string text;
  if (simdjson::padded_string::load(path).get(text)) {
    return Status::NotFound(
        fmt::format("the model's reference profile '{}' (metadata.profile) cannot be read", path));
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::dom::array features;
  simdjson::dom::element prediction;
  std::string_view format;
  if (parser.parse(text).get(root) || root["format"].get(format) ||
      format != "sluice-profile/1" || root["features"].get(features) ||
      root["prediction"].get(prediction)) {
    return Status::InvalidConfig(fmt::format(
        "{}: expected a reference profile (format sluice-profile/1, features, prediction)", path));
  }
  auto profile = std::make_shared<ReferenceProfile>();
  std::vector<ProfileBins> found;
  for (auto f : features) {
    ProfileBins b;
    SLUICE_RETURN_IF_ERROR(ReadBins(f, path, &b));
    found.push_back(std::move(b));
  }
  // In the signature's order, whatever the file's.
  for (const Field& in : info.inputs) {
    auto it = std::find_if(found.begin(), found.end(),
                           [&](const ProfileBins& b) { return b.name == in.name; });
    if (it == found.end()) {
      return Status::InvalidConfig(
          fmt::format("{}: no bins for the model input '{}'", path, in.name));
    }
    if (it->categorical != (in.type == TypeId::kString)) {
      return Status::InvalidConfig(fmt::format(
          "{}: '{}' is {} in the profile but {} in the signature", path, in.name,
          it->categorical ? "categorical" : "numeric", TypeName(in.type)));
    }
    profile->features.push_back(*it);
  }
  SLUICE_RETURN_IF_ERROR(ReadBins(prediction, path, &profile->prediction));
  if (!info.classes.empty()) {
    // Bin i must be class i, as the model numbers them.
    const ProfileBins& p = profile->prediction;
    bool fits = p.categorical && p.category_bin.size() == info.classes.size();
    for (size_t c = 0; fits && c < info.classes.size(); ++c) {
      auto it = p.category_bin.find(info.classes[c]);
      fits = it != p.category_bin.end() && it->second == c;
    }
    if (!fits) {
      return Status::InvalidConfig(fmt::format(
          "{}: the prediction's categories must be the model's classes in order ({})", path,
          fmt::join(info.classes, ", ")));
    }
  } else if (profile->prediction.categorical) {
    return Status::InvalidConfig(
        fmt::format("{}: a model without classes needs numeric prediction bins", path));
  }
  return std::shared_ptr<const ReferenceProfile>(std::move(profile));
}

double PopulationStabilityIndex(const std::vector<double>& expected,
                                const std::vector<uint64_t>& actual) {
  uint64_t total = 0;
  for (uint64_t a : actual) total += a;
  if (total == 0) return 0;
  double psi = 0;
  for (size_t i = 0; i < expected.size() && i < actual.size(); ++i) {
    const double e = std::max(expected[i], kFloor);
    const double a = std::max(static_cast<double>(actual[i]) / static_cast<double>(total), kFloor);
    psi += (a - e) * std::log(a / e);
  }
  return psi;
}

DriftMonitor::DriftMonitor(std::shared_ptr<const ReferenceProfile> profile, DriftConfig config,
                           MetricLabels labels, std::string model, bool predictions)
    : profile_(std::move(profile)), config_(config), model_(std::move(model)) {
  for (const auto& [k, v] : labels)
    if (k == "node") node_ = v;
  for (const auto& f : profile_->features) {
    offsets_.push_back(width_);
    width_ += f.size();
  }
  offsets_.push_back(width_);
  width_ += profile_->prediction.size();
  totals_.assign(width_, 0);
  above_.assign(profile_->features.size() + 1, false);
  MetricsRegistry& reg = Metrics();
  const char* kPsiHelp =
      "population stability index of a model input over the monitoring window, against the "
      "model's reference profile";
  const char* kExceededHelp = "1 while that PSI is above the node's drift_threshold";
  for (const auto& f : profile_->features) {
    MetricLabels l = labels;
    l.emplace_back("feature", f.name);
    feature_psi_.push_back(reg.GetGauge("sluice_feature_psi", kPsiHelp, l));
    feature_exceeded_.push_back(
        reg.GetGauge("sluice_drift_threshold_exceeded", kExceededHelp, l));
  }
  // A new version starts its own window: nothing known yet.
  for (Gauge* g : feature_psi_) g->Set(NAN);
  for (Gauge* g : feature_exceeded_) g->Set(0);
  if (!predictions) return;
  prediction_psi_ = reg.GetGauge(
      "sluice_prediction_psi",
      "population stability index of the predictions over the monitoring window", labels);
  MetricLabels l = labels;
  l.emplace_back("feature", "prediction");
  prediction_exceeded_ = reg.GetGauge("sluice_drift_threshold_exceeded", kExceededHelp, l);
  prediction_psi_->Set(NAN);
  prediction_exceeded_->Set(0);
}

void DriftMonitor::Add(std::vector<uint64_t> counts, uint64_t rows) {
  if (rows == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < width_; ++i) totals_[i] += counts[i];
  rows_ += rows;
  window_.push_back({std::move(counts), rows});
  const uint64_t window = static_cast<uint64_t>(config_.window_rows);
  while (window_.size() > 1 && rows_ - window_.front().rows >= window) {
    for (size_t i = 0; i < width_; ++i) totals_[i] -= window_.front().counts[i];
    rows_ -= window_.front().rows;
    window_.pop_front();
  }
  if (rows_ < static_cast<uint64_t>(config_.min_rows)) return;
  for (size_t f = 0; f < profile_->features.size(); ++f) {
    Publish(f, profile_->features[f].name, profile_->features[f].expected, offsets_[f],
            feature_psi_[f], feature_exceeded_[f]);
  }
  if (prediction_psi_) {
    Publish(profile_->features.size(), "prediction", profile_->prediction.expected,
            offsets_.back(), prediction_psi_, prediction_exceeded_);
  }
}

void DriftMonitor::Publish(size_t i, const std::string& name, const std::vector<double>& expected,
                           size_t offset, Gauge* psi, Gauge* exceeded) {
  std::vector<uint64_t> actual(totals_.begin() + static_cast<ptrdiff_t>(offset),
                               totals_.begin() + static_cast<ptrdiff_t>(offset + expected.size()));
  const double v = PopulationStabilityIndex(expected, actual);
  psi->Set(v);
  const bool above = v > config_.threshold;
  exceeded->Set(above ? 1 : 0);
  if (above == above_[i]) return;
  above_[i] = above;
  const std::string what = name == "prediction" ? "the predictions" : "input '" + name + "'";
  if (above) {
    Log(LogLevel::kWarn,
        fmt::format("predict '{}': drift: PSI of {} is {:.3f} over the last {} rows, above "
                    "drift_threshold {} (model {})",
                    node_, what, v, rows_, config_.threshold, model_),
        {{"node", node_}, {"feature", name}, {"psi", v}});
  } else {
    Log(LogLevel::kInfo,
        fmt::format("predict '{}': drift: PSI of {} is back to {:.3f}, within drift_threshold {} "
                    "(model {})",
                    node_, what, v, config_.threshold, model_),
        {{"node", node_}, {"feature", name}, {"psi", v}});
  }
}

namespace {

// Bounds of sluice_prediction_value without a reference profile.
const std::vector<double> kValueBuckets = {0.1, 0.25, 0.5, 1,   2.5,  5,    10,   25,
                                           50,  100,  250, 500, 1000, 2500, 5000, 10000};

}  // namespace

PredictionMetrics::PredictionMetrics(const std::vector<std::string>& classes,
                                     const ReferenceProfile* profile,
                                     const MetricLabels& labels) {
  MetricsRegistry& reg = Metrics();
  if (!classes.empty()) {
    for (const auto& c : classes) {
      MetricLabels l = labels;
      l.emplace_back("class", c);
      per_class_.push_back(reg.GetCounter("sluice_predictions_total",
                                          "predictions of a classifier, by predicted class", l));
    }
    return;
  }
  values_ = reg.GetHistogram("sluice_prediction_value", "predictions of a regressor, by value",
                             labels,
                             profile && !profile->prediction.categorical
                                 ? profile->prediction.edges
                                 : kValueBuckets);
}

PredictionTally::PredictionTally(const PredictionMetrics* metrics, DriftMonitor* monitor)
    : metrics_(metrics), monitor_(monitor) {
  if (metrics_ && !metrics_->per_class_.empty()) by_class_.assign(metrics_->per_class_.size(), 0);
  if (metrics_ && metrics_->values_) values_.emplace(*metrics_->values_);
  if (monitor_) {
    counts_ = monitor_->NewCounts();
    prediction_bins_ = &monitor_->profile().prediction;
    prediction_at_ = monitor_->PredictionOffset();
  }
}

uint64_t* PredictionTally::FeatureCounts(size_t j) {
  if (!monitor_ || j >= monitor_->profile().features.size()) return nullptr;
  return counts_.data() + monitor_->Offset(j);
}

void PredictionTally::AddFeature(size_t j, const Column& c, size_t rows) {
  uint64_t* at = FeatureCounts(j);
  if (!at) return;
  const ProfileBins& bins = monitor_->profile().features[j];
  if (bins.categorical) {
    // A profile of strings bins only strings; any other value is one of "the rest".
    for (size_t r = 0; r < rows; ++r)
      ++at[c.type == TypeId::kString ? bins.BinOf(std::string_view(c.strings[r]))
                                     : bins.size() - 1];
  } else if (c.type == TypeId::kFloat64) {
    for (size_t r = 0; r < rows; ++r) ++at[bins.BinOf(c.doubles[r])];
  } else if (c.type != TypeId::kString) {
    for (size_t r = 0; r < rows; ++r) ++at[bins.BinOf(static_cast<double>(c.ints[r]))];
  }
}

void PredictionTally::Commit(uint64_t rows) {
  for (size_t c = 0; c < by_class_.size(); ++c)
    if (by_class_[c]) metrics_->per_class_[c]->Inc(static_cast<double>(by_class_[c]));
  if (values_ && !values_->empty()) metrics_->values_->Add(*values_);
  if (monitor_) monitor_->Add(std::move(counts_), rows);
}

}  // namespace sluice
