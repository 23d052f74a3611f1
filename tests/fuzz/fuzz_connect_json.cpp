// libFuzzer target: Kafka Connect JSON envelopes ({schema, payload}), one per line.
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  static const auto decoder =
      MakeFormatDecoder(Format::kConnectJson, fuzz::MustSchema(fuzz::kAllTypesSchema));
  fuzz::DecodeAndCheck(*decoder, fuzz::Records(data, size));
  return 0;
}
