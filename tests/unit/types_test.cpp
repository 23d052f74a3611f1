#include <catch2/catch.hpp>

#include "engine/types.h"

using namespace sluice;

TEST_CASE("timestamps parse ISO 8601 and format back", "[types]") {
  auto t = ParseTimestamp("2026-01-01T00:00:01.5Z");
  REQUIRE(t.ok());
  CHECK(*t == 1767225601500000);
  CHECK(FormatTimestamp(*t) == "2026-01-01T00:00:01.500000Z");
  CHECK(*ParseTimestamp("2026-01-01 01:00:00+01:00") == 1767225600000000);
  CHECK(FormatTimestamp(0) == "1970-01-01T00:00:00Z");
  CHECK(FormatTimestamp(-1) == "1969-12-31T23:59:59.999999Z");
  CHECK_FALSE(ParseTimestamp("2026-13-01").ok());
  CHECK_FALSE(ParseTimestamp("yesterday").ok());
  CHECK_FALSE(ParseTimestamp("2026-01-01T00:00:00Zjunk").ok());
}

TEST_CASE("schema suggests close field names", "[types]") {
  Schema s({{"PULocationID", TypeId::kString, false}, {"trip_distance", TypeId::kFloat64, true}});
  CHECK(s.IndexOf("trip_distance") == 1);
  CHECK(s.IndexOf("nope") == -1);
  CHECK(s.Suggest("PULocationId") == std::optional<std::string>("PULocationID"));
  CHECK_FALSE(s.Suggest("completely_different").has_value());
  CHECK(s.ToString() == "PULocationID: string, trip_distance: float64?");
}
