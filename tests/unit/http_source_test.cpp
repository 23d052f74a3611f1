// The http source without a network: Pub/Sub push bodies unwrapped (both shapes Google sends,
// missing padding, every way a body can be wrong), JSON-lines bodies split into records, the
// decoder keeping the bodies as received for dead letters, and the config's errors. The server
// itself is tested against curl in tests/integration/http_source_test.cpp.
#include <catch2/catch.hpp>

#include "engine/dead_letter.h"
#include "operators/http/pubsub.h"
#include "operators/http/push_server.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

// Seed 001's CloudEvent sample, as published (its base64 has no padding).
const char* kSeedCloudEvent = R"({
  "data": {
    "message": {
      "_comment": "data is base64 encoded string of 'Hello World'",
      "data": "ewogICAgInJpZGUiOiB7CiAgICAgICAgIlBVTG9jYXRpb25JRCI6IDEzMCwKICAgICAgICAiRE9Mb2NhdGlvbklEIjogMjA1LAogICAgICAgICJ0cmlwX2Rpc3RhbmNlIjogMy42NgogICAgfSwgCiAgICAicmlkZV9pZCI6IDEyMwp9"
    }
  },
  "type": "google.cloud.pubsub.topic.v1.messagePublished",
  "specversion": "1.0",
  "source": "//pubsub.googleapis.com/",
  "id": "1234567890"
})";

std::string Unwrapped(std::string_view body) {
  auto got = UnwrapPubSubPush(body);
  INFO(body);
  REQUIRE(got.ok());
  return *got;
}

std::string UnwrapError(std::string_view body) {
  auto got = UnwrapPubSubPush(body);
  INFO(body);
  REQUIRE_FALSE(got.ok());
  return got.status().message();
}

std::string PushSource(const std::string& keys) {
  return "sources:\n  in: {type: http, " + keys +
         "}\nsinks:\n  out: {type: stdout, inputs: [in]}\n";
}

}  // namespace

TEST_CASE("base64 decodes with or without padding and names a bad character",
          "[operators][http-source]") {
  CHECK(*DecodeBase64("aGVsbG8=") == "hello");
  CHECK(*DecodeBase64("aGVsbG8") == "hello");
  CHECK(*DecodeBase64("aGk=") == "hi");
  CHECK(*DecodeBase64("aGk") == "hi");
  CHECK(*DecodeBase64("") == "");
  CHECK(*DecodeBase64("+/+/") == "\xfb\xff\xbf");
  auto bad = DecodeBase64("aGV*bG8=");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.status().message(), Catch::Contains("'*' at character 4 is not base64"));
  // URL-safe base64 is another alphabet: Pub/Sub sends the standard one.
  CHECK_FALSE(DecodeBase64("a-_b").ok());
  auto truncated = DecodeBase64("aGVsb");
  REQUIRE_FALSE(truncated.ok());
  CHECK_THAT(truncated.status().message(), Catch::Contains("truncated"));
  CHECK_FALSE(DecodeBase64("aGk==").ok());  // padding past a group of four
}

TEST_CASE("a Pub/Sub push body yields its message data, in both shapes",
          "[operators][http-source]") {
  // The push subscription's own JSON.
  CHECK(Unwrapped(R"({"message": {"data": "eyJyaWRlX2lkIjogMX0=", "messageId": "9",
                      "attributes": {"k": "v"}, "publishTime": "2024-01-01T00:00:00Z"},
                      "subscription": "projects/p/subscriptions/s"})") == R"({"ride_id": 1})");
  // The seed's CloudEvent, padding missing.
  CHECK(Unwrapped(kSeedCloudEvent) ==
        "{\n    \"ride\": {\n        \"PULocationID\": 130,\n        \"DOLocationID\": 205,\n"
        "        \"trip_distance\": 3.66\n    }, \n    \"ride_id\": 123\n}");
}

TEST_CASE("a push body that holds no record says why", "[operators][http-source]") {
  CHECK_THAT(UnwrapError("not json"), Catch::StartsWith("pubsub: the push body is not JSON"));
  CHECK_THAT(UnwrapError("[1, 2]"), Catch::Contains("not a JSON object"));
  CHECK_THAT(UnwrapError(R"({"subscription": "s"})"), Catch::Contains("no 'message'"));
  CHECK_THAT(UnwrapError(R"({"message": "x"})"), Catch::Contains("'message' is not an object"));
  CHECK_THAT(UnwrapError(R"({"message": {"attributes": {"a": "b"}}})"),
             Catch::Contains("the message has no 'data'"));
  CHECK_THAT(UnwrapError(R"({"message": {"data": 12}})"),
             Catch::Contains("'data' is not a string"));
  CHECK_THAT(UnwrapError(R"({"message": {"data": "ab$d"}})"),
             Catch::Contains("message.data: '$' at character 3 is not base64"));
  CHECK_THAT(UnwrapError(R"({"data": {"msg": {}}, "type": "x"})"),
             Catch::Contains("CloudEvent's 'data' holds no 'message'"));
  CHECK_THAT(UnwrapError(R"({"data": "eyJ9"})"),
             Catch::Contains("CloudEvent's 'data' holds no 'message'"));
}

