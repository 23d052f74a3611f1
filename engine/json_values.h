// Shared by the simdjson-based record formats (engine/formats_json.cpp,
// engine/formats_dataframe.cpp): one JSON value into a schema field's slot by the json format's
// rules, the wording of type errors, and parsing a record in place in its batch's buffer.
#pragma once

#include <string>
#include <string_view>

#include <simdjson.h>

#include "engine/row_builder.h"

namespace sluice::detail {

// "a number", "a string", ...: how a JSON value's type is named in a reason.
std::string JsonTypeName(simdjson::dom::element_type t);
// A value as it was written, cut to a readable length.
std::string Shown(simdjson::dom::element v);
// Decodes one JSON value into the slot for field `f`; returns the problem, or empty.
std::string DecodeJsonValue(simdjson::dom::element v, const Field& f, Slot& slot);
// Parses `bytes` (a part of the record bytes of `raw`) in place. Records are stored back to
// back, so the bytes after one are readable padding; only bytes near the end of the buffer
// need a padded copy, made in `padded_tail`.
simdjson::error_code ParseRecordBytes(simdjson::dom::parser& parser, const RawRecords& raw,
                                      std::string_view bytes, std::string& padded_tail,
                                      simdjson::dom::element* doc);

}  // namespace sluice::detail
