// Nested records: a nested JSON object is one column per leaf, named by its dotted path. The
// schema reader flattens nested JSON Schema objects, the JSON decoder reads nested objects into
// those columns (dead-lettering missing and mistyped leaves), the JSON writer nests them again,
// and select, drop-fields and flatten address whole objects by name.
#include <catch2/catch.hpp>

#include "engine/dead_letter.h"
#include "engine/formats.h"
#include "engine/json.h"
#include "operator_helpers.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

const std::string kRideSchema = kSourceDir + "/schemas/ride_event.json";
const std::string kRide =
    R"({"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}, "ride_id": 123})";

SchemaPtr RideSchema() {
  auto s = LoadJsonSchemaFile(kRideSchema);
  REQUIRE(s.ok());
  return *s;
}

struct Decoded {
  std::shared_ptr<Batch> batch;
  std::vector<DeadLetterRecord> rejected;
};

Decoded Decode(const std::vector<std::string>& lines, SchemaPtr schema = RideSchema()) {
  MemoryDeadLetter dl;
  NodeContext ctx("rides", &dl);
  auto out = MakeFormatDecoder(Format::kJson, std::move(schema))->Decode(Raw(lines), ctx);
  REQUIRE(out.ok());
  return {*out, dl.records()};
}

}  // namespace

TEST_CASE("nested JSON Schema objects become one field per leaf, named by path",
          "[nested][schema]") {
  SchemaPtr s = RideSchema();
  CHECK(s->ToString() ==
        "ride.PULocationID: int64, ride.DOLocationID: int64, ride.trip_distance: float64, "
        "ride_id: int64");

  // An optional object makes every leaf under it nullable, even the required ones.
  auto opt = ParseJsonSchema(R"({"properties": {
      "a": {"type": "object", "properties": {"b": {"type": "integer"},
            "c": {"type": "object", "properties": {"d": {"type": "string"}}, "required": ["d"]}},
            "required": ["b", "c"]},
      "e": {"type": ["object", "null"], "properties": {"f": {"type": "number"}},
            "required": ["f"]}},
    "required": ["a", "e"]})",
                             "s.json");
  REQUIRE(opt.ok());
  CHECK((*opt)->ToString() == "a.b: int64, a.c.d: string, e.f: float64?");

  CHECK_THAT(ParseJsonSchema(R"({"properties": {"x": {"type": "object"}}})", "s.json")
                 .status()
                 .message(),
             Catch::Contains("property 'x' is an object without 'properties'"));
  CHECK_THAT(ParseJsonSchema(R"({"properties": {"a.b": {"type": "integer"}}})", "s.json")
                 .status()
                 .message(),
             Catch::Contains("contain no '.'"));
  std::string deep = R"({"type": "integer"})";
  for (int i = 0; i < 20; ++i) deep = R"({"type": "object", "properties": {"x": )" + deep + "}}";
  auto too_deep = ParseJsonSchema(R"({"properties": {"x": )" + deep + "}}", "s.json");
  REQUIRE_FALSE(too_deep.ok());
  CHECK_THAT(too_deep.status().message(), Catch::Contains("more than 16 levels deep"));
}

TEST_CASE("nested objects decode into their leaf columns in any key order", "[nested][json]") {
  Decoded d = Decode(
      {kRide,
       R"({"ride_id": 5, "ride": {"trip_distance": 1.5, "extra": {"x": [1, {"y": 2}]}, "DOLocationID": 2, "PULocationID": 7}})"});
  REQUIRE(d.rejected.empty());
  REQUIRE(d.batch->num_rows() == 2u);
  CHECK(d.batch->column(0).ints == std::vector<int64_t>{130, 7});
  CHECK(d.batch->column(1).ints == std::vector<int64_t>{205, 2});
  CHECK(d.batch->column(2).doubles == std::vector<double>{3.66, 1.5});
  CHECK(d.batch->column(3).ints == std::vector<int64_t>{123, 5});
}

