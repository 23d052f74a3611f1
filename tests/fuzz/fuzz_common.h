// Shared by the fuzz targets: the schemas the decoders are fuzzed against, and raw records made
// from the fuzzer's bytes the way the file source makes them (one record per line).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "engine/batch.h"
#include "engine/formats.h"
#include "engine/operator.h"
#include "engine/types.h"

namespace sluice::fuzz {

// Every type, nullable and not, and a nested object: what json and connect-json decode into.
inline constexpr const char* kAllTypesSchema = R"({
  "type": "object",
  "properties": {
    "id": {"type": "integer"},
    "score": {"type": "number"},
    "name": {"type": "string"},
    "flag": {"type": "boolean"},
    "at": {"type": "string", "format": "date-time"},
    "note": {"type": ["string", "null"]},
    "ride": {"type": "object", "properties": {
      "zone": {"type": "integer"}, "distance": {"type": "number"},
      "inner": {"type": "object", "properties": {"code": {"type": "string"}}}},
      "required": ["zone"]}
  },
  "required": ["id", "score", "name", "ride"]
})";

inline SchemaPtr MustSchema(const char* json) {
  auto s = ParseJsonSchema(json, "fuzz");
  if (!s.ok()) __builtin_trap();  // the fixed schemas above are valid
  return *s;
}

// The bytes as records, one per line; `header_line`: the first line is a CSV header.
inline std::shared_ptr<RawRecords> Records(const uint8_t* data, size_t size,
                                           bool header_line = false) {
  auto raw = std::make_shared<RawRecords>();
  raw->origin = "fuzz";
  raw->offsets.push_back(0);
  std::string_view text(reinterpret_cast<const char*>(data), size);
  int64_t line = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view l = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line;
    if (header_line && line == 1) {
      raw->header = std::string(l);
      continue;
    }
    raw->Add(l, line);
  }
  // Decoders may read past a record's end into this padding (simdjson), as the sources allow.
  raw->data.reserve(raw->data.size() + 64);
  return raw;
}

// Decodes `raw` and checks what every decoder promises: every column of the batch has one
// value per row, and (`one_row_per_record`) each record is a row or a rejection, never lost.
inline void DecodeAndCheck(const Decoder& decoder, const std::shared_ptr<RawRecords>& raw,
                           bool one_row_per_record = true) {
  NodeContext ctx("fuzz", nullptr);
  auto batch = decoder.Decode(raw, ctx);
  if (!batch.ok()) return;
  const Batch& b = **batch;
  for (size_t c = 0; c < b.columns().size(); ++c) {
    if (b.column(c).size() != b.num_rows()) __builtin_trap();
  }
  if (one_row_per_record && b.num_rows() + ctx.rejected() != raw->count()) __builtin_trap();
}

}  // namespace sluice::fuzz
