// libFuzzer target: the json format's decoder, one record per line, into a schema of every type.
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  static const auto decoder = MakeFormatDecoder(Format::kJson, fuzz::MustSchema(fuzz::kAllTypesSchema));
  fuzz::DecodeAndCheck(*decoder, fuzz::Records(data, size));
  return 0;
}
