#include "operators/transforms/predict_http.h"

#include <optional>

#include <fmt/format.h>
#include <simdjson.h>

#include "engine/json.h"
#include "engine/log.h"
#include "engine/metrics.h"

namespace sluice {
namespace {

// One feature value: a number (bool as 0 / 1), or a JSON string for a string input (mlflow; the
// server encodes categories itself). KServe requests never hold strings: validation refuses them.
void AppendFeature(std::string& out, const Column& c, size_t row, bool fp32) {
  if (c.type == TypeId::kString) {
    AppendJsonString(out, c.strings[row]);
  } else if (c.type == TypeId::kFloat64) {
    if (fp32) {
      out += fmt::format("{}", static_cast<float>(c.doubles[row]));
    } else {
      AppendJsonDouble(out, c.doubles[row]);
    }
  } else {
    AppendJsonInt(out, c.ints[row]);  // int64 and bool (0 / 1)
  }
}

bool EndsWith(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

std::string Shortened(std::string_view body) {
  constexpr size_t kMax = 200;
  return body.size() > kMax ? std::string(body.substr(0, kMax)) + "..." : std::string(body);
}

// One prediction of a list: a number, a class name, or (arrays) class probabilities.
// Returns the number of values appended, or 0 with `error` set.
size_t ReadPrediction(simdjson::dom::element e, const std::vector<std::string>& classes,
                      std::vector<double>& values, std::string& error) {
  double d;
  bool b;
  std::string_view s;
  simdjson::dom::array a;
  if (!e.get_double().get(d)) {
    values.push_back(d);
  } else if (!e.get_bool().get(b)) {
    values.push_back(b ? 1 : 0);
  } else if (!e.get_string().get(s)) {
    auto it = std::find(classes.begin(), classes.end(), s);
    if (it == classes.end()) {
      error = classes.empty()
                  ? fmt::format("the prediction '{}' is a class name, but the model has no "
                                "classes in its metadata",
                                s)
                  : fmt::format("the prediction '{}' is not a class of the model ({})", s,
                                fmt::join(classes, ", "));
      return 0;
    }
    values.push_back(static_cast<double>(it - classes.begin()));
  } else if (!e.get_array().get(a)) {
    size_t k = 0;
    for (auto v : a) {
      if (v.get_double().get(d)) {
        error = fmt::format("a prediction is a list holding {}, not numbers", simdjson::minify(v));
        return 0;
      }
      values.push_back(d);
      ++k;
    }
    if (k == 0) error = "a prediction is an empty list";
    return k;
  } else {
    error = fmt::format("a prediction is {}, not a number, class name or list of probabilities",
                        Shortened(simdjson::minify(e)));
    return 0;
  }
  return 1;
}

// Predictions of a JSON array, one per row.
Result<Scores> ReadPredictions(simdjson::dom::array preds, size_t rows,
                               const std::vector<std::string>& classes) {
  if (preds.size() != rows) {
    return Status::TypeError(
        fmt::format("the server answered {} predictions for {} rows", preds.size(), rows));
  }
  Scores s;
  s.errors.resize(rows);
  size_t width = 0, r = 0;
  bool scalar = false;
  for (auto e : preds) {
    std::string error;
    const size_t before = s.values.size();
    size_t k = ReadPrediction(e, classes, s.values, error);
    if (k == 0) {
      s.errors[r] = error;
      k = width ? width : 1;
      s.values.resize(before + k, 0);
    } else if (width == 0) {
      width = k;
      scalar = !e.is_array();
    } else if (k != width || scalar == e.is_array()) {
      return Status::TypeError("the predictions do not all have the same shape");
    }
    ++r;
  }
  s.width = width ? width : 1;
  s.direct = width <= 1 && (scalar || width == 0);
  if (s.values.size() != rows * s.width)
    return Status::TypeError("the predictions do not all have the same shape");
  return s;
}

}  // namespace

std::string EncodeMlflowRequest(const Batch& batch, const std::vector<size_t>& features,
                                const std::vector<std::string>& names, size_t begin, size_t end) {
  std::string out = R"({"dataframe_split": {"columns": [)";
  for (size_t j = 0; j < names.size(); ++j) {
    if (j) out += ", ";
    AppendJsonString(out, names[j]);
  }
  out += "], \"data\": [";
  for (size_t r = begin; r < end; ++r) {
    out += r == begin ? "[" : ", [";
    for (size_t j = 0; j < features.size(); ++j) {
      if (j) out += ", ";
      AppendFeature(out, batch.column(features[j]), r, false);
    }
    out += ']';
  }
  out += "]}}";
  return out;
}

std::string EncodeKserveRequest(const Batch& batch, const std::vector<size_t>& features,
                                size_t begin, size_t end, bool fp32) {
  std::string out = fmt::format(
      R"({{"inputs": [{{"name": "input-0", "shape": [{}, {}], "datatype": "{}", "data": [)",
      end - begin, features.size(), fp32 ? "FP32" : "FP64");
  for (size_t r = begin; r < end; ++r) {
    for (size_t j = 0; j < features.size(); ++j) {
      if (r != begin || j) out += ", ";
      AppendFeature(out, batch.column(features[j]), r, fp32);
    }
  }
  out += "]}]}";
  return out;
}

std::string EncodeJsonRecord(const Batch& batch, const std::vector<size_t>& features,
                             const std::vector<std::string>& names, size_t row) {
  std::string out = "{";
  for (size_t j = 0; j < features.size(); ++j) {
    if (j) out += ", ";
    AppendJsonString(out, names[j]);
    out += ": ";
    AppendJsonCell(out, batch.column(features[j]), row);
  }
  out += '}';
  return out;
}

Result<Scores> DecodeMlflowResponse(std::string_view body, size_t rows,
                                    const std::vector<std::string>& classes) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc))
    return Status::TypeError(fmt::format("the answer is not JSON: {}", Shortened(body)));
  simdjson::dom::array preds;
  if (doc.get_array().get(preds) && doc["predictions"].get_array().get(preds)) {
    return Status::TypeError(fmt::format(
        R"(expected {{"predictions": [...]}} or a JSON array, got {})", Shortened(body)));
  }
  return ReadPredictions(preds, rows, classes);
}

