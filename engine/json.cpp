#include "engine/json.h"

#include <cmath>

#include <fmt/format.h>
#include <simdjson.h>

namespace sluice {

void AppendJsonString(std::string& out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  // Bytes that are not valid UTF-8 (a dead letter may hold anything) are written as \u00XX so the
  // output is always valid JSON.
  const bool utf8 = simdjson::validate_utf8(s.data(), s.size());
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || (!utf8 && c >= 0x80)) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

void AppendJsonDouble(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  fmt::format_to(std::back_inserter(out), "{}", v);
}

void AppendJsonInt(std::string& out, int64_t v) {
  fmt::format_to(std::back_inserter(out), "{}", v);
}

void AppendJsonCell(std::string& out, const Column& c, size_t row) {
  if (c.IsNull(row)) {
    out += "null";
    return;
  }
  switch (c.type) {
    case TypeId::kBool: out += c.ints[row] ? "true" : "false"; break;
    case TypeId::kInt64: AppendJsonInt(out, c.ints[row]); break;
    case TypeId::kFloat64: AppendJsonDouble(out, c.doubles[row]); break;
    case TypeId::kString: AppendJsonString(out, c.strings[row]); break;
    case TypeId::kTimestamp:
      out.push_back('"');
      out += FormatTimestamp(c.ints[row]);
      out.push_back('"');
      break;
  }
}

void AppendRowJson(std::string& out, const Batch& batch, size_t row) {
  out.push_back('{');
  const auto& fields = batch.schema()->fields();
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out.push_back(',');
    AppendJsonString(out, fields[i].name);
    out.push_back(':');
    AppendJsonCell(out, batch.column(i), row);
  }
  out.push_back('}');
}

}  // namespace sluice
