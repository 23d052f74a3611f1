// libFuzzer target: a Pub/Sub push body (the whole input), unwrapped and its data decoded as a
// JSON record, as the http source does with format: pubsub.
#include "operators/http/pubsub.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  static const auto decoder =
      MakeFormatDecoder(Format::kJson, fuzz::MustSchema(fuzz::kAllTypesSchema));
  auto record = UnwrapPubSubPush(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!record.ok()) return 0;
  auto raw = std::make_shared<RawRecords>();
  raw->Add(*record, 1);
  raw->data.reserve(raw->data.size() + 64);
  fuzz::DecodeAndCheck(*decoder, raw);
  return 0;
}
