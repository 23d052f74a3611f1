// The postgres sink fed by file sources (no broker) against a throwaway PostgreSQL 15 cluster
// each test starts (tests/integration/postgres.h): values through COPY's binary and text formats,
// column types narrower than the values' (integer, smallint, varchar(n), ...), tables made by
// `create: true`, and a database in another encoding. Upserts are in postgres_upsert_test.cpp,
// refusals and failures in postgres_sink_failure_test.cpp. Every run of sluice is bounded.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tests/integration/postgres_sink_support.h"

using namespace sluice::testing;

namespace {

std::string Hex(const std::string& bytes) {
  std::string out;
  char buf[3];
  for (unsigned char c : bytes) {
    std::snprintf(buf, sizeof buf, "%02x", c);
    out += buf;
  }
  return out;
}

// Every value of the input rows as the database parsed them from the input file itself
// (PostgreSQL's own JSON parser), joined on id with the table: the rows that differ or are
// missing on either side. Timestamps without a zone are UTC, as Sluice reads them.
std::string MismatchSql(const std::string& table, const std::string& input) {
  return "SET TimeZone = 'UTC';\n"
         "WITH src AS (SELECT line::jsonb AS j FROM regexp_split_to_table(pg_read_file('" +
         input +
         "'), E'\\n') AS line WHERE line <> '')\n"
         "SELECT count(*) FROM src FULL JOIN " +
         table +
         " t ON t.id = (j->>'id')::bigint\n"
         "WHERE t.id IS NULL OR j IS NULL\n"
         "   OR t.f IS DISTINCT FROM (j->>'f')::float8\n"
         "   OR t.s IS DISTINCT FROM j->>'s'\n"
         "   OR t.n IS DISTINCT FROM (j->>'n')::bigint\n"
         "   OR t.b IS DISTINCT FROM (j->>'b')::boolean\n"
         "   OR t.ts IS DISTINCT FROM (CASE jsonb_typeof(j->'ts') WHEN 'number' THEN\n"
         "        'epoch'::timestamptz + (j->>'ts')::bigint * interval '1 millisecond'\n"
         "        ELSE (j->>'ts')::timestamptz END)";
}

const char* kValuesSchema = R"({"type": "object", "properties": {
  "id": {"type": "integer"},
  "f":  {"type": ["number", "null"]},
  "s":  {"type": ["string", "null"]},
  "n":  {"type": ["integer", "null"]},
  "ts": {"type": ["string", "null"], "format": "date-time"},
  "b":  {"type": ["boolean", "null"]}
}, "required": ["id"]})";

// JSON tokens cycled through by row: what COPY's text format must escape (tab, newline, CR,
// backslash, `\N`, `\.`), empty versus null, non-ASCII text, extreme numbers, every accepted
// timestamp spelling.
const std::vector<std::string> kStrings = {
    R"("")",
    R"("plain")",
    R"("tab\there")",
    R"("new\nline")",
    R"("cr\r\nlf")",
    R"("back\\slash")",
    R"("\\N")",
    R"("\\.")",
    R"("trailing backslash\\")",
    R"("quote \" and 'single'")",
    "\"unicode \xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\"",
    R"("escaped \u00e9\ud83d\ude00 \u0001")",
    R"("\\t not a tab")",
    "null",
    R"("  spaces  ")",
    R"("comma, semi; pipe|")"};
const std::vector<std::string> kFloats = {
    "0.1",    "-0.0", "1e-300", "-1.5e300", "0.30000000000000004",   "123456789.123456789",
    "5e-324", "null", "3",      "-2.5E-3",  "1.7976931348623157e308"};
const std::vector<std::string> kInts = {
    "", "null", "9223372036854775807", "-9223372036854775808", "0", "-42", "1000003"};
const std::vector<std::string> kTimestamps = {R"("2026-01-01T12:00:00Z")",
                                              R"("2026-03-04 05:06:07.123456+01:00")",
                                              R"("2025-12-31T23:59:59.5-0230")",
                                              R"("2026-01-01")",
                                              R"("2026-06-01T00:00:00")",
                                              "1767225600123",
                                              "null",
                                              R"("1969-12-31T23:59:59.999999Z")",
                                              R"("1900-01-01T00:00:00Z")",
                                              R"("2026-02-03T04:05+05")"};
