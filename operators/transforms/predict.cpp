// predict: runs a model on every row. This file is the node: its configuration (backend, model
// or registered name, outputs, the remote server's settings), the checks made when the pipeline is
// planned (every model input is a field of the right type, every output is new and known), the
// `validate --connect` probe of a model server, and the runtime it builds: in process
// (predict_local.h) or on a server (predict_http.h).
#include <algorithm>
#include <cstdlib>
#include <optional>

#include <fmt/format.h>

#include "engine/model.h"
#include "engine/model_registry.h"
#include "operators/builtin.h"
#include "operators/transforms/field_check.h"
#include "operators/transforms/predict_http.h"
#include "operators/transforms/predict_local.h"
#include "operators/transforms/predict_model.h"
#include "operators/transforms/predict_outputs.h"

namespace sluice {
namespace {

constexpr const char* kOutputKinds =
    "label, class, probability, probability:<class>, value, model_name, model_version";

struct PredictConfig {
  PredictBackend backend = PredictBackend::kXgboost;
  std::string model_dir;               ///< MLflow model directory ("" when `features` is given)
  std::string registry_name;           ///< model: models:/...: the registered name
  int64_t registry_version = 0;        ///< and the version it resolved to
  std::optional<ModelUri> registry_uri;  ///< the models:/ name, followed while running
  std::string registry_root;           ///< the registry folder
  int64_t reload_ms = 0;               ///< how often the registry is checked; 0 never
  std::vector<std::string> features;   ///< remote backends without a model: the input fields
  DriftConfig drift;                   ///< drift monitoring against the model's profile
  std::vector<OutputSpec> outputs;     ///< output field: what it holds
  RemoteConfig remote;                 ///< remote backends: server, protocol and client settings
};

// Keys that only the remote backends read and that have no default: given with the in-process
// backend they mean a forgotten `backend:`. (The client settings with defaults are ignored there.)
const std::vector<std::string> kRemoteKeys = {"url", "model_name", "headers"};

class Predict : public TransformNode {
 public:
  Predict(const NodeConfig& node, PredictConfig cfg) : node_(node), cfg_(std::move(cfg)) {}

