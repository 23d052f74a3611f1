// predict: runs a model on every row. In-process XGBoost through libxgboost's C API: the model's
// signature names the input fields; a dense float32 matrix is built from those columns and the
// whole batch is predicted in one call. Rows with a null or NaN feature are dead-lettered.
//
// Threading: Process is const and runs concurrently on several batches. XGBoost's in-place
// prediction is thread-safe and returns thread-local buffers, copied before the next call; the
// booster is created with nthread=1 so parallelism comes from the graph, not from OpenMP.
#include <cmath>

#include <fmt/format.h>
#include <xgboost/c_api.h>

#include "engine/model.h"
#include "operators/builtin.h"
#include "operators/transforms/field_check.h"

namespace sluice {
namespace {

// XGBoost's last error, without the native stack trace that follows its first line.
std::string LastXgbError() {
  std::string e = XGBGetLastError();
  size_t nl = e.find('\n');
  return nl == std::string::npos ? e : e.substr(0, nl);
}

// What one output field holds.
struct OutputSpec {
  enum Kind { kLabel, kClass, kProbability, kClassProbability, kValue, kModelName, kModelVersion };
  std::string field;
  Kind kind = kLabel;
  std::string class_ref;  // kClassProbability: class index or name, as written
  int class_index = -1;   // resolved against the model when planning
};

struct PredictConfig {
  std::string model_dir;            ///< MLflow model directory
  std::vector<OutputSpec> outputs;  ///< output field: what it holds
};

class Booster {
 public:
  ~Booster() {
    if (handle_) XGBoosterFree(handle_);
  }
  static Result<std::shared_ptr<Booster>> Load(const std::string& path) {
    auto b = std::make_shared<Booster>();
    if (XGBoosterCreate(nullptr, 0, &b->handle_) != 0 ||
        XGBoosterLoadModel(b->handle_, path.c_str()) != 0) {
      return Status::InvalidConfig(
          fmt::format("cannot load XGBoost model '{}': {}", path, LastXgbError()));
    }
    XGBoosterSetParam(b->handle_, "nthread", "1");
    return b;
  }
  BoosterHandle handle() const { return handle_; }

 private:
  BoosterHandle handle_ = nullptr;
};

class PredictRuntime : public TransformRuntime {
 public:
  PredictRuntime(SchemaPtr out, std::vector<size_t> feature_cols, std::vector<OutputSpec> outputs,
                 std::shared_ptr<Booster> booster, ModelInfo info)
      : out_(std::move(out)),
        features_(std::move(feature_cols)),
        outputs_(std::move(outputs)),
        booster_(std::move(booster)),
        info_(std::move(info)) {}

