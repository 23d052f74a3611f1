// The dataframe-split format (pandas' DataFrame.to_json(orient="split")): columns matched to
// fields by name, one message into many rows, a bad row dead-lettered alone with the whole
// message while the message's good rows flow, and whole messages rejected when they are not in
// the format. Also the batches' row → record mapping that several rows per record rely on.
#include <catch2/catch.hpp>

#include "engine/dead_letter.h"
#include "engine/formats.h"
#include "operator_helpers.h"
#include "operators/http/push_server.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

// Seed 004's message, as its consumer printed it.
const std::string kSeedMessage =
    R"({"columns": ["trans_date_trans_time", "cc_num", "merchant", "category", "amt", "first", )"
    R"("last", "gender", "street", "city", "state", "zip", "lat", "long", "city_pop", "job", )"
    R"("dob", "trans_num", "unix_time", "merch_lat", "merch_long", "is_fraud"], "index": )"
    R"([144842], "data": [["2024-10-31 15:56:25", 377895991033232, "fraud_McDermott, Osinski )"
    R"(and Morar", "home", 16.18, "Kimberly", "Myers", "F", "6881 King Isle Suite 228", )"
    R"("Higganum", "CT", 6441, 41.4682, -72.5751, 5438, "Librarian, academic", "1964-11-17", )"
    R"("64b632ebfbc52a1075747f9301db22b8", 1730390185811, 41.581898, -73.130293, 0]]})";

SchemaPtr TestSchema() {
  return std::make_shared<const Schema>(std::vector<Field>{
      {"id", TypeId::kInt64, false},
      {"amt", TypeId::kFloat64, true},
      {"name", TypeId::kString, true},
      {"at", TypeId::kTimestamp, true},
  });
}

struct Decoded {
  std::shared_ptr<Batch> batch;
  std::vector<DeadLetterRecord> rejected;
};

Decoded Decode(const std::vector<std::string>& messages, SchemaPtr schema = TestSchema()) {
  MemoryDeadLetter dl;
  NodeContext ctx("src", &dl);
  auto result =
      MakeFormatDecoder(Format::kDataframeSplit, std::move(schema))->Decode(Raw(messages), ctx);
  REQUIRE(result.ok());
  CHECK(ctx.rejected() == dl.records().size());
  return {*result, dl.records()};
}

// The one reason a message was rejected for, as a whole: no row of it passed.
std::string MessageReason(const std::string& message) {
  Decoded d = Decode({message});
  CHECK(d.batch->num_rows() == 0u);
  REQUIRE(d.rejected.size() == 1u);
  CHECK(d.rejected[0].input == message);
  return d.rejected[0].reason;
}

const Column& Col(const Batch& b, const std::string& name) {
  const int i = b.schema()->IndexOf(name);
  REQUIRE(i >= 0);
  return b.column(static_cast<size_t>(i));
}

}  // namespace

TEST_CASE("dataframe-split: seed 004's message decodes into the fraud_transaction schema",
          "[formats][dataframe-split]") {
  auto schema = LoadJsonSchemaFile(kSourceDir + "/schemas/fraud_transaction.json");
  INFO(schema.status().message());
  REQUIRE(schema.ok());
  REQUIRE((*schema)->size() == 22u);
  Decoded d = Decode({kSeedMessage}, *schema);
  REQUIRE(d.rejected.empty());
  REQUIRE(d.batch->num_rows() == 1u);
  const Batch& b = *d.batch;
  CHECK(Col(b, "trans_date_trans_time").type == TypeId::kTimestamp);
  CHECK(Col(b, "trans_date_trans_time").ints[0] == 1730390185000000);  // 2024-10-31T15:56:25Z
  CHECK(Col(b, "cc_num").ints[0] == 377895991033232);
  CHECK(Col(b, "merchant").strings[0] == "fraud_McDermott, Osinski and Morar");
  CHECK(Col(b, "amt").doubles[0] == 16.18);
  CHECK(Col(b, "zip").ints[0] == 6441);
  CHECK(Col(b, "long").doubles[0] == -72.5751);
  CHECK(Col(b, "city_pop").ints[0] == 5438);
  CHECK(Col(b, "dob").type == TypeId::kString);
  CHECK(Col(b, "dob").strings[0] == "1964-11-17");
  CHECK(Col(b, "unix_time").ints[0] == 1730390185811);
  CHECK(Col(b, "merch_long").doubles[0] == -73.130293);
  CHECK(Col(b, "is_fraud").ints[0] == 0);
  CHECK(b.RawBytes(0) == kSeedMessage);
  CHECK(b.Position(0) == 1);
}

