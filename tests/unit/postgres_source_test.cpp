// The postgres source without a database: what plans (with a schema file nothing connects), the
// configuration errors at their line:col, and rows as PostgreSQL's to_json writes them decoding
// into the schema. Reading a live table is in tests/integration/postgres_source_test.cpp.
#include <catch2/catch.hpp>

#include "engine/testing.h"
#include "operator_helpers.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

// A postgres source (nothing listens on port 1) with `extra` keys, into stdout.
std::string PgSource(const std::string& extra) {
  return "sources:\n"
         "  rows: {type: postgres, url: \"postgresql://sluice@127.0.0.1:1/iris\", table: "
         "iris_data, column: id, schema: ../schemas/iris_data.json" +
         extra +
         "}\n"
         "sinks:\n"
         "  out: {type: stdout, inputs: [rows]}\n";
}

void ExpectError(const std::string& yaml, const std::string& message, const std::string& at) {
  Loaded l = Load(yaml);
  INFO(yaml);
  INFO(l.Text());
  auto errs = l.ErrorsWith(message);
  REQUIRE(errs.size() == 1u);
  CHECK(errs[0].mark.ToString() == At(yaml, at));
  CHECK_THAT(errs[0].message, Catch::StartsWith("postgres 'rows': "));
}

}  // namespace

TEST_CASE("postgres source: with a schema file it plans without a database",
          "[operators][postgres-source]") {
  Loaded l =
      Load(PgSource(", start: latest, follow: false, poll_interval_ms: 50, "
                    "positions_table: ops.positions, columns: [id, timestamp, "
                    "sepal_length, sepal_width, petal_length, petal_width, target, extra]"));
  INFO(l.Text());
  REQUIRE_FALSE(l.diags.HasErrors());
  const Schema& s = *l.Node("rows").output_schema;
  REQUIRE(s.size() == 7u);
  CHECK(s.field(0) == Field{"id", TypeId::kInt64, false});
  CHECK(s.field(1) == Field{"timestamp", TypeId::kTimestamp, false});
}

TEST_CASE("postgres source: configuration errors point at the key",
          "[operators][postgres-source]") {
  ExpectError(PgSource(", poll_interval_ms: 0"), "'poll_interval_ms' must be at least 1", "0}");
  ExpectError(PgSource(", connect_timeout_ms: -5"),
              "'connect_timeout_ms' must be 0 (wait forever) or more, found -5", "-5");
  ExpectError(PgSource(", positions_table: \"ops.\""), "'ops.' is not a table name", "\"ops.\"");
  ExpectError(PgSource(", columns: [id, id]"), "column 'id' is listed twice", "[id, id]");
  ExpectError(PgSource(", columns: []"), "lists no column", "[]");
  ExpectError(PgSource(", columns: [id, sepal_length]"),
              "field 'timestamp' of the schema is not among the columns read (id, "
              "sepal_length)",
              "[id, sepal_length]");
  ExpectError(PgSource(", start: newest"), "newest", "newest");

  const std::string bad_table =
      "sources:\n"
      "  rows: {type: postgres, url: \"postgresql://127.0.0.1:1/x\", table: \"iris.\", "
      "column: id, schema: ../schemas/iris_data.json}\n"
      "sinks:\n  out: {type: stdout, inputs: [rows]}\n";
  ExpectError(bad_table, "'iris.' is not a table name (table or schema.table)", "\"iris.\"");

  const std::string no_column =
      "sources:\n"
      "  rows: {type: postgres, url: \"postgresql://127.0.0.1:1/x\", table: iris_data, "
      "column: \"\", schema: ../schemas/iris_data.json}\n"
      "sinks:\n  out: {type: stdout, inputs: [rows]}\n";
  ExpectError(no_column, "'column' is empty", "\"\", schema");

  const std::string missing_schema =
      "sources:\n"
      "  rows: {type: postgres, url: \"postgresql://127.0.0.1:1/x\", table: iris_data, "
      "column: id, schema: no_such.json}\n"
      "sinks:\n  out: {type: stdout, inputs: [rows]}\n";
  ExpectError(missing_schema, "no_such.json", "no_such.json");
}

TEST_CASE("postgres source: without a schema file, planning needs the database and says so",
          "[operators][postgres-source]") {
  const std::string yaml =
      "sources:\n"
      "  rows: {type: postgres, url: \"postgresql://sluice@127.0.0.1:1/iris\", table: "
      "iris_data, column: id, connect_timeout_ms: 1}\n"
      "sinks:\n  out: {type: stdout, inputs: [rows]}\n";
  ExpectError(yaml,
              "the record schema comes from the table's columns, which needs the database: "
              "cannot connect to PostgreSQL",
              "iris_data");
}

TEST_CASE("postgres source: rows as to_json writes them decode into the schema",
          "[operators][postgres-source]") {
  // timestamp without time zone comes without a zone (UTC); timestamptz with the session's
  // offset, which the reader sets to UTC; a float8 NaN comes as a string and is dead-lettered.
  auto r = Start(PgSource(""));
  REQUIRE(r.run
              ->InjectLines(
                  "rows", {R"({"id":1,"timestamp":"2026-01-01T00:00:01.006","sepal_length":5.1,)"
                           R"("sepal_width":3.5,"petal_length":1.4,"petal_width":0.2,"target":0})",
                           R"({"id":2,"timestamp":"2026-01-01T00:00:02+00:00","sepal_length":4.9,)"
                           R"("sepal_width":3,"petal_length":1.4,"petal_width":0.2,"target":0})",
                           R"({"id":3,"timestamp":"2026-01-01T00:00:03","sepal_length":"NaN",)"
                           R"("sepal_width":3,"petal_length":1.4,"petal_width":0.2,"target":0})"})
              .ok());
  auto rows = r.Rows("out");
  REQUIRE(rows.size() == 2u);
  CHECK(Get(rows[0], "timestamp") == "\"2026-01-01T00:00:01.006000Z\"");
  CHECK(Get(rows[1], "timestamp") == "\"2026-01-01T00:00:02Z\"");
  CHECK(Get(rows[1], "sepal_width") == "3");
}
