#include "operators/http/pubsub.h"

#include <array>

#include <fmt/format.h>
#include <simdjson.h>

namespace sluice {
namespace {

constexpr int8_t kNotBase64 = -1;

constexpr std::array<int8_t, 256> MakeBase64Table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = kNotBase64;
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr std::array<int8_t, 256> kBase64 = MakeBase64Table();

std::string Shown(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return fmt::format("'{}'", c);
  return fmt::format("byte 0x{:02x}", u);
}

}  // namespace

Result<std::string> DecodeBase64(std::string_view text) {
  size_t end = text.size();
  // Up to two `=` close the text; senders that strip them (URL-style) are accepted too.
  for (int k = 0; k < 2 && end > 0 && text[end - 1] == '='; ++k) --end;
  for (size_t i = 0; i < end; ++i) {
    if (kBase64[static_cast<unsigned char>(text[i])] == kNotBase64) {
      return Status::InvalidConfig(
          fmt::format("{} at character {} is not base64 (standard "
                      "alphabet A-Z a-z 0-9 + /)",
                      Shown(text[i]), i + 1));
    }
  }
  if (end % 4 == 1) {
    return Status::InvalidConfig(
        fmt::format("base64 of {} characters is truncated (a length of 4n+1 is never valid)", end));
  }
  if (text.size() != end && text.size() % 4 != 0) {
    return Status::InvalidConfig("base64 padding does not end a group of 4 characters");
  }
  std::string out;
  out.reserve(end / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < end; ++i) {
    const int8_t v = kBase64[static_cast<unsigned char>(text[i])];
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

Result<std::string> UnwrapPubSubPush(std::string_view body) {
  auto fail = [](std::string why) { return Status::InvalidConfig("pubsub: " + std::move(why)); };
  thread_local simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  simdjson::dom::element doc;
  if (auto err = parser.parse(padded).get(doc)) {
    return fail(fmt::format("the push body is not JSON: {}", simdjson::error_message(err)));
  }
  simdjson::dom::object top;
  if (doc.get_object().get(top)) return fail("the push body is not a JSON object");
  simdjson::dom::object message;
  simdjson::dom::element found;
  if (!top["message"].get(found)) {
    if (found.get_object().get(message)) return fail("'message' is not an object");
  } else if (!top["data"].get(found)) {
    // A structured CloudEvent: the push message is the event's data.
    simdjson::dom::object data;
    if (found.get_object().get(data) || data["message"].get(found)) {
      return fail("the CloudEvent's 'data' holds no 'message' object");
    }
    if (found.get_object().get(message)) return fail("'data.message' is not an object");
  } else {
    return fail(
        "no 'message' in the push body (expected {\"message\": {\"data\": \"<base64>\"}} or a "
        "CloudEvent with data.message.data)");
  }
  if (message["data"].get(found)) {
    return fail(
        "the message has no 'data' (Pub/Sub messages with attributes only are not "
        "records)");
  }
  std::string_view data;
  if (found.get_string().get(data)) return fail("the message's 'data' is not a string");
  auto decoded = DecodeBase64(data);
  if (!decoded.ok()) return fail("message.data: " + decoded.status().message());
  return decoded;
}

}  // namespace sluice
