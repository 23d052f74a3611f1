// predict in process: runs a model on every row, with the booster's trees compiled for Sluice's
// evaluator or through libxgboost's C API (predict_model.h): the model's signature names the
// input fields; a dense float32 matrix is built from those columns and the whole batch is
// predicted in one call. Rows with a null or NaN feature are dead-lettered.
// A string input is categorical: its value is replaced by its code from the category encoding
// saved with the model (a category the model was not trained on is missing, NaN), as pandas and
// XGBoost encode it in Python.
//
// Threading: Process is const and runs concurrently on several batches. XGBoost's in-place
// prediction is thread-safe and returns thread-local buffers, copied before the next call; the
// booster is created with nthread=1 so parallelism comes from the graph, not from OpenMP.
#include "operators/transforms/predict_local.h"

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "engine/log.h"
#include "engine/model.h"
#include "engine/model_registry.h"

namespace sluice {
namespace {

class PredictRuntime : public TransformRuntime {
 public:
  PredictRuntime(SchemaPtr out, std::vector<OutputSpec> outputs,
                 std::shared_ptr<const LoadedModel> model, std::optional<ModelFollow> follow,
                 PredictTelemetry telemetry)
      : out_(std::move(out)),
        outputs_(std::move(outputs)),
        telemetry_(std::move(telemetry)),
        predictions_(model->info.classes, model->profile.get(), telemetry_.labels) {
    MetricsRegistry& reg = Metrics();
    const MetricLabels& labels = telemetry_.labels;
    load_time_ =
        reg.GetGauge("sluice_model_load_timestamp_seconds",
                     "when the serving model version was loaded, since the Unix epoch", labels);
    swaps_ = reg.GetCounter("sluice_model_swaps_total", "model versions swapped in while running",
                            labels);
    refused_ = reg.GetCounter("sluice_model_refused_total",
                              "new model versions refused: they do not fit the pipeline", labels);
    Serve(std::move(model));
    if (follow && follow->interval_ms > 0) {
      follow_ = std::move(*follow);
      watcher_ = std::thread([this] { Watch(); });
    }
  }
  ~PredictRuntime() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (watcher_.joinable()) watcher_.join();
  }

  Result<BatchPtr> Process(const BatchPtr& in_ptr, NodeContext& ctx) const override {
    // One version scores the whole batch: a swap takes effect between batches.
    std::shared_ptr<const LoadedModel> model;
    std::shared_ptr<DriftMonitor> monitor;
    {
      std::lock_guard<std::mutex> lock(mu_);
      model = model_;
      monitor = monitor_;
    }
    const std::vector<size_t>& features = model->features;
    BatchPtr in = DropUnscorable(in_ptr, features, ctx);
    const size_t k = features.size();
    const size_t n = in->num_rows();
    std::vector<ColumnPtr> cols = in->columns();
    if (n == 0) {
      for (const auto& o : outputs_) cols.push_back(std::make_shared<Column>(OutputType(o)));
      return BatchPtr(in->WithColumns(out_, std::move(cols)));
    }
    // Row-major float32, as the model was trained on.
    std::vector<float> matrix(n * k);
    for (size_t j = 0; j < k; ++j) {
      const Column& c = in->column(features[j]);
      if (model->codes[j]) {
        // Unseen category: missing, which the trees send down each split's default branch.
        const CategoryCodes& codes = *model->codes[j];
        for (size_t r = 0; r < n; ++r) {
          auto it = codes.find(c.strings[r]);
          matrix[r * k + j] = it == codes.end() ? NAN : it->second;
        }
      } else if (c.type == TypeId::kFloat64) {
        for (size_t r = 0; r < n; ++r) matrix[r * k + j] = static_cast<float>(c.doubles[r]);
      } else {
        for (size_t r = 0; r < n; ++r) matrix[r * k + j] = static_cast<float>(c.ints[r]);
      }
    }
    std::vector<float> scores;
    size_t width = 0;
    if (model->trees) {
      width = model->trees->width();
      scores.resize(n * width);
      model->trees->Predict(matrix.data(), n, scores.data());
    } else if (Status s = model->booster->Predict(matrix.data(), n, &scores, &width); !s.ok()) {
      return Status::Internal(fmt::format("model '{}' failed: {}", model->info.name, s.message()));
    }
    const float* result = scores.data();
    std::vector<std::shared_ptr<Column>> outs;
    for (const auto& o : outputs_) {
      outs.push_back(std::make_shared<Column>(OutputType(o)));
      outs.back()->Reserve(n);
    }
    for (size_t r = 0; r < n; ++r)
      AppendPrediction(outs, outputs_, result + r * width, width, false, model->info);
    Observe(*model, monitor.get(), *in, matrix.data(), result, n, width);
    cols.insert(cols.end(), outs.begin(), outs.end());
    return BatchPtr(in->WithColumns(out_, std::move(cols)));
  }

