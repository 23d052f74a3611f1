#include "operators/transforms/predict_model.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "engine/log.h"

namespace sluice {

std::string LastXgbError() {
  std::string e = XGBGetLastError();
  size_t nl = e.find('\n');
  return nl == std::string::npos ? e : e.substr(0, nl);
}

Booster::~Booster() {
  if (handle_) XGBoosterFree(handle_);
}

Result<std::shared_ptr<Booster>> Booster::Load(const std::string& path) {
  auto b = std::make_shared<Booster>();
  if (XGBoosterCreate(nullptr, 0, &b->handle_) != 0 ||
      XGBoosterLoadModel(b->handle_, path.c_str()) != 0) {
    return Status::InvalidConfig(
        fmt::format("cannot load XGBoost model '{}': {}", path, LastXgbError()));
  }
  // Parallelism comes from the graph (batches in parallel), not from OpenMP.
  XGBoosterSetParam(b->handle_, "nthread", "1");
  return b;
}

size_t Booster::NumFeatures() const {
  bst_ulong n = 0;
  return XGBoosterGetNumFeature(handle_, &n) == 0 ? static_cast<size_t>(n) : 0;
}

std::vector<std::string> Booster::FeatureTypes() const {
  bst_ulong len = 0;
  const char** types = nullptr;
  std::vector<std::string> out;
  if (XGBoosterGetStrFeatureInfo(handle_, "feature_type", &len, &types) != 0) return out;
  for (bst_ulong i = 0; i < len; ++i) out.emplace_back(types[i]);
  return out;
}

Status Booster::Predict(const float* rows, size_t n, std::vector<float>* out,
                        size_t* width) const {
  const size_t k = NumFeatures();
  std::string array =
      fmt::format(R"({{"data": [{}, true], "shape": [{}, {}], "typestr": "<f4", "version": 3}})",
                  reinterpret_cast<uintptr_t>(rows), n, k);
  static const char* kConfig =
      R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0, )"
      R"("strict_shape": true, "missing": NaN, "cache_id": 0})";
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* result = nullptr;
  if (XGBoosterPredictFromDense(handle_, array.c_str(), kConfig, nullptr, &shape, &dim,
                                &result) != 0) {
    return Status::Internal(LastXgbError());
  }
  if (dim < 1 || shape[0] != n) return Status::Internal("an unexpected shape");
  *width = dim >= 2 ? static_cast<size_t>(shape[1]) : 1;
  out->assign(result, result + n * *width);
  return Status::Ok();
}

std::shared_ptr<const TreeEnsemble> CompileChecked(const Booster& booster, std::string* why_not) {
  bst_ulong len = 0;
  const char* json = nullptr;
  if (XGBoosterSaveModelToBuffer(booster.handle(), R"({"format": "json"})", &len, &json) != 0) {
    *why_not = "XGBoost could not write the model as JSON: " + LastXgbError();
    return nullptr;
  }
  std::shared_ptr<const TreeEnsemble> trees =
      TreeEnsemble::Compile(std::string_view(json, len), why_not);
  if (!trees) return nullptr;
  if (trees->num_features() != booster.NumFeatures()) {
    *why_not = "the model's feature count differs from the booster's";
    return nullptr;
  }
  // Every threshold, the floats either side of it, missing values and the categories, in rows
  // scored both ways; one differing bit and XGBoost scores the model.
  // Up to 4,096 rows, fewer for a wide model: at most 2^22 values (16 MiB).
  const size_t probe_rows =
      std::clamp<size_t>((size_t{1} << 22) / trees->num_features(), 64, 4096);
  const std::vector<float> rows = trees->ProbeRows(probe_rows, 0x5eed);
  const size_t n = rows.size() / trees->num_features();
  std::vector<float> expected;
  size_t width = 0;
  Status s = booster.Predict(rows.data(), n, &expected, &width);
  if (!s.ok()) {
    *why_not = "XGBoost could not score the probe rows: " + s.message();
    return nullptr;
  }
  if (width != trees->width()) {
    *why_not = fmt::format("XGBoost answers {} values per row, the compiled trees {}", width,
                           trees->width());
    return nullptr;
  }
  std::vector<float> got(n * width);
  trees->Predict(rows.data(), n, got.data());
  if (std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)) != 0) {
    *why_not = "the compiled trees differ from XGBoost on a probe row";
    return nullptr;
  }
  return trees;
}