const std::vector<std::string> kBools = {"true", "false", "null"};

// `rows` JSON lines with ids first_id.. (every value kind above in turn).
std::string ValueLines(int rows, int first_id = 0) {
  std::string out;
  for (int r = 0; r < rows; ++r) {
    const int i = first_id + r;
    std::string s = kStrings[i % kStrings.size()];
    // Every other round the strings carry the id, so that rows differ.
    if (s != "null" && (i / kStrings.size()) % 2 == 1)
      s.insert(s.size() - 1, " #" + std::to_string(i));
    out += "{\"id\": " + std::to_string(i) + ", \"f\": " + kFloats[i % kFloats.size()] +
           ", \"s\": " + s;
    const std::string& n = kInts[i % kInts.size()];
    if (!n.empty()) out += ", \"n\": " + n;  // an absent key is null too
    out += ", \"ts\": " + kTimestamps[i % kTimestamps.size()] +
           ", \"b\": " + kBools[i % kBools.size()] + "}\n";
  }
  return out;
}

const char* kValuesTable =
    "CREATE TABLE vals (id bigint, f double precision, s text, n bigint, "
    "ts timestamptz, b boolean)";

}  // namespace

TEST_CASE("postgres sink: 20,000 rows arrive once each with every value as it was read",
          "[integration][postgres]") {
  ThrowawayPostgres pg;
  TempDir dir;
  constexpr int kRows = 20000;
  WriteFile(dir / "schema.json", kValuesSchema);
  WriteFile(dir / "in.jsonl", ValueLines(kRows));
  WriteFile(dir / "p.yaml", Pipeline("table: vals"));
  pg.Sql(kValuesTable);

  auto r = RunPipeline(pg, dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Contains(r.err, "wrote 20,000 rows, 0 dead letters"));
  CHECK_FALSE(std::filesystem::exists(dir / "dead.jsonl"));
  CHECK(pg.Value("SELECT count(*) FROM vals") == std::to_string(kRows));
  CHECK(pg.Value("SELECT count(DISTINCT id) FROM vals") == std::to_string(kRows));
  // Every value of every row, compared with the database's own reading of the input.
  CHECK(pg.Value(MismatchSql("vals", dir / "in.jsonl")) == "0");

  // A few values spelled out, independently of any JSON parser: the exact bytes of strings.
  const std::map<int, std::string> strings = {
      {0, ""},
      {2, "tab\there"},
      {3, "new\nline"},
      {4, "cr\r\nlf"},
      {5, "back\\slash"},
      {6, "\\N"},
      {7, "\\."},
      {8, "trailing backslash\\"},
      {9, "quote \" and 'single'"},
      {10, "unicode \xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"},
      {11, "escaped \xc3\xa9\xf0\x9f\x98\x80 \x01"},
      {12, "\\t not a tab"},
      {18, "tab\there #18"}};
  for (const auto& [id, bytes] : strings) {
    INFO("id " << id);
    CHECK(pg.Value("SELECT 'hex:' || encode(convert_to(s, 'UTF8'), 'hex') FROM vals WHERE id = " +
                   std::to_string(id)) == "hex:" + Hex(bytes));
  }
  CHECK(pg.Value("SELECT s IS NULL FROM vals WHERE id = 13") == "t");
  CHECK(pg.Value("SELECT f::text FROM vals WHERE id = 4") == "0.30000000000000004");
  CHECK(pg.Value("SELECT f::text FROM vals WHERE id = 6") == "5e-324");
  CHECK(pg.Value("SELECT f::text FROM vals WHERE id = 10") == "1.7976931348623157e+308");
  CHECK(pg.Value("SELECT f IS NULL FROM vals WHERE id = 7") == "t");
  CHECK(pg.Value("SELECT n FROM vals WHERE id = 3") == "-9223372036854775808");
  CHECK(pg.Value("SELECT n FROM vals WHERE id = 2") == "9223372036854775807");
  int nulls = 0;  // ids 7k (key absent) and 7k + 1 (null)
  for (int i = 0; i < kRows; ++i) nulls += i % 7 <= 1;
  CHECK(pg.Value("SELECT count(*) FROM vals WHERE n IS NULL") == std::to_string(nulls));
  CHECK(pg.Value("SET TimeZone = 'UTC'; SELECT ts::text FROM vals WHERE id = 1") ==
        "2026-03-04 04:06:07.123456+00");
  CHECK(pg.Value("SET TimeZone = 'UTC'; SELECT ts::text FROM vals WHERE id = 2") ==
        "2026-01-01 02:29:59.5+00");
  CHECK(pg.Value("SET TimeZone = 'UTC'; SELECT ts::text FROM vals WHERE id = 4") ==
        "2026-06-01 00:00:00+00");
  CHECK(pg.Value("SET TimeZone = 'UTC'; SELECT ts::text FROM vals WHERE id = 5") ==
        "2026-01-01 00:00:00.123+00");
  CHECK(pg.Value("SET TimeZone = 'UTC'; SELECT ts::text FROM vals WHERE id = 8") ==
        "1900-01-01 00:00:00+00");
  CHECK(pg.Value("SELECT string_agg(coalesce(b::text, 'null'), ',' ORDER BY id) FROM vals "
                 "WHERE id < 3") == "true,false,null");
}

