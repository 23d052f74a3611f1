// Record schemas from JSON Schema files.
#include <algorithm>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <simdjson.h>

#include "engine/formats.h"

namespace sluice {

Result<SchemaPtr> ParseJsonSchema(std::string_view json, const std::string& origin) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::padded_string padded(json);
  if (auto err = parser.parse(padded).get(root)) {
    return Status::InvalidConfig(
        fmt::format("{}: not valid JSON: {}", origin, simdjson::error_message(err)));
  }
  simdjson::dom::object props;
  if (root["properties"].get_object().get(props)) {
    return Status::InvalidConfig(
        fmt::format("{}: a record schema is a JSON Schema object with 'properties'", origin));
  }
  std::vector<std::string> required;
  simdjson::dom::array req;
  if (!root["required"].get_array().get(req)) {
    for (auto r : req) {
      std::string_view s;
      if (!r.get_string().get(s)) required.emplace_back(s);
    }
  }
  std::vector<Field> fields;
  for (auto [key, value] : props) {
    Field f;
    f.name = std::string(key);
    f.nullable = std::find(required.begin(), required.end(), f.name) == required.end();
    std::vector<std::string> types;
    simdjson::dom::element t;
    if (!value["type"].get(t)) {
      std::string_view s;
      if (!t.get_string().get(s)) {
        types.emplace_back(s);
      } else if (t.is_array()) {
        for (auto x : t.get_array()) {
          if (!x.get_string().get(s)) types.emplace_back(s);
        }
      }
    }
    std::string_view fmt_name;
    bool date_time = !value["format"].get_string().get(fmt_name) && fmt_name == "date-time";
    std::string base;
    for (const auto& ty : types) {
      if (ty == "null") {
        f.nullable = true;
      } else {
        base = ty;
      }
    }
    if (base == "number") {
      f.type = TypeId::kFloat64;
    } else if (base == "integer") {
      f.type = TypeId::kInt64;
    } else if (base == "boolean") {
      f.type = TypeId::kBool;
    } else if (base == "string") {
      f.type = date_time ? TypeId::kTimestamp : TypeId::kString;
    } else {
      return Status::InvalidConfig(fmt::format(
          "{}: property '{}' has type '{}'; supported: number, integer, boolean, string "
          "(format date-time for timestamps)",
          origin, f.name, base.empty() ? "(none)" : base));
    }
    fields.push_back(std::move(f));
  }
  if (fields.empty()) return Status::InvalidConfig(fmt::format("{}: no properties", origin));
  return std::make_shared<const Schema>(std::move(fields));
}

Result<SchemaPtr> LoadJsonSchemaFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(fmt::format("cannot read schema file '{}'", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseJsonSchema(ss.str(), path);
}

}  // namespace sluice