Result<Scores> DecodeKserveResponse(std::string_view body, size_t rows,
                                    const std::vector<std::string>& classes) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  simdjson::dom::element doc, output;
  if (parser.parse(padded).get(doc))
    return Status::TypeError(fmt::format("the answer is not JSON: {}", Shortened(body)));
  simdjson::dom::array outputs, data, shape;
  if (doc["outputs"].get_array().get(outputs) || outputs.size() == 0 ||
      outputs.at(0).get(output) || output["data"].get_array().get(data)) {
    return Status::TypeError(fmt::format(
        R"(expected {{"outputs": [{{"data": [...], ...}}]}}, got {})", Shortened(body)));
  }
  const size_t total = data.size();
  if (rows == 0 || total % rows != 0) {
    return Status::TypeError(
        fmt::format("the answer's tensor holds {} values for {} rows", total, rows));
  }
  const size_t width = total / rows;
  if (!output["shape"].get_array().get(shape) && shape.size() > 0) {
    uint64_t first = 0;
    if (shape.at(0).get_uint64().get(first) || first != rows) {
      return Status::TypeError(fmt::format("the answer's shape is {} for {} rows",
                                           simdjson::minify(output["shape"]), rows));
    }
  }
  Scores s;
  s.width = width;
  s.direct = width == 1;
  s.errors.resize(rows);
  std::string_view version;
  if (!doc["model_version"].get_string().get(version)) s.model_version = std::string(version);
  size_t i = 0;
  for (auto e : data) {
    std::string error;
    if (!e.is_array() && ReadPrediction(e, classes, s.values, error) == 1) {
      ++i;
      continue;
    }
    if (error.empty()) error = "a value of the tensor is a list";
    s.values.push_back(0);
    if (s.errors[i / width].empty()) s.errors[i / width] = error;
    ++i;
  }
  return s;
}

