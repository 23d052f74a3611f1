// The postgres sink's `mode: upsert` fed by file sources against a throwaway PostgreSQL 15
// cluster: the last row of each key wins, duplicates within a batch included; batches of new
// keys, known keys and both; a two-column key with create: true. Every run of sluice is bounded.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>

#include "tests/integration/postgres_sink_support.h"

using namespace sluice::testing;

TEST_CASE(
    "postgres sink: upsert keeps the last row of each key, duplicates in one batch "
    "included, and running twice changes nothing",
    "[integration][postgres]") {
  ThrowawayPostgres pg;
  TempDir dir;
  // 10,000 rows over 700 keys in batches of 1,000: each batch repeats 300 keys of its own,
  // and every key comes back in later batches.
  constexpr int kRows = 10000, kKeys = 700;
  WriteFile(dir / "schema.json", R"({"type": "object", "properties": {
    "id": {"type": "integer"}, "v": {"type": "integer"}, "note": {"type": ["string", "null"]}},
    "required": ["id", "v"]})");
  std::string lines;
  for (int i = 0; i < kRows; ++i) {
    lines += "{\"id\": " + std::to_string(i % kKeys) + ", \"v\": " + std::to_string(i) +
             ", \"note\": \"row\\t" + std::to_string(i) + "\"}\n";
  }
  WriteFile(dir / "in.jsonl", lines);
  WriteFile(dir / "p.yaml", Pipeline("table: latest, mode: upsert, key: [id]", 1000));
  // A column the sink does not write keeps its default; a row the input does not touch stays.
  pg.Sql(
      "CREATE TABLE latest (id bigint PRIMARY KEY, v bigint NOT NULL, note text, "
      "source text NOT NULL DEFAULT 'sluice');"
      "INSERT INTO latest VALUES (0, -1, 'old', 'before'), (100000, -2, 'untouched', 'before')");
  // The last row of key k is the largest i < kRows with i % kKeys = k.
  const std::string wrong_rows =
      "SELECT count(*) FROM latest WHERE id < 100000 AND (v <> id + 700 * ((9999 - id) / 700) "
      "OR note <> E'row\\t' || v)";

  auto first = RunPipeline(pg, dir);
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  CHECK(Contains(first.err, "wrote 10,000 rows, 0 dead letters"));
  CHECK(pg.Value("SELECT count(*) FROM latest") == std::to_string(kKeys + 1));
  CHECK(pg.Value(wrong_rows) == "0");
  CHECK(pg.Value("SELECT v || ' ' || note || ' ' || source FROM latest WHERE id = 0") ==
        "9800 row\t9800 before");
  CHECK(pg.Value("SELECT v || ' ' || source FROM latest WHERE id = 699") == "9799 sluice");
  CHECK(pg.Value("SELECT v || ' ' || note FROM latest WHERE id = 100000") == "-2 untouched");

  // Spoil a row: the second run over the same input puts the last value back.
  pg.Sql("UPDATE latest SET v = -5, note = 'spoilt' WHERE id = 3");
  auto second = RunPipeline(pg, dir);
  INFO(second.err);
  REQUIRE(second.exit_code == 0);
  CHECK(pg.Value("SELECT count(*) FROM latest") == std::to_string(kKeys + 1));
  CHECK(pg.Value(wrong_rows) == "0");
  CHECK(pg.Value("SELECT v FROM latest WHERE id = 3") == "9803");
}

