// Record formats: JSON lines, Kafka Connect envelopes and CSV decode into a declared schema;
// bad records go to the dead-letter output with the node, the reason, the bytes and position.
// Also the JSON Schema reader that declares those schemas.
#include <catch2/catch.hpp>

#include "engine/dead_letter.h"
#include "engine/formats.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

SchemaPtr TestSchema() {
  return std::make_shared<const Schema>(std::vector<Field>{
      {"id", TypeId::kInt64, false},
      {"name", TypeId::kString, true},
      {"score", TypeId::kFloat64, true},
      {"ok", TypeId::kBool, true},
      {"ts", TypeId::kTimestamp, true},
  });
}

struct Decoded {
  std::shared_ptr<Batch> batch;
  std::vector<DeadLetterRecord> rejected;
};

Decoded DecodeLines(Format format, const std::vector<std::string>& lines,
                    const std::string& csv_header = "", SchemaPtr schema = TestSchema()) {
  MemoryDeadLetter dl;
  NodeContext ctx("src", &dl);
  auto decoder = MakeFormatDecoder(format, std::move(schema));
  auto result = decoder->Decode(Raw(lines, csv_header), ctx);
  REQUIRE(result.ok());
  CHECK(ctx.rejected() == dl.records().size());
  return {*result, dl.records()};
}

// The one reason a single bad record was rejected for.
std::string ReasonFor(Format format, const std::string& line) {
  Decoded d = DecodeLines(format, {line});
  CHECK(d.batch->num_rows() == 0u);
  REQUIRE(d.rejected.size() == 1u);
  return d.rejected[0].reason;
}

}  // namespace

TEST_CASE("json: a good row decodes into every column type", "[formats][json]") {
  Decoded d = DecodeLines(
      Format::kJson,
      {R"({"id": 7, "name": "iris \"A\"", "score": 0.25, "ok": true, "ts": "2026-01-01T00:00:01Z"})",
       R"({"id": -1})"});
  REQUIRE(d.rejected.empty());
  REQUIRE(d.batch->num_rows() == 2u);
  const Batch& b = *d.batch;
  CHECK(b.column(0).ints == std::vector<int64_t>{7, -1});
  CHECK(b.column(1).strings[0] == "iris \"A\"");
  CHECK(b.column(2).doubles[0] == 0.25);
  CHECK(b.column(3).ints[0] == 1);
  CHECK(b.column(4).ints[0] == 1767225601000000);
  // Absent nullable fields are null.
  for (size_t c = 1; c < 5; ++c) CHECK(b.column(c).IsNull(1));
  CHECK_FALSE(b.column(0).IsNull(1));
  // The batch keeps the source bytes and positions of its rows.
  CHECK(b.RawBytes(1) == R"({"id": -1})");
  CHECK(b.Position(1) == 2);
  CHECK(b.Origin(0) == "test");
}

TEST_CASE("json: bad records are dead-lettered with node, reason, bytes and position",
          "[formats][json]") {
  const std::vector<std::string> lines = {
      R"({"id": 1, "name": "ok"})",
      R"({"name": "no id"})",
      R"({"id": 3, "score": "high"})",
      R"({"id": 4})",
  };
  Decoded d = DecodeLines(Format::kJson, lines);
  REQUIRE(d.batch->num_rows() == 2u);
  CHECK(d.batch->column(0).ints == std::vector<int64_t>{1, 4});
  // Kept rows map back to their own records.
  CHECK(d.batch->RawBytes(1) == lines[3]);
  CHECK(d.batch->Position(1) == 4);
  REQUIRE(d.rejected.size() == 2u);
  CHECK(d.rejected[0].node == "src");
  CHECK(d.rejected[0].reason == "missing field 'id'");
  CHECK(d.rejected[0].input == lines[1]);
  CHECK(d.rejected[0].position == 2);
  CHECK(d.rejected[0].origin == "test");
  CHECK(d.rejected[1].reason == R"(field 'score': expected float64, found a string "high")");
  CHECK(d.rejected[1].input == lines[2]);
  CHECK(d.rejected[1].position == 3);
}

