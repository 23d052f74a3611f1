// The postgres sink fed by file sources (no broker) against a throwaway PostgreSQL 15 cluster
// each test starts (tests/integration/postgres.h): values through COPY's binary and text formats,
// column types narrower than the values' (integer, smallint, varchar(n), ...), tables
// made by `create: true`, upserts with duplicate keys, rows the database refuses, the start-up
// checks, a database in another encoding, an unreachable or silent server, and the server
// restarting while a pipeline writes. Every run of sluice and every wait is bounded.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/postgres.h"

using namespace sluice::testing;

namespace {

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// `text` with its double quotes escaped, as it appears inside a JSON string.
std::string JsonQuotes(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '"') out += '\\';
    out += c;
  }
  return out;
}

// 12,345
std::string Commas(size_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string Hex(const std::string& bytes) {
  std::string out;
  char buf[3];
  for (unsigned char c : bytes) {
    std::snprintf(buf, sizeof buf, "%02x", c);
    out += buf;
  }
  return out;
}

// `sluice run DIR/p.yaml` with DATABASE_URL set, killed after `seconds` (exit 124 then).
CommandResult RunPipeline(const std::string& url, const TempDir& dir, int seconds = 60) {
  return Run("DATABASE_URL='" + url + "' timeout -k 5 " + std::to_string(seconds) + " " + Sluice() +
             " run " + (dir / "p.yaml"));
}
CommandResult RunPipeline(const ThrowawayPostgres& pg, const TempDir& dir, int seconds = 60) {
  return RunPipeline(pg.url(), dir, seconds);
}

// A pipeline of one file source `in` (json lines in.jsonl, schema.json) and one postgres sink
// `db` with the given extra keys; dead letters to dead.jsonl.
std::string Pipeline(const std::string& sink_keys, int batch_size = 1024) {
  return "name: pgsink\nsettings: {batch_size: " + std::to_string(batch_size) +
         "}\nsources:\n  in: {type: file, path: in.jsonl, schema: schema.json}\n"
         "sinks:\n  db: {type: postgres, inputs: [in], url: \"${DATABASE_URL}\", " +
         sink_keys + "}\ndead_letter: {path: dead.jsonl}\n";
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
  pg.Sql(
      "CREATE DATABASE latin TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' "
      "LC_CTYPE 'C'");
  const std::string url = pg.url().substr(0, pg.url().rfind('/')) + "/latin";
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

TEST_CASE(
    "postgres sink: rows the table refuses go to the dead-letter file with the "
    "database's reason; the rest of each batch is written",
    "[integration][postgres]") {
  const std::string mode = GENERATE(as<std::string>{}, "insert", "upsert");
  INFO("mode: " << mode);
  ThrowawayPostgres pg;
  TempDir dir;
  pg.Sql(
      "CREATE TABLE orders (id bigint PRIMARY KEY, qty integer NOT NULL, "
      "price double precision CONSTRAINT price_not_negative CHECK (price >= 0), "
      "name text NOT NULL)");
  WriteFile(dir / "schema.json", R"({"type": "object", "properties": {
    "id": {"type": "integer"}, "qty": {"type": ["integer", "null"]},
    "price": {"type": ["number", "null"]}, "name": {"type": ["string", "null"]}},
    "required": ["id"]})");
  constexpr int kRows = 3000;
  // Line number (1-based) -> the part of the reason that names what was wrong.
  std::map<int, std::string> refused;
  std::set<int> written_ids;
  std::string lines;
  for (int i = 0; i < kRows; ++i) {
    int id = i;
    std::string qty = std::to_string(i % 50), price = std::to_string(i % 7) + ".5",
                name = "\"n" + std::to_string(i) + "\"";
    std::string reason;
    if (i % 97 == 5) {
      price = "-1";
      reason = "violates check constraint \"price_not_negative\"";
    } else if (i % 101 == 7) {
      name = "null";
      reason = "null value in column \"name\" of relation \"orders\" violates not-null";
    } else if (i % 89 == 3) {
      qty = "3000000000";
      reason = "value \"3000000000\" is out of range for type integer";
    } else if (i % 113 == 9) {
      qty = "null";
      reason = "null value in column \"qty\" of relation \"orders\" violates not-null";
    } else if (i % 211 == 11) {
      id = i - 1;  // the id of the row before: a duplicate key for insert, an update for upsert
    }
    if (reason.empty() && mode == "insert" && written_ids.count(id)) {
      reason = "duplicate key value violates unique constraint \"orders_pkey\"";
    }
    if (reason.empty()) {
      written_ids.insert(id);
    } else {
      refused[i + 1] = reason;
    }
    lines += "{\"id\": " + std::to_string(id) + ", \"qty\": " + qty + ", \"price\": " + price +
             ", \"name\": " + name + "}\n";
  }
  WriteFile(dir / "in.jsonl", lines);
  std::string keys = "table: orders, mode: " + mode;
  if (mode == "upsert") keys += ", key: [id]";
  WriteFile(dir / "p.yaml", Pipeline(keys, 500));

  auto r = RunPipeline(pg, dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const size_t written = kRows - refused.size();
  CHECK(Contains(r.err, "wrote " + Commas(written) + " rows, " + std::to_string(refused.size()) +
                            " dead letters"));
  // Every row that was not refused is in the table, and nothing else.
  CHECK(pg.Value("SELECT count(*) FROM orders") == std::to_string(written_ids.size()));
  int64_t id_sum = 0;
  for (int id : written_ids) id_sum += id;
  CHECK(pg.Value("SELECT sum(id) FROM orders") == std::to_string(id_sum));
  CHECK(pg.Value("SELECT count(*) FROM orders WHERE name <> 'n' || id AND "
                 "name <> 'n' || (id + 1)") == "0");

  // One dead letter per refused row, naming the node, the line and what the database said.
  const auto dead = LinesOf(Slurp(dir / "dead.jsonl"));
  CHECK(dead.size() == refused.size());
  std::set<int> seen;
  const auto input = LinesOf(lines);
  for (const auto& d : dead) {
    INFO(d);
    const size_t at = d.find("\"position\":");
    REQUIRE(at != std::string::npos);
    const int line = std::stoi(d.substr(at + 11));
    REQUIRE(refused.count(line) == 1);
    seen.insert(line);
    CHECK(Contains(d, "\"node\":\"db\""));
    CHECK(Contains(d, "postgres refused the row: "));
    CHECK(Contains(d, JsonQuotes(refused[line])));
    CHECK_FALSE(Contains(d, "sluice_staging"));  // the user's table, not the sink's own
    CHECK(Contains(d, "\"input\":\"" + JsonQuotes(input[line - 1]) + "\"}"));
  }
  CHECK(seen.size() == refused.size());
}

TEST_CASE(
    "postgres sink: a table that does not fit stops the run at start-up with a clear "
    "message, before any row is written",
    "[integration][postgres]") {
  ThrowawayPostgres pg;
  pg.Sql(
      "CREATE TABLE people (id bigint, name text);"
      "CREATE TABLE text_id (id text, name text);"
      "CREATE TABLE int_name (id bigint, name integer);"
      "CREATE TABLE no_key (id bigint, name text);"
      "CREATE TABLE wide_key (id bigint, name text, UNIQUE (id, name));"
      "CREATE TABLE partial_key (id bigint, name text);"
      "CREATE UNIQUE INDEX ON partial_key (id) WHERE id > 0;"
      "CREATE TABLE deferred_key (id bigint, name text,"
      "  CONSTRAINT deferred_key_id UNIQUE (id) DEFERRABLE INITIALLY DEFERRED);");
  struct Case {
    std::string sink_keys;
    std::string message;
    std::string table;  // must still be empty (or missing) after the run
  };
  const std::vector<Case> cases = {
      {"table: missing",
       "postgres 'db': table public.missing does not exist; create it, or set create: true to "
       "have it made from the input",
       "missing"},
      {"table: people, columns: {id: id, nmae: name}",
       "postgres 'db': table public.people has no column 'nmae'; did you mean 'name'? "
       "(columns: id, name)",
       "people"},
      {"table: text_id",
       "postgres 'db': column 'id' of table public.text_id is text but field 'id' is int64; a "
       "bigint column takes it",
       "text_id"},
      {"table: int_name",
       "postgres 'db': column 'name' of table public.int_name is integer but field 'name' is "
       "string; a text column takes it",
       "int_name"},
      {"table: no_key, mode: upsert, key: [id]",
       "postgres 'db': table public.no_key has no unique index or primary key on (id), which "
       "upsert needs",
       "no_key"},
      {"table: wide_key, mode: upsert, key: [id]",
       "postgres 'db': table public.wide_key has no unique index or primary key on (id)",
       "wide_key"},
      // ON CONFLICT (id) cannot use a partial or deferrable unique index: without this check
      // the first write fails and is retried for ever.
      {"table: partial_key, mode: upsert, key: [id]",
       "postgres 'db': table public.partial_key has no unique index or primary key on (id)",
       "partial_key"},
      {"table: deferred_key, mode: upsert, key: [id]",
       "postgres 'db': table public.deferred_key has no unique index or primary key on (id)",
       "deferred_key"},
  };
  TempDir dir;
  WriteFile(dir / "schema.json", R"({"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}}, "required": ["id", "name"]})");
  std::string lines;
  for (int i = 1; i <= 100; ++i) lines += "{\"id\": " + std::to_string(i) + ", \"name\": \"x\"}\n";
  WriteFile(dir / "in.jsonl", lines);
  for (const auto& c : cases) {
    INFO(c.sink_keys);
    WriteFile(dir / "p.yaml", Pipeline(c.sink_keys));
    auto r = RunPipeline(pg, dir, 30);
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(Contains(r.err, c.message));
    CHECK(Contains(r.err, "p.yaml:"));  // the node's place in the file
    if (c.table == "missing") {
      CHECK(pg.Value("SELECT to_regclass('public.missing') IS NULL") == "t");
    } else {
      CHECK(pg.Value("SELECT count(*) FROM " + c.table) == "0");
    }
  }
}

