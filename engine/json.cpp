#include "engine/json.h"

#include <cmath>

#include <fmt/format.h>
#include <simdjson.h>

namespace sluice {

namespace {

bool NeedsEscape(unsigned char c) {
  return c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view s) {
  // Fast path: plain ASCII with nothing to escape, the common case for field names and values.
  bool plain = true;
  for (unsigned char c : s) {
    if (NeedsEscape(c)) {
      plain = false;
      break;
    }
  }
  out.push_back('"');
  if (plain) {
    out.append(s);
    out.push_back('"');
    return;
  }
  static const char* kHex = "0123456789abcdef";
  // Bytes that are not valid UTF-8 (a dead letter may hold anything) are written as \u00XX so the
  // output is always valid JSON.
  const bool utf8 = simdjson::validate_utf8(s.data(), s.size());
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
    case TypeId::kTimestamp: {
      char buf[40];
      size_t n = FormatTimestampTo(c.ints[row], buf);
      out.push_back('"');
      out.append(buf, n);
      out.push_back('"');
      break;
    }
  }
}

void AppendRowJson(std::string& out, const Batch& batch, size_t row) {
  RowJsonEncoder(*batch.schema()).Append(out, batch, row);
}

RowJsonEncoder::RowJsonEncoder(const Schema& schema) {
  for (size_t i = 0; i < schema.size(); ++i) {
    std::string key = i == 0 ? "{" : ",";
    AppendJsonString(key, schema.field(i).name);
    key.push_back(':');
    keys_.push_back(std::move(key));
  }
}

void RowJsonEncoder::Append(std::string& out, const Batch& batch, size_t row) const {
  if (keys_.empty()) out.push_back('{');
  for (size_t i = 0; i < keys_.size(); ++i) {
    out += keys_[i];
    AppendJsonCell(out, batch.column(i), row);
  }
  out.push_back('}');
}

void RowJsonEncoder::AppendBatch(std::string& out, const Batch& batch) const {
  for (size_t r = 0; r < batch.num_rows(); ++r) {
    Append(out, batch, r);
    out.push_back('\n');
  }
}

}  // namespace sluice