TEST_CASE("json: each kind of bad value has its own reason", "[formats][json]") {
  CHECK(ReasonFor(Format::kJson, R"({"id": null})") == "field 'id' is null but is not nullable");
  CHECK(ReasonFor(Format::kJson, R"({"id": 1, "id": 2})") == "duplicate field 'id'");
  CHECK_THAT(ReasonFor(Format::kJson, R"({"id": 1, "score": NaN})"),
             Catch::StartsWith("malformed JSON: "));
  CHECK_THAT(ReasonFor(Format::kJson, R"({"id": 1,)"), Catch::StartsWith("malformed JSON: "));
  CHECK(ReasonFor(Format::kJson, R"([1, 2])") == "malformed JSON: expected an object");
  CHECK(ReasonFor(Format::kJson, R"({"id": 1.5})") ==
        "field 'id': expected int64, found a number 1.5");
  CHECK(ReasonFor(Format::kJson, R"({"id": "1"})") ==
        R"(field 'id': expected int64, found a string "1")");
  CHECK(ReasonFor(Format::kJson, R"({"id": 18446744073709551615})") ==
        "field 'id': expected int64, found a number 18446744073709551615");
  CHECK(ReasonFor(Format::kJson, R"({"id": 1, "ok": 1})") ==
        "field 'ok': expected bool, found a number 1");
  CHECK(ReasonFor(Format::kJson, R"({"id": 1, "name": 5})") ==
        "field 'name': expected string, found a number 5");
  CHECK(ReasonFor(Format::kJson, R"({"id": 1, "name": {"first": "a"}})") ==
        R"(field 'name': expected string, found an object {"first":"a"})");
  CHECK_THAT(ReasonFor(Format::kJson, R"({"id": 1, "ts": "yesterday"})"),
             Catch::StartsWith("field 'ts': "));
  CHECK(ReasonFor(Format::kJson, R"({"id": 1, "ts": true})") ==
        "field 'ts': expected timestamp, found a boolean true");
  // Found by fuzzing: epoch milliseconds whose microseconds overflow int64.
  CHECK(ReasonFor(Format::kJson, R"({"id": 1, "ts": -9223372036854775808})") ==
        "field 'ts': -9223372036854775808 epoch milliseconds is out of the timestamp range");
  CHECK(ReasonFor(Format::kJson, R"({"id": 1, "ts": 9223372036854776})") ==
        "field 'ts': 9223372036854776 epoch milliseconds is out of the timestamp range");
  // Long values are shortened in the reason.
  const std::string long_value(100, 'x');
  CHECK(ReasonFor(Format::kJson, R"({"id": ")" + long_value + R"("})") ==
        "field 'id': expected int64, found a string \"" + std::string(39, 'x') + "...");
}

TEST_CASE("json: numbers convert where no information is lost", "[formats][json]") {
  Decoded d = DecodeLines(Format::kJson,
                          {R"({"id": 2.0, "score": 3})", R"({"id": 1e3, "score": -12345678901})",
                           R"({"id": 9007199254740993})"});
  REQUIRE(d.rejected.empty());
  REQUIRE(d.batch->num_rows() == 3u);
  CHECK(d.batch->column(0).ints == std::vector<int64_t>{2, 1000, 9007199254740993});
  CHECK(d.batch->column(2).doubles[0] == 3.0);
  CHECK(d.batch->column(2).doubles[1] == -12345678901.0);
}

TEST_CASE("json: fields the schema does not declare are ignored", "[formats][json]") {
  Decoded d = DecodeLines(Format::kJson, {R"({"extra": [1, {"x": null}], "id": 5, "more": "y"})"});
  REQUIRE(d.rejected.empty());
  REQUIRE(d.batch->num_rows() == 1u);
  CHECK(d.batch->column(0).ints[0] == 5);
}