  Result<SchemaPtr> OutputSchema(const SchemaPtr& input) override {
    const bool remote = cfg_.backend != PredictBackend::kXgboost;
    const bool json = cfg_.backend == PredictBackend::kJson;
    input_ = input;
    std::vector<std::string> names = cfg_.features;
    if (!cfg_.model_dir.empty()) {
      auto info = LoadModelInfo(cfg_.model_dir);
      if (!info.ok()) return node_.Error("model", info.status().message());
      info_ = std::move(*info);
      if (!cfg_.registry_name.empty()) {
        // The registry's name and version are the model's identity, whatever MLmodel says.
        info_.name = cfg_.registry_name;
        info_.version = std::to_string(cfg_.registry_version);
      }
      names.clear();
      for (const auto& in : info_.inputs) names.push_back(in.name);
    } else {
      info_ = ModelInfo{};
      info_.name = cfg_.remote.model_name.empty() ? node_.name : cfg_.remote.model_name;
    }
    const std::string key = cfg_.model_dir.empty() ? "features" : "model";
    const char* what = cfg_.model_dir.empty() ? "feature" : "model input";
    // A string input of the signature needs a string field; the other inputs need numeric
    // fields, except with the json backend, which sends the record's values as they are. Without
    // a model, string fields are sent as JSON strings (mlflow, json). A KServe tensor holds
    // numbers only.
    features_.clear();
    std::vector<std::string> problems;
    for (size_t n = 0; n < names.size(); ++n) {
      const std::string& name = names[n];
      int i = input->IndexOf(name);
      if (i < 0) {
        // Suggest only a field that is not itself another model input: feeding the model a
        // different feature is never the fix.
        std::vector<std::string> candidates;
        for (const auto& f : input->fields())
          if (std::find(names.begin(), names.end(), f.name) == names.end())
            candidates.push_back(f.name);
        auto near = ClosestMatch(name, candidates);
        problems.push_back(fmt::format(
            "{} '{}' is not a field of {}{} (fields: {})", what, name, InputName(node_),
            near ? fmt::format("; did you mean '{}'?", *near) : "", input->FieldNames()));
        continue;
      }
      const Field& f = input->field(i);
      const bool numeric = IsNumeric(f.type) || f.type == TypeId::kBool;
      const bool string_input = cfg_.model_dir.empty() ? f.type == TypeId::kString
                                                       : info_.inputs[n].type == TypeId::kString;
      if (string_input && cfg_.backend == PredictBackend::kKserveV2) {
        return node_.Error(
            "backend", fmt::format("{} '{}' is a string, but backend 'kserve-v2' sends the "
                                   "features as one numeric tensor; use backend 'mlflow' or "
                                   "'json', or run the model in process with its category "
                                   "encoding",
                                   what, name));
      }
      if (string_input ? f.type != TypeId::kString : !json && !numeric) {
        if (cfg_.model_dir.empty()) {
          problems.push_back(fmt::format(
              "{} '{}' must be a number, a bool or a string, but field '{}' of {} is {}", what,
              name, f.name, InputName(node_), TypeName(f.type)));
        } else {
          problems.push_back(fmt::format(
              "{} '{}' is {} in the model's signature but field '{}' of {} is {}", what, name,
              TypeName(info_.inputs[n].type), f.name, InputName(node_), TypeName(f.type)));
        }
        continue;
      }
      if (string_input && cfg_.backend == PredictBackend::kXgboost &&
          !info_.categories.count(name)) {
        problems.push_back(fmt::format(
            "{} '{}' is a string, but the model saves no category encoding for it: XGBoost "
            "takes category codes, so the training categories must be saved with the model "
            "(a JSON file named by metadata.categories in MLmodel, e.g. {{\"{}\": [...]}})",
            what, name, name));
        continue;
      }
      features_.push_back(static_cast<size_t>(i));
    }
    if (!problems.empty()) return node_.Error(key, fmt::format("{}", fmt::join(problems, "; ")));
    names_ = std::move(names);
    const bool regressor = info_.model_class.find("Regressor") != std::string::npos;
    const bool multiclass = info_.classes.size() > 2;
    std::vector<Field> fields = input->fields();
    for (auto& o : cfg_.outputs) {
      if (o.kind == OutputSpec::kResponseKey && !o.typed) {
        // The model's signature types a single output; otherwise numbers are float64.
        o.type = info_.outputs.size() == 1 ? info_.outputs[0].type : TypeId::kFloat64;
      }
      if (regressor && (o.kind == OutputSpec::kLabel || o.kind == OutputSpec::kClass ||
                        NeedsProbabilities(o))) {
        return node_.Error("outputs", fmt::format("output '{}': the model '{}' is a regressor; "
                                                  "use 'value'",
                                                  o.field, info_.name));
      }
      if (multiclass && o.kind == OutputSpec::kValue) {
        return node_.Error("outputs", fmt::format("output '{}': 'value' is the raw prediction of "
                                                  "a regressor or binary model; '{}' has {} "
                                                  "classes (use label, class or probability)",
                                                  o.field, info_.name, info_.classes.size()));
      }
      if (o.kind == OutputSpec::kClassProbability) {
        const std::string& ref = o.class_ref;
        o.class_index = -1;
        if (!ref.empty() && std::all_of(ref.begin(), ref.end(), ::isdigit)) {
          o.class_index = std::stoi(ref);
          if (!info_.classes.empty() && o.class_index >= static_cast<int>(info_.classes.size()))
            o.class_index = -1;
        }
        for (size_t c = 0; c < info_.classes.size(); ++c)
          if (info_.classes[c] == ref) o.class_index = static_cast<int>(c);
      }
      if (o.kind == OutputSpec::kClassProbability && o.class_index < 0) {
        return node_.Error("outputs",
                           fmt::format("output '{}': unknown class '{}' (classes: {})", o.field,
                                       o.class_ref, fmt::join(info_.classes, ", ")));
      }
      if (input->IndexOf(o.field) >= 0) {
        return node_.Error("outputs", fmt::format("output '{}' is already a field of {}; rename "
                                                  "or drop it first",
                                                  o.field, InputName(node_)));
      }
      fields.push_back({o.field, OutputType(o), false});
    }
    if (remote && cfg_.backend == PredictBackend::kKserveV2 && cfg_.remote.model_name.empty())
      cfg_.remote.model_name = info_.name;
    out_ = std::make_shared<const Schema>(std::move(fields));
    return out_;
  }