TEST_CASE("postgres sink: an unreachable database stops the run at start-up, within a bound",
          "[integration][postgres]") {
  TempDir dir;
  WriteFile(dir / "schema.json", R"({"type": "object", "properties": {
    "id": {"type": "integer"}}, "required": ["id"]})");
  WriteFile(dir / "in.jsonl", "{\"id\": 1}\n");
  WriteFile(dir / "p.yaml", Pipeline("table: t"));
  const std::string port = std::to_string(FreeLoopbackPort());

  SECTION("nothing listens on the port") {
    auto r = Run("DATABASE_URL=postgresql://sluice@127.0.0.1:" + port +
                 "/postgres timeout -k 5 30 " + Sluice() + " run " + (dir / "p.yaml"));
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(Contains(r.err,
                   "pipeline 'pgsink' could not start: postgres 'db': PostgreSQL: "
                   "connection to server at \"127.0.0.1\", port " +
                       port + " failed: Connection refused"));
  }

  SECTION("a server that takes the connection but never answers") {
    // A listening socket nobody reads: the kernel completes the handshake, then silence.
    // libpq alone would wait for ever; the sink's default connect_timeout (10 s) bounds it.
    WriteFile(dir / "listener.py",
              "import socket, sys, time\n"
              "s = socket.socket()\n"
              "s.bind(('127.0.0.1', int(sys.argv[1])))\n"
              "s.listen(8)\n"
              "print('listening', flush=True)\n"
              "time.sleep(40)\n");
    const std::string listening = dir / "listening";
    const std::string script =
        "python3 " + (dir / "listener.py") + " " + port + " >" + listening + " &\n" +
        "listener=$!\n"
        "for i in $(seq 1 50); do [ -s " +
        listening +
        " ] && break; sleep 0.1; done\n"
        "start=$(date +%s)\n"
        "DATABASE_URL=postgresql://sluice@127.0.0.1:" +
        port + "/postgres timeout -k 5 30 " + Sluice() + " run " + (dir / "p.yaml") + "\n" +
        "echo \"run exit $? after $(($(date +%s) - start)) s\"\n"
        "kill $listener\n"
        "wait $listener\n";
    auto r = Run(script);
    INFO(r.out + r.err);
    CHECK(Contains(r.err,
                   "pipeline 'pgsink' could not start: postgres 'db': PostgreSQL: "
                   "connection to server at \"127.0.0.1\", port " +
                       port + " failed: timeout expired"));
    CHECK(Contains(r.out, "run exit 1 after "));
    const size_t at = r.out.find(" after ");
    REQUIRE(at != std::string::npos);
    CHECK(std::stoi(r.out.substr(at + 7)) <= 15);
  }
}

