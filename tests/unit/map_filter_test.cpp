// map and filter: output schemas, shared and replaced columns, keep_input, dead letters, rows
// dropped, and expression errors reported at their line:col inside the pipeline file.
#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "engine/testing.h"
#include "operator_helpers.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

const std::string kRidesDir = kSourceDir + "/tests/golden/pipelines/map_filter";

std::string Rides(const std::string& transforms, const std::string& sink_input) {
  return "name: t\n"
         "sources:\n"
         "  rides: {type: file, path: in.jsonl, schema: schema.json}\n"
         "transforms:\n" +
         transforms + "sinks:\n  out: {type: stdout, inputs: [" + sink_input + "]}\n";
}

std::string Ride(const std::string& id, int pu, int dob, const std::string& distance,
                 const std::string& fare, int passengers) {
  return fmt::format(R"({{"ride_id": "{}", "ride": {{"PULocationID": {}, "DOLocationID": {}, )"
                     R"("trip_distance": {}, "fare": {}, "passengers": {}}}}})",
                     id, pu, dob, distance, fare, passengers);
}

struct Processed {
  BatchPtr in;
  BatchPtr out;
  std::vector<std::string> dead;  // reasons
};

Processed Process(const Loaded& l, const std::string& node, const std::vector<std::string>& rows) {
  Processed p;
  auto in = InputBatch(l, node, rows);
  in->seq = 5;
  p.in = in;
  MemoryDeadLetter dl;
  NodeContext ctx(node, &dl);
  auto rt = l.Node(node).transform->Build();
  REQUIRE(rt.ok());
  auto out = (*rt)->Process(p.in, ctx);
  REQUIRE(out.ok());
  p.out = *out;
  CHECK(p.out->seq == 5u);
  CHECK(p.out->schema() == l.Node(node).output_schema);
  for (const auto& r : dl.records()) p.dead.push_back(r.reason + " <- " + r.input);
  return p;
}

}  // namespace

TEST_CASE("map appends and replaces fields, shares the others", "[operators][map]") {
  const std::string yaml = Rides(
      "  m:\n"
      "    type: map\n"
      "    inputs: [rides]\n"
      "    fields:\n"
      "      PU_DO: 'concat(to_string(ride.PULocationID), \"_\", to_string(ride.DOLocationID))'\n"
      "      ride.fare: coalesce(ride.fare, 0) * 2\n"
      "      fare_per_passenger: ride.fare / ride.passengers\n"
      "      ride_id: upper(ride_id)\n",
      "m");
  Loaded l = Load(yaml, kRidesDir);
  INFO(l.Text());
  REQUIRE_FALSE(l.diags.HasErrors());
  CHECK(l.Node("m").output_schema->ToString() ==
        "ride_id: string, ride.PULocationID: int64, ride.DOLocationID: int64, "
        "ride.trip_distance: float64?, ride.fare: int64, ride.passengers: int64, PU_DO: string, "
        "fare_per_passenger: float64");
  auto p =
      Process(l, "m", {Ride("a", 132, 48, "1.5", "10", 4), Ride("b", 7, 9, "null", "null", 1)});
  REQUIRE(p.out->num_rows() == 2u);
  CHECK(p.dead.empty());
  // Untouched columns are the input's own.
  for (size_t i : {1, 2, 3, 5}) CHECK(p.out->columns()[i] == p.in->columns()[i]);
  CHECK(p.out->columns()[0] != p.in->columns()[0]);
  CHECK(p.out->column(0).strings == std::vector<std::string>{"A", "B"});
  CHECK(p.out->column(4).ints == std::vector<int64_t>{20, 0});
  CHECK(p.out->column(6).strings == std::vector<std::string>{"132_48", "7_9"});
  // The later expression sees the replaced ride.fare.
  CHECK(p.out->column(7).doubles == std::vector<double>{5.0, 0.0});
  CHECK(p.out->RawBytes(1) == p.in->RawBytes(1));
}

