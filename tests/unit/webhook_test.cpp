// The http (webhook) sink without a server: its configuration checks, the message template and
// the bodies it posts. Posting, retries and dead letters are in
// tests/integration/webhook_sink_test.cpp.
#include <catch2/catch.hpp>

#include "operator_helpers.h"
#include "operators/sinks/webhook_message.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

const std::string kSchema = R"({
  "type": "object",
  "properties": {
    "id": {"type": "integer"},
    "merchant": {"type": "string"},
    "amt": {"type": "number"},
    "fraud": {"type": "boolean"},
    "ts": {"type": "string", "format": "date-time"}
  },
  "required": ["id"]
})";

const std::vector<std::string> kRows = {
    R"({"id": 1, "merchant": "fraud_Kirlin & Sons <x>", "amt": 12.5, "fraud": true, "ts": "2026-01-01T00:00:01Z"})",
    R"({"id": 2, "merchant": "Ünïcode café", "amt": 3, "fraud": false})",
    R"({"id": 3, "merchant": "\"quoted\"", "amt": 0.123456, "fraud": true})",
};

// A pipeline whose sink `out` is an http sink with `extra` keys (flow style, after a comma).
std::string Pipeline(const std::string& extra) {
  return "sources:\n"
         "  src: {type: file, path: in.jsonl, schema: s.json}\n"
         "sinks:\n"
         "  out: {type: http, inputs: [src], url: \"https://hooks.example.com/T/B/secret\"" +
         extra + "}\n";
}

struct Planned {
  TempDir dir;
  Loaded l;
};

std::unique_ptr<Planned> PlanWebhook(const std::string& yaml) {
  auto p = std::make_unique<Planned>();
  p->dir.Write("s.json", kSchema);
  p->l = Load(yaml, p->dir.path());
  return p;
}

// The bodies the sink `out` of `yaml` posts for kRows, with their row ranges.
std::vector<WebhookMessage> Encode(const std::string& yaml) {
  auto p = PlanWebhook(yaml);
  INFO(p->l.Text());
  REQUIRE_FALSE(p->l.diags.HasErrors());
  auto e = WebhookEncoder::Parse(p->l.Config("out"), *p->l.Node("out").input_schema);
  INFO(e.status().message());
  REQUIRE(e.ok());
  return e->Encode(*InputBatch(p->l, "out", kRows));
}

std::vector<std::string> Bodies(const std::vector<WebhookMessage>& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages) out.push_back(m.body);
  return out;
}

// The one error of planning `extra`, REQUIREd to be at `token` of the text.
std::string ErrorAt(const std::string& extra, const std::string& token) {
  const std::string yaml = Pipeline(extra);
  auto p = PlanWebhook(yaml);
  INFO(p->l.Text());
  REQUIRE(p->l.Errors().size() == 1u);
  CHECK(p->l.Errors()[0].mark.ToString() == At(yaml, token));
  return p->l.Errors()[0].message;
}

}  // namespace

TEST_CASE("http sink: a Slack message per row from the template, values escaped for Slack",
          "[operators][webhook]") {
  auto m = Encode(Pipeline(
      ", template: \"Fraud: {amt} at {merchant} (id {id}, {fraud}, {ts}) <!here> {{x}}\""));
  REQUIRE(m.size() == 3u);
  CHECK(m[0].first_row == 0);
  CHECK(m[2].first_row == 2);
  CHECK(m[2].rows == 1);
  // Slack markup of the template stays; the values' &, < and > become entities.
  CHECK(m[0].body == R"({"text":"Fraud: 12.5 at fraud_Kirlin &amp; Sons &lt;x&gt; (id 1, true, )"
                     R"(2026-01-01T00:00:01Z) <!here> {x}"})");
  CHECK(m[1].body == R"({"text":"Fraud: 3 at Ünïcode café (id 2, false, null) <!here> {x}"})");
  CHECK(m[2].body == R"({"text":"Fraud: 0.123456 at \"quoted\" (id 3, true, null) <!here> {x}"})");
}

TEST_CASE("http sink: {field:spec} formats values", "[operators][webhook]") {
  auto m =
      Encode(Pipeline(", template: \"{amt:.2f}|{id:03}|{merchant:.5}|{ts:.10}\", format: discord"));
  REQUIRE(m.size() == 3u);
  // Discord: the text in `content`, and no mention in it notifies anyone.
  CHECK(m[0].body == R"({"content":"12.50|001|fraud|2026-01-01","allowed_mentions":{"parse":[]}})");
  CHECK(m[1].body == R"({"content":"3.00|002|Ünïco|null","allowed_mentions":{"parse":[]}})");
}

TEST_CASE("http sink: format json posts the row; without a template text is the row's JSON",
          "[operators][webhook]") {
  auto json = Bodies(Encode(Pipeline(", format: json")));
  REQUIRE(json.size() == 3u);
  CHECK(json[1] == R"({"id":2,"merchant":"Ünïcode café","amt":3,"fraud":false,"ts":null})");
  auto slack = Bodies(Encode(Pipeline("")));
  CHECK(
      slack[1] ==
      R"({"text":"{\"id\":2,\"merchant\":\"Ünïcode café\",\"amt\":3,\"fraud\":false,\"ts\":null}"})");
}

