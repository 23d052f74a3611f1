#include "engine/formats.h"

#include "engine/row_builder.h"

namespace sluice {

std::optional<Format> ParseFormat(std::string_view name) {
  if (name == "json" || name == "jsonl") return Format::kJson;
  if (name == "connect-json") return Format::kConnectJson;
  if (name == "csv") return Format::kCsv;
  return std::nullopt;
}

const std::vector<std::string>& FormatNames() {
  static const std::vector<std::string> kNames = {"json", "connect-json", "csv"};
  return kNames;
}

std::unique_ptr<Decoder> MakeFormatDecoder(Format format, SchemaPtr schema, CsvOptions csv) {
  switch (format) {
    case Format::kJson: return detail::MakeJsonDecoder(std::move(schema), false);
    case Format::kConnectJson: return detail::MakeJsonDecoder(std::move(schema), true);
    case Format::kCsv: return detail::MakeCsvDecoder(std::move(schema), csv);
  }
  return nullptr;
}

}  // namespace sluice