TEST_CASE(
    "postgres sink: narrower and other column types take each value as written; what a "
    "column cannot hold is a dead letter with the database's reason",
    "[integration][postgres]") {
  // Most of these columns take COPY's binary format (integer, smallint, double precision from
  // an integer, both timestamps, varchar(n), char(n), json, jsonb); numeric, real and uuid take
  // its text format. The values and refusals must be the same either way.
  ThrowawayPostgres pg;
  TempDir dir;
  pg.Sql(
      "CREATE TABLE narrow (id bigint, i integer, sm smallint, d double precision, "
      "ts timestamp, tz timestamptz, v varchar(8), c char(4), j json, jb jsonb);"
      "CREATE TABLE textual (id bigint, n numeric, r real, u uuid)");
  WriteFile(dir / "schema.json", R"({"type": "object", "properties": {
    "id": {"type": "integer"}, "i": {"type": "integer"}, "sm": {"type": "integer"},
    "d": {"type": "integer"}, "ts": {"type": ["string", "null"], "format": "date-time"},
    "tz": {"type": "string", "format": "date-time"}, "v": {"type": "string"},
    "c": {"type": "string"}, "j": {"type": "string"}, "jb": {"type": ["string", "null"]}},
    "required": ["id", "i", "sm", "d", "tz", "v", "c", "j"]})");
  // id -> the reason its row is refused.
  const std::map<int, std::string> refused = {
      {3, "value \\\"2147483648\\\" is out of range for type integer"},
      {4, "value \\\"40000\\\" is out of range for type smallint"},
      {5, "value too long for type character varying(8)"},
      {6, "invalid input syntax for type json"},
      {7, "invalid input syntax for type json"},
      {8, "value too long for type character(4)"},
  };
  const std::vector<std::string> rows = {
      R"({"id": 0, "i": 2147483647, "sm": 32767, "d": 9007199254740993, "ts": "1900-01-01T00:00:00.5Z", "tz": "2026-01-01T00:00:01.006Z", "v": "caf\u00e9 \u00e9t\u00e9", "c": "ab", "j": "{\"a\": [1, 2]}", "jb": "{\"b\": 1, \"a\": 2}"})",
      R"({"id": 1, "i": -2147483648, "sm": -32768, "d": -1, "ts": null, "tz": "1969-12-31T23:59:59.999999Z", "v": "", "c": "abcd", "j": "1", "jb": null})",
      R"({"id": 2, "i": 0, "sm": 0, "d": 0, "ts": "2026-06-01T12:00:00+02:00", "tz": "2000-01-01T00:00:00Z", "v": "tab\there", "c": "", "j": "\"s\"", "jb": "[]"})",
      R"({"id": 3, "i": 2147483648, "sm": 0, "d": 0, "tz": "2026-01-01T00:00:00Z", "v": "x", "c": "x", "j": "{}"})",
      R"({"id": 4, "i": 0, "sm": 40000, "d": 0, "tz": "2026-01-01T00:00:00Z", "v": "x", "c": "x", "j": "{}"})",
      R"({"id": 5, "i": 0, "sm": 0, "d": 0, "tz": "2026-01-01T00:00:00Z", "v": "123456789", "c": "x", "j": "{}"})",
      R"({"id": 6, "i": 0, "sm": 0, "d": 0, "tz": "2026-01-01T00:00:00Z", "v": "x", "c": "x", "j": "{bad"})",
      R"({"id": 7, "i": 0, "sm": 0, "d": 0, "tz": "2026-01-01T00:00:00Z", "v": "x", "c": "x", "j": "{}", "jb": "[1,"})",
      R"({"id": 8, "i": 0, "sm": 0, "d": 0, "tz": "2026-01-01T00:00:00Z", "v": "x", "c": "abcde", "j": "{}"})",
      R"({"id": 9, "i": 7, "sm": -7, "d": 7, "tz": "2026-01-01T00:00:00Z", "v": "12345678", "c": "x", "j": "null", "jb": "\"\u00e9\""})",
  };
  std::string lines;
  for (const auto& row : rows) lines += row + "\n";
  WriteFile(dir / "in.jsonl", lines);
  WriteFile(dir / "p.yaml", Pipeline("table: narrow"));
  auto r = RunPipeline(pg, dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(Contains(r.err, "wrote 4 rows, 6 dead letters"));
  CHECK(pg.Value("SELECT string_agg(id::text, ',' ORDER BY id) FROM narrow") == "0,1,2,9");
  const std::string all =
      "SET TimeZone = 'UTC'; SELECT string_agg(concat_ws('|', id, i, sm, d, "
      "coalesce(ts::text, 'null'), tz, v, '[' || c || ']', j, coalesce(jb::text, 'null')), "
      "' ; ' ORDER BY id) FROM narrow";
  CHECK(pg.Value(all) ==
        "0|2147483647|32767|9.007199254740992e+15|1900-01-01 00:00:00.5|2026-01-01 00:00:01.006+00|"
        "caf\xc3\xa9 \xc3\xa9t\xc3\xa9|[ab]|{\"a\": [1, 2]}|{\"a\": 2, \"b\": 1} ; "
        "1|-2147483648|-32768|-1|null|1969-12-31 23:59:59.999999+00||[abcd]|1|null ; "
        "2|0|0|0|2026-06-01 10:00:00|2000-01-01 00:00:00+00|tab\there|[]|\"s\"|[] ; "
        "9|7|-7|7|null|2026-01-01 00:00:00+00|12345678|[x]|null|\"\xc3\xa9\"");
  CHECK(pg.Value("SELECT octet_length(c) FROM narrow WHERE id = 0") == "4");  // padded
  const auto dead = LinesOf(Slurp(dir / "dead.jsonl"));
  REQUIRE(dead.size() == refused.size());
  for (const auto& d : dead) {
    INFO(d);
    const size_t at = d.find("\"position\":");
    REQUIRE(at != std::string::npos);
    const int id = std::stoi(d.substr(at + 11)) - 1;  // line numbers from 1, ids from 0
    REQUIRE(refused.count(id) == 1);
    CHECK(Contains(d, "postgres refused the row: " + refused.at(id)));
  }

  // numeric, real and uuid go as text.
  WriteFile(dir / "schema.json", R"({"type": "object", "properties": {
    "id": {"type": "integer"}, "n": {"type": "integer"}, "r": {"type": "number"},
    "u": {"type": "string"}}, "required": ["id", "n", "r", "u"]})");
  WriteFile(dir / "in.jsonl",
            "{\"id\": 0, \"n\": 9223372036854775807, \"r\": 0.1, \"u\": "
            "\"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11\"}\n"
            "{\"id\": 1, \"n\": -1, \"r\": 1e300, \"u\": "
            "\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"}\n"
            "{\"id\": 2, \"n\": 0, \"r\": -2.5, \"u\": \"not a uuid\"}\n");
  WriteFile(dir / "p.yaml", Pipeline("table: textual"));
  std::filesystem::remove(dir / "dead.jsonl");
  auto t = RunPipeline(pg, dir);
  INFO(t.err);
  REQUIRE(t.exit_code == 0);
  CHECK(Contains(t.err, "wrote 1 rows, 2 dead letters"));
  CHECK(pg.Value("SELECT concat_ws('|', id, n, r, u) FROM textual") ==
        "0|9223372036854775807|0.1|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  const std::string text_dead = Slurp(dir / "dead.jsonl");
  CHECK(Contains(text_dead, "is out of range for type real"));
  CHECK(Contains(text_dead, "invalid input syntax for type uuid"));
}