TEST_CASE("http sink: batch joins rows into messages of one line each, up to the size limit",
          "[operators][webhook]") {
  // "row 1 ok" is 8 bytes: two lines and their newline fit in 17, three do not.
  auto m = Encode(Pipeline(", template: \"row {id} ok\", batch: true, max_message_bytes: 17"));
  REQUIRE(m.size() == 2u);
  CHECK(m[0].body == R"({"text":"row 1 ok\nrow 2 ok"})");
  CHECK(m[0].first_row == 0);
  CHECK(m[0].rows == 2);
  CHECK(m[1].body == R"({"text":"row 3 ok"})");
  CHECK(m[1].first_row == 2);
  CHECK(m[1].rows == 1);
  // All in one message when they fit; json batches are arrays.
  CHECK(Bodies(Encode(Pipeline(", template: \"row {id} ok\", batch: true"))) ==
        std::vector<std::string>{R"({"text":"row 1 ok\nrow 2 ok\nrow 3 ok"})"});
  auto json = Encode(Pipeline(", format: json, batch: true"));
  REQUIRE(json.size() == 1u);
  CHECK(json[0].body.front() == '[');
  CHECK(json[0].rows == 3);
}

TEST_CASE("http sink: a line over max_message_bytes is shortened on a character boundary",
          "[operators][webhook]") {
  // "Ünïcode café" twice is 30 bytes (Ü, ï and é take two each). 17 leave 14 before the
  // ellipsis, and byte 14 is inside the é: the cut moves back before it.
  auto m = Encode(Pipeline(", template: \"{merchant}{merchant}\", max_message_bytes: 17"));
  REQUIRE(m.size() == 3u);
  CHECK(m[1].body == R"({"text":"Ünïcode caf…"})");
  CHECK(m[2].body == R"({"text":"\"quoted\"\"quoted\""})");  // 16 bytes: as it is
  // Row 1 escaped is "fraud_Kirlin &amp; Sons &lt;x&gt;...": byte 14 is inside "&amp;".
  CHECK(m[0].body == R"({"text":"fraud_Kirlin …"})");
}

TEST_CASE("http sink: template placeholders must be fields, with a did-you-mean",
          "[operators][webhook]") {
  CHECK(ErrorAt(", template: \"Fraud at {merchnt}\"", "\"Fraud at") ==
        "http 'out': template placeholder {merchnt}: 'merchnt' is not a field of 'src'; did you "
        "mean 'merchant'? (fields: id, merchant, amt, fraud, ts)");
  CHECK_THAT(ErrorAt(", template: \"{amt:.2q}\"", "\"{amt"),
             Catch::StartsWith("http 'out': template placeholder {amt:.2q}: '.2q' is not a "
                               "format for float64 field 'amt'"));
  CHECK_THAT(ErrorAt(", template: \"{id:.2f}\"", "\"{id"),
             Catch::StartsWith("http 'out': template placeholder {id:.2f}: '.2f' is not a "
                               "format for int64 field 'id'"));
  CHECK(ErrorAt(", template: \"a {id\"", "\"a {id") ==
        "http 'out': unterminated '{' at character 3 of the template (write {{ for a literal "
        "brace)");
  CHECK(ErrorAt(", template: \"a } b\"", "\"a }") ==
        "http 'out': unmatched '}' at character 3 of the template (write }} for a literal brace)");
  CHECK_THAT(ErrorAt(", template: \"{}\"", "\"{}"),
             Catch::StartsWith("http 'out': template placeholder {}: '' is not a field"));
}

TEST_CASE("http sink: configuration checks", "[operators][webhook]") {
  CHECK_THAT(ErrorAt(", format: json, template: \"{id}\"", "\"{id}"),
             Catch::Contains("format json posts the row as a JSON object and takes no template"));
  CHECK_THAT(ErrorAt(", format: teams", "teams"), Catch::Contains("slack, discord, json"));
  CHECK_THAT(ErrorAt(", max_message_bytes: 4", "4"), Catch::Contains("at least 16 bytes"));
  CHECK_THAT(ErrorAt(", max_retries: -1", "-1"), Catch::Contains("must not be negative"));
  CHECK_THAT(ErrorAt(", rate_limit_per_s: -2", "-2"), Catch::Contains("must not be negative"));
  CHECK_THAT(ErrorAt(", timeout_ms: 0", "0}"),
             Catch::Contains("'timeout_ms' must be at least 1, found 0"));
  // The URL's path is a secret: an error shows the host only.
  const std::string yaml =
      "sources:\n  src: {type: file, path: in.jsonl, schema: s.json}\n"
      "sinks:\n  out: {type: http, inputs: [src], url: \"hooks.example.com/T/B/secret\"}\n";
  auto p = PlanWebhook(yaml);
  REQUIRE(p->l.Errors().size() == 1u);
  CHECK(p->l.Errors()[0].message ==
        "http 'out': expected an http:// or https:// URL, not 'hooks.example.com/...'");
  CHECK(p->l.Errors()[0].mark.ToString() == At(yaml, "\"hooks"));
}
