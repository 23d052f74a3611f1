// The csv record format: RFC 4180 quoting, columns matched to fields by the header.
#include <algorithm>
#include <charconv>
#include <cmath>

#include <fmt/format.h>
#include <simdjson.h>

#include "engine/row_builder.h"

namespace sluice::detail {
namespace {

// Splits a line into cells; the problem, or "" when the line is well formed.
std::string SplitCsv(std::string_view line, char delim, std::vector<std::string>& out) {
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
          // RFC 4180: a closing quote ends the cell. `"a"b` is malformed, not "ab".
          if (i + 1 < line.size() && line[i + 1] != delim) {
            return fmt::format("csv: '{}' after the closing quote of cell {}", line[i + 1],
                               out.size() + 1);
          }
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
  if (quoted) return "csv: unterminated quoted field";
  out.push_back(std::move(cur));
  return "";
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
      // Not NaN nor an infinity (which from_chars reads from "inf"): JSON cannot carry them.
      if (r.ec != std::errc() || r.ptr != e || !std::isfinite(d)) return bad();
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
    case TypeId::kString:
      // Strings are UTF-8 everywhere in Sluice; other bytes would be garbled on the way out.
      if (!simdjson::validate_utf8(text.data(), text.size())) {
        return fmt::format("field '{}': not valid UTF-8", f.name);
      }
      slot.s = text;
      return "";
    case TypeId::kTimestamp: {
      int64_t ms;
      auto r = std::from_chars(b, e, ms);
      if (r.ec == std::errc() && r.ptr == e) {
        if (__builtin_mul_overflow(ms, int64_t{1000}, &slot.i)) {
          return fmt::format("field '{}': {} epoch milliseconds is out of the timestamp range",
                             f.name, ms);
        }
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
      if (std::string problem = SplitCsv(raw->header, opts_.delimiter, cells); !problem.empty())
        return Status::InvalidConfig(fmt::format("{} in the header line", problem));
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
      problem = SplitCsv(raw->Get(i), opts_.delimiter, cells);
      if (!problem.empty()) {
        // malformed line: rejected below
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

std::unique_ptr<Decoder> MakeCsvDecoder(SchemaPtr schema, CsvOptions options) {
  return std::make_unique<CsvDecoder>(std::move(schema), options);
}

}  // namespace sluice::detail