Status DecodeJsonRecord(std::string_view body, const std::vector<OutputSpec>& outputs,
                        const std::vector<std::shared_ptr<Column>>& cols) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  simdjson::dom::element doc;
  simdjson::dom::object obj;
  if (parser.parse(padded).get(doc) || doc.get_object().get(obj))
    return Status::TypeError(fmt::format("the answer is not a JSON object: {}", Shortened(body)));
  // Check every key first, so a bad answer appends nothing.
  std::vector<simdjson::dom::element> values(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const OutputSpec& o = outputs[i];
    if (o.kind != OutputSpec::kResponseKey) continue;
    simdjson::dom::element v;
    if (obj[o.key].get(v)) {
      std::vector<std::string> keys;
      for (auto kv : obj) keys.emplace_back(kv.key);
      return Status::TypeError(fmt::format("the answer has no key '{}' (keys: {})", o.key,
                                           fmt::join(keys, ", ")));
    }
    bool fits = false;
    switch (o.type) {
      case TypeId::kInt64: {
        double d;
        fits = v.is_int64() || v.is_uint64() ||
               (!v.get_double().get(d) && d == std::floor(d) && std::fabs(d) < 9.2e18);
        break;
      }
      case TypeId::kFloat64: fits = v.is_number(); break;
      case TypeId::kBool: fits = v.is_bool(); break;
      case TypeId::kString: fits = v.is_string(); break;
      case TypeId::kTimestamp:
        fits = v.is_string() && ParseTimestamp(std::string_view(v.get_string().value())).ok();
        break;
    }
    if (!fits) {
      return Status::TypeError(fmt::format("the answer's '{}' is {}, expected {}", o.key,
                                           Shortened(simdjson::minify(v)), TypeName(o.type)));
    }
    values[i] = v;
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].kind != OutputSpec::kResponseKey) continue;
    const simdjson::dom::element& v = values[i];
    Column& c = *cols[i];
    switch (outputs[i].type) {
      case TypeId::kInt64:
        c.AppendInt(v.is_int64() ? int64_t(v)
                                 : static_cast<int64_t>(v.is_uint64() ? double(uint64_t(v))
                                                                      : double(v)));
        break;
      case TypeId::kFloat64: c.AppendDouble(double(v)); break;
      case TypeId::kBool: c.AppendInt(bool(v) ? 1 : 0); break;
      case TypeId::kString: c.AppendString(std::string_view(v)); break;
      case TypeId::kTimestamp: c.AppendInt(*ParseTimestamp(std::string_view(v))); break;
    }
  }
  return Status::Ok();
}

std::string EndpointUrl(const RemoteConfig& cfg) {
  std::string base = cfg.url;
  switch (cfg.backend) {
    case PredictBackend::kMlflow:
      while (!base.empty() && base.back() == '/') base.pop_back();
      return EndsWith(base, "/invocations") ? base : base + "/invocations";
    case PredictBackend::kKserveV2:
      while (!base.empty() && base.back() == '/') base.pop_back();
      if (base.find("/v2/models/") != std::string::npos) return base;
      return base + "/v2/models/" + cfg.model_name + "/infer";
    default: return base;
  }
}

Result<std::string> ProbeRemoteModel(const RemoteConfig& cfg, size_t features,
                                     int64_t timeout_ms, std::string& key) {
  const std::string endpoint = EndpointUrl(cfg);
  std::string url = endpoint;
  switch (cfg.backend) {
    case PredictBackend::kKserveV2:
      if (EndsWith(url, "/infer")) url.resize(url.size() - 6);  // the model's metadata
      break;
    case PredictBackend::kMlflow:
      url.resize(url.size() - std::string_view("/invocations").size());
      url += "/ping";
      break;
    default: break;  // json: the endpoint takes POSTs; any answer to a GET shows the server
  }
  key = "url";
  const HttpResponse r = HttpGet(url, cfg.http.headers, timeout_ms);
  if (r.status == 0) return Status::Unavailable(fmt::format("GET {}: {}", url, r.error));
  if (cfg.backend != PredictBackend::kKserveV2) {
    return fmt::format("{} answers (GET {}: HTTP {})", endpoint, url, r.status);
  }
  if (r.outcome != HttpResponse::Outcome::kOk) {
    if (r.status == 404) key = "model_name";
    return Status::InvalidConfig(fmt::format(
        "the server does not serve model '{}': GET {}: {}", cfg.model_name, url, r.error));
  }
  // {"name", "versions", "platform", "inputs": [{"name", "datatype", "shape"}], "outputs"}
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::padded_string padded(r.body);
  simdjson::dom::array inputs;
  if (parser.parse(padded).get(doc) || doc["inputs"].get_array().get(inputs) ||
      inputs.size() == 0) {
    return fmt::format("model '{}' is served (its metadata names no inputs: {})", cfg.model_name,
                       Shortened(r.body));
  }
  simdjson::dom::element input = inputs.at(0).value();
  std::string_view name, datatype;
  if (input["name"].get_string().get(name)) name = "input-0";
  if (input["datatype"].get_string().get(datatype)) datatype = "";
  simdjson::dom::array shape;
  std::vector<int64_t> dims;
  if (!input["shape"].get_array().get(shape)) {
    for (auto d : shape) {
      int64_t v;
      if (!d.get_int64().get(v)) dims.push_back(v);
    }
  }
  const std::string shown =
      fmt::format("input '{}' {} [{}]", name, datatype, fmt::join(dims, ", "));
  key = "features";
  if (inputs.size() > 1) {
    return Status::InvalidConfig(fmt::format(
        "model '{}' on the server takes {} input tensors; backend 'kserve-v2' sends one "
        "[rows, features] tensor",
        cfg.model_name, inputs.size()));
  }
  if (!dims.empty() && dims.back() > 0 && static_cast<size_t>(dims.back()) != features) {
    return Status::InvalidConfig(fmt::format(
        "model '{}' on the server takes {} numbers per row ({}), but this node sends {}",
        cfg.model_name, dims.back(), shown, features));
  }
  key = "datatype";
  if ((datatype == "FP32" && !cfg.fp32) || (datatype == "FP64" && cfg.fp32)) {
    return Status::InvalidConfig(fmt::format(
        "model '{}' on the server takes {} ({}), but this node sends {}; set datatype: {}",
        cfg.model_name, datatype, shown, cfg.fp32 ? "FP32" : "FP64", datatype));
  }
  std::string versions;
  simdjson::dom::array vs;
  if (!doc["versions"].get_array().get(vs)) {
    for (auto v : vs) {
      std::string_view sv;
      if (!v.get_string().get(sv)) versions += fmt::format("{}{}", versions.empty() ? "" : ", ", sv);
    }
  }
  return fmt::format("model '{}'{} is served at {}, {}", cfg.model_name,
                     versions.empty() ? "" : fmt::format(" (versions {})", versions), endpoint,
                     shown);
}