TEST_CASE("dataframe-split: one message is many rows, each pointing at its message",
          "[formats][dataframe-split]") {
  const std::string first =
      R"({"columns": ["id", "amt", "name", "at"], "index": [0, 1, 2], "data": )"
      R"([[1, 1.5, "a", 1767225600000], [2, 2.5, "b", "2026-01-01 00:00:01"], [3, 3, "c", null]]})";
  const std::string second = R"({"columns": ["id", "amt", "name", "at"], "index": [3, 4], )"
                             R"("data": [[4, 4.5, "d", null], [5, 5.5, "e", null]]})";
  Decoded d = Decode({first, second});
  REQUIRE(d.rejected.empty());
  const Batch& b = *d.batch;
  REQUIRE(b.num_rows() == 5u);
  CHECK(Col(b, "id").ints == std::vector<int64_t>{1, 2, 3, 4, 5});
  CHECK(Col(b, "amt").doubles == std::vector<double>{1.5, 2.5, 3, 4.5, 5.5});
  CHECK(Col(b, "at").ints[0] == 1767225600000000);  // integers are epoch milliseconds
  CHECK(Col(b, "at").ints[1] == 1767225601000000);
  CHECK(Col(b, "at").IsNull(2));
  for (size_t r = 0; r < 5; ++r) {
    const uint32_t record = r < 3 ? 0 : 1;
    CHECK(b.RawIndex(r) == record);
    CHECK(b.Position(r) == record + 1);
    CHECK(b.RawBytes(r) == (record == 0 ? first : second));
  }
  // A row taken downstream still points at its message.
  auto taken = b.Take({1, 4});
  CHECK(taken->RawIndex(0) == 0u);
  CHECK(taken->RawIndex(1) == 1u);
}

TEST_CASE(
    "dataframe-split: columns in another order than the schema, and changing between "
    "messages",
    "[formats][dataframe-split]") {
  Decoded d = Decode({
      R"({"columns": ["name", "id", "amt"], "data": [["a", 1, 0.5]]})",
      R"({"columns": ["name", "id", "amt"], "data": [["b", 2, 1.5]]})",
      R"({"columns": ["amt", "name", "id"], "data": [[2.5, "c", 3]]})",
      // `columns` after `data`: read the same way.
      R"({"data": [[4, "d", 3.5]], "columns": ["id", "name", "amt"]})",
  });
  REQUIRE(d.rejected.empty());
  const Batch& b = *d.batch;
  REQUIRE(b.num_rows() == 4u);
  CHECK(Col(b, "id").ints == std::vector<int64_t>{1, 2, 3, 4});
  CHECK(Col(b, "name").strings == std::vector<std::string>{"a", "b", "c", "d"});
  CHECK(Col(b, "amt").doubles == std::vector<double>{0.5, 1.5, 2.5, 3.5});
}

TEST_CASE(
    "dataframe-split: extra columns are ignored; a missing column is null or rejects the "
    "message",
    "[formats][dataframe-split]") {
  Decoded d = Decode({R"({"columns": ["extra", "id", "more"], "data": [[[1, 2], 7, {"x": 1}]]})"});
  REQUIRE(d.rejected.empty());
  REQUIRE(d.batch->num_rows() == 1u);
  CHECK(Col(*d.batch, "id").ints[0] == 7);
  CHECK(Col(*d.batch, "amt").IsNull(0));
  CHECK(Col(*d.batch, "name").IsNull(0));

  CHECK(MessageReason(R"({"columns": ["amt", "name"], "data": [[1.5, "a"]]})") ==
        "missing column 'id'");
  CHECK(MessageReason(R"({"columns": ["id", "amt", "id"], "data": [[1, 1.5, 1]]})") ==
        "dataframe-split: duplicate column 'id'");
}

TEST_CASE("dataframe-split: a row with the wrong number of values is rejected alone",
          "[formats][dataframe-split]") {
  const std::string message = R"({"columns": ["id", "amt"], "index": [10, 11, 12, 13], )"
                              R"("data": [[1, 1.5], [2], [3, 3.5], [4, 4.5, "extra"]]})";
  Decoded d = Decode({message});
  REQUIRE(d.batch->num_rows() == 2u);
  CHECK(Col(*d.batch, "id").ints == std::vector<int64_t>{1, 3});
  REQUIRE(d.rejected.size() == 2u);
  CHECK(d.rejected[0].reason == "row 2 (index 11): expected 2 values (one per column), found 1");
  CHECK(d.rejected[1].reason == "row 4 (index 13): expected 2 values (one per column), found 3");
  CHECK(d.rejected[0].input == message);
  CHECK(d.rejected[0].position == 1);
}