TEST_CASE(
    "postgres sink: create: true makes the table from the input's fields; a second run "
    "appends",
    "[integration][postgres]") {
  ThrowawayPostgres pg;
  TempDir dir;
  constexpr int kRows = 5000;
  WriteFile(dir / "schema.json", kValuesSchema);
  WriteFile(dir / "in.jsonl", ValueLines(kRows));
  WriteFile(dir / "p.yaml", Pipeline("table: made, create: true"));

  auto first = RunPipeline(pg, dir);
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  CHECK(Contains(first.err, "sink 'db': created table public.made"));
  CHECK(pg.Value("SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ', ' "
                 "ORDER BY ordinal_position) FROM information_schema.columns "
                 "WHERE table_schema = 'public' AND table_name = 'made'") ==
        "id bigint NO, f double precision YES, s text YES, n bigint YES, "
        "ts timestamp with time zone YES, b boolean YES");
  CHECK(pg.Value("SELECT count(*) FROM made") == std::to_string(kRows));
  CHECK(pg.Value(MismatchSql("made", dir / "in.jsonl")) == "0");

  auto second = RunPipeline(pg, dir);
  INFO(second.err);
  REQUIRE(second.exit_code == 0);
  CHECK_FALSE(Contains(second.err, "created table"));
  CHECK(pg.Value("SELECT count(*) FROM made") == std::to_string(2 * kRows));
  CHECK(pg.Value("SELECT count(*) FROM (SELECT id FROM made GROUP BY id HAVING count(*) = 2) "
                 "AS twice") == std::to_string(kRows));
}

