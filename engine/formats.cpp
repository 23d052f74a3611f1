#include "engine/formats.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <fmt/format.h>
#include <simdjson.h>

namespace sluice {

std::optional<Format> ParseFormat(std::string_view name) {
  if (name == "json" || name == "jsonl") return Format::kJson;
  if (name == "connect-json") return Format::kConnectJson;
  if (name == "csv") return Format::kCsv;
  return std::nullopt;
}

const std::vector<std::string>& FormatNames() {
  static const std::vector<std::string> kNames = {"json", "connect-json", "csv"};
  return kNames;
}

namespace {

// One decoded value of the current row, before the row is known to be good. Rows are appended
// to the columns only when every field decoded, so a bad row leaves no partial trace.
struct Slot {
  bool set = false;
  bool null = false;
  int64_t i = 0;
  double d = 0;
  std::string_view s;
};

class RowBuilder {
 public:
  explicit RowBuilder(const SchemaPtr& schema) : schema_(schema), slots_(schema->size()) {
    for (const auto& f : schema->fields()) {
      auto c = std::make_shared<Column>(f.type);
      columns_.push_back(c);
    }
  }
  void Reserve(size_t n) {
    for (auto& c : columns_) c->Reserve(n);
  }
  void Reset() {
    for (auto& s : slots_) s = Slot{};
  }
  Slot& slot(size_t i) { return slots_[i]; }
  // Fills absent fields with null, or returns the reason the row is bad.
  std::string Finish() {
    for (size_t i = 0; i < slots_.size(); ++i) {
      const Field& f = schema_->field(i);
      if (!slots_[i].set) {
        if (!f.nullable) return fmt::format("missing field '{}'", f.name);
        slots_[i].set = true;
        slots_[i].null = true;
      } else if (slots_[i].null && !f.nullable) {
        return fmt::format("field '{}' is null but is not nullable", f.name);
      }
    }
    return "";
  }
  void Commit() {
    for (size_t i = 0; i < slots_.size(); ++i) {
      Column& c = *columns_[i];
      const Slot& s = slots_[i];
      if (s.null) {
        c.AppendNull();
        continue;
      }
      switch (c.type) {
        case TypeId::kFloat64: c.AppendDouble(s.d); break;
        case TypeId::kString: c.AppendString(s.s); break;
        default: c.AppendInt(s.i);
      }
    }
    ++rows_;
  }
  std::shared_ptr<Batch> Build(std::shared_ptr<const RawRecords> raw, std::vector<uint32_t> kept) {
    std::vector<ColumnPtr> cols(columns_.begin(), columns_.end());
    auto b = std::make_shared<Batch>(schema_, std::move(cols), rows_);
    if (kept.size() == raw->count()) kept.clear();  // identity
    b->SetRaw(std::move(raw), std::move(kept));
    return b;
  }