TEST_CASE("map with keep_input false outputs the mapped fields in YAML order", "[operators][map]") {
  const std::string yaml = Rides(
      "  m:\n"
      "    type: map\n"
      "    inputs: [rides]\n"
      "    keep_input: false\n"
      "    fields: {z_id: ride_id, a_key: 'format(\"{}-{}\", ride.PULocationID, ride_id)', "
      "m_distance: ride.trip_distance}\n",
      "m");
  Running r = Start(yaml, kRidesDir);
  REQUIRE(r.run->InjectRecords("rides", {Ride("a", 1, 2, "2.5", "3", 1)}).ok());
  CHECK(r.Rows("m") == std::vector<std::string>{R"({"z_id":"a","a_key":"1-a","m_distance":2.5})"});
  CHECK(r.loaded.Node("m").output_schema->ToString() ==
        "z_id: string, a_key: string, m_distance: float64?");
}

TEST_CASE("map dead-letters rows it cannot evaluate; the rest flows", "[operators][map]") {
  const std::string yaml = Rides(
      "  m:\n"
      "    type: map\n"
      "    inputs: [rides]\n"
      "    fields:\n"
      "      per: ride.PULocationID / (ride.passengers - 1)\n"
      "      big: ride.fare * ride.fare\n"
      "      n: to_int(ride_id)\n",
      "m");
  Loaded l = Load(yaml, kRidesDir);
  REQUIRE_FALSE(l.diags.HasErrors());
  auto p = Process(l, "m",
                   {Ride("1", 10, 0, "1", "4000000000", 2), Ride("2", 10, 0, "1", "3", 1),
                    Ride("x", 10, 0, "1", "3", 2), Ride("4", 10, 0, "1", "3", 3)});
  CHECK(p.dead ==
        std::vector<std::string>{
            "field 'big': integer overflow in 'ride.fare * ride.fare' <- " +
                Ride("1", 10, 0, "1", "4000000000", 2),
            "field 'per': division by zero in 'ride.PULocationID / (ride.passengers - 1)' <- " +
                Ride("2", 10, 0, "1", "3", 1),
            "field 'n': 'x' is not an integer in 'to_int(ride_id)' <- " +
                Ride("x", 10, 0, "1", "3", 2)});
  REQUIRE(p.out->num_rows() == 1u);
  CHECK(p.out->RawBytes(0) == Ride("4", 10, 0, "1", "3", 3));
  CHECK(p.out->column(6).doubles == std::vector<double>{5.0});
  CHECK(p.out->column(8).ints == std::vector<int64_t>{4});

  // Every row failing leaves an empty batch that still carries the batch's place.
  auto all = Process(l, "m", {Ride("y", 10, 0, "1", "3", 1)});
  CHECK(all.out->num_rows() == 0u);
  CHECK(all.dead.size() == 1u);
}

TEST_CASE("filter keeps rows where the condition is true", "[operators][filter]") {
  const std::string yaml = Rides(
      "  f: {type: filter, inputs: [rides], condition: 'ride.trip_distance > 2 and "
      "ride.PULocationID / ride.passengers >= 1'}\n",
      "f");
  Loaded l = Load(yaml, kRidesDir);
  INFO(l.Text());
  REQUIRE_FALSE(l.diags.HasErrors());
  CHECK(l.Node("f").output_schema == l.Node("f").input_schema);
  auto p = Process(
      l, "f",
      {Ride("a", 5, 0, "3", "1", 1), Ride("b", 5, 0, "1", "1", 1), Ride("c", 5, 0, "null", "1", 1),
       Ride("d", 5, 0, "3", "1", 0), Ride("e", 5, 0, "1", "1", 0), Ride("f", 5, 0, "4", "1", 2)});
  // false and null drop the row; only an evaluation error is a dead letter.
  CHECK(p.dead ==
        std::vector<std::string>{"division by zero in 'ride.PULocationID / ride.passengers' <- " +
                                 Ride("d", 5, 0, "3", "1", 0)});
  REQUIRE(p.out->num_rows() == 2u);
  CHECK(p.out->column(0).strings == std::vector<std::string>{"a", "f"});
  CHECK(p.out->RawBytes(1) == Ride("f", 5, 0, "4", "1", 2));

  // Every row kept: the batch itself flows on.
  auto kept = Process(l, "f", {Ride("a", 5, 0, "3", "1", 1)});
  CHECK(kept.out == kept.in);
  // None kept: an empty batch, not a dead letter.
  auto none = Process(l, "f", {Ride("b", 5, 0, "1", "1", 1), Ride("c", 5, 0, "null", "1", 1)});
  CHECK(none.out->num_rows() == 0u);
  CHECK(none.out->columns().size() == 6u);
  CHECK(none.dead.empty());
}