TEST_CASE("json: timestamps are ISO 8601 strings or epoch milliseconds", "[formats][json]") {
  Decoded d = DecodeLines(Format::kJson, {R"({"id": 1, "ts": "2026-01-01T00:00:00Z"})",
                                          R"({"id": 2, "ts": 1767225600000})",
                                          R"({"id": 3, "ts": "2026-01-01T01:00:00.250+01:00"})"});
  REQUIRE(d.rejected.empty());
  CHECK(d.batch->column(4).ints ==
        std::vector<int64_t>{1767225600000000, 1767225600000000, 1767225600250000});
}

TEST_CASE("json: a record at the very end of an unpadded buffer still decodes", "[formats][json]") {
  // Records are parsed in place when the buffer has room after them, copied when not.
  auto raw = std::make_shared<RawRecords>();
  raw->Add(R"({"id": 1})", 1);
  raw->Add(R"({"id": 2})", 2);
  raw->data.shrink_to_fit();
  MemoryDeadLetter dl;
  NodeContext ctx("src", &dl);
  auto r = MakeFormatDecoder(Format::kJson, TestSchema())->Decode(raw, ctx);
  REQUIRE(r.ok());
  CHECK((*r)->column(0).ints == std::vector<int64_t>{1, 2});
}

TEST_CASE("connect-json: the payload is decoded, the envelope is required",
          "[formats][connect-json]") {
  const std::string good =
      R"({"schema": {"type": "struct", "fields": []}, "payload": {"id": 9, "ts": 1767225600000}})";
  Decoded d = DecodeLines(Format::kConnectJson, {good});
  REQUIRE(d.rejected.empty());
  REQUIRE(d.batch->num_rows() == 1u);
  CHECK(d.batch->column(0).ints[0] == 9);
  CHECK(d.batch->column(4).ints[0] == 1767225600000000);

  CHECK(ReasonFor(Format::kConnectJson, R"({"id": 9})") ==
        "connect-json: no 'payload' in the envelope");
  CHECK(ReasonFor(Format::kConnectJson, R"({"schema": {}, "payload": null})") ==
        "connect-json: 'payload' is not an object");
  CHECK(ReasonFor(Format::kConnectJson, R"({"schema": {}, "payload": {"name": "x"}})") ==
        "missing field 'id'");
}

TEST_CASE("connect-json: the envelope is scanned for structure, only the payload is parsed",
          "[formats][connect-json]") {
  // Brackets and quotes inside the schema's strings, payload first, whitespace everywhere.
  const std::string tricky =
      R"( { "payload" : {"id": 1} , "schema": {"doc": "a } ] \" [ {", "fields": [[], {}]} } )";
  Decoded d = DecodeLines(Format::kConnectJson, {tricky});
  INFO((d.rejected.empty() ? "" : d.rejected[0].reason));
  REQUIRE(d.rejected.empty());
  CHECK(d.batch->column(0).ints[0] == 1);
  // A nested member named payload is not the envelope's.
  Decoded nested = DecodeLines(Format::kConnectJson,
                               {R"({"schema": {"payload": {"id": 7}}, "payload": {"id": 2}})"});
  REQUIRE(nested.rejected.empty());
  CHECK(nested.batch->column(0).ints[0] == 2);

  CHECK(ReasonFor(Format::kConnectJson, R"({"schema": {"a": [1, 2}, "payload": {"id": 1}})") ==
        "malformed JSON: mismatched brackets (at byte 23)");
  CHECK(ReasonFor(Format::kConnectJson, R"({"schema": "open, "payload": {"id": 1}})") ==
        "malformed JSON: expected ',' or '}' (at byte 20)");
  CHECK(ReasonFor(Format::kConnectJson, R"({"schema": {}, "payload": {"id": 1)") ==
        "malformed JSON: the record ends inside an object or array (at byte 35)");
  CHECK(ReasonFor(Format::kConnectJson, R"({"payload": {"id": 1}} trailing)") ==
        "malformed JSON: trailing content after the object (at byte 24)");
  CHECK(ReasonFor(Format::kConnectJson, R"({"payload": {"id": 1}, "payload": {"id": 2}})") ==
        "connect-json: 'payload' appears twice");
  CHECK(ReasonFor(Format::kConnectJson, R"([{"payload": {"id": 1}}])") ==
        "malformed JSON: expected an object (at byte 1)");
  CHECK(ReasonFor(Format::kConnectJson, R"({"schema": {}, "payload": {"id": NaN}})") ==
        "malformed JSON: The JSON document has an improper structure: missing or superfluous "
        "commas, braces, missing keys, etc. (NaN and Infinity are not JSON numbers; send null)");
  // The payload itself is parsed strictly.
  CHECK_THAT(ReasonFor(Format::kConnectJson, R"({"schema": {}, "payload": {"id": tru}})"),
             Catch::StartsWith("malformed JSON: "));
}

