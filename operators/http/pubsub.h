// Google Pub/Sub push deliveries: finding the message's data in a push request body and decoding
// its base64. Pure functions, safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include "engine/status.h"

namespace sluice {

// The bytes of standard-alphabet base64 `text`; the `=` padding may be missing. The error names
// the first offending character.
Result<std::string> DecodeBase64(std::string_view text);

// The decoded `message.data` of a Pub/Sub push body, in either shape Google sends:
//   {"message": {"data": "<base64>", "messageId": ..., "attributes": ...}, "subscription": ...}
//   (a push subscription, also the body of a binary-mode CloudEvent), or a structured CloudEvent
//   {"data": {"message": {"data": "<base64>"}}, "type": "google.cloud.pubsub.topic.v1...."}.
// Errors (not JSON, no message, no data, bad base64) are the reason, prefixed with "pubsub: ".
Result<std::string> UnwrapPubSubPush(std::string_view body);

}  // namespace sluice