TEST_CASE(
    "postgres sink: text reaches a LATIN1 database converted; a character it cannot hold "
    "is a dead letter",
    "[integration][postgres]") {
  ThrowawayPostgres pg;
  TempDir dir;
  const std::string url = pg.CreateDatabase("latin", "LATIN1");
  WriteFile(dir / "schema.json", R"({"type": "object", "properties": {
    "id": {"type": "integer"}, "s": {"type": "string"}}, "required": ["id", "s"]})");
  WriteFile(dir / "in.jsonl",
            "{\"id\": 1, \"s\": \"caf\xc3\xa9\"}\n"
            "{\"id\": 2, \"s\": \"smile \xf0\x9f\x98\x80\"}\n"
            "{\"id\": 3, \"s\": \"na\xc3\xafve\"}\n");
  WriteFile(dir / "p.yaml", Pipeline("table: words, create: true"));
  auto r = RunPipeline(url, dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  // As LATIN1 characters: é is chr(233), ï chr(239); garbled UTF-8 would be two characters.
  const std::string q = "psql -X -At -d '" + url + "' -c ";
  CHECK(Run(q + "\"SELECT string_agg(id || ':' || length(s) || ':' || (s = 'caf' || chr(233) OR "
                "s = 'na' || chr(239) || 've'), ',' ORDER BY id) FROM words\"")
            .out == "1:4:true,3:5:true\n");
  const auto dead = LinesOf(Slurp(dir / "dead.jsonl"));
  REQUIRE(dead.size() == 1u);
  CHECK(Contains(dead[0], "\"position\":2"));
  CHECK(Contains(dead[0], "has no equivalent in encoding \\\"LATIN1\\\""));
}