  Result<BatchPtr> Process(const BatchPtr& in_ptr, NodeContext& ctx) const override {
    BatchPtr in = in_ptr;
    const size_t k = features_.size();
    // Rows with a missing feature cannot be scored faithfully: dead-letter them.
    std::vector<uint32_t> good;
    bool all_good = true;
    for (size_t r = 0; r < in->num_rows(); ++r) {
      std::string bad;
      for (size_t j = 0; j < k && bad.empty(); ++j) {
        const Column& c = in->column(features_[j]);
        if (c.IsNull(r)) {
          bad = fmt::format("feature '{}' is null", in->schema()->field(features_[j]).name);
        } else if (c.type == TypeId::kFloat64 && !std::isfinite(c.doubles[r])) {
          bad = fmt::format("feature '{}' is {}", in->schema()->field(features_[j]).name,
                            c.doubles[r]);
        }
      }
      if (bad.empty()) {
        good.push_back(static_cast<uint32_t>(r));
      } else {
        all_good = false;
        ctx.Reject(*in, r, bad);
      }
    }
    if (!all_good) in = in->Take(good);
    const size_t n = in->num_rows();
    std::vector<ColumnPtr> cols = in->columns();
    if (n == 0) {
      for (size_t o = 0; o < outputs_.size(); ++o)
        cols.push_back(std::make_shared<Column>(out_->field(in->schema()->size() + o).type));
      return BatchPtr(in->WithColumns(out_, std::move(cols)));
    }
    // Row-major float32, as the model was trained on.
    std::vector<float> matrix(n * k);
    for (size_t j = 0; j < k; ++j) {
      const Column& c = in->column(features_[j]);
      if (c.type == TypeId::kFloat64) {
        for (size_t r = 0; r < n; ++r) matrix[r * k + j] = static_cast<float>(c.doubles[r]);
      } else {
        for (size_t r = 0; r < n; ++r) matrix[r * k + j] = static_cast<float>(c.ints[r]);
      }
    }
    std::string array =
        fmt::format(R"({{"data": [{}, true], "shape": [{}, {}], "typestr": "<f4", "version": 3}})",
                    reinterpret_cast<uintptr_t>(matrix.data()), n, k);
    static const char* kConfig =
        R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0, )"
        R"("strict_shape": true, "missing": NaN, "cache_id": 0})";
    const bst_ulong* shape = nullptr;
    bst_ulong dim = 0;
    const float* result = nullptr;
    if (XGBoosterPredictFromDense(booster_->handle(), array.c_str(), kConfig, nullptr, &shape, &dim,
                                  &result) != 0) {
      return Status::Internal(fmt::format("model '{}' failed: {}", info_.name, LastXgbError()));
    }
    const size_t width = dim >= 2 ? static_cast<size_t>(shape[1]) : 1;
    if (dim < 1 || shape[0] != n) {
      return Status::Internal(fmt::format("model '{}' returned an unexpected shape", info_.name));
    }
    for (const auto& o : outputs_) {
      auto col = std::make_shared<Column>(OutputType(o));
      col->Reserve(n);
      for (size_t r = 0; r < n; ++r) {
        const float* row = result + r * width;
        size_t label = 0;
        if (width == 1) {
          label = row[0] > 0.5f ? 1 : 0;
        } else {
          for (size_t c = 1; c < width; ++c)
            if (row[c] > row[label]) label = c;
        }
        switch (o.kind) {
          case OutputSpec::kLabel: col->AppendInt(static_cast<int64_t>(label)); break;
          case OutputSpec::kClass:
            col->AppendString(label < info_.classes.size() ? info_.classes[label]
                                                           : std::to_string(label));
            break;
          case OutputSpec::kProbability:
            col->AppendDouble(width == 1 ? (label ? row[0] : 1.0 - row[0]) : row[label]);
            break;
          case OutputSpec::kClassProbability:
            if (width == 1) {
              col->AppendDouble(o.class_index == 1 ? row[0] : 1.0 - row[0]);
            } else {
              col->AppendDouble(static_cast<size_t>(o.class_index) < width ? row[o.class_index]
                                                                           : NAN);
            }
            break;
          case OutputSpec::kValue: col->AppendDouble(row[0]); break;
          case OutputSpec::kModelName: col->AppendString(info_.name); break;
          case OutputSpec::kModelVersion: col->AppendString(info_.version); break;
        }
      }
      cols.push_back(std::move(col));
    }
    return BatchPtr(in->WithColumns(out_, std::move(cols)));
  }

  static TypeId OutputType(const OutputSpec& o) {
    switch (o.kind) {
      case OutputSpec::kLabel: return TypeId::kInt64;
      case OutputSpec::kClass:
      case OutputSpec::kModelName:
      case OutputSpec::kModelVersion: return TypeId::kString;
      default: return TypeId::kFloat64;
    }
  }

 private:
  SchemaPtr out_;
  std::vector<size_t> features_;
  std::vector<OutputSpec> outputs_;
  std::shared_ptr<Booster> booster_;
  ModelInfo info_;
};

constexpr const char* kOutputKinds =
    "label, class, probability, probability:<class>, value, model_name, model_version";

class Predict : public TransformNode {
 public:
  Predict(const NodeConfig& node, PredictConfig cfg) : node_(node), cfg_(std::move(cfg)) {}

