#include "operators/sinks/value_template.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "engine/json.h"
#include "operators/transforms/field_check.h"

namespace sluice {
namespace {

bool IsQuoted(const YAML::Node& scalar) { return scalar.Tag() == "!"; }

// YAML 1.2 core schema scalars that are not strings, as JSON text; empty for a string.
std::string PlainScalarJson(const std::string& s) {
  if (s == "null" || s == "~" || s == "Null" || s == "NULL") return "null";
  if (s == "true" || s == "True" || s == "TRUE") return "true";
  if (s == "false" || s == "False" || s == "FALSE") return "false";
  if (s.empty()) return "null";
  const char* b = s.data() + (s[0] == '+' ? 1 : 0);
  const char* e = s.data() + s.size();
  int64_t i;
  auto ri = std::from_chars(b, e, i);
  if (ri.ec == std::errc() && ri.ptr == e) return std::to_string(i);
  double d;
  auto rd = std::from_chars(b, e, d);
  if (rd.ec == std::errc() && rd.ptr == e && std::isfinite(d)) {
    std::string out;
    AppendJsonDouble(out, d);
    return out;
  }
  return "";
}

}  // namespace

Result<ValueTemplate> ValueTemplate::Parse(const NodeConfig& node, const YAML::Node& shape,
                                           const Schema& input) {
  ValueTemplate t;
  Status st = t.Build(node, shape, input);
  if (!st.ok()) return st;
  if (t.parts_.size() == 1 && t.parts_[0].text.empty() && t.parts_[0].column >= 0) {
    t.raw_string_ = input.field(t.parts_[0].column).type == TypeId::kString;
  }
  return t;
}

void ValueTemplate::AddText(std::string_view text) {
  if (parts_.empty() || parts_.back().column >= 0) parts_.push_back({});
  parts_.back().text.append(text);
}

Status ValueTemplate::Build(const NodeConfig& node, const YAML::Node& shape, const Schema& input) {
  const Mark mark = Mark::Of(node.mark.file, shape);
  auto error = [&](const std::string& message) {
    return Status::InvalidConfig(
        fmt::format("{}: {}: {}", mark.ToString(), node.Prefix(), message));
  };
  if (shape.IsMap()) {
    AddText("{");
    bool first = true;
    for (auto it = shape.begin(); it != shape.end(); ++it) {
      if (!it->first.IsScalar()) return error("a key of the shape must be a plain name");
      std::string k;
      AppendJsonString(k, it->first.Scalar());
      AddText(first ? "" : ",");
      AddText(k);
      AddText(":");
      first = false;
      SLUICE_RETURN_IF_ERROR(Build(node, it->second, input));
    }
    AddText("}");
    return Status::Ok();
  }
  if (shape.IsSequence()) {
    AddText("[");
    for (size_t i = 0; i < shape.size(); ++i) {
      if (i) AddText(",");
      SLUICE_RETURN_IF_ERROR(Build(node, shape[i], input));
    }
    AddText("]");
    return Status::Ok();
  }
  if (shape.IsNull()) {
    AddText("null");
    return Status::Ok();
  }
  const std::string& s = shape.Scalar();
  if (s.size() >= 1 && s[0] == '.') {
    const std::string name = s.substr(1);
    int col = input.IndexOf(name);
    if (name.empty() || col < 0) return error(NotAFieldMessage(node, name, input));
    parts_.push_back({"", col});
    return Status::Ok();
  }
  std::string text = s.rfind("\\.", 0) == 0 ? s.substr(1) : s;
  std::string json = IsQuoted(shape) || text != s ? "" : PlainScalarJson(text);
  if (json.empty()) AppendJsonString(json, text);
  AddText(json);
  return Status::Ok();
}

bool ValueTemplate::Render(const Batch& batch, size_t row, std::string& out) const {
  if (raw_string_) {
    const Column& c = batch.column(parts_[0].column);
    if (c.IsNull(row)) return false;
    out.append(c.strings[row]);
    return true;
  }
  if (is_single_field() && parts_[0].text.empty() && batch.column(parts_[0].column).IsNull(row)) {
    return false;
  }
  for (const Part& p : parts_) {
    out.append(p.text);
    if (p.column >= 0) AppendJsonCell(out, batch.column(p.column), row);
  }
  return true;
}

}  // namespace sluice