TEST_CASE(
    "postgres sink: upsert batches of new keys, of known keys and of both, in any order, "
    "leave each key's last row; another unique index's refusal is a dead letter",
    "[integration][postgres]") {
  // A batch of new keys only is COPYed straight into the table; one with a known key is
  // merged (and the next ones too, for a while). Whatever the order, the table must end as
  // one merge per batch would leave it.
  ThrowawayPostgres pg;
  TempDir dir;
  pg.Sql("CREATE TABLE t (id bigint PRIMARY KEY, v bigint NOT NULL, email text UNIQUE)");
  WriteFile(dir / "schema.json", R"({"type": "object", "properties": {
    "id": {"type": "integer"}, "v": {"type": "integer"}, "email": {"type": "string"}},
    "required": ["id", "v", "email"]})");
  constexpr int kBatch = 100, kBatches = 40;
  std::map<int, std::pair<int, std::string>> expected;  // id -> (v, email)
  std::set<std::string> emails;
  std::set<int> refused_lines;
  std::string lines;
  int line = 0, next_key = 0;
  for (int b = 0; b < kBatches; ++b) {
    // New keys, then updates of the batch before, then half and half, then new keys again
    // with one email already taken, in a pattern that also gives runs of each.
    const int kind = (b * 7 / 5) % 4;
    for (int i = 0; i < kBatch; ++i) {
      ++line;
      int id;
      if (kind == 0 || kind == 3 || (kind == 2 && i % 2 == 0) || next_key < kBatch) {
        id = next_key++;
      } else {
        id = next_key - kBatch + i;  // a key of the last hundred
      }
      std::string email = "e" + std::to_string(id);
      if (kind == 3 && i == 50) email = "e0";  // id 0's: refused by the other unique index
      const bool refused = expected.count(0) && email == "e0" && id != 0;
      if (refused) {
        refused_lines.insert(line);
      } else {
        expected[id] = {line, email};
      }
      lines += "{\"id\": " + std::to_string(id) + ", \"v\": " + std::to_string(line) +
               ", \"email\": \"" + email + "\"}\n";
    }
  }
  REQUIRE(refused_lines.size() >= 3u);
  WriteFile(dir / "in.jsonl", lines);
  WriteFile(dir / "p.yaml", Pipeline("table: t, mode: upsert, key: [id]", kBatch));
  auto r = RunPipeline(pg, dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Contains(r.err, "wrote " + Commas(kBatch * kBatches - refused_lines.size()) + " rows, " +
                            std::to_string(refused_lines.size()) + " dead letters"));
  CHECK(pg.Value("SELECT count(*) FROM t") == std::to_string(expected.size()));
  int64_t v_sum = 0;
  for (const auto& [id, row] : expected) v_sum += int64_t{id} * 100000 + row.first;
  CHECK(pg.Value("SELECT sum(id * 100000 + v) FROM t") == std::to_string(v_sum));
  CHECK(pg.Value("SELECT count(*) FROM t WHERE email <> 'e' || id") == "0");
  const auto dead = LinesOf(Slurp(dir / "dead.jsonl"));
  CHECK(dead.size() == refused_lines.size());
  for (const auto& d : dead) {
    INFO(d);
    CHECK(Contains(d, "duplicate key value violates unique constraint \\\"t_email_key\\\""));
    const size_t at = d.find("\"position\":");
    REQUIRE(at != std::string::npos);
    CHECK(refused_lines.count(std::stoi(d.substr(at + 11))) == 1);
  }
}

TEST_CASE(
    "postgres sink: upsert with create: true, a two-column key and columns mapped from "
    "fields",
    "[integration][postgres]") {
  ThrowawayPostgres pg;
  TempDir dir;
  WriteFile(dir / "schema.json", R"({"type": "object", "properties": {
    "zone": {"type": "string"}, "hour": {"type": "integer"}, "rides": {"type": "integer"}},
    "required": ["zone", "hour", "rides"]})");
  std::string lines;
  for (int i = 0; i < 3000; ++i) {
    lines += "{\"zone\": \"z" + std::to_string(i % 5) + "\", \"hour\": " + std::to_string(i % 24) +
             ", \"rides\": " + std::to_string(i) + "}\n";
  }
  WriteFile(dir / "in.jsonl", lines);
  WriteFile(dir / "p.yaml", Pipeline("table: per_hour, mode: upsert, key: [area, h], create: true, "
                                     "columns: {area: zone, h: hour, total: rides}",
                                     500));
  for (int run = 0; run < 2; ++run) {
    auto r = RunPipeline(pg, dir);
    INFO("run " << run << "\n" << r.err);
    REQUIRE(r.exit_code == 0);
  }
  CHECK(pg.Value("SELECT string_agg(a.attname, ',' ORDER BY a.attnum) FROM pg_index i "
                 "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                 "WHERE i.indrelid = 'per_hour'::regclass AND i.indisprimary") == "area,h");
  // 5 zones x 24 hours = 120 keys, each with the last of its rows (i from 2880 to 2999).
  CHECK(pg.Value("SELECT count(*) FROM per_hour") == "120");
  CHECK(pg.Value("SELECT count(*) FROM per_hour WHERE total < 2880 OR "
                 "area <> 'z' || (total % 5) OR h <> total % 24") == "0");
}
