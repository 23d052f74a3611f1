// The json and connect-json record formats, decoded with simdjson's DOM API (it picks the best
// SIMD kernel at run time).
#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <simdjson.h>

#include "engine/json_values.h"

namespace sluice::detail {

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
        const int64_t ms = int64_t(v.get_int64());
        if (__builtin_mul_overflow(ms, int64_t{1000}, &slot.i)) {
          return fmt::format("field '{}': {} epoch milliseconds is out of the timestamp range",
                             f.name, ms);
        }
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

simdjson::error_code ParseRecordBytes(simdjson::dom::parser& parser, const RawRecords& raw,
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

namespace {

// Where the fields of a schema are, by dotted path: leaves, and the objects that hold them.
struct PathIndex {
  explicit PathIndex(const Schema& schema) : leaves(IndexFields(schema)) {
    for (const auto& f : schema.fields()) {
      for (size_t dot = f.name.find('.'); dot != std::string::npos;
           dot = f.name.find('.', dot + 1)) {
        objects.emplace(f.name.substr(0, dot), 0);
      }
    }
  }
  FieldIndex leaves;
  FieldIndex objects;  // "ride" when the schema has "ride.trip_distance"
};

// Objects nested deeper than this are refused (the schema loader allows no deeper ones).
constexpr int kMaxDepth = 16;

// Walks one JSON object's fields into the row; returns the problem, or empty. `path` holds the
// dotted path of the object (empty at the top) and is restored before returning.
std::string DecodeObject(simdjson::dom::object obj, const Schema& schema, const PathIndex& index,
                         RowBuilder& row, std::string& path, int depth) {
  size_t next = 0;  // producers usually write fields in schema order: try that before hashing
  const size_t base = path.size();
  for (auto [key, value] : obj) {
    std::string_view name = key;
    if (base > 0) {
      path.resize(base);
      path.append(key);
      name = path;
    }
    size_t idx;
    if (next < schema.size() && schema.field(next).name == name) {
      idx = next;
    } else {
      auto it = index.leaves.find(name);
      if (it == index.leaves.end()) {
        if (index.objects.empty() || index.objects.find(name) == index.objects.end()) {
          continue;  // fields the schema does not declare are not read
        }
        // An object the schema declares: its leaves are read from inside it.
        const auto t = value.type();
        if (t == simdjson::dom::element_type::NULL_VALUE) continue;  // its leaves stay null
        if (t != simdjson::dom::element_type::OBJECT) {
          return fmt::format("field '{}': expected an object, found {} {}", name,
                             JsonTypeName(t), Shown(value));
        }
        if (depth + 1 >= kMaxDepth) return fmt::format("field '{}': nested too deeply", name);
        if (base == 0) path.assign(key);
        path.push_back('.');
        std::string problem = DecodeObject(value.get_object().value_unsafe(), schema, index, row,
                                           path, depth + 1);
        path.resize(base);
        if (!problem.empty()) return problem;
        continue;
      }
      idx = it->second;
    }
    next = idx + 1;
    Slot& slot = row.slot(idx);
    if (slot.set) return fmt::format("duplicate field '{}'", name);
    std::string problem = DecodeJsonValue(value, schema.field(idx), slot);
    if (!problem.empty()) return problem;
  }
  path.resize(base);
  return "";
}

class JsonDecoder : public Decoder {
 public:
  JsonDecoder(SchemaPtr schema, bool envelope)
      : schema_(std::move(schema)), index_(*schema_), envelope_(envelope) {}

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
        if (!ParseRecordBytes(parser, raw, payload, padded_tail, &doc) &&
            !doc.get_object().get(obj)) {
          std::string path;
          return DecodeObject(obj, *schema_, index_, row, path, 0);
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
    simdjson::error_code err = ParseRecordBytes(parser, raw, doc_bytes, padded_tail, &doc);
    if (err) {
      return fmt::format("malformed JSON: {}{}", simdjson::error_message(err), NanHint(rec));
    }
    simdjson::dom::object obj;
    if (doc.get_object().get(obj)) {
      return envelope_ ? "connect-json: 'payload' is not an object"
                       : "malformed JSON: expected an object";
    }
    std::string path;
    return DecodeObject(obj, *schema_, index_, row, path, 0);
  }

  static bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

  SchemaPtr schema_;
  PathIndex index_;
  bool envelope_;
};

}  // namespace

std::unique_ptr<Decoder> MakeJsonDecoder(SchemaPtr schema, bool envelope) {
  return std::make_unique<JsonDecoder>(std::move(schema), envelope);
}

}  // namespace sluice::detail