TEST_CASE(
    "postgres sink: the database stopping and starting again mid-stream pauses the "
    "pipeline, which then finishes with every row written",
    "[integration][postgres][faults]") {
  // Small batches keep the run going long enough for the server to go away under it: one
  // transaction per batch of 20 (insert) or 150 (upsert) rows.
  const std::string mode = GENERATE(as<std::string>{}, "upsert", "insert");
  INFO("mode: " << mode);
  constexpr int kRows = 300000;
  ThrowawayPostgres pg;
  TempDir dir;
  WriteFile(dir / "schema.json", R"({"type": "object", "properties": {
    "id": {"type": "integer"}, "pad": {"type": "string"}}, "required": ["id", "pad"]})");
  {
    std::ofstream out(dir / "in.jsonl");
    const std::string pad(40, 'p');
    for (int i = 0; i < kRows; ++i) out << "{\"id\": " << i << ", \"pad\": \"" << pad << "\"}\n";
  }
  // Without a key for insert, so that a batch written twice would show as more rows.
  pg.Sql(mode == "upsert" ? "CREATE TABLE t (id bigint PRIMARY KEY, pad text)"
                          : "CREATE TABLE t (id bigint, pad text)");
  WriteFile(dir / "p.yaml", mode == "upsert" ? Pipeline("table: t, mode: upsert, key: [id]", 150)
                                             : Pipeline("table: t", 20));
  const std::string count =
      "psql -X -At -d \"$DATABASE_URL\" -c 'SELECT count(*) FROM t' 2>/dev/null";
  const std::string script = "export DATABASE_URL='" + pg.url() + "'\n" + "timeout -k 5 90 " +
                             Sluice() + " run " + (dir / "p.yaml") + " 2>" + (dir / "run.err") +
                             " &\npid=$!\n"
                             "for i in $(seq 1 300); do\n"
                             "  n=$(" +
                             count +
                             ")\n"
                             "  [ \"${n:-0}\" -ge 30000 ] && break\n"
                             "  kill -0 $pid 2>/dev/null || break\n"
                             "  sleep 0.05\n"
                             "done\n" +
                             pg.StopCommand("fast") + "\necho \"stopped at $n rows\"\nsleep 3\n" +
                             pg.StartCommand() +
                             "\necho started\nwait $pid\necho \"run exit $?\"\n";
  auto r = Run(script);
  pg.SetRunning(true);
  const std::string err = Slurp(dir / "run.err");
  INFO(r.out + r.err + err);
  REQUIRE(Contains(r.out, "started"));
  CHECK(Contains(r.out, "run exit 0"));
  // The server went away while the sink was writing, and the sink came back to it.
  CHECK(Contains(err, "sink 'db': PostgreSQL: "));
  CHECK(Contains(err, "retrying in"));
  CHECK(Contains(err, "sink 'db': connected to PostgreSQL again"));
  CHECK(Contains(err, "finished: read 300,000 records, wrote 300,000 rows, 0 dead letters"));
  // Nothing lost.
  CHECK(pg.Value("SELECT count(DISTINCT id) FROM t") == std::to_string(kRows));
  const long rows = std::stol(pg.Value("SELECT count(*) FROM t"));
  if (mode == "upsert") {
    CHECK(rows == kRows);  // a batch written twice merges into the same rows
  } else {
    // At-least-once: a batch whose COMMIT reached the server but whose answer was lost with
    // the connection ("in doubt") is written again. A fast shutdown answers or rolls back, so
    // in practice the count is exact (a crash, pg_ctl -m immediate, can double one batch);
    // what the contract promises is no loss and at most the batch in flight doubled.
    if (rows != kRows) WARN("insert after a restart: " << rows - kRows << " rows written twice");
    CHECK(rows >= kRows);
    CHECK(rows <= kRows + 20);
  }
}

TEST_CASE("postgres sink: a refusal that is not about the data stops the run with the message",
          "[integration][postgres]") {
  // A role that may read the table (so the start-up check passes) but not write it: retrying
  // would pause the pipeline for ever, so the run stops with PostgreSQL's message instead.
  TempDir dir;
  ThrowawayPostgres pg;
  pg.Sql("CREATE TABLE t (id bigint); CREATE ROLE reader LOGIN; GRANT SELECT ON t TO reader;");
  WriteFile(dir / "schema.json", R"({"type": "object", "properties": {
    "id": {"type": "integer"}}, "required": ["id"]})");
  WriteFile(dir / "in.jsonl", "{\"id\": 1}\n{\"id\": 2}\n");
  WriteFile(dir / "p.yaml", Pipeline("table: t"));
  auto r = RunPipeline("postgresql://reader@127.0.0.1:" + std::to_string(pg.port()) + "/postgres",
                       dir, 30);
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK(Contains(r.err, "sink 'db': PostgreSQL refused the batch: permission denied for table t "
                        "(SQLSTATE 42501)"));
  CHECK_FALSE(Contains(r.err, "retrying"));
  CHECK(pg.Value("SELECT count(*) FROM t") == "0");
}
