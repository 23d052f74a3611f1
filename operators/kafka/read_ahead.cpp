#include "operators/kafka/read_ahead.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <string>

namespace sluice {
namespace {

// The last value `user` gives `name` (librdkafka applies them in order), if any.
const std::string* Find(const KafkaProperties& user, std::string_view name) {
  const std::string* found = nullptr;
  for (const auto& [k, v] : user) {
    if (k == name) found = &v;
  }
  return found;
}

// `name`'s value in `user` as a positive number; none when unset or not one (librdkafka then
// refuses the value itself, naming the property).
std::optional<int64_t> PositiveNumber(const KafkaProperties& user, std::string_view name) {
  const std::string* v = Find(user, name);
  if (!v) return std::nullopt;
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || end != v->data() + v->size() || n <= 0) return std::nullopt;
  return n;
}

}  // namespace

KafkaProperties ReadAheadProperties(const KafkaProperties& user) {
  KafkaProperties out;
  if (!Find(user, "queued.max.messages.kbytes")) {
    out.emplace_back("queued.max.messages.kbytes", std::to_string(kReadAheadKiB));
  }
  if (!Find(user, "fetch.max.bytes")) {
    const int64_t kib = PositiveNumber(user, "queued.max.messages.kbytes").value_or(kReadAheadKiB);
    int64_t bytes = std::min(kib * 1024, kLibrdkafkaFetchMaxBytes);
    // librdkafka refuses a fetch.max.bytes below message.max.bytes, the user's or its default:
    // a small read-ahead gets responses of one largest message.
    bytes = std::max(bytes, PositiveNumber(user, "message.max.bytes")
                                .value_or(kLibrdkafkaMessageMaxBytes));
    out.emplace_back("fetch.max.bytes", std::to_string(bytes));
  }
  return out;
}

}  // namespace sluice