 private:
  // Makes `model` the serving version: its sluice_model_info series, its load time, a fresh
  // drift window against its own reference profile.
  void Serve(std::shared_ptr<const LoadedModel> model) {
    MetricsRegistry& reg = Metrics();
    if (!info_labels_.empty()) reg.Remove("sluice_model_info", info_labels_);
    info_labels_ = telemetry_.labels;
    info_labels_.emplace_back("model", model->info.name);
    info_labels_.emplace_back("version", model->info.version);
    reg.GetGauge("sluice_model_info", "the model version serving in a predict node; always 1",
                 info_labels_)
        ->Set(1);
    load_time_->Set(
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
    std::shared_ptr<DriftMonitor> monitor;
    if (model->profile) {
      monitor = std::make_shared<DriftMonitor>(
          model->profile, telemetry_.drift, telemetry_.labels,
          fmt::format("{} v{}", model->info.name, model->info.version));
    }
    std::lock_guard<std::mutex> lock(mu_);
    model_ = std::move(model);
    monitor_ = std::move(monitor);
  }

  // Counts the batch's predictions (by class, or by value) and bins its inputs and predictions
  // for the drift monitor. `in` holds only scorable rows: no feature is null.
  void Observe(const LoadedModel& model, DriftMonitor* monitor, const Batch& in,
               const float* matrix, const float* result, size_t n, size_t width) const {
    PredictionTally tally(&predictions_, monitor);
    tally.AddPredictions(result, n, width, false);
    const size_t k = model.features.size();
    for (size_t j = 0; j < k; ++j) {
      uint64_t* at = tally.FeatureCounts(j);
      if (!at) break;
      if (j < model.profile_bin_of_code.size() && !model.profile_bin_of_code[j].empty()) {
        // The category codes of the feature matrix: NaN (unseen) is the profile's last bin.
        const std::vector<uint32_t>& bin_of = model.profile_bin_of_code[j];
        const size_t other = monitor->profile().features[j].size() - 1;
        for (size_t r = 0; r < n; ++r) {
          const float code = matrix[r * k + j];
          ++at[std::isnan(code) ? other : bin_of[static_cast<size_t>(code)]];
        }
      } else {
        tally.AddFeature(j, in.column(model.features[j]), n);
      }
    }
    tally.Commit(n);
  }

  // Checks the registry every interval; a new version (or an alias moved) that fits the
  // pipeline is loaded off the hot path and swapped in; one that does not is refused once, with
  // an error in the log, and the serving version stays.
  void Watch() {
    const ModelFollow& f = *follow_;
    std::string last_problem;
    int64_t refused = 0;
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(f.interval_ms), [&] { return stop_; })) {
      const std::string serving = model_->info.version;
      lock.unlock();
      auto resolved = ResolveModelUri(f.uri, f.root);
      if (!resolved.ok()) {
        if (resolved.status().message() != last_problem) {
          last_problem = resolved.status().message();
          Log(LogLevel::kWarn,
              fmt::format("predict '{}': {}; version {} keeps serving", f.node, last_problem,
                          serving),
              {{"node", f.node}, {"model", f.uri.ToString()}});
        }
      } else if (std::to_string(resolved->version) != serving && resolved->version != refused) {
        last_problem.clear();
        auto loaded = LoadForPipeline(resolved->dir, model_->info, *f.input, f.uses_classes);
        if (loaded.ok()) {
          auto next = std::const_pointer_cast<LoadedModel>(*loaded);
          next->info.name = resolved->name;
          next->info.version = std::to_string(resolved->version);
          Serve(std::move(next));
          swaps_->Inc();
          // Logged once swapped: a batch that starts after this line is scored by the new one.
          Log(LogLevel::kInfo,
              fmt::format("predict '{}': {} is now version {} (was {})", f.node, f.uri.ToString(),
                          resolved->version, serving),
              {{"node", f.node},
               {"model", resolved->name},
               {"version", static_cast<uint64_t>(resolved->version)}});
          lock.lock();
          continue;
        }
        refused = resolved->version;
        refused_->Inc();
        Log(LogLevel::kError,
            fmt::format("predict '{}': refused version {} of {}: {}; version {} keeps serving",
                        f.node, resolved->version, f.uri.ToString(), loaded.status().message(),
                        serving),
            {{"node", f.node}, {"model", resolved->name}});
      } else if (std::to_string(resolved->version) == serving) {
        refused = 0;  // moved back: a later move to the refused version is tried again
      }
      lock.lock();
    }
  }

  SchemaPtr out_;
  std::vector<OutputSpec> outputs_;
  PredictTelemetry telemetry_;
  Gauge* load_time_ = nullptr;
  Counter* swaps_ = nullptr;
  Counter* refused_ = nullptr;
  PredictionMetrics predictions_;
  MetricLabels info_labels_;  // the serving version's sluice_model_info series
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::shared_ptr<const LoadedModel> model_;  // guarded by mu_, with monitor_
  std::shared_ptr<DriftMonitor> monitor_;
  std::optional<ModelFollow> follow_;
  std::thread watcher_;
};

}  // namespace

std::unique_ptr<TransformRuntime> MakeLocalPredict(SchemaPtr out, std::vector<OutputSpec> outputs,
                                                   std::shared_ptr<const LoadedModel> model,
                                                   std::optional<ModelFollow> follow,
                                                   PredictTelemetry telemetry) {
  return std::make_unique<PredictRuntime>(std::move(out), std::move(outputs), std::move(model),
                                          std::move(follow), std::move(telemetry));
}

}  // namespace sluice
