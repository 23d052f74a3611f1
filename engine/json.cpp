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

namespace {

// The objects of a row: fields named by a dotted path (`prediction.ride_duration`) are written
// inside nested objects, in the order the schema first mentions each object.
struct JsonNode {
  std::string key;
  int column = -1;  // a leaf: the schema field it writes
  std::vector<JsonNode> children;
};

void Insert(JsonNode& root, const std::string& name, int column) {
  JsonNode* node = &root;
  size_t start = 0;
  for (size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', start)) {
    std::string part = name.substr(start, dot - start);
    JsonNode* next = nullptr;
    for (auto& c : node->children) {
      if (c.key == part) next = &c;
    }
    if (next != nullptr && next->column >= 0) {
      // A leaf of that name is already written: keep this field flat rather than writing the
      // key twice.
      node = &root;
      start = 0;
      break;
    }
    if (next == nullptr) {
      node->children.push_back(JsonNode{part, -1, {}});
      next = &node->children.back();
    }
    node = next;
    start = dot + 1;
  }
  std::string leaf = name.substr(start);
  for (const auto& c : node->children) {
    if (c.key == leaf) {  // an object of that name exists: keep the field flat
      root.children.push_back(JsonNode{name, column, {}});
      return;
    }
  }
  node->children.push_back(JsonNode{std::move(leaf), column, {}});
}

// Emits the text before each leaf's value; `pending` collects text until the next leaf.
void Emit(const JsonNode& node, std::string& pending,
          std::vector<std::pair<std::string, size_t>>& steps) {
  pending.push_back('{');
  bool first = true;
  for (const auto& c : node.children) {
    if (!first) pending.push_back(',');
    first = false;
    AppendJsonString(pending, c.key);
    pending.push_back(':');
    if (c.column >= 0) {
      steps.emplace_back(std::move(pending), static_cast<size_t>(c.column));
      pending.clear();
    } else {
      Emit(c, pending, steps);
    }
  }
  pending.push_back('}');
}

}  // namespace

RowJsonEncoder::RowJsonEncoder(const Schema& schema) {
  JsonNode root;
  for (size_t i = 0; i < schema.size(); ++i) {
    const std::string& name = schema.field(i).name;
    if (name.find('.') == std::string::npos) {
      root.children.push_back(JsonNode{name, static_cast<int>(i), {}});
    } else {
      Insert(root, name, static_cast<int>(i));
    }
  }
  std::string pending;
  Emit(root, pending, steps_);
  tail_ = std::move(pending);
}

void RowJsonEncoder::Append(std::string& out, const Batch& batch, size_t row) const {
  for (const auto& [text, column] : steps_) {
    out += text;
    AppendJsonCell(out, batch.column(column), row);
  }
  out += tail_;
}

void RowJsonEncoder::AppendBatch(std::string& out, const Batch& batch) const {
  for (size_t r = 0; r < batch.num_rows(); ++r) {
    Append(out, batch, r);
    out.push_back('\n');
  }
}

}  // namespace sluice
