#include "engine/model.h"

#include <filesystem>

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

}  // namespace

Result<ModelInfo> LoadModelInfo(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string mlmodel = (fs::path(dir) / "MLmodel").string();
  if (!fs::is_directory(dir)) {
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
    }
  } catch (const YAML::Exception& e) {
    return Status::InvalidConfig(fmt::format("{}:{}:{}: invalid YAML: {}", mlmodel, e.mark.line + 1,
                                             e.mark.column + 1, e.msg));
  }
  if (!fs::exists(info.data_path)) {
    return Status::NotFound(fmt::format("model file '{}' does not exist", info.data_path));
  }
  return info;
}

}  // namespace sluice
