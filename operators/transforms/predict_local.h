// predict's in-process runtime: XGBoost through libxgboost's C API, or Sluice's compiled trees
// (predict_model.h). The model's signature names the input fields; a dense float32 matrix is
// built from those columns and the whole batch is predicted in one call. Rows with a null or NaN
// feature are dead-lettered. A model followed in a registry is swapped for its new version while
// the pipeline runs. The node that builds it, and its configuration, are in predict.cpp.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/metrics.h"
#include "engine/model_registry.h"
#include "engine/operator.h"
#include "operators/transforms/predict_model.h"
#include "operators/transforms/predict_monitor.h"
#include "operators/transforms/predict_outputs.h"

namespace sluice {

// Where a registered model is followed while the pipeline runs.
struct ModelFollow {
  ModelUri uri;
  std::string root;
  int64_t interval_ms = 0;  // 0: never
  std::string node;
  SchemaPtr input;
  bool uses_classes = false;
};

// What a predict node reports about its model and its predictions (engine/metrics.h).
struct PredictTelemetry {
  MetricLabels labels;  // pipeline, node
  DriftConfig drift;
};

// The runtime of an in-process predict node: `outputs` of `model` into the fields of `out`.
std::unique_ptr<TransformRuntime> MakeLocalPredict(SchemaPtr out, std::vector<OutputSpec> outputs,
                                                   std::shared_ptr<const LoadedModel> model,
                                                   std::optional<ModelFollow> follow,
                                                   PredictTelemetry telemetry);

}  // namespace sluice