namespace {

// Checks the model file agrees with the signature, and builds the encoding of each string input
// (null for the others) once, shared by every batch.
Result<std::vector<std::shared_ptr<const CategoryCodes>>> CategoryEncoders(
    const ModelInfo& info, const Booster& booster) {
  const size_t k = info.inputs.size();
  const size_t trained = booster.NumFeatures();
  if (trained != k) {
    return Status::InvalidConfig(fmt::format(
        "the model file '{}' takes {} features but the signature names {} inputs",
        info.data_path, trained, k));
  }
  const std::vector<std::string> types = booster.FeatureTypes();
  std::vector<std::shared_ptr<const CategoryCodes>> out(k);
  for (size_t j = 0; j < k; ++j) {
    const Field& input = info.inputs[j];
    if (input.type != TypeId::kString) continue;
    // Codes fed to numeric splits would be compared as numbers: a silent wrong answer.
    if (j < types.size() && types[j] != "c") {
      return Status::InvalidConfig(
          fmt::format("model input '{}' is a string with a category encoding, but the model "
                      "file treats feature {} as numeric (type '{}'), not categorical ('c')",
                      input.name, j, types[j]));
    }
    auto cats = info.categories.find(input.name);
    if (cats == info.categories.end()) {
      return Status::InvalidConfig(
          fmt::format("model input '{}' is a string without a category encoding", input.name));
    }
    auto codes = std::make_shared<CategoryCodes>();
    codes->reserve(cats->second.size());
    for (size_t c = 0; c < cats->second.size(); ++c)
      codes->emplace(cats->second[c], static_cast<float>(c));
    out[j] = std::move(codes);
  }
  return out;
}

}  // namespace

Result<std::shared_ptr<const LoadedModel>> LoadForPipeline(const std::string& dir,
                                                           const ModelInfo& planned,
                                                           const Schema& input,
                                                           bool uses_classes) {
  SLUICE_ASSIGN_OR_RETURN(ModelInfo info, LoadModelInfo(dir));
  auto model = std::make_shared<LoadedModel>();
  if (info.inputs.size() != planned.inputs.size()) {
    return Status::InvalidConfig(fmt::format("it takes {} inputs, the pipeline was planned for {}",
                                             info.inputs.size(), planned.inputs.size()));
  }
  for (const Field& in : info.inputs) {
    auto same = std::find_if(planned.inputs.begin(), planned.inputs.end(),
                             [&](const Field& p) { return p.name == in.name; });
    if (same == planned.inputs.end() || same->type != in.type) {
      return Status::InvalidConfig(fmt::format(
          "its input '{}: {}' is not one of the pipeline's ({})", in.name, TypeName(in.type),
          Schema(planned.inputs).ToString()));
    }
    const int col = input.IndexOf(in.name);
    if (col < 0) return Status::InvalidConfig(fmt::format("no field '{}'", in.name));
    model->features.push_back(static_cast<size_t>(col));
  }
  if (uses_classes && info.classes != planned.classes) {
    return Status::InvalidConfig(fmt::format("its classes ({}) are not the pipeline's ({})",
                                             fmt::join(info.classes, ", "),
                                             fmt::join(planned.classes, ", ")));
  }
  SLUICE_ASSIGN_OR_RETURN(model->booster, Booster::Load(info.data_path));
  SLUICE_ASSIGN_OR_RETURN(model->codes, CategoryEncoders(info, *model->booster));
  std::string why_not;
  model->trees = CompileChecked(*model->booster, &why_not);
  if (model->trees) {
    Log(LogLevel::kInfo,
        fmt::format("model {} v{}: Sluice scores its {} trees ({} by leaf sets), identical to "
                    "XGBoost on every probe row",
                    info.name, info.version, model->trees->num_trees(),
                    model->trees->num_leaf_set_trees()));
  } else {
    Log(LogLevel::kInfo, fmt::format("model {} v{}: XGBoost scores it ({})", info.name,
                                     info.version, why_not));
  }
  if (!info.profile_path.empty()) {
    auto profile = LoadReferenceProfile(info);
    if (profile.ok()) {
      model->profile = std::move(*profile);
      model->profile_bin_of_code.resize(info.inputs.size());
      for (size_t j = 0; j < info.inputs.size(); ++j) {
        auto cats = info.categories.find(info.inputs[j].name);
        if (!model->codes[j] || cats == info.categories.end()) continue;
        for (const auto& c : cats->second) {
          model->profile_bin_of_code[j].push_back(
              static_cast<uint32_t>(model->profile->features[j].BinOf(std::string_view(c))));
        }
      }
    } else {
      Log(LogLevel::kWarn, fmt::format("{}; drift is not monitored for this model",
                                       profile.status().message()));
    }
  }
  model->info = std::move(info);
  return std::shared_ptr<const LoadedModel>(std::move(model));
}

}  // namespace sluice
