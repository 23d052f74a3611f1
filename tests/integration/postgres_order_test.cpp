// The postgres sink writes each batch's rows in the order of the table's key (postgres_copy.h),
// against a throwaway PostgreSQL 15 cluster: the rows land in key order within each batch, a
// row the table refuses is still found and dead-lettered with its own input, and where the
// table could see the order the rows arrive in (a sequence the sink leaves to number them, a
// trigger) they keep the stream's order. Every run of sluice is bounded.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "tests/integration/postgres.h"

using namespace sluice::testing;

namespace {

constexpr int kRows = 2000;
constexpr int kBatch = 512;
constexpr int kBadId = 777;  // its v is 'bad', which the keyed table's CHECK refuses

// Row i of the input: ids 1..kRows, shuffled (7919 is prime to kRows).
int IdAt(int i) { return (i * 7919) % kRows + 1; }

std::string Input() {
  std::string out;
  for (int i = 0; i < kRows; ++i) {
    const int id = IdAt(i);
    out += "{\"id\": " + std::to_string(id) + ", \"v\": \"" +
           (id == kBadId ? std::string("bad") : "v" + std::to_string(id)) + "\"}\n";
  }
  return out;
}

std::string Pipeline(const std::string& table) {
  return "name: order\nsettings: {batch_size: " + std::to_string(kBatch) +
         "}\nsources:\n  in: {type: file, path: in.jsonl, schema: schema.json}\n"
         "sinks:\n  db: {type: postgres, inputs: [in], url: \"${DATABASE_URL}\", table: " +
         table + "}\ndead_letter: {path: dead.jsonl}\n";
}

CommandResult RunInto(const ThrowawayPostgres& pg, const TempDir& dir, const std::string& table) {
  std::ofstream(dir / "p.yaml") << Pipeline(table);
  return Run("DATABASE_URL='" + pg.url() + "' timeout -k 5 60 " + Sluice() + " run " +
             (dir / "p.yaml"));
}

std::vector<int> Ids(const ThrowawayPostgres& pg, const std::string& sql) {
  std::vector<int> ids;
  for (const auto& line : LinesOf(pg.Sql(sql))) ids.push_back(std::stoi(line));
  return ids;
}

// Places where an id is smaller than the one before it.
int Descents(const std::vector<int>& ids) {
  int n = 0;
  for (size_t i = 1; i < ids.size(); ++i) n += ids[i] < ids[i - 1];
  return n;
}

std::vector<int> InputOrder(bool with_bad) {
  std::vector<int> ids;
  for (int i = 0; i < kRows; ++i) {
    if (with_bad || IdAt(i) != kBadId) ids.push_back(IdAt(i));
  }
  return ids;
}

}  // namespace

TEST_CASE("postgres sink: a batch's rows go in the order of the table's key, unless the table "
          "could see the order",
          "[integration][postgres]") {
  ThrowawayPostgres pg;
  TempDir dir;
  std::ofstream(dir / "schema.json") << R"({"type": "object", "properties": {
    "id": {"type": "integer"}, "v": {"type": "string"}}, "required": ["id", "v"]})";
  std::ofstream(dir / "in.jsonl") << Input();
  const int input_descents = Descents(InputOrder(true));
  REQUIRE(input_descents > 500);  // the input is far from ordered

  SECTION("primary key written by the sink: key order within each batch") {
    pg.Sql("CREATE TABLE keyed (id integer PRIMARY KEY, v text NOT NULL CHECK (v <> 'bad'))");
    auto r = RunInto(pg, dir, "keyed");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(pg.Value("SELECT count(*) FROM keyed") == std::to_string(kRows - 1));
    CHECK(pg.Value("SELECT count(*) FROM keyed WHERE v <> 'v' || id") == "0");
    // Rows lie in the heap in the order they were inserted: ascending within each batch, so
    // the id goes down at most once per batch boundary.
    const auto by_ctid = Ids(pg, "SELECT id FROM keyed ORDER BY ctid");
    CHECK(Descents(by_ctid) <= (kRows + kBatch - 1) / kBatch - 1);
    // The refused row was found in the reordered batch: the dead letter is its own line.
    const auto dead = LinesOf(Slurp(dir / "dead.jsonl"));
    REQUIRE(dead.size() == 1u);
    CHECK_THAT(dead[0], Catch::Contains("postgres refused the row"));
    CHECK_THAT(dead[0], Catch::Contains(R"(\"id\": 777, \"v\": \"bad\")"));
    int line = 0;
    for (int i = 0; i < kRows; ++i) {
      if (IdAt(i) == kBadId) line = i + 1;
    }
    CHECK_THAT(dead[0], Catch::Contains("\"position\":" + std::to_string(line) + ","));
  }
  SECTION("a sequence numbers the rows: the stream's order") {
    pg.Sql("CREATE TABLE sequenced (seq bigserial, id integer PRIMARY KEY, v text)");
    auto r = RunInto(pg, dir, "sequenced");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(Ids(pg, "SELECT id FROM sequenced ORDER BY seq") == InputOrder(true));
  }
  SECTION("a trigger sees each row: the stream's order") {
    pg.Sql("CREATE TABLE triggered (id integer PRIMARY KEY, v text);\n"
           "CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS "
           "$$ BEGIN RETURN NEW; END $$;\n"
           "CREATE TRIGGER keep BEFORE INSERT ON triggered FOR EACH ROW EXECUTE FUNCTION keep()");
    auto r = RunInto(pg, dir, "triggered");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(Ids(pg, "SELECT id FROM triggered ORDER BY ctid") == InputOrder(true));
  }
  SECTION("no primary key: the stream's order") {
    pg.Sql("CREATE TABLE plain (id integer, v text)");
    auto r = RunInto(pg, dir, "plain");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(Ids(pg, "SELECT id FROM plain ORDER BY ctid") == InputOrder(true));
  }
}