TEST_CASE("connect-json: envelopes that repeat a schema decode the same as the first",
          "[formats][connect-json]") {
  // Records after the first reuse its scan when they start with the same bytes; each of these
  // differs from the first only after the payload's offset, and must be judged on its own.
  const std::string head = R"({"schema":{"type":"struct","fields":[{"field":"id"}]},"payload":)";
  Decoded d = DecodeLines(Format::kConnectJson,
                          {head + R"({"id": 1}})",
                           head + R"({"id": 2}, "extra": {"x": [1]}})",  // a member after
                           head + R"({"id": 3})",                        // envelope not closed
                           head + R"([1, 2]})",                          // payload not an object
                           head + R"({"id": tru}})",                     // bad payload
                           head + R"({"id": 6}}  )",
                           R"({"payload": {"id": 7}})",  // another prefix
                           head + R"({"id": 8}} x)"});   // trailing content
  std::vector<int64_t> ids;
  for (size_t r = 0; r < d.batch->num_rows(); ++r) ids.push_back(d.batch->column(0).ints[r]);
  CHECK(ids == std::vector<int64_t>{1, 2, 6, 7});
  REQUIRE(d.rejected.size() == 4u);
  CHECK(d.rejected[0].reason == "malformed JSON: expected ',' or '}' (at byte 74)");
  CHECK(d.rejected[1].reason == "connect-json: 'payload' is not an object");
  CHECK_THAT(d.rejected[2].reason, Catch::StartsWith("malformed JSON: "));
  CHECK(d.rejected[3].reason == "malformed JSON: trailing content after the object (at byte 76)");
}