TEST_CASE("dataframe-split: a mistyped value rejects its row; the message's other rows flow",
          "[formats][dataframe-split]") {
  const std::string bad = R"({"columns": ["id", "amt"], "index": [144841, 144842, 144843], )"
                          R"("data": [[1, 1.5], [2, "x"], [3, 3.5]]})";
  const std::string good = R"({"columns": ["id", "amt"], "index": [9], "data": [[4, 4.5]]})";
  Decoded d = Decode({good, bad, good});
  const Batch& b = *d.batch;
  REQUIRE(b.num_rows() == 4u);
  CHECK(Col(b, "id").ints == std::vector<int64_t>{4, 1, 3, 4});
  CHECK(b.RawIndex(0) == 0u);
  CHECK(b.RawIndex(1) == 1u);
  CHECK(b.RawIndex(2) == 1u);
  CHECK(b.RawIndex(3) == 2u);
  REQUIRE(d.rejected.size() == 1u);
  CHECK(d.rejected[0].reason ==
        R"(row 2 (index 144842): field 'amt': expected float64, found a string "x")");
  CHECK(d.rejected[0].node == "src");
  CHECK(d.rejected[0].input == bad);  // the whole message, as read
  CHECK(d.rejected[0].position == 2);
  CHECK(d.rejected[0].origin == "test");
}

TEST_CASE("dataframe-split: rows of one message may stand in for a rejected message",
          "[formats][dataframe-split]") {
  // Two rows from two records: as many rows as records, yet not one row per record.
  const std::string two = R"({"columns": ["id"], "data": [[1], [2]]})";
  Decoded d = Decode({two, "not json"});
  REQUIRE(d.batch->num_rows() == 2u);
  CHECK(d.batch->RawIndex(1) == 0u);
  CHECK(d.batch->Position(1) == 1);
  CHECK(d.batch->RawBytes(1) == two);
}

TEST_CASE("dataframe-split: rows are named by position, and by index label when there is one",
          "[formats][dataframe-split]") {
  Decoded d = Decode({
      R"({"columns": ["id"], "data": [[1], ["a"]]})",
      R"({"columns": ["id"], "index": ["r1", "r2"], "data": [[1], [null]]})",
      R"({"columns": ["id"], "index": [5], "data": [[1], [2.5]]})",
  });
  REQUIRE(d.rejected.size() == 3u);
  CHECK(d.rejected[0].reason == R"(row 2: field 'id': expected int64, found a string "a")");
  CHECK(d.rejected[1].reason == R"(row 2 (index "r2"): field 'id' is null but is not nullable)");
  // An index shorter than the data names the rows it has.
  CHECK(d.rejected[2].reason == "row 2: field 'id': expected int64, found a number 2.5");
}

TEST_CASE("dataframe-split: NaN is written as null by pandas and read as null",
          "[formats][dataframe-split]") {
  Decoded d =
      Decode({R"({"columns": ["id", "amt", "at"], "data": [[1, null, null], [2, 2.0, 0]]})"});
  REQUIRE(d.rejected.empty());
  REQUIRE(d.batch->num_rows() == 2u);
  CHECK(Col(*d.batch, "amt").IsNull(0));
  CHECK(Col(*d.batch, "at").IsNull(0));
  CHECK_FALSE(Col(*d.batch, "amt").IsNull(1));
  // A bare NaN (json.dumps writes it, pandas does not) is not JSON: the message is rejected.
  CHECK_THAT(MessageReason(R"({"columns": ["id", "amt"], "data": [[1, NaN]]})"),
             Catch::StartsWith("malformed JSON: ") &&
                 Catch::EndsWith("(NaN and Infinity are not JSON numbers; send null)"));
}

TEST_CASE("dataframe-split: a message not in the format is rejected whole, with the reason",
          "[formats][dataframe-split]") {
  CHECK_THAT(MessageReason("not json"), Catch::StartsWith("malformed JSON: "));
  CHECK(MessageReason("[[1]]") ==
        "dataframe-split: expected an object with 'columns' and 'data', found an array [[1]]");
  CHECK(MessageReason(R"({"data": [[1]]})") == "dataframe-split: no 'columns'");
  CHECK(MessageReason(R"({"columns": ["id"]})") == "dataframe-split: no 'data'");
  CHECK(MessageReason(R"({"columns": "id", "data": [[1]]})") ==
        "dataframe-split: 'columns' is a string, not an array of names");
  CHECK(MessageReason(R"({"columns": ["id", 2], "data": [[1, 2]]})") ==
        "dataframe-split: 'columns' holds a number 2, not a column name");
  CHECK(MessageReason(R"({"columns": ["id"], "data": {"id": 1}})") ==
        "dataframe-split: 'data' is an object, not an array of rows");
  // One row that is not an array: nothing of the message passes, not even its good rows.
  CHECK(MessageReason(R"({"columns": ["id"], "data": [[1], 2, [3]]})") ==
        "dataframe-split: 'data' is not an array of rows (row 2 is a number 2)");
  // No rows is no error.
  Decoded d = Decode({R"({"columns": ["id"], "index": [], "data": []})"});
  CHECK(d.rejected.empty());
  CHECK(d.batch->num_rows() == 0u);
}

