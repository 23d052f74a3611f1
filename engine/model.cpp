#include "engine/model.h"

#include <algorithm>
#include <filesystem>
#include <unordered_set>

#include <fmt/format.h>
#include <simdjson.h>
#include <yaml-cpp/yaml.h>

namespace sluice {

std::optional<TypeId> MlflowType(std::string_view name) {
  if (name == "double" || name == "float") return TypeId::kFloat64;
  if (name == "long" || name == "integer") return TypeId::kInt64;
  if (name == "boolean") return TypeId::kBool;
  if (name == "string") return TypeId::kString;
  if (name == "datetime") return TypeId::kTimestamp;
  return std::nullopt;
}

namespace {

Result<std::vector<Field>> ParseSignature(const std::string& json, const std::string& where) {
  std::vector<Field> out;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::padded_string padded(json);
  if (parser.parse(padded).get(root) || !root.is_array()) {
    return Status::InvalidConfig(
        fmt::format("{}: the signature is not a JSON list of columns", where));
  }
  for (auto col : root.get_array()) {
    Field f;
    std::string_view s;
    if (!col["name"].get_string().get(s)) f.name = std::string(s);
    if (col["type"].get_string().get(s)) {
      return Status::InvalidConfig(
          fmt::format("{}: signature column '{}' has no scalar 'type' (tensor signatures are not "
                      "supported)",
                      where, f.name));
    }
    auto t = MlflowType(s);
    if (!t) {
      return Status::InvalidConfig(
          fmt::format("{}: signature column '{}' has unsupported type '{}'", where, f.name, s));
    }
    f.type = *t;
    bool required = true;
    if (col["required"].get_bool().get(required)) required = true;
    f.nullable = !required;
    out.push_back(std::move(f));
  }
  return out;
}

// The category encoding: a JSON object mapping string inputs to their categories in code order.
Status LoadCategories(ModelInfo& info) {
  const std::string& path = info.categories_path;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::padded_string text;
  if (simdjson::padded_string::load(path).get(text)) {
    return Status::NotFound(fmt::format(
        "the model's category encoding '{}' (metadata.categories) cannot be read", path));
  }
  simdjson::dom::object obj;
  if (parser.parse(text).get(root) || root.get_object().get(obj)) {
    return Status::InvalidConfig(fmt::format(
        "{}: expected a JSON object mapping each categorical input to its categories in code "
        "order, e.g. {{\"PU_DO\": [\"1_1\", \"1_2\"]}}",
        path));
  }
  for (auto [key, value] : obj) {
    const std::string name(key);
    auto input = std::find_if(info.inputs.begin(), info.inputs.end(),
                              [&](const Field& f) { return f.name == name; });
    if (input == info.inputs.end()) {
      std::vector<std::string> names;
      for (const auto& f : info.inputs) names.push_back(f.name);
      return Status::InvalidConfig(fmt::format("{}: '{}' is not an input of the model (inputs: {})",
                                               path, name, fmt::join(names, ", ")));
    }
    if (input->type != TypeId::kString) {
      return Status::InvalidConfig(
          fmt::format("{}: input '{}' has categories but is {} in the signature; categories "
                      "encode string inputs",
                      path, name, TypeName(input->type)));
    }
    simdjson::dom::array list;
    if (value.get_array().get(list)) {
      return Status::InvalidConfig(
          fmt::format("{}: the categories of '{}' are not a JSON list", path, name));
    }
    std::vector<std::string> cats;
    std::unordered_set<std::string_view> seen;  // views into the parsed document
    cats.reserve(list.size());
    for (auto c : list) {
      std::string_view s;
      if (c.get_string().get(s)) {
        return Status::InvalidConfig(fmt::format("{}: category {} of '{}' is {}, not a string",
                                                 path, cats.size(), name, simdjson::minify(c)));
      }
      // A category with two codes would make the encoding ambiguous.
      if (!seen.insert(s).second) {
        return Status::InvalidConfig(
            fmt::format("{}: category '{}' of '{}' appears twice", path, s, name));
      }
      cats.emplace_back(s);
    }
    // Codes reach XGBoost as float32, exact only up to 2^24.
    constexpr size_t kMaxCategories = size_t{1} << 24;
    if (cats.size() > kMaxCategories) {
      return Status::InvalidConfig(fmt::format("{}: '{}' has {} categories; at most {} are "
                                               "supported",
                                               path, name, cats.size(), kMaxCategories));
    }
    info.categories[name] = std::move(cats);
  }
  return Status::Ok();
}

}  // namespace

Result<ModelInfo> LoadModelInfo(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string mlmodel = (fs::path(dir) / "MLmodel").string();
  if (!fs::is_directory(dir)) {
    if (fs::exists(dir)) {
      return Status::InvalidConfig(fmt::format(
          "'{}' is a file; a model is a directory in MLflow's layout (an MLmodel file beside the "
          "model file)",
          dir));
    }
    return Status::NotFound(fmt::format("model directory '{}' does not exist", dir));
  }
  if (!fs::exists(mlmodel)) {
    return Status::NotFound(
        fmt::format("'{}' has no MLmodel file; a model is a directory in MLflow's layout", dir));
  }
  ModelInfo info;
  info.dir = dir;
  info.name = fs::path(dir).lexically_normal().filename().string();
  if (info.name.empty()) info.name = fs::path(dir).parent_path().filename().string();
  try {
    YAML::Node root = YAML::LoadFile(mlmodel);
    YAML::Node flavors = root["flavors"];
    if (!flavors.IsMap()) {
      return Status::InvalidConfig(fmt::format("{}: no 'flavors' mapping", mlmodel));
    }
    if (flavors["xgboost"].IsMap()) {
      info.flavor = "xgboost";
      YAML::Node x = flavors["xgboost"];
      std::string data = x["data"].IsScalar() ? x["data"].Scalar() : "model.xgb";
      info.data_path = (fs::path(dir) / data).string();
      if (x["model_class"].IsScalar()) info.model_class = x["model_class"].Scalar();
    } else {
      std::vector<std::string> names;
      for (auto it = flavors.begin(); it != flavors.end(); ++it)
        names.push_back(it->first.Scalar());
      return Status::InvalidConfig(
          fmt::format("{}: no supported flavor (found: {}; supported: xgboost)", mlmodel,
                      fmt::join(names, ", ")));
    }
    YAML::Node sig = root["signature"];
    if (!sig.IsMap() || !sig["inputs"].IsScalar()) {
      return Status::InvalidConfig(fmt::format(
          "{}: no 'signature' with 'inputs'; Sluice needs the model's named inputs to check "
          "pipelines against it",
          mlmodel));
    }
    SLUICE_ASSIGN_OR_RETURN(info.inputs, ParseSignature(sig["inputs"].Scalar(), mlmodel));
    if (sig["outputs"].IsScalar()) {
      SLUICE_ASSIGN_OR_RETURN(info.outputs, ParseSignature(sig["outputs"].Scalar(), mlmodel));
    }
    for (const auto& f : info.inputs) {
      if (f.name.empty()) {
        return Status::InvalidConfig(
            fmt::format("{}: every signature input needs a name", mlmodel));
      }
    }
    YAML::Node meta = root["metadata"];
    if (meta.IsMap()) {
      if (meta["name"].IsScalar()) info.name = meta["name"].Scalar();
      if (meta["version"].IsScalar()) info.version = meta["version"].Scalar();
      if (meta["classes"].IsSequence()) {
        for (const auto& c : meta["classes"]) info.classes.push_back(c.Scalar());
      }
      if (meta["categories"].IsScalar()) {
        info.categories_path = (fs::path(dir) / meta["categories"].Scalar()).string();
      } else if (meta["categories"].IsDefined() && !meta["categories"].IsNull()) {
        return Status::InvalidConfig(fmt::format(
            "{}: metadata.categories must name a JSON file in the model directory", mlmodel));
      }
      if (meta["profile"].IsScalar()) {
        info.profile_path = (fs::path(dir) / meta["profile"].Scalar()).string();
      }
    }
  } catch (const YAML::Exception& e) {
    return Status::InvalidConfig(fmt::format("{}:{}:{}: invalid YAML: {}", mlmodel, e.mark.line + 1,
                                             e.mark.column + 1, e.msg));
  }
  if (!fs::exists(info.data_path)) {
    return Status::NotFound(fmt::format("model file '{}' does not exist", info.data_path));
  }
  if (!info.categories_path.empty()) SLUICE_RETURN_IF_ERROR(LoadCategories(info));
  return info;
}

}  // namespace sluice