namespace {

class RemotePredictRuntime : public TransformRuntime {
 public:
  RemotePredictRuntime(RemoteConfig cfg, SchemaPtr out, std::vector<size_t> features,
                       std::vector<std::string> names, std::vector<OutputSpec> outputs,
                       ModelInfo info, MetricLabels labels, DriftConfig drift)
      : cfg_(std::move(cfg)),
        endpoint_(EndpointUrl(cfg_)),
        client_(std::make_unique<HttpClient>(cfg_.http)),
        out_(std::move(out)),
        features_(std::move(features)),
        names_(std::move(names)),
        outputs_(std::move(outputs)),
        info_(std::move(info)) {
    MetricLabels info_labels = labels;
    info_labels.emplace_back("model", info_.name);
    info_labels.emplace_back("version", info_.version);
    Metrics()
        .GetGauge("sluice_model_info", "the model version serving in a predict node; always 1",
                  info_labels)
        ->Set(1);
    const bool scores = cfg_.backend != PredictBackend::kJson;
    std::shared_ptr<const ReferenceProfile> profile;
    if (!info_.profile_path.empty()) {
      auto loaded = LoadReferenceProfile(info_);
      if (loaded.ok()) {
        profile = std::move(*loaded);
      } else {
        Log(LogLevel::kWarn, fmt::format("{}; drift is not monitored for this model",
                                         loaded.status().message()));
      }
    }
    if (scores) predictions_.emplace(info_.classes, profile.get(), labels);
    if (profile) {
      monitor_ = std::make_unique<DriftMonitor>(
          profile, drift, labels, fmt::format("{} v{}", info_.name, info_.version), scores);
    }
  }

  bool blocks() const override { return true; }  // every batch waits for the server