 private:
  SchemaPtr schema_;
  std::vector<Slot> slots_;
  std::vector<std::shared_ptr<Column>> columns_;
  size_t rows_ = 0;
};

// Heterogeneous lookup: keys are found by string_view without building a string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using FieldIndex = std::unordered_map<std::string, size_t, StringHash, std::equal_to<>>;

FieldIndex IndexFields(const Schema& schema) {
  FieldIndex idx;
  for (size_t i = 0; i < schema.size(); ++i) idx[schema.field(i).name] = i;
  return idx;
}

std::string JsonTypeName(simdjson::dom::element_type t) {
  switch (t) {
    case simdjson::dom::element_type::ARRAY: return "an array";
    case simdjson::dom::element_type::OBJECT: return "an object";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE: return "a number";
    case simdjson::dom::element_type::STRING: return "a string";
    case simdjson::dom::element_type::BOOL: return "a boolean";
    case simdjson::dom::element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

std::string Shown(simdjson::dom::element v) {
  std::string s = simdjson::minify(v);
  if (s.size() > 40) s = s.substr(0, 40) + "...";
  return s;
}

// Decodes one JSON value into the slot for field `f`; returns the problem, or empty.
// The DOM API is used (not On-Demand) because it picks the best SIMD kernel at run time.
std::string DecodeJsonValue(simdjson::dom::element v, const Field& f, Slot& slot) {
  using simdjson::dom::element_type;
  const element_type t = v.type();
  slot.set = true;
  if (t == element_type::NULL_VALUE) {
    slot.null = true;
    return "";
  }
  auto mistyped = [&]() {
    return fmt::format("field '{}': expected {}, found {} {}", f.name, TypeName(f.type),
                       JsonTypeName(t), Shown(v));
  };
  const bool number =
      t == element_type::INT64 || t == element_type::UINT64 || t == element_type::DOUBLE;
  switch (f.type) {
    case TypeId::kFloat64: {
      double d;
      if (!number || v.get_double().get(d)) return mistyped();
      slot.d = d;
      return "";
    }
    case TypeId::kInt64: {
      if (t == element_type::INT64) {
        slot.i = int64_t(v.get_int64());
        return "";
      }
      double d;
      if (!number || v.get_double().get(d) || d != std::floor(d) ||
          std::fabs(d) > 9.007199254740992e15) {
        return mistyped();
      }
      slot.i = static_cast<int64_t>(d);
      return "";
    }
    case TypeId::kBool: {
      bool b;
      if (t != element_type::BOOL || v.get_bool().get(b)) return mistyped();
      slot.i = b ? 1 : 0;
      return "";
    }
    case TypeId::kString: {
      std::string_view s;
      if (t != element_type::STRING || v.get_string().get(s)) return mistyped();
      slot.s = s;
      return "";
    }
    case TypeId::kTimestamp: {
      if (t == element_type::INT64) {
        // Integers are epoch milliseconds: Kafka's and Kafka Connect's Timestamp convention.
        slot.i = int64_t(v.get_int64()) * 1000;
        return "";
      }
      std::string_view s;
      if (t != element_type::STRING || v.get_string().get(s)) return mistyped();
      auto ts = ParseTimestamp(s);
      if (!ts.ok()) return fmt::format("field '{}': {}", f.name, ts.status().message());
      slot.i = *ts;
      return "";
    }
  }
  return "";
}

// Walks one JSON object's fields into the row; returns the problem, or empty.
std::string DecodeObject(simdjson::dom::object obj, const Schema& schema, const FieldIndex& index,
                         RowBuilder& row) {
  size_t next = 0;  // producers usually write fields in schema order: try that before hashing
  for (auto [key, value] : obj) {
    size_t idx;
    if (next < schema.size() && schema.field(next).name == key) {
      idx = next;
    } else {
      auto it = index.find(key);
      if (it == index.end()) continue;  // fields the schema does not declare are not read
      idx = it->second;
    }
    next = idx + 1;
    Slot& slot = row.slot(idx);
    if (slot.set) return fmt::format("duplicate field '{}'", key);
    std::string problem = DecodeJsonValue(value, schema.field(idx), slot);
    if (!problem.empty()) return problem;
  }
  return "";
}

// ---- Kafka Connect envelopes ----
// {"schema": {...}, "payload": {...}}: the payload's bytes are found by a structural scan of the
// top-level object, then parsed by simdjson; the other members are checked for structure
// (balanced brackets, terminated strings) but not parsed. simdjson's On-Demand API would skip
// them the same way, but in a portable build it runs its scalar kernel, slower than this scan
// plus a SIMD parse of the payload alone.
class EnvelopeScanner {
 public:
  explicit EnvelopeScanner(std::string_view s) : s_(s) {}

  std::string_view Payload(std::string* problem) {
    std::string_view payload;
    bool found = false;
    SkipSpace();
    if (!Eat('{')) return Fail(problem, "expected an object");
    SkipSpace();
    if (Eat('}')) return Missing(problem);
    for (;;) {
      SkipSpace();
      size_t key_start = pos_;
      if (pos_ >= s_.size() || s_[pos_] != '"') return Fail(problem, "expected a member name");
      if (!SkipString()) return Fail(problem, why_);
      std::string_view key = s_.substr(key_start + 1, pos_ - key_start - 2);
      SkipSpace();
      if (!Eat(':')) return Fail(problem, "expected ':' after a member name");
      SkipSpace();
      size_t value_start = pos_;
      if (!SkipValue()) return Fail(problem, why_);
      if (key == "payload") {
        if (found) return Fail(problem, "'payload' appears twice", false);
        payload = s_.substr(value_start, pos_ - value_start);
        found = true;
      }
      SkipSpace();
      if (Eat(',')) continue;
      if (Eat('}')) break;
      return Fail(problem, "expected ',' or '}'");
    }
    SkipSpace();
    if (pos_ != s_.size()) return Fail(problem, "trailing content after the object");
    if (!found) return Missing(problem);
    return payload;
  }

 private:
  std::string_view Fail(std::string* problem, const char* what, bool json = true) {
    *problem = json ? fmt::format("malformed JSON: {} (at byte {})", what, pos_ + 1)
                    : fmt::format("connect-json: {}", what);
    if (json && (s_.find("NaN") != std::string_view::npos ||
                 s_.find("Infinity") != std::string_view::npos)) {
      *problem += " (NaN and Infinity are not JSON numbers; send null)";
    }
    return {};
  }
  std::string_view Missing(std::string* problem) {
    *problem = "connect-json: no 'payload' in the envelope";
    return {};
  }
  void SkipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool Eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  // The next quote, backslash or bracket at or after `pos`. (A 16-byte SSE2 search was slower
  // here: in a Connect schema a quote comes every few bytes.)
  size_t NextSpecial(size_t pos) const {
    const char* p = s_.data();
    const size_t n = s_.size();
    for (; pos < n; ++pos) {
      char c = p[pos];
      if (c == '"' || c == '\\' || c == '{' || c == '}' || c == '[' || c == ']') return pos;
    }
    return n;
  }

  // A string from its opening quote; leaves pos_ after the closing quote.
  bool SkipString() {
    if (!Eat('"')) return false;
    for (;;) {
      pos_ = NextSpecial(pos_);
      if (pos_ >= s_.size()) break;
      char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      pos_ += c == '\\' ? 2 : 1;  // an escape, or a bracket, which means nothing in a string
    }
    pos_ = s_.size();
    why_ = "a string is opened but never closed";
    return false;
  }
  bool SkipValue() {
    if (pos_ >= s_.size()) return false;
    char c = s_[pos_];
    if (c == '"') return SkipString();
    if (c != '{' && c != '[') {
      // A number or a literal: up to the next delimiter; simdjson checks the payload's.
      size_t start = pos_;
      while (pos_ < s_.size() && s_[pos_] != ',' && s_[pos_] != '}' && s_[pos_] != ']' &&
             s_[pos_] != ' ' && s_[pos_] != '\t' && s_[pos_] != '\n' && s_[pos_] != '\r')
        ++pos_;
      why_ = "a value is missing";
      return pos_ > start;
    }
    // A container: brackets must match; strings may hold any of them.
    char stack[kMaxDepth];
    size_t depth = 0;
    for (;;) {
      pos_ = NextSpecial(pos_);
      if (pos_ >= s_.size()) break;
      c = s_[pos_];
      if (c == '"') {
        if (!SkipString()) return false;
        continue;
      }
      if (c == '\\') {
        why_ = "a backslash outside a string";
        return false;
      }
      if (c == '{' || c == '[') {
        if (depth == kMaxDepth) {
          why_ = "nested too deeply";
          return false;
        }
        stack[depth++] = c == '{' ? '}' : ']';
        ++pos_;
        continue;
      }
      if (depth == 0 || stack[depth - 1] != c) {
        why_ = "mismatched brackets";
        return false;
      }
      ++pos_;
      if (--depth == 0) return true;
    }
    why_ = "the record ends inside an object or array";
    return false;
  }

  static constexpr size_t kMaxDepth = 1024;  // simdjson's default depth limit
  std::string_view s_;
  size_t pos_ = 0;
  const char* why_ = "malformed value";
};

std::string_view FindEnvelopePayload(std::string_view rec, std::string* problem) {
  return EnvelopeScanner(rec).Payload(problem);
}

class JsonDecoder : public Decoder {
 public:
  JsonDecoder(SchemaPtr schema, bool envelope)
      : schema_(std::move(schema)), index_(IndexFields(*schema_)), envelope_(envelope) {}

  Result<std::shared_ptr<Batch>> Decode(std::shared_ptr<const RawRecords> raw,
                                        NodeContext& ctx) const override {
    thread_local simdjson::dom::parser parser;
    RowBuilder row(schema_);
    row.Reserve(raw->count());
    std::vector<uint32_t> kept;
    kept.reserve(raw->count());
    std::string padded_tail;
    std::string_view envelope_prefix;  // see DecodeOne
    for (size_t i = 0; i < raw->count(); ++i) {
      row.Reset();
      std::string problem = DecodeOne(parser, *raw, i, padded_tail, envelope_prefix, row);
      if (problem.empty()) problem = row.Finish();
      if (!problem.empty()) {
        ctx.RejectRaw(*raw, i, problem);
        continue;
      }
      row.Commit();
      kept.push_back(static_cast<uint32_t>(i));
    }
    return row.Build(std::move(raw), std::move(kept));
  }

 private:
  // `envelope_prefix` holds the bytes before the payload of the last envelope that was scanned
  // in this batch. A producer sends the same schema half with every message, so a record that
  // starts with exactly those bytes has its payload at the same offset: only the payload is
  // parsed, and the record must end right after it. Any record that does not take that fast
  // path (or fails on it) is scanned in full, so errors are reported the same way.
  std::string DecodeOne(simdjson::dom::parser& parser, const RawRecords& raw, size_t i,
                        std::string& padded_tail, std::string_view& envelope_prefix,
                        RowBuilder& row) const {
    std::string_view rec = raw.Get(i);
    if (envelope_ && !envelope_prefix.empty() && rec.size() > envelope_prefix.size() &&
        std::memcmp(rec.data(), envelope_prefix.data(), envelope_prefix.size()) == 0) {
      size_t end = rec.size();
      while (end > envelope_prefix.size() && IsJsonSpace(rec[end - 1])) --end;
      if (rec[end - 1] == '}') {
        std::string_view payload =
            rec.substr(envelope_prefix.size(), end - 1 - envelope_prefix.size());
        simdjson::dom::element doc;
        simdjson::dom::object obj;
        if (!Parse(parser, raw, payload, padded_tail, &doc) && !doc.get_object().get(obj)) {
          return DecodeObject(obj, *schema_, index_, row);
        }
      }
    }
    // Only the payload of an envelope is parsed: the schema half is most of the bytes and
    // Sluice has its own schema (see FindEnvelopePayload).
    std::string_view doc_bytes = rec;
    if (envelope_) {
      std::string problem;
      doc_bytes = FindEnvelopePayload(rec, &problem);
      if (!problem.empty()) return problem;
      envelope_prefix = rec.substr(0, static_cast<size_t>(doc_bytes.data() - rec.data()));
    }
    simdjson::dom::element doc;
    simdjson::error_code err = Parse(parser, raw, doc_bytes, padded_tail, &doc);
    if (err) {
      // Python's json module writes NaN and Infinity, which JSON does not have: say so.
      const bool nan = rec.find("NaN") != std::string_view::npos ||
                       rec.find("Infinity") != std::string_view::npos;
      return fmt::format("malformed JSON: {}{}", simdjson::error_message(err),
                         nan ? " (NaN and Infinity are not JSON numbers; send null)" : "");
    }
    simdjson::dom::object obj;
    if (doc.get_object().get(obj)) {
      return envelope_ ? "connect-json: 'payload' is not an object"
                       : "malformed JSON: expected an object";
    }
    return DecodeObject(obj, *schema_, index_, row);
  }

  static bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

  // Parses `bytes` (a part of the record bytes of `raw`) in place. Records are stored back to
  // back, so the bytes after one are readable padding; only bytes near the end of the buffer
  // need a padded copy.
  static simdjson::error_code Parse(simdjson::dom::parser& parser, const RawRecords& raw,
                                    std::string_view bytes, std::string& padded_tail,
                                    simdjson::dom::element* doc) {
    const size_t room = raw.data.capacity() - static_cast<size_t>(bytes.data() - raw.data.data());
    if (room >= bytes.size() + simdjson::SIMDJSON_PADDING) {
      return parser.parse(bytes.data(), bytes.size(), false).get(*doc);
    }
    padded_tail.assign(bytes);
    padded_tail.resize(bytes.size() + simdjson::SIMDJSON_PADDING);
    return parser.parse(padded_tail.data(), bytes.size(), false).get(*doc);
  }

  SchemaPtr schema_;
  FieldIndex index_;
  bool envelope_;
};

// Splits one CSV record into fields (RFC 4180 quoting); returns false on an unterminated quote.
bool SplitCsv(std::string_view line, char delim, std::vector<std::string>& out) {
  out.clear();
  std::string cur;
  bool quoted = false;
  size_t i = 0;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  while (i < line.size()) {
    char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cur.push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cur.push_back(c);
      }
    } else if (c == '"' && cur.empty()) {
      quoted = true;
    } else if (c == delim) {
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
    ++i;
  }
  if (quoted) return false;
  out.push_back(std::move(cur));
  return true;
}

std::string DecodeCsvValue(const std::string& text, const Field& f, Slot& slot) {
  slot.set = true;
  if (text.empty() && f.type != TypeId::kString) {
    slot.null = true;
    return "";
  }
  auto bad = [&]() {
    return fmt::format("field '{}': expected {}, found '{}'", f.name, TypeName(f.type),
                       text.substr(0, 40));
  };
  const char* b = text.data();
  const char* e = text.data() + text.size();
  switch (f.type) {
    case TypeId::kFloat64: {
      double d;
      auto r = std::from_chars(b, e, d);
      if (r.ec != std::errc() || r.ptr != e || std::isnan(d)) return bad();
      slot.d = d;
      return "";
    }
    case TypeId::kInt64: {
      int64_t i;
      auto r = std::from_chars(b, e, i);
      if (r.ec != std::errc() || r.ptr != e) return bad();
      slot.i = i;
      return "";
    }
    case TypeId::kBool:
      if (text == "true" || text == "1" || text == "True" || text == "TRUE") {
        slot.i = 1;
      } else if (text == "false" || text == "0" || text == "False" || text == "FALSE") {
        slot.i = 0;
      } else {
        return bad();
      }
      return "";
    case TypeId::kString: slot.s = text; return "";
    case TypeId::kTimestamp: {
      int64_t ms;
      auto r = std::from_chars(b, e, ms);
      if (r.ec == std::errc() && r.ptr == e) {
        slot.i = ms * 1000;
        return "";
      }
      auto ts = ParseTimestamp(text);
      if (!ts.ok()) return fmt::format("field '{}': {}", f.name, ts.status().message());
      slot.i = *ts;
      return "";
    }
  }
  return "";
}

class CsvDecoder : public Decoder {
 public:
  CsvDecoder(SchemaPtr schema, CsvOptions opts) : schema_(std::move(schema)), opts_(opts) {}
  bool TakesHeader() const override { return opts_.header; }

  Result<std::shared_ptr<Batch>> Decode(std::shared_ptr<const RawRecords> raw,
                                        NodeContext& ctx) const override {
    // Column i of the file feeds field map[i] (-1: not read). Without a header, schema order.
    std::vector<int> map;
    std::vector<std::string> cells;
    if (!raw->header.empty()) {
      if (!SplitCsv(raw->header, opts_.delimiter, cells))
        return Status::InvalidConfig("csv: the header line has an unterminated quote");
      for (const auto& name : cells) map.push_back(schema_->IndexOf(name));
      for (const auto& f : schema_->fields()) {
        if (!f.nullable && std::find(cells.begin(), cells.end(), f.name) == cells.end()) {
          return Status::InvalidConfig(
              fmt::format("csv: the header has no column '{}' (columns: {})", f.name, raw->header));
        }
      }
    } else {
      for (size_t i = 0; i < schema_->size(); ++i) map.push_back(static_cast<int>(i));
    }
    RowBuilder row(schema_);
    row.Reserve(raw->count());
    std::vector<uint32_t> kept;
    for (size_t i = 0; i < raw->count(); ++i) {
      row.Reset();
      std::string problem;
      if (!SplitCsv(raw->Get(i), opts_.delimiter, cells)) {
        problem = "csv: unterminated quoted field";
      } else if (cells.size() != map.size()) {
        problem = fmt::format("csv: expected {} columns, found {}", map.size(), cells.size());
      } else {
        for (size_t c = 0; c < cells.size() && problem.empty(); ++c) {
          if (map[c] < 0) continue;
          problem = DecodeCsvValue(cells[c], schema_->field(map[c]), row.slot(map[c]));
        }
      }
      if (problem.empty()) problem = row.Finish();
      if (!problem.empty()) {
        ctx.RejectRaw(*raw, i, problem);
        continue;
      }
      row.Commit();  // slots point into `cells`, still alive here
      kept.push_back(static_cast<uint32_t>(i));
    }
    return row.Build(std::move(raw), std::move(kept));
  }

 private:
  SchemaPtr schema_;
  CsvOptions opts_;
};

}  // namespace

std::unique_ptr<Decoder> MakeFormatDecoder(Format format, SchemaPtr schema, CsvOptions csv) {
  switch (format) {
    case Format::kJson: return std::make_unique<JsonDecoder>(std::move(schema), false);
    case Format::kConnectJson: return std::make_unique<JsonDecoder>(std::move(schema), true);
    case Format::kCsv: return std::make_unique<CsvDecoder>(std::move(schema), csv);
  }
  return nullptr;
}

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
