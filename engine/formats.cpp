#include "engine/formats.h"

#include "engine/row_builder.h"

namespace sluice {

std::optional<Format> ParseFormat(std::string_view name) {
  if (name == "json" || name == "jsonl") return Format::kJson;
  if (name == "connect-json") return Format::kConnectJson;
  if (name == "csv") return Format::kCsv;
  if (name == "string") return Format::kString;
  if (name == "dataframe-split") return Format::kDataframeSplit;
  return std::nullopt;
}

const std::vector<std::string>& FormatNames() {
  static const std::vector<std::string> kNames = {"json", "connect-json", "csv", "string",
                                                    "dataframe-split"};
  return kNames;
}

std::unique_ptr<Decoder> MakeFormatDecoder(Format format, SchemaPtr schema, CsvOptions csv) {
  switch (format) {
    case Format::kJson: return detail::MakeJsonDecoder(std::move(schema), false);
    case Format::kConnectJson: return detail::MakeJsonDecoder(std::move(schema), true);
    case Format::kCsv: return detail::MakeCsvDecoder(std::move(schema), csv);
    case Format::kString: return detail::MakeStringDecoder();
    case Format::kDataframeSplit: return detail::MakeDataframeSplitDecoder(std::move(schema));
  }
  return nullptr;
}

SchemaPtr StringFormatSchema() {
  static const SchemaPtr kSchema =
      std::make_shared<Schema>(std::vector<Field>{{"value", TypeId::kString, false}});
  return kSchema;
}

Result<SchemaPtr> SourceSchema(Format format, const std::string& schema_path) {
  if (format == Format::kString) {
    if (!schema_path.empty()) {
      return Status::InvalidConfig(
          "the string format has one field, 'value', and takes no schema; remove 'schema'");
    }
    return StringFormatSchema();
  }
  if (schema_path.empty()) {
    return Status::InvalidConfig("'schema' is required for this format (a JSON Schema file)");
  }
  return LoadJsonSchemaFile(schema_path);
}

}  // namespace sluice
