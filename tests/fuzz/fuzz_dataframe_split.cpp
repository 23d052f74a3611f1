// libFuzzer target: pandas to_json(orient="split") messages, one per line, into the fraud flow's
// transaction schema (schemas/fraud_transaction.json's columns and types).
#include "tests/fuzz/fuzz_common.h"

namespace {
constexpr const char* kSchema = R"({
  "type": "object",
  "properties": {
    "trans_date_trans_time": {"type": "string", "format": "date-time"},
    "cc_num": {"type": "integer"}, "merchant": {"type": "string"},
    "amt": {"type": "number"}, "gender": {"type": ["string", "null"]},
    "is_fraud": {"type": "integer"}
  },
  "required": ["trans_date_trans_time", "cc_num", "merchant", "amt"]
})";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  static const auto decoder = MakeFormatDecoder(Format::kDataframeSplit, fuzz::MustSchema(kSchema));
  fuzz::DecodeAndCheck(*decoder, fuzz::Records(data, size), /*one_row_per_record=*/false);
  return 0;
}