TEST_CASE("missing, null and mistyped nested fields are dead-lettered with the path",
          "[nested][json]") {
  auto reason = [](const std::string& line) {
    Decoded d = Decode({line});
    CHECK(d.batch->num_rows() == 0u);
    REQUIRE(d.rejected.size() == 1u);
    CHECK(d.rejected[0].input == line);
    return d.rejected[0].reason;
  };
  CHECK(reason(R"({"ride": {"PULocationID": 1, "trip_distance": 2.0}, "ride_id": 1})") ==
        "missing field 'ride.DOLocationID'");
  CHECK(reason(R"({"ride_id": 1})") == "missing field 'ride.PULocationID'");
  CHECK(reason(R"({"ride": null, "ride_id": 1})") == "missing field 'ride.PULocationID'");
  CHECK(reason(R"({"ride": [1, 2], "ride_id": 1})") ==
        "field 'ride': expected an object, found an array [1,2]");
  CHECK(reason(R"({"ride": {"PULocationID": "130", "DOLocationID": 2, "trip_distance": 1},)"
               R"( "ride_id": 1})") ==
        "field 'ride.PULocationID': expected int64, found a string \"130\"");
  CHECK(reason(R"({"ride": {"PULocationID": 1, "PULocationID": 2, "DOLocationID": 2,)"
               R"( "trip_distance": 1}, "ride_id": 1})") ==
        "duplicate field 'ride.PULocationID'");
  CHECK_THAT(reason(R"({"ride": {"PULocationID": 1, "DOLocationID": 2, "trip_distance": NaN},)"
                    R"( "ride_id": 1})"),
             Catch::StartsWith("malformed JSON"));
  CHECK_THAT(reason(R"({"ride": {"PULocationID": 1, "DOLocationID": 2, "trip_distance": 1e999},)"
                    R"( "ride_id": 1})"),
             Catch::StartsWith("malformed JSON"));

  // A nullable object may be null or absent: its leaves are null.
  auto opt = ParseJsonSchema(R"({"properties": {"id": {"type": "integer"},
      "o": {"type": ["object", "null"], "properties": {"v": {"type": "number"}},
            "required": ["v"]}}, "required": ["id"]})",
                             "s.json");
  REQUIRE(opt.ok());
  Decoded d = Decode({R"({"id": 1, "o": null})", R"({"id": 2})", R"({"id": 3, "o": {"v": 4}})"},
                     *opt);
  REQUIRE(d.rejected.empty());
  CHECK(d.batch->column(1).IsNull(0));
  CHECK(d.batch->column(1).IsNull(1));
  CHECK(d.batch->column(1).doubles[2] == 4.0);
}

TEST_CASE("the JSON writer nests dotted fields as objects, in first-mention order",
          "[nested][json]") {
  auto schema = std::make_shared<const Schema>(std::vector<Field>{
      {"model", TypeId::kString, false},
      {"prediction.ride_duration", TypeId::kInt64, false},
      {"version", TypeId::kInt64, false},
      {"prediction.ride_id", TypeId::kInt64, false},
      {"a.b.c", TypeId::kBool, true},
  });
  std::vector<ColumnPtr> cols;
  auto model = std::make_shared<Column>(TypeId::kString);
  model->AppendString("m");
  auto dur = std::make_shared<Column>(TypeId::kInt64);
  dur->AppendInt(18);
  auto ver = std::make_shared<Column>(TypeId::kInt64);
  ver->AppendInt(1);
  auto id = std::make_shared<Column>(TypeId::kInt64);
  id->AppendInt(123);
  auto c = std::make_shared<Column>(TypeId::kBool);
  c->AppendNull();
  Batch batch(schema, {model, dur, ver, id, c}, 1);
  std::string row;
  AppendRowJson(row, batch, 0);
  CHECK(row ==
        R"({"model":"m","prediction":{"ride_duration":18,"ride_id":123},"version":1,"a":{"b":{"c":null}}})");

  // A name that is both a leaf and an object is written flat rather than twice.
  auto clash = std::make_shared<const Schema>(
      std::vector<Field>{{"a", TypeId::kInt64, false}, {"a.b", TypeId::kInt64, false}});
  auto x = std::make_shared<Column>(TypeId::kInt64);
  x->AppendInt(1);
  auto y = std::make_shared<Column>(TypeId::kInt64);
  y->AppendInt(2);
  Batch both(clash, {x, y}, 1);
  std::string flat;
  AppendRowJson(flat, both, 0);
  CHECK(flat == R"({"a":1,"a.b":2})");
}