  Result<std::string> Probe(const ProbeOptions& options) const override {
    if (cfg_.backend == PredictBackend::kXgboost) return std::string();
    std::string key;
    auto found = ProbeRemoteModel(cfg_.remote, features_.size(), options.timeout_ms, key);
    if (!found.ok()) {
      if (!node_.Has(key)) key = key == "features" && node_.Has("model") ? "model" : "url";
      return Status(found.status().code(),
                    fmt::format("{}: {}: {}", node_.MarkOf(key).ToString(), node_.Prefix(),
                                found.status().message()));
    }
    return found;
  }

  Result<std::unique_ptr<TransformRuntime>> Build() const override {
    if (cfg_.backend != PredictBackend::kXgboost) {
      const MetricLabels labels = {{"pipeline", node_.pipeline}, {"node", node_.name}};
      RemoteConfig remote = cfg_.remote;
      remote.http.metric_labels = labels;
      return MakeRemotePredict(std::move(remote), out_, features_, names_, cfg_.outputs, info_,
                               labels, cfg_.drift);
    }
    bool uses_classes = false;
    for (const auto& o : cfg_.outputs)
      uses_classes = uses_classes || o.kind == OutputSpec::kLabel || o.kind == OutputSpec::kClass ||
                     NeedsProbabilities(o);
    auto model = LoadForPipeline(cfg_.model_dir, info_, *input_, uses_classes);
    if (!model.ok()) return node_.Error("model", model.status().message());
    auto loaded = std::const_pointer_cast<LoadedModel>(*model);
    loaded->info = info_;  // the planned identity (a registry's name and version)
    std::optional<ModelFollow> follow;
    if (cfg_.registry_uri) {
      follow = ModelFollow{*cfg_.registry_uri, cfg_.registry_root, cfg_.reload_ms, node_.name,
                           input_, uses_classes};
    }
    PredictTelemetry telemetry{{{"pipeline", node_.pipeline}, {"node", node_.name}}, cfg_.drift};
    return MakeLocalPredict(out_, cfg_.outputs, std::move(loaded), std::move(follow),
                            std::move(telemetry));
  }

