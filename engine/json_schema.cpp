// Record schemas from JSON Schema files.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <simdjson.h>

#include "engine/formats.h"

namespace sluice {

namespace {

// Nesting deeper than this is refused: no message shape needs it, and it bounds the recursion.
constexpr int kMaxSchemaDepth = 16;

std::vector<std::string> RequiredOf(simdjson::dom::element object) {
  std::vector<std::string> required;
  simdjson::dom::array req;
  if (!object["required"].get_array().get(req)) {
    for (auto r : req) {
      std::string_view s;
      if (!r.get_string().get(s)) required.emplace_back(s);
    }
  }
  return required;
}

// Appends the leaves of `props` to `fields`, named by their dotted path under `prefix`. A nested
// object becomes one field per leaf (`ride.trip_distance`); when the object itself may be absent
// or null, every leaf under it is nullable.
Status AddProperties(simdjson::dom::object props, const std::vector<std::string>& required,
                     const std::string& prefix, bool parent_nullable, int depth,
                     const std::string& origin, std::vector<Field>& fields) {
  for (auto [key, value] : props) {
    std::string name = prefix + std::string(key);
    if (key.empty() || key.find('.') != std::string_view::npos) {
      return Status::InvalidConfig(fmt::format(
          "{}: property '{}': names must be non-empty and contain no '.' (dots separate the "
          "levels of nested objects)",
          origin, name));
    }
    bool nullable = parent_nullable ||
                    std::find(required.begin(), required.end(), key) == required.end();
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
        nullable = true;
      } else {
        base = ty;
      }
    }
    if (base == "object") {
      simdjson::dom::object inner;
      if (value["properties"].get_object().get(inner)) {
        return Status::InvalidConfig(fmt::format(
            "{}: property '{}' is an object without 'properties'; declare its fields", origin,
            name));
      }
      if (depth + 1 >= kMaxSchemaDepth) {
        return Status::InvalidConfig(fmt::format(
            "{}: property '{}' nests objects more than {} levels deep", origin, name,
            kMaxSchemaDepth));
      }
      size_t before = fields.size();
      SLUICE_RETURN_IF_ERROR(AddProperties(inner, RequiredOf(value), name + ".", nullable,
                                           depth + 1, origin, fields));
      if (fields.size() == before) {
        return Status::InvalidConfig(
            fmt::format("{}: property '{}' is an object with no properties", origin, name));
      }
      continue;
    }
    Field f;
    f.name = std::move(name);
    f.nullable = nullable;
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
          "(format date-time for timestamps), object (with properties)",
          origin, f.name, base.empty() ? "(none)" : base));
    }
    fields.push_back(std::move(f));
  }
  return Status::Ok();
}

}  // namespace

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
  std::vector<Field> fields;
  SLUICE_RETURN_IF_ERROR(AddProperties(props, RequiredOf(root), "", false, 0, origin, fields));
  if (fields.empty()) return Status::InvalidConfig(fmt::format("{}: no properties", origin));
  return std::make_shared<const Schema>(std::move(fields));
}

Result<SchemaPtr> LoadJsonSchemaFile(const std::string& path) {
  if (std::filesystem::is_directory(path)) {
    return Status::InvalidConfig(
        fmt::format("'{}' is a folder; name a JSON Schema file in it", path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::NotFound(
        fmt::format("cannot read schema file '{}': {}", path, std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseJsonSchema(ss.str(), path);
}

}  // namespace sluice