TEST_CASE("a JSON body splits into records at newlines between values",
          "[operators][http-source]") {
  using V = std::vector<std::string_view>;
  CHECK(SplitJsonRecords("{\"a\": 1}\n{\"a\": 2}\r\n\n  {\"a\": 3}  \n") ==
        V{"{\"a\": 1}", "{\"a\": 2}", "{\"a\": 3}"});
  // A pretty-printed object is one record; newlines and brackets inside strings mean nothing.
  CHECK(SplitJsonRecords("{\n  \"a\": [1,\n 2],\n  \"s\": \"}\\\"\\n{\"\n}\n") ==
        V{"{\n  \"a\": [1,\n 2],\n  \"s\": \"}\\\"\\n{\"\n}"});
  CHECK(SplitJsonRecords(" \n\r\n ").empty());
  // What is not JSON stays a record of its own, for the decoder to reject.
  CHECK(SplitJsonRecords("oops\n{\"a\": 1}") == V{"oops", "{\"a\": 1}"});
  CHECK(SplitJsonRecords("{\"a\": [1\n{\"b\": 2}") == V{"{\"a\": [1\n{\"b\": 2}"});
}

TEST_CASE("the listen address is host:port", "[operators][http-source]") {
  std::string host;
  int port = 0;
  REQUIRE(ParseListenAddress("127.0.0.1:8080", &host, &port).ok());
  CHECK(host == "127.0.0.1");
  CHECK(port == 8080);
  REQUIRE(ParseListenAddress("[::1]:9000", &host, &port).ok());
  CHECK(host == "::1");
  CHECK(port == 9000);
  CHECK_THAT(ParseListenAddress("8080", &host, &port).message(), Catch::Contains("host:port"));
  CHECK_THAT(ParseListenAddress(":8080", &host, &port).message(), Catch::Contains("no host"));
  CHECK_THAT(ParseListenAddress("localhost:http", &host, &port).message(),
             Catch::Contains("port 'http' is not a number from 1 to 65535"));
  CHECK_FALSE(ParseListenAddress("localhost:0", &host, &port).ok());
  CHECK_FALSE(ParseListenAddress("localhost:65536", &host, &port).ok());
  // Found by fuzzing: a long run of digits overflowed the port while it was read.
  CHECK_THAT(ParseListenAddress("127.0.0.1:8080999999999999999999", &host, &port).message(),
             Catch::Contains("is not a number from 1 to 65535"));
}

TEST_CASE("the http source's config errors point at the key", "[operators][http-source]") {
  struct Case {
    std::string keys, key, message;
  };
  const std::vector<Case> cases = {
      {"address: \"localhost\", schema: ../schemas/ride_event.json", "\"localhost",
       "http 'in': 'localhost' is not host:port"},
      {"path: push, schema: ../schemas/ride_event.json", "push",
       "http 'in': 'path' must be a URL path starting with '/', found 'push' (write '/push')"},
      {"format: csv, schema: ../schemas/ride_event.json", "csv", "'format' must be one of"},
      {"max_body_bytes: 0, schema: ../schemas/ride_event.json", "0",
       "'max_body_bytes' must be at least 1"},
      {"ack_timeout_ms: -5, schema: ../schemas/ride_event.json", "-5",
       "'ack_timeout_ms' must be at least 1"},
      {"max_connections: 0, schema: ../schemas/ride_event.json", "0",
       "'max_connections' must be from 1 to"},
      {"batch_linger_ms: 60000, schema: ../schemas/ride_event.json", "60000",
       "'batch_linger_ms' must be from 0 to"},
      {"format: pubsub", "{type", "schema"},
  };
  for (const Case& c : cases) {
    const std::string yaml = PushSource(c.keys);
    Loaded l = Load(yaml);
    INFO(yaml);
    INFO(l.Text());
    auto errs = l.ErrorsWith(c.message);
    REQUIRE(errs.size() == 1u);
    if (c.key != "{type") CHECK(errs[0].mark.ToString() == At(yaml, c.key));
  }
  // Loopback and the root path unless configured.
  Loaded l = Load(PushSource("format: pubsub, schema: ../schemas/ride_event.json"));
  INFO(l.Text());
  REQUIRE_FALSE(l.diags.HasErrors());
  CHECK(l.Config("in").String("address") == "127.0.0.1:8080");
  CHECK(l.Config("in").String("path") == "/");
}

TEST_CASE("the pubsub decoder keeps each body as received, for dead letters downstream",
          "[operators][http-source]") {
  Loaded l = Load(PushSource("format: pubsub, schema: ../schemas/ride_event.json"));
  INFO(l.Text());
  REQUIRE_FALSE(l.diags.HasErrors());
  auto decoder = l.Node("in").source->MakeDecoder();
  REQUIRE(decoder.ok());
  auto raw = std::make_shared<RawRecords>();
  raw->origin = "http://127.0.0.1:8080/";
  const std::string missing_ride = R"({"message": {"data": "eyJyaWRlX2lkIjogMX0="}})";
  raw->Add("{\"message\": {}}", 10);  // no data
  raw->Add(kSeedCloudEvent, 11);      // good
  raw->Add(missing_ride, 12);         // {"ride_id": 1}: no ride
  MemoryDeadLetter dl;
  NodeContext ctx("in", &dl);
  auto batch = (*decoder)->Decode(raw, ctx);
  REQUIRE(batch.ok());
  REQUIRE((*batch)->num_rows() == 1u);
  CHECK((*batch)->Position(0) == 11);
  CHECK((*batch)->RawBytes(0) == kSeedCloudEvent);
  const int id = (*batch)->schema()->IndexOf("ride_id");
  REQUIRE(id >= 0);
  CHECK((*batch)->column(static_cast<size_t>(id)).ints == std::vector<int64_t>{123});
  auto dead = dl.records();
  REQUIRE(dead.size() == 2u);
  CHECK(dead[0].position == 10);
  CHECK(dead[0].input == "{\"message\": {}}");
  CHECK_THAT(dead[0].reason, Catch::Contains("the message has no 'data'"));
  CHECK(dead[1].position == 12);
  CHECK(dead[1].input == missing_ride);  // the body, not the decoded message
  CHECK_THAT(dead[1].reason, Catch::Contains("ride"));
}