  Result<BatchPtr> Process(const BatchPtr& input, NodeContext& ctx) const override {
    // The unscorable rows are dead-lettered only once the server has answered: a batch that
    // comes back Unavailable is processed again from the start, and must not send them twice.
    const Unscorable unscorable = FindUnscorable(*input, features_);
    BatchPtr in = unscorable.Scorable(input);
    const size_t n = in->num_rows();
    std::vector<std::shared_ptr<Column>> cols;
    for (const auto& o : outputs_) cols.push_back(std::make_shared<Column>(OutputType(o)));
    std::vector<uint32_t> good;
    // Counted only once the server has answered: a retried batch is counted once.
    PredictionTally tally(predictions_ ? &*predictions_ : nullptr, monitor_.get());
    if (n > 0) {
      const bool per_record = cfg_.backend == PredictBackend::kJson;
      const size_t chunk =
          per_record ? 1 : (cfg_.max_batch_rows > 0 ? static_cast<size_t>(cfg_.max_batch_rows) : n);
      std::vector<HttpRequest> requests;
      for (size_t b = 0; b < n; b += chunk) {
        const size_t e = std::min(n, b + chunk);
        std::string body =
            per_record ? EncodeJsonRecord(*in, features_, names_, b)
            : cfg_.backend == PredictBackend::kMlflow
                ? EncodeMlflowRequest(*in, features_, names_, b, e)
                : EncodeKserveRequest(*in, features_, b, e, cfg_.fp32);
        requests.push_back({endpoint_, std::move(body)});
      }
      // An outage comes back as Unavailable: the runner pauses and retries the whole batch.
      SLUICE_ASSIGN_OR_RETURN(std::vector<HttpResponse> answers, client_->PostAll(requests));
      unscorable.Reject(*input, ctx);
      for (size_t q = 0; q < answers.size(); ++q) {
        const size_t b = q * chunk, e = std::min(n, b + chunk);
        const HttpResponse& a = answers[q];
        auto reject_all = [&](const std::string& why) {
          for (size_t r = b; r < e; ++r) ctx.Reject(*in, r, "model server: " + why);
        };
        if (a.outcome != HttpResponse::Outcome::kOk) {
          reject_all(a.error);
          continue;
        }
        if (per_record) {
          Status st = DecodeJsonRecord(a.body, outputs_, cols);
          if (!st.ok()) {
            reject_all(st.message());
          } else {
            AppendModelFields(cols);
            good.push_back(static_cast<uint32_t>(b));
          }
          continue;
        }
        auto scores = cfg_.backend == PredictBackend::kMlflow
                          ? DecodeMlflowResponse(a.body, e - b, info_.classes)
                          : DecodeKserveResponse(a.body, e - b, info_.classes);
        if (!scores.ok()) {
          reject_all(scores.status().message());
          continue;
        }
        if (scores->direct) {
          auto it = std::find_if(outputs_.begin(), outputs_.end(), NeedsProbabilities);
          if (it != outputs_.end()) {
            reject_all(fmt::format("output '{}' needs class probabilities, but the server "
                                   "answered one prediction per row",
                                   it->field));
            continue;
          }
        }
        // The version the server says scored these rows, when it says one.
        std::optional<ModelInfo> answered;
        if (!scores->model_version.empty() && scores->model_version != info_.version) {
          answered.emplace(info_);
          answered->version = scores->model_version;
        }
        const ModelInfo& info = answered ? *answered : info_;
        for (size_t r = b; r < e; ++r) {
          const std::string& why = scores->errors[r - b];
          if (!why.empty()) {
            ctx.Reject(*in, r, "model server: " + why);
            continue;
          }
          const double* row = scores->values.data() + (r - b) * scores->width;
          AppendPrediction(cols, outputs_, row, scores->width, scores->direct, info);
          tally.AddPredictions(row, 1, scores->width, scores->direct);
          good.push_back(static_cast<uint32_t>(r));
        }
      }
    }
    if (n == 0) unscorable.Reject(*input, ctx);
    if (good.size() != n) in = in->Take(good);
    for (size_t j = 0; j < features_.size(); ++j)
      tally.AddFeature(j, in->column(features_[j]), in->num_rows());
    tally.Commit(in->num_rows());
    std::vector<ColumnPtr> all = in->columns();
    all.insert(all.end(), cols.begin(), cols.end());
    return BatchPtr(in->WithColumns(out_, std::move(all)));
  }

 private:
  // json backend: the outputs that are not answer keys (model name and version).
  void AppendModelFields(const std::vector<std::shared_ptr<Column>>& cols) const {
    for (size_t i = 0; i < outputs_.size(); ++i) {
      if (outputs_[i].kind == OutputSpec::kModelName) cols[i]->AppendString(info_.name);
      if (outputs_[i].kind == OutputSpec::kModelVersion) cols[i]->AppendString(info_.version);
    }
  }

  RemoteConfig cfg_;
  std::string endpoint_;
  std::unique_ptr<HttpClient> client_;  // thread-safe; shared by concurrent Process calls
  SchemaPtr out_;
  std::vector<size_t> features_;
  std::vector<std::string> names_;
  std::vector<OutputSpec> outputs_;
  ModelInfo info_;
  std::optional<PredictionMetrics> predictions_;  // when the answers are scores
  std::unique_ptr<DriftMonitor> monitor_;         // when the model has a reference profile
};

}  // namespace

std::unique_ptr<TransformRuntime> MakeRemotePredict(RemoteConfig cfg, SchemaPtr out,
                                                    std::vector<size_t> features,
                                                    std::vector<std::string> names,
                                                    std::vector<OutputSpec> outputs,
                                                    ModelInfo info, MetricLabels labels,
                                                    DriftConfig drift) {
  return std::make_unique<RemotePredictRuntime>(
      std::move(cfg), std::move(out), std::move(features), std::move(names), std::move(outputs),
      std::move(info), std::move(labels), drift);
}

}  // namespace sluice