 private:
  const NodeConfig& node_;
  PredictConfig cfg_;
  ModelInfo info_;
  SchemaPtr input_;
  SchemaPtr out_;
  std::vector<size_t> features_;
  std::vector<std::string> names_;
};

Result<OutputSpec> ParseOutputKind(const NodeConfig& node, const std::string& field,
                                   const std::string& what) {
  OutputSpec o;
  o.field = field;
  if (what == "label") {
    o.kind = OutputSpec::kLabel;
  } else if (what == "class") {
    o.kind = OutputSpec::kClass;
  } else if (what == "probability") {
    o.kind = OutputSpec::kProbability;
  } else if (what.rfind("probability:", 0) == 0) {
    o.kind = OutputSpec::kClassProbability;
    o.class_ref = what.substr(12);
  } else if (what == "value") {
    o.kind = OutputSpec::kValue;
  } else if (what == "model_name") {
    o.kind = OutputSpec::kModelName;
  } else if (what == "model_version") {
    o.kind = OutputSpec::kModelVersion;
  } else {
    auto near = ClosestMatch(
        what, {"label", "class", "probability", "value", "model_name", "model_version"});
    return node.Error(
        "outputs",
        fmt::format("output '{}': unknown kind '{}'{} (kinds: {})", field, what,
                    near ? fmt::format(", did you mean '{}'?", *near) : "", kOutputKinds));
  }
  return o;
}

// json backend: `key` or `key:type` of the server's answer.
Result<OutputSpec> ParseResponseKey(const NodeConfig& node, const std::string& field,
                                    const std::string& what) {
  OutputSpec o;
  o.field = field;
  o.kind = OutputSpec::kResponseKey;
  o.key = what;
  const size_t colon = what.rfind(':');
  if (colon != std::string::npos) {
    auto type = ParseTypeName(what.substr(colon + 1));
    if (!type) {
      return node.Error("outputs", fmt::format("output '{}': unknown type '{}' (types: int64, "
                                               "float64, string, bool, timestamp)",
                                               field, what.substr(colon + 1)));
    }
    o.key = what.substr(0, colon);
    o.type = *type;
    o.typed = true;
  }
  if (o.key.empty()) return node.Error("outputs", fmt::format("output '{}': no key", field));
  return o;
}

Status ParseRemote(const NodeConfig& node, PredictConfig& cfg) {
  RemoteConfig& r = cfg.remote;
  r.backend = cfg.backend;
  r.url = node.String("url");
  if (r.url.empty()) {
    return node.Error("url", fmt::format("backend '{}' needs `url`, the model server's address",
                                         node.String("backend")));
  }
  if (r.url.rfind("http://", 0) != 0 && r.url.rfind("https://", 0) != 0) {
    return node.Error("url", fmt::format("url '{}' is not an http:// or https:// URL", r.url));
  }
  r.model_name = node.String("model_name");
  r.max_batch_rows = node.Int("max_batch_rows");
  r.fp32 = node.String("datatype") == "FP32";
  r.http.headers = node.StringMap("headers");
  struct Bound {
    const char* key;
    int64_t* value;
    int64_t min;
  };
  for (const Bound& b : {Bound{"timeout_ms", &r.http.timeout_ms, 1},
                         Bound{"concurrency", &r.http.concurrency, 1},
                         Bound{"max_batch_rows", &r.max_batch_rows, 0},
                         Bound{"retries", &r.http.retries, 0},
                         Bound{"retry_backoff_ms", &r.http.retry_backoff_ms, 1},
                         Bound{"breaker_failures", &r.http.breaker_failures, 1},
                         Bound{"breaker_cooldown_ms", &r.http.breaker_cooldown_ms, 0}}) {
    *b.value = node.Int(b.key);
    if (*b.value < b.min)
      return node.Error(b.key,
                        fmt::format("'{}' must be at least {}, found {}", b.key, b.min, *b.value));
  }
  if (cfg.model_dir.empty() == cfg.features.empty()) {
    return node.Error(cfg.model_dir.empty() ? "model" : "features",
                      fmt::format("give either `model` (an MLflow model directory whose signature "
                                  "names the inputs) or `features` (the input fields), {}",
                                  cfg.model_dir.empty() ? "found neither" : "not both"));
  }
  if (cfg.backend == PredictBackend::kKserveV2 && cfg.model_dir.empty() && r.model_name.empty())
    return node.Error("model_name", "backend 'kserve-v2' without `model` needs `model_name`");
  return Status::Ok();
}

Result<std::unique_ptr<TransformNode>> MakePredict(const NodeConfig& node) {
  PredictConfig cfg;
  const std::string backend = node.String("backend");
  cfg.backend = backend == "mlflow"      ? PredictBackend::kMlflow
                : backend == "kserve-v2" ? PredictBackend::kKserveV2
                : backend == "json"      ? PredictBackend::kJson
                                         : PredictBackend::kXgboost;
  if (node.Has("model")) {
    const std::string model = node.String("model");
    if (IsModelUri(model)) {
      auto uri = ParseModelUri(model);
      if (!uri.ok()) return node.Error("model", uri.status().message());
      std::string root = node.Has("registry") ? node.Path("registry") : "";
      if (root.empty()) {
        const char* env = std::getenv("SLUICE_MODEL_REGISTRY");
        root = env && *env ? std::string(env) : ResolvePath(node.base_dir, "../models/registry");
      }
      auto resolved = ResolveModelUri(*uri, root);
      if (!resolved.ok()) return node.Error("model", resolved.status().message());
      cfg.model_dir = resolved->dir;
      cfg.registry_name = resolved->name;
      cfg.registry_version = resolved->version;
      cfg.registry_uri = *uri;
      cfg.registry_root = root;
      cfg.reload_ms = node.Int("reload_interval_ms");
      if (cfg.reload_ms < 0) {
        return node.Error("reload_interval_ms",
                          fmt::format("'reload_interval_ms' must be 0 (never) or a positive "
                                      "interval, found {}",
                                      cfg.reload_ms));
      }
    } else {
      if (node.Has("registry"))
        return node.Error("registry", "`registry` is for `model: models:/<name>...` names");
      cfg.model_dir = node.Path("model");
    }
  }
  cfg.features = node.StringList("features");
  cfg.drift.window_rows = node.Int("drift_window");
  cfg.drift.min_rows = node.Int("drift_min_rows");
  cfg.drift.threshold = node.Float("drift_threshold");
  if (cfg.drift.window_rows < 1) {
    return node.Error("drift_window", fmt::format("'drift_window' must be at least 1 row, found {}",
                                                  cfg.drift.window_rows));
  }
  if (cfg.drift.min_rows < 1) {
    return node.Error("drift_min_rows", fmt::format("'drift_min_rows' must be at least 1 row, "
                                                    "found {}",
                                                    cfg.drift.min_rows));
  }
  if (!(cfg.drift.threshold > 0)) {
    return node.Error("drift_threshold", fmt::format("'drift_threshold' must be above 0, found {}",
                                                     node.String("drift_threshold")));
  }
  if (cfg.backend == PredictBackend::kXgboost) {
    if (!node.Has("model")) return node.Error("model", "backend 'xgboost' needs `model`");
    for (const auto& key : kRemoteKeys) {
      if (node.Has(key))
        return node.Error(key, fmt::format("`{}` is for the remote backends (mlflow, kserve-v2, "
                                           "json); this node runs the model in process",
                                           key));
    }
    if (node.Has("features"))
      return node.Error("features", "backend 'xgboost' takes its inputs from the model's "
                                    "signature; `features` is for the remote backends");
  } else {
    SLUICE_RETURN_IF_ERROR(ParseRemote(node, cfg));
  }
  const bool json = cfg.backend == PredictBackend::kJson;
  auto pairs = node.StringMap("outputs");
  if (pairs.empty()) {
    if (json) {
      return node.Error("outputs", "backend 'json' needs `outputs`: new field: key of the "
                                   "server's answer, e.g. {iris_class: iris_class}");
    }
    pairs.emplace_back("prediction", "label");
  }
  for (const auto& [field, what] : pairs) {
    SLUICE_ASSIGN_OR_RETURN(OutputSpec o, json ? ParseResponseKey(node, field, what)
                                               : ParseOutputKind(node, field, what));
    cfg.outputs.push_back(std::move(o));
  }
  return std::unique_ptr<TransformNode>(std::make_unique<Predict>(node, std::move(cfg)));
}

}  // namespace

void RegisterPredict(Registry& registry) {
  OperatorSpec spec;
  spec.name = "predict";
  spec.role = Role::kTransform;
  spec.summary =
      "Scores every row with a model, in process (XGBoost) or on a model server over HTTP, and "
      "adds its outputs.";
  spec.description =
      "`model` is a directory in MLflow's layout (an MLmodel file with a signature beside the "
      "model file). The fields named by the signature's inputs are the features; validation "
      "checks they reach the node with numeric types, or as strings for the signature's string "
      "inputs: categorical features, encoded with the training categories saved with the model "
      "(an unseen category is a missing value). `outputs` maps new field names to what "
      "they hold: `label` (class index), `class` (class name from the model's metadata), "
      "`probability` (of the predicted class), `probability:<class>` (of one class, by index "
      "or name), `value` (raw prediction, for regressors), `model_name`, `model_version`. "
      "Rows with a null or NaN feature go to the dead-letter output.\n\n"
      "`backend` picks where the model runs: `xgboost` (in process, the default), or a model "
      "server at `url`: `mlflow` (POST {url}/invocations, `dataframe_split`, a batch or "
      "`max_batch_rows` rows per request), `kserve-v2` (Open Inference Protocol, POST "
      "{url}/v2/models/{model_name}/infer, one [rows, features] tensor) or `json` (one POST of "
      "the record's features as a JSON object per record; `outputs` then maps new fields to "
      "keys of the answer, `key` or `key:type`). A remote backend takes its inputs from "
      "`model`'s signature, or from `features` when no model directory is at hand. Outages "
      "(connection refused, timeout, 5xx) are retried with backoff, then pause the pipeline; "
      "after `breaker_failures` consecutive failures the server is left alone for "
      "`breaker_cooldown_ms`. A request the server refuses (4xx) or an answer that cannot be "
      "read sends its rows to the dead-letter output with the server's message.";
  spec.parallel = true;
  spec.fields = {
      {"model", ConfigType::kPath, false, "",
       "MLflow model directory, or a registered model: models:/<name>/<version>, "
       "models:/<name>/latest, models:/<name>@<alias> (required for xgboost)",
       {}},
      {"reload_interval_ms", ConfigType::kInt, false, "10000",
       "models:/ names: how often the registry is checked for a new version or a moved alias "
       "(0: never)",
       {}},
      {"drift_window", ConfigType::kInt, false, "10000",
       "drift monitoring (models with a reference profile): the PSI covers the most recent "
       "rows, this many at least, counted in whole batches",
       {}},
      {"drift_min_rows", ConfigType::kInt, false, "1000",
       "rows the window must hold before PSI is exported", {}},
      {"drift_threshold", ConfigType::kFloat, false, "0.2",
       "PSI above which sluice_drift_threshold_exceeded is 1 and a warning is logged", {}},
      {"registry", ConfigType::kPath, false, "",
       "folder of the local model registry for models:/ names (default: $SLUICE_MODEL_REGISTRY, "
       "else ../models/registry beside the pipeline)",
       {}},
      {"outputs",
       ConfigType::kStringMap,
       false,
       "{prediction: label}",
       "new field name: what it holds (label, class, probability, probability:<class>, value, "
       "model_name, model_version); for backend json: a key of the answer, `key` or `key:type`",
       {}},
      {"backend",
       ConfigType::kString,
       false,
       "xgboost",
       "where the model runs: in process, or the protocol of a model server",
       {"xgboost", "mlflow", "kserve-v2", "json"}},
      {"url", ConfigType::kString, false, "",
       "model server: base URL (mlflow, kserve-v2) or endpoint (json); required for remote",
       {}},
      {"features", ConfigType::kStringList, false, "",
       "remote backends without `model`: the fields sent to the server, in order", {}},
      {"model_name", ConfigType::kString, false, "",
       "kserve-v2: the model's name on the server (default: the model's metadata name)", {}},
      {"max_batch_rows", ConfigType::kInt, false, "0",
       "mlflow, kserve-v2: rows per request at most (0: the whole batch)", {}},
      {"datatype", ConfigType::kString, false, "FP64", "kserve-v2: the input tensor's datatype",
       {"FP32", "FP64"}},
      {"timeout_ms", ConfigType::kInt, false, "10000",
       "time one request may take (connecting included) before it counts as failed", {}},
      {"concurrency", ConfigType::kInt, false, "8",
       "requests in flight to the server at most, across the node's batches", {}},
      {"retries", ConfigType::kInt, false, "3",
       "further attempts of a request after a connection failure, timeout or 5xx", {}},
      {"retry_backoff_ms", ConfigType::kInt, false, "100",
       "wait before the first retry; doubles for each next one, up to 5 s", {}},
      {"breaker_failures", ConfigType::kInt, false, "5",
       "consecutive failed requests after which the server is not called for a cool-down", {}},
      {"breaker_cooldown_ms", ConfigType::kInt, false, "5000",
       "how long the circuit stays open; the pipeline pauses meanwhile", {}},
      {"headers", ConfigType::kStringMap, false, "",
       "HTTP headers sent with every request, e.g. {Authorization: \"Bearer ${TOKEN}\"}", {}},
  };
  spec.example =
      "{type: predict, inputs: [features], model: ../models/iris, outputs: {iris_class: label}}";
  spec.make_transform = MakePredict;
  registry.Add(std::move(spec));
}

}  // namespace sluice
