// JSON output: string escaping, numbers that round-trip, and a batch row as one JSON object.
// Parsing is simdjson's job; writing is small enough, and hot enough, to do here.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/batch.h"

namespace sluice {

void AppendJsonString(std::string& out, std::string_view s);
// Shortest text that reads back as the same double; null for NaN and infinities (JSON has none).
void AppendJsonDouble(std::string& out, double v);
void AppendJsonInt(std::string& out, int64_t v);
// The value of one cell as JSON (timestamps as ISO 8601 strings).
void AppendJsonCell(std::string& out, const Column& column, size_t row);
// {"field": value, ...} in schema order; dotted names (`a.b`) are written as nested objects.
void AppendRowJson(std::string& out, const Batch& batch, size_t row);

// Encodes many rows of one schema: the quoted keys are prepared once.
class RowJsonEncoder {
 public:
  explicit RowJsonEncoder(const Schema& schema);
  void Append(std::string& out, const Batch& batch, size_t row) const;
  // Every row of the batch, one JSON object per line.
  void AppendBatch(std::string& out, const Batch& batch) const;

 private:
  // The text before each field's value (`{"name":`, `,"other":{"inner":`), and after the last.
  std::vector<std::pair<std::string, size_t>> steps_;
  std::string tail_;
};

}  // namespace sluice
