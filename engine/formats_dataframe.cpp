// The dataframe-split record format: what pandas' DataFrame.to_json(orient="split") writes,
// {"columns": [...], "index": [...], "data": [[...], ...]}. One record holds any number of rows:
// each row of `data` becomes a row of the batch that points back at its record, so a bad row is
// dead-lettered alone (with the whole record's bytes) while the record's good rows go on, and
// the record's position is acknowledged once, with the batch.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <simdjson.h>

#include "engine/json_values.h"

namespace sluice::detail {
namespace {

constexpr int32_t kIgnored = -1;  // a column the schema does not declare

// Where each column of a message goes, or why a message with these columns is rejected.
struct ColumnMap {
  std::string key;                // the raw bytes of the `columns` array; empty: not cached
  std::vector<int32_t> field_of;  // column → schema field, or kIgnored
  std::string problem;
};

bool IsJsonSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// The bytes of the `columns` array when it is the record's first member, as pandas writes it;
// empty otherwise. They key the column map: a producer sends the same columns with every
// message, and comparing bytes is cheaper than looking each name up again.
std::string_view LeadingColumnsBytes(std::string_view rec) {
  size_t p = 0;
  auto skip_space = [&] {
    while (p < rec.size() && IsJsonSpace(rec[p])) ++p;
  };
  auto eat = [&](std::string_view token) {
    skip_space();
    if (rec.substr(p, token.size()) != token) return false;
    p += token.size();
    return true;
  };
  if (!eat("{") || !eat("\"columns\"") || !eat(":")) return {};
  skip_space();
  if (p >= rec.size() || rec[p] != '[') return {};
  const size_t start = p;
  bool in_string = false;
  for (++p; p < rec.size(); ++p) {
    const char c = rec[p];
    if (in_string) {
      if (c == '\\') {
        ++p;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == ']') {
      return rec.substr(start, p + 1 - start);
    } else if (c == '[' || c == '{') {
      return {};  // not a list of names: the full parse reports it
    }
  }
  return {};
}

class DataframeSplitDecoder : public Decoder {
 public:
  explicit DataframeSplitDecoder(SchemaPtr schema)
      : schema_(std::move(schema)), fields_(IndexFields(*schema_)) {}

  Result<std::shared_ptr<Batch>> Decode(std::shared_ptr<const RawRecords> raw,
                                        NodeContext& ctx) const override {
    thread_local simdjson::dom::parser parser;
    RowBuilder row(schema_);
    row.Reserve(raw->count());
    std::vector<uint32_t> kept;  // row → record; a record with several rows repeats
    kept.reserve(raw->count());
    std::string padded_tail;
    ColumnMap columns;  // the last message's: usually the next one's too
    for (size_t i = 0; i < raw->count(); ++i) {
      std::string problem = DecodeRecord(parser, *raw, i, padded_tail, columns, row, kept, ctx);
      if (!problem.empty()) ctx.RejectRaw(*raw, i, problem);
    }
    return row.Build(std::move(raw), std::move(kept));
  }

 private:
  // Appends the good rows of record `i` and rejects its bad ones; returns why the whole record
  // is rejected (before any of its rows is appended), or empty.
  std::string DecodeRecord(simdjson::dom::parser& parser, const RawRecords& raw, size_t i,
                           std::string& padded_tail, ColumnMap& columns, RowBuilder& row,
                           std::vector<uint32_t>& kept, NodeContext& ctx) const {
    const std::string_view rec = raw.Get(i);
    simdjson::dom::element doc;
    if (auto err = ParseRecordBytes(parser, raw, rec, padded_tail, &doc)) {
      return fmt::format("malformed JSON: {}{}", simdjson::error_message(err), NanHint(rec));
    }
    simdjson::dom::object obj;
    if (doc.get_object().get(obj)) {
      return fmt::format(
          "dataframe-split: expected an object with 'columns' and 'data', found {} {}",
          JsonTypeName(doc.type()), Shown(doc));
    }
    simdjson::dom::element member;
    simdjson::dom::array names, data;
    if (obj["columns"].get(member)) return "dataframe-split: no 'columns'";
    if (member.get_array().get(names)) {
      return fmt::format("dataframe-split: 'columns' is {}, not an array of names",
                         JsonTypeName(member.type()));
    }
    if (obj["data"].get(member)) return "dataframe-split: no 'data'";
    if (member.get_array().get(data)) {
      return fmt::format("dataframe-split: 'data' is {}, not an array of rows",
                         JsonTypeName(member.type()));
    }
    // A row that is not an array means the message is not this format at all: reject it whole
    // rather than pass some of its rows.
    size_t r = 0;
    for (simdjson::dom::element values : data) {
      ++r;
      if (!values.is_array()) {
        return fmt::format("dataframe-split: 'data' is not an array of rows (row {} is {} {})", r,
                           JsonTypeName(values.type()), Shown(values));
      }
    }
    const std::string_view key = LeadingColumnsBytes(rec);
    if (key.empty() || key != columns.key) {
      columns = MapColumns(names);
      columns.key.assign(key);
    }
    if (!columns.problem.empty()) return columns.problem;

    // `index` (optional) only names rows in reasons.
    simdjson::dom::array index;
    std::optional<simdjson::dom::array::iterator> label, labels_end;
    if (!obj["index"].get_array().get(index)) {
      label = index.begin();
      labels_end = index.end();
    }
    r = 0;
    for (simdjson::dom::element values : data) {
      ++r;
      const bool labelled = label && *label != *labels_end;
      std::string problem = DecodeRow(values.get_array().value_unsafe(), columns, row);
      if (problem.empty()) {
        row.Commit();
        kept.push_back(static_cast<uint32_t>(i));
      } else if (labelled) {
        ctx.RejectRaw(raw, i, fmt::format("row {} (index {}): {}", r, Shown(**label), problem));
      } else {
        ctx.RejectRaw(raw, i, fmt::format("row {}: {}", r, problem));
      }
      if (labelled) ++*label;
    }
    return "";
  }

  ColumnMap MapColumns(simdjson::dom::array names) const {
    ColumnMap m;
    std::vector<bool> seen(schema_->size(), false);
    for (simdjson::dom::element c : names) {
      std::string_view name;
      if (c.get_string().get(name)) {
        m.problem = fmt::format("dataframe-split: 'columns' holds {} {}, not a column name",
                                JsonTypeName(c.type()), Shown(c));
        return m;
      }
      auto it = fields_.find(name);
      if (it == fields_.end()) {
        m.field_of.push_back(kIgnored);  // columns the schema does not declare are not read
        continue;
      }
      if (seen[it->second]) {
        m.problem = fmt::format("dataframe-split: duplicate column '{}'", name);
        return m;
      }
      seen[it->second] = true;
      m.field_of.push_back(static_cast<int32_t>(it->second));
    }
    // Absent nullable fields are null in every row, as in the json format.
    for (size_t f = 0; f < schema_->size(); ++f) {
      if (!seen[f] && !schema_->field(f).nullable) {
        m.problem = fmt::format("missing column '{}'", schema_->field(f).name);
        return m;
      }
    }
    return m;
  }

  // One row of `data` into the row builder; returns the problem, or empty.
  std::string DecodeRow(simdjson::dom::array values, const ColumnMap& columns,
                        RowBuilder& row) const {
    row.Reset();
    const size_t n = columns.field_of.size();
    // size() saturates for huge arrays; the loop below stays within `n` whatever it says.
    const size_t found = values.size();
    if (found != n) {
      return fmt::format("expected {} values (one per column), found {}", n, found);
    }
    size_t c = 0;
    for (simdjson::dom::element v : values) {
      if (c >= n) break;
      const int32_t f = columns.field_of[c++];
      if (f == kIgnored) continue;
      const auto field = static_cast<size_t>(f);
      std::string problem = DecodeJsonValue(v, schema_->field(field), row.slot(field));
      if (!problem.empty()) return problem;
    }
    return row.Finish();
  }

  SchemaPtr schema_;
  FieldIndex fields_;
};

}  // namespace

std::unique_ptr<Decoder> MakeDataframeSplitDecoder(SchemaPtr schema) {
  return std::make_unique<DataframeSplitDecoder>(std::move(schema));
}

}  // namespace sluice::detail
