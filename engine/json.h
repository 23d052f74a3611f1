// JSON output: string escaping, numbers that round-trip, and a batch row as one JSON object.
// Parsing is simdjson's job; writing is small enough, and hot enough, to do here.
#pragma once

#include <string>
#include <string_view>

#include "engine/batch.h"

namespace sluice {

void AppendJsonString(std::string& out, std::string_view s);
// Shortest text that reads back as the same double; null for NaN and infinities (JSON has none).
void AppendJsonDouble(std::string& out, double v);
void AppendJsonInt(std::string& out, int64_t v);
// The value of one cell as JSON (timestamps as ISO 8601 strings).
void AppendJsonCell(std::string& out, const Column& column, size_t row);
// {"field": value, ...} in schema order.
void AppendRowJson(std::string& out, const Batch& batch, size_t row);

}  // namespace sluice
