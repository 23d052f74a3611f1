// The string record format: each record's bytes become the `value` field as they are, so a
// pipeline can carry messages it does not parse (replaying Kafka Connect envelopes into a topic
// verbatim, say). Records that are not valid UTF-8 are rejected: every string in a batch is text.
#include <simdjson.h>

#include "engine/row_builder.h"

namespace sluice::detail {
namespace {

class StringDecoder : public Decoder {
 public:
  Result<std::shared_ptr<Batch>> Decode(std::shared_ptr<const RawRecords> raw,
                                        NodeContext& ctx) const override {
    auto column = std::make_shared<Column>(TypeId::kString);
    column->Reserve(raw->count());
    std::vector<uint32_t> kept;
    kept.reserve(raw->count());
    for (size_t i = 0; i < raw->count(); ++i) {
      std::string_view bytes = raw->Get(i);
      if (!simdjson::validate_utf8(bytes.data(), bytes.size())) {
        ctx.RejectRaw(*raw, i, "not valid UTF-8");
        continue;
      }
      column->AppendString(bytes);
      kept.push_back(static_cast<uint32_t>(i));
    }
    const size_t rows = kept.size();
    auto batch = std::make_shared<Batch>(StringFormatSchema(),
                                         std::vector<ColumnPtr>{std::move(column)}, rows);
    if (rows == raw->count()) kept.clear();  // identity
    batch->SetRaw(std::move(raw), std::move(kept));
    return batch;
  }
};

}  // namespace

std::unique_ptr<Decoder> MakeStringDecoder() { return std::make_unique<StringDecoder>(); }

}  // namespace sluice::detail