  Result<SchemaPtr> OutputSchema(const SchemaPtr& input) override {
    auto info = LoadModelInfo(cfg_.model_dir);
    if (!info.ok()) return node_.Error("model", info.status().message());
    info_ = std::move(*info);
    // Every signature input must reach the model as a numeric field.
    features_.clear();
    std::vector<std::string> problems;
    for (const auto& in : info_.inputs) {
      int i = input->IndexOf(in.name);
      if (i < 0) {
        // Suggest only a field that is not itself another model input: feeding the model a
        // different feature is never the fix.
        std::vector<std::string> candidates;
        for (const auto& f : input->fields()) {
          bool is_input = false;
          for (const auto& other : info_.inputs) is_input = is_input || other.name == f.name;
          if (!is_input) candidates.push_back(f.name);
        }
        auto near = ClosestMatch(in.name, candidates);
        problems.push_back(fmt::format(
            "model input '{}' is not a field of {}{} (fields: {})", in.name, InputName(node_),
            near ? fmt::format("; did you mean '{}'?", *near) : "", input->FieldNames()));
        continue;
      }
      const Field& f = input->field(i);
      if (!IsNumeric(f.type) && f.type != TypeId::kBool) {
        problems.push_back(fmt::format(
            "model input '{}' is {} in the model's signature but field '{}' of {} is {}", in.name,
            TypeName(in.type), f.name, InputName(node_), TypeName(f.type)));
        continue;
      }
      features_.push_back(static_cast<size_t>(i));
    }
    if (!problems.empty())
      return node_.Error("model", fmt::format("{}", fmt::join(problems, "; ")));
    const bool regressor = info_.model_class.find("Regressor") != std::string::npos;
    const bool multiclass = info_.classes.size() > 2;
    std::vector<Field> fields = input->fields();
    for (auto& o : cfg_.outputs) {
      if (regressor && o.kind != OutputSpec::kValue && o.kind != OutputSpec::kModelName &&
          o.kind != OutputSpec::kModelVersion) {
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
      fields.push_back({o.field, PredictRuntime::OutputType(o), false});
    }
    out_ = std::make_shared<const Schema>(std::move(fields));
    return out_;
  }

  Result<std::unique_ptr<TransformRuntime>> Build() const override {
    auto booster = Booster::Load(info_.data_path);
    if (!booster.ok()) return node_.Error("model", booster.status().message());
    return std::unique_ptr<TransformRuntime>(
        std::make_unique<PredictRuntime>(out_, features_, cfg_.outputs, *booster, info_));
  }

 private:
  const NodeConfig& node_;
  PredictConfig cfg_;
  ModelInfo info_;
  SchemaPtr out_;
  std::vector<size_t> features_;
};

Result<std::unique_ptr<TransformNode>> MakePredict(const NodeConfig& node) {
  PredictConfig cfg;
  cfg.model_dir = node.Path("model");
  auto pairs = node.StringMap("outputs");
  if (pairs.empty()) pairs.emplace_back("prediction", "label");
  for (const auto& [field, what] : pairs) {
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
    cfg.outputs.push_back(std::move(o));
  }
  return std::unique_ptr<TransformNode>(std::make_unique<Predict>(node, std::move(cfg)));
}

}  // namespace

void RegisterPredict(Registry& registry) {
  OperatorSpec spec;
  spec.name = "predict";
  spec.role = Role::kTransform;
  spec.summary = "Scores every row with a model (XGBoost, in process) and adds its outputs.";
  spec.description =
      "`model` is a directory in MLflow's layout (an MLmodel file with a signature beside the "
      "model file). The fields named by the signature's inputs are the features; validation "
      "checks they reach the node with numeric types. `outputs` maps new field names to what "
      "they hold: `label` (class index), `class` (class name from the model's metadata), "
      "`probability` (of the predicted class), `probability:<class>` (of one class, by index "
      "or name), `value` (raw prediction, for regressors), `model_name`, `model_version`. "
      "Rows with a null or NaN feature go to the dead-letter output.";
  spec.parallel = true;
  spec.fields = {
      {"model", ConfigType::kPath, true, "", "MLflow model directory", {}},
      {"outputs",
       ConfigType::kStringMap,
       false,
       "{prediction: label}",
       "new field name: what it holds (label, class, probability, probability:<class>, value, "
       "model_name, model_version)",
       {}},
  };
  spec.example =
      "{type: predict, inputs: [features], model: ../models/iris, outputs: {iris_class: label}}";
  spec.make_transform = MakePredict;
  registry.Add(std::move(spec));
}

}  // namespace sluice
