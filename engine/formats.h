// Record formats shared by sources: a line of JSON, the Kafka Connect JsonConverter envelope
// ({schema, payload}), CSV, `string` (the record's bytes as one text field, kept verbatim) and
// `dataframe-split` (pandas' DataFrame.to_json(orient="split"): one record, many rows). Each
// decodes raw records into columns of a declared schema, rejecting (with a reason) records or
// rows that are malformed, miss a required field or have a value of the wrong type. Decoders
// are immutable and safe to use from several threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/batch.h"
#include "engine/operator.h"

namespace sluice {

enum class Format { kJson, kConnectJson, kCsv, kString, kDataframeSplit };
std::optional<Format> ParseFormat(std::string_view name);
const std::vector<std::string>& FormatNames();

struct CsvOptions {
  char delimiter = ',';
  bool header = true;  // the first line names the columns
};

// A decoder for `format` into `schema`.
std::unique_ptr<Decoder> MakeFormatDecoder(Format format, SchemaPtr schema, CsvOptions csv = {});

// The schema of the `string` format: one non-null string field, `value`.
SchemaPtr StringFormatSchema();
// A source's schema: the `string` format's own, or the JSON Schema file at `schema_path` (which
// every other format needs). Errors are the message only; the caller adds the location.
Result<SchemaPtr> SourceSchema(Format format, const std::string& schema_path);

// Reads a schema: a JSON Schema file (object with ordered `properties`; `required` decides
// nullability; "format": "date-time" makes a timestamp).
Result<SchemaPtr> LoadJsonSchemaFile(const std::string& path);
Result<SchemaPtr> ParseJsonSchema(std::string_view json, const std::string& origin);

}  // namespace sluice