TEST_CASE("expression errors point into the pipeline file", "[operators][map][filter]") {
  const std::string yaml = Rides(
      "  plain:\n"
      "    type: map\n"
      "    inputs: [rides]\n"
      "    fields:\n"
      "      a: to_string(ride.PULocationId) + ride_idd\n"
      "      b: 'concat(\"x\", ride.fare)'\n"
      "      c: \"ride.fare +\"\n"
      "      d: \"concat(\\\"x\\\", ride.fare)\"\n"
      "      e: |\n"
      "        ride.fare\n"
      "          + rid\n"
      "      f: a + 1\n"
      "  flt: {type: filter, inputs: [rides], condition: ride.fare}\n"
      "  flt2: {type: filter, inputs: [rides], condition: 'ride.far > 1'}\n",
      "plain");
  Loaded l = Load(yaml, kRidesDir);
  INFO(l.Text());
  auto one = [&](const std::string& part) {
    auto e = l.ErrorsWith(part);
    REQUIRE(e.size() == 1u);
    return e[0].mark.ToString();
  };
  CHECK(one("field 'a': unknown field 'ride.PULocationId'; did you mean 'ride.PULocationID'?") ==
        At(yaml, "ride.PULocationId"));
  CHECK(one("field 'a': unknown field 'ride_idd'; did you mean 'ride_id'?") ==
        At(yaml, "ride_idd"));
  CHECK(one("field 'b': 'concat' expects string arguments, got int64 for argument 2 "
            "(ride.fare); use to_string()") == At(yaml, "ride.fare)'"));
  CHECK(one("field 'c': expected a value") == At(yaml, "+\"", 0, 1));
  // Escapes or several lines: the scalar, and the place in the expression in words.
  CHECK(one("field 'd': at character 13 of the expression: 'concat' expects string arguments") ==
        At(yaml, "\"concat(\\\"x"));
  CHECK(one("field 'e': at character 15 of the expression: unknown field 'rid'") == At(yaml, "|"));
  // A field whose expression failed is not reported again where it is used.
  CHECK(l.ErrorsWith("field 'f'").empty());
  CHECK(one("filter 'flt': the condition must be bool, got int64") == At(yaml, "ride.fare}"));
  CHECK(one("filter 'flt2': unknown field 'ride.far'") == At(yaml, "ride.far >"));
  CHECK(l.diags.ErrorCount() == 8u);
}

TEST_CASE("map rejects a field defined twice and an empty map", "[operators][map]") {
  const std::string yaml = Rides(
      "  m: {type: map, inputs: [rides], fields: {x: '1', x: '2'}}\n"
      "  e: {type: map, inputs: [rides], fields: {}}\n"
      "  both: {type: map, inputs: [rides], fields: {y: 1}}\n",
      "both");
  Loaded l = Load(yaml, kRidesDir);
  INFO(l.Text());
  CHECK(l.ErrorsWith("map 'e': defines no field").size() == 1u);
  auto twice = l.ErrorsWith("map 'm': field 'x' is defined twice");
  // yaml-cpp may keep only one of two equal keys; either way nothing is silently redefined.
  if (!twice.empty()) CHECK(twice[0].mark.ToString() == At(yaml, "x: '2'"));
}