TEST_CASE("csv: columns map by header name; quoting follows RFC 4180", "[formats][csv]") {
  const std::string header = "name,extra,id,score";
  Decoded d = DecodeLines(
      Format::kCsv, {R"("Smith, J",zz,7,1.5)", R"("say ""hi""",,8,)", "plain,,9,2e3\r"}, header);
  REQUIRE(d.rejected.empty());
  REQUIRE(d.batch->num_rows() == 3u);
  const Batch& b = *d.batch;
  CHECK(b.column(0).ints == std::vector<int64_t>{7, 8, 9});
  CHECK(b.column(1).strings == std::vector<std::string>{"Smith, J", "say \"hi\"", "plain"});
  CHECK(b.column(2).doubles[0] == 1.5);
  CHECK(b.column(2).IsNull(1));  // an empty number is null
  CHECK(b.column(2).doubles[2] == 2000.0);
  // Fields absent from the header are null.
  CHECK(b.column(3).IsNull(0));
  CHECK(b.column(4).IsNull(0));
}

TEST_CASE("csv: an empty cell is null for numbers and empty for strings", "[formats][csv]") {
  Decoded d = DecodeLines(Format::kCsv, {"1,,,,"}, "id,name,score,ok,ts");
  REQUIRE(d.rejected.empty());
  REQUIRE(d.batch->num_rows() == 1u);
  CHECK_FALSE(d.batch->column(1).IsNull(0));
  CHECK(d.batch->column(1).strings[0].empty());
  CHECK(d.batch->column(2).IsNull(0));
  CHECK(d.batch->column(3).IsNull(0));
  CHECK(d.batch->column(4).IsNull(0));
}

TEST_CASE("csv: infinities, invalid UTF-8 and text after a closing quote are bad rows",
          "[formats][csv]") {
  // Found by the bad-input suite: these were taken (inf written as null, the bytes as Latin-1,
  // `"a"b` as "ab").
  Decoded d = DecodeLines(Format::kCsv,
                          {"1,a,inf,,", "2,a,-Infinity,,", "3,\xff\xfe,,,", "4,\"a\"b,,,",
                           "5,\"a\",,,", "6,\"h\xc3\xa9\",,,"},
                          "id,name,score,ok,ts");
  REQUIRE(d.batch->num_rows() == 2u);
  CHECK(d.batch->column(1).strings == std::vector<std::string>{"a", "h\xc3\xa9"});
  REQUIRE(d.rejected.size() == 4u);
  CHECK(d.rejected[0].reason == "field 'score': expected float64, found 'inf'");
  CHECK(d.rejected[1].reason == "field 'score': expected float64, found '-Infinity'");
  CHECK(d.rejected[2].reason == "field 'name': not valid UTF-8");
  CHECK(d.rejected[3].reason == "csv: 'b' after the closing quote of cell 2");
}

TEST_CASE("csv: epoch milliseconds out of the timestamp range are a bad row", "[formats][csv]") {
  Decoded d = DecodeLines(Format::kCsv, {"1,a,,,1767225600000", "2,b,,,-9223372036854775808"},
                          "id,name,score,ok,ts");
  REQUIRE(d.batch->num_rows() == 1u);
  CHECK(d.batch->column(4).ints[0] == 1767225600000000);
  REQUIRE(d.rejected.size() == 1u);
  CHECK(d.rejected[0].reason ==
        "field 'ts': -9223372036854775808 epoch milliseconds is out of the timestamp range");
}

TEST_CASE("csv: without a header, columns are in schema order", "[formats][csv]") {
  MemoryDeadLetter dl;
  NodeContext ctx("src", &dl);
  auto decoder = MakeFormatDecoder(Format::kCsv, TestSchema(), CsvOptions{';', false});
  auto r = decoder->Decode(Raw({"3;a,b;0.5;true;1767225600000", "4;c;x;false;"}), ctx);
  REQUIRE(r.ok());
  REQUIRE((*r)->num_rows() == 1u);
  CHECK((*r)->column(1).strings[0] == "a,b");
  CHECK((*r)->column(3).ints[0] == 1);
  CHECK((*r)->column(4).ints[0] == 1767225600000000);
  REQUIRE(dl.records().size() == 1u);
  CHECK(dl.records()[0].reason == "field 'score': expected float64, found 'x'");
  CHECK(dl.records()[0].position == 2);
}

TEST_CASE("csv: bad rows are rejected with the reason", "[formats][csv]") {
  const std::string header = "id,name,score";
  Decoded d =
      DecodeLines(Format::kCsv,
                  {"1,a", "2,b,3,4", R"(3,"open,1)", "x,c,1", ",d,1", "5,e,nan", "6,f,1"}, header);
  REQUIRE(d.batch->num_rows() == 1u);
  CHECK(d.batch->column(0).ints[0] == 6);
  REQUIRE(d.rejected.size() == 6u);
  CHECK(d.rejected[0].reason == "csv: expected 3 columns, found 2");
  CHECK(d.rejected[0].input == "1,a");
  CHECK(d.rejected[0].position == 1);
  CHECK(d.rejected[1].reason == "csv: expected 3 columns, found 4");
  CHECK(d.rejected[2].reason == "csv: unterminated quoted field");
  CHECK(d.rejected[3].reason == "field 'id': expected int64, found 'x'");
  CHECK(d.rejected[4].reason == "field 'id' is null but is not nullable");
  CHECK(d.rejected[5].reason == "field 'score': expected float64, found 'nan'");
}

TEST_CASE("csv: a header without a required column fails the batch", "[formats][csv]") {
  MemoryDeadLetter dl;
  NodeContext ctx("src", &dl);
  auto r = MakeFormatDecoder(Format::kCsv, TestSchema())->Decode(Raw({"a,1"}, "name,score"), ctx);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.status().message(), Catch::Contains("the header has no column 'id'"));
}

TEST_CASE("format names", "[formats]") {
  CHECK(ParseFormat("json") == Format::kJson);
  CHECK(ParseFormat("jsonl") == Format::kJson);
  CHECK(ParseFormat("connect-json") == Format::kConnectJson);
  CHECK(ParseFormat("csv") == Format::kCsv);
  CHECK_FALSE(ParseFormat("avro").has_value());
  CHECK(FormatNames() ==
        std::vector<std::string>{"json", "connect-json", "csv", "string", "dataframe-split"});
}

TEST_CASE("ParseJsonSchema maps JSON Schema to fields in declaration order", "[formats][schema]") {
  auto s = ParseJsonSchema(R"({
    "type": "object",
    "properties": {
      "z_last_alphabetically": {"type": "integer"},
      "a": {"type": ["number", "null"]},
      "when": {"type": "string", "format": "date-time"},
      "label": {"type": "string"},
      "flag": {"type": ["null", "boolean"]},
      "n": {"type": "number"}
    },
    "required": ["z_last_alphabetically", "a", "when", "n"]
  })",
                           "test.json");
  REQUIRE(s.ok());
  CHECK((*s)->ToString() ==
        "z_last_alphabetically: int64, a: float64?, when: timestamp, label: string?, "
        "flag: bool?, n: float64");
}

TEST_CASE("the shipped iris schema declares required, typed fields", "[formats][schema]") {
  auto s = LoadJsonSchemaFile(kIrisSchema);
  REQUIRE(s.ok());
  CHECK((*s)->ToString() ==
        "id: int64, timestamp: timestamp, sepal_length: float64, sepal_width: float64, "
        "petal_length: float64, petal_width: float64, target: int64");
}

TEST_CASE("ParseJsonSchema rejects what it cannot represent", "[formats][schema]") {
  auto nested = ParseJsonSchema(R"({"properties": {"x": {"type": "object"}}})", "s.json");
  REQUIRE_FALSE(nested.ok());
  CHECK(nested.status().code() == StatusCode::kInvalidConfig);
  CHECK_THAT(nested.status().message(),
             Catch::StartsWith("s.json: property 'x' is an object without 'properties'"));
  CHECK_THAT(ParseJsonSchema(R"({"properties": {"x": {"type": "array"}}})", "s.json")
                 .status()
                 .message(),
             Catch::StartsWith("s.json: property 'x' has type 'array'; supported:"));
  auto untyped = ParseJsonSchema(R"({"properties": {"x": {}}})", "s.json");
  REQUIRE_FALSE(untyped.ok());
  CHECK_THAT(untyped.status().message(), Catch::Contains("has type '(none)'"));
  CHECK_THAT(ParseJsonSchema("{not json", "s.json").status().message(),
             Catch::StartsWith("s.json: not valid JSON"));
  CHECK_THAT(ParseJsonSchema(R"({"type": "object"})", "s.json").status().message(),
             Catch::Contains("with 'properties'"));
  CHECK_THAT(ParseJsonSchema(R"({"properties": {}})", "s.json").status().message(),
             Catch::Contains("no properties"));
  auto missing = LoadJsonSchemaFile("/nonexistent/sluice.json");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == StatusCode::kNotFound);
}
