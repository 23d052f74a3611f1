// Shared by the record decoders (engine/formats_*.cpp): a row is decoded into slots first and
// appended to the columns only when every field decoded, so a bad row leaves no partial trace.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "engine/batch.h"
#include "engine/formats.h"
#include "engine/operator.h"

namespace sluice::detail {

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
  // `kept[r]` is the record row r was decoded from: ascending, and repeated when a record holds
  // several rows (dataframe-split).
  std::shared_ptr<Batch> Build(std::shared_ptr<const RawRecords> raw, std::vector<uint32_t> kept) {
    std::vector<ColumnPtr> cols(columns_.begin(), columns_.end());
    auto b = std::make_shared<Batch>(schema_, std::move(cols), rows_);
    // The same count is not enough for identity: one record's two rows may stand in for a
    // rejected record.
    bool identity = kept.size() == raw->count();
    for (size_t r = 0; identity && r < kept.size(); ++r) identity = kept[r] == r;
    if (identity) kept.clear();
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

inline FieldIndex IndexFields(const Schema& schema) {
  FieldIndex idx;
  for (size_t i = 0; i < schema.size(); ++i) idx[schema.field(i).name] = i;
  return idx;
}

std::unique_ptr<Decoder> MakeJsonDecoder(SchemaPtr schema, bool envelope);
std::unique_ptr<Decoder> MakeCsvDecoder(SchemaPtr schema, CsvOptions options);
std::unique_ptr<Decoder> MakeStringDecoder();
std::unique_ptr<Decoder> MakeDataframeSplitDecoder(SchemaPtr schema);

// {"schema": ..., "payload": ...}: the payload's bytes, or empty with `problem` set.
std::string_view FindEnvelopePayload(std::string_view record, std::string* problem);
// A hint for records that hold NaN or Infinity, which Python writes and JSON does not have.
std::string NanHint(std::string_view record);

}  // namespace sluice::detail