TEST_CASE("select, drop-fields and flatten address nested objects",
          "[nested][select][drop-fields][flatten]") {
  const std::string yaml = "name: t\nsources:\n  rides: {type: file, path: x.jsonl, format: json, "
                           "schema: " + kRideSchema + R"(}
transforms:
  whole: {type: select, inputs: [rides], fields: [ride_id, ride]}
  leaf: {type: select, inputs: [rides], fields: [ride.trip_distance, ride_id]}
  dropped: {type: drop-fields, inputs: [rides], fields: [ride]}
  lifted: {type: flatten, inputs: [rides]}
  bare: {type: flatten, inputs: [rides], fields: [ride], prefix: false}
  dotted: {type: flatten, inputs: [rides], separator: "__"}
sinks:
  a: {type: stdout, inputs: [whole]}
  b: {type: stdout, inputs: [leaf]}
  c: {type: stdout, inputs: [dropped]}
  d: {type: stdout, inputs: [lifted]}
  e: {type: stdout, inputs: [bare]}
  f: {type: stdout, inputs: [dotted]}
)";
  Running r = Start(yaml);
  REQUIRE(r.run->InjectRecords("rides", {kRide}).ok());
  CHECK(r.Rows("whole") == std::vector<std::string>{
                               R"({"ride_id":123,"ride":{"PULocationID":130,"DOLocationID":205,"trip_distance":3.66}})"});
  CHECK(r.Rows("leaf") ==
        std::vector<std::string>{R"({"ride":{"trip_distance":3.66},"ride_id":123})"});
  CHECK(r.Rows("dropped") == std::vector<std::string>{R"({"ride_id":123})"});
  CHECK(r.Rows("lifted") ==
        std::vector<std::string>{
            R"({"ride_PULocationID":130,"ride_DOLocationID":205,"ride_trip_distance":3.66,"ride_id":123})"});
  CHECK(r.Rows("bare") ==
        std::vector<std::string>{
            R"({"PULocationID":130,"DOLocationID":205,"trip_distance":3.66,"ride_id":123})"});
  CHECK(r.Rows("dotted") ==
        std::vector<std::string>{
            R"({"ride__PULocationID":130,"ride__DOLocationID":205,"ride__trip_distance":3.66,"ride_id":123})"});
}

TEST_CASE("nested names are checked when planning, with hints", "[nested][flatten]") {
  const std::string head = "name: t\nsources:\n  rides: {type: file, path: x.jsonl, format: json, "
                           "schema: " + kRideSchema + "}\ntransforms:\n";
  const std::string tail = "sinks:\n  out: {type: stdout, inputs: [t1]}\n";
  auto error = [&](const std::string& node) {
    Loaded l = Load(head + node + tail);
    return l.Text();
  };
  CHECK_THAT(error("  t1: {type: select, inputs: [rides], fields: [ride.PULocationId]}\n"),
             Catch::Contains("'ride.PULocationId' is not a field of 'rides'; did you mean "
                             "'ride.PULocationID'?"));
  CHECK_THAT(error("  t1: {type: flatten, inputs: [rides], fields: [ride_id]}\n"),
             Catch::Contains("'ride_id' is not a nested object"));
  CHECK_THAT(error("  t1: {type: flatten, inputs: [rides], fields: [rides]}\n"),
             Catch::Contains("'rides' is not a field of 'rides'; did you mean 'ride'?"));
  // Lifting without the prefix must not make two fields of one name.
  const std::string clash =
      "name: t\nsources:\n  rides: {type: file, path: x.jsonl, format: json, schema: s.json}\n"
      "transforms:\n  t1: {type: flatten, inputs: [rides], prefix: false}\n" + tail;
  TempDir dir;
  dir.Write("s.json", R"({"properties": {"a": {"type": "object", "properties": {"id": {"type": "integer"}}},
            "b": {"type": "object", "properties": {"id": {"type": "integer"}}}}})");
  Loaded l = Load(clash, dir.path());
  CHECK_THAT(l.Text(), Catch::Contains("'a.id' and 'b.id' would both be named 'id'"));
}