TEST_CASE("dataframe-split: the format is known to every source that takes a format",
          "[formats][dataframe-split]") {
  CHECK(ParseFormat("dataframe-split") == Format::kDataframeSplit);
  const std::string schema = kSourceDir + "/schemas/fraud_transaction.json";
  for (const std::string& source :
       {"{type: file, path: in.jsonl, format: dataframe-split, schema: " + schema + "}",
        "{type: kafka, brokers: 127.0.0.1:1, topic: t, group: g, format: dataframe-split, "
        "schema: " +
            schema + "}",
        "{type: http, format: dataframe-split, schema: " + schema + "}"}) {
    Loaded l =
        Load("sources:\n  in: " + source + "\nsinks:\n  out: {type: stdout, inputs: [in]}\n");
    INFO(source << "\n" << l.Text());
    CHECK_FALSE(l.diags.HasErrors());
  }
  // The format needs a schema, like every format but string.
  Loaded l = Load(
      "sources:\n  in: {type: file, path: in.jsonl, format: dataframe-split}\n"
      "sinks:\n  out: {type: stdout, inputs: [in]}\n");
  CHECK_FALSE(l.ErrorsWith("'schema' is required").empty());
}

TEST_CASE("dataframe-split from kafka: every row of a message carries the message's metadata",
          "[formats][dataframe-split][operators][kafka]") {
  auto r = Start(
      "sources:\n"
      "  in: {type: kafka, brokers: 127.0.0.1:1, topic: t, group: g, format: "
      "dataframe-split,\n"
      "       schema: " +
      kSourceDir +
      "/schemas/fraud_transaction.json, metadata: {offset: o}}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [in]}\n");
  // The seed's message with a second row (another amount).
  std::string two_rows = kSeedMessage;
  const std::string row = two_rows.substr(two_rows.find("[\"2024"));
  two_rows.replace(two_rows.rfind("]}"), 2, ", " + row.substr(0, row.size() - 2) + "]}");
  two_rows.replace(two_rows.rfind("16.18"), 5, "99.5");
  REQUIRE(r.run->InjectLines("in", {two_rows, kSeedMessage}).ok());
  auto rows = r.Rows("out");
  REQUIRE(rows.size() == 3u);
  CHECK(Get(rows[0], "amt") == "16.18");
  CHECK(Get(rows[1], "amt") == "99.5");
  CHECK(Get(rows[0], "o") == "1");
  CHECK(Get(rows[1], "o") == "1");
  CHECK(Get(rows[2], "o") == "2");
}

TEST_CASE("http source: a body with several bad rows keeps every reason for its answer",
          "[operators][http-source][dataframe-split]") {
  RejectionLog log;
  log.Add(3, "row 1: a");
  log.Add(3, "row 4: b");
  CHECK(log.Take(3) == std::optional<std::string>("row 1: a; row 4: b"));
  CHECK_FALSE(log.Take(3).has_value());
}

TEST_CASE("http source: a dataframe-split body's good rows pass, its bad row is dead-lettered",
          "[operators][http-source][dataframe-split]") {
  Loaded l =
      Load("sources:\n  in: {type: http, format: dataframe-split, schema: " + kSourceDir +
           "/schemas/fraud_transaction.json}\nsinks:\n  out: {type: stdout, inputs: [in]}\n");
  INFO(l.Text());
  REQUIRE_FALSE(l.diags.HasErrors());
  auto decoder = l.Node("in").source->MakeDecoder();
  REQUIRE(decoder.ok());
  std::string body = kSeedMessage;
  const std::string row = body.substr(body.find("[\"2024"));
  body.replace(body.rfind("]}"), 2, ", " + row.substr(0, row.size() - 2) + "]}");
  body.replace(body.rfind("16.18"), 5, "\"x\"");
  auto raw = std::make_shared<RawRecords>();
  raw->origin = "http://127.0.0.1:8080/";
  raw->Add(body, 7);
  raw->data.reserve(raw->data.size() + 64);
  MemoryDeadLetter dl;
  NodeContext ctx("in", &dl);
  auto batch = (*decoder)->Decode(raw, ctx);
  REQUIRE(batch.ok());
  REQUIRE((*batch)->num_rows() == 1u);
  CHECK((*batch)->Position(0) == 7);
  auto dead = dl.records();
  REQUIRE(dead.size() == 1u);
  CHECK(dead[0].reason == R"(row 2: field 'amt': expected float64, found a string "x")");
  CHECK(dead[0].input == body);
  CHECK(dead[0].position == 7);
}
