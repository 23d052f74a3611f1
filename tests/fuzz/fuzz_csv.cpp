// libFuzzer target: CSV with a header line (the first line of the input).
#include "tests/fuzz/fuzz_common.h"

namespace {
constexpr const char* kSchema = R"({
  "type": "object",
  "properties": {
    "id": {"type": "integer"}, "score": {"type": "number"}, "name": {"type": "string"},
    "flag": {"type": "boolean"}, "at": {"type": "string", "format": "date-time"},
    "note": {"type": ["string", "null"]}
  },
  "required": ["id", "name"]
})";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  static const auto decoder = MakeFormatDecoder(Format::kCsv, fuzz::MustSchema(kSchema));
  fuzz::DecodeAndCheck(*decoder, fuzz::Records(data, size, /*header_line=*/true));
  return 0;
}
