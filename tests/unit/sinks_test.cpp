// The file, sqlite and stdout sinks and their effects on disk.
// The spec examples of every operator are checked in registry_test.cpp.
#include <sqlite3.h>

#include <simdjson.h>
#include <catch2/catch.hpp>

#include "engine/formats.h"
#include "engine/testing.h"
#include "operator_helpers.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

const std::string kTypesSchema = R"({
  "type": "object",
  "properties": {
    "id": {"type": "integer"},
    "name": {"type": "string"},
    "score": {"type": "number"},
    "ok": {"type": "boolean"},
    "ts": {"type": "string", "format": "date-time"}
  },
  "required": ["id"]
})";

const std::vector<std::string> kTypesRows = {
    R"({"id": 1, "name": "it's \"quoted\"", "score": 0.5, "ok": true, "ts": "2026-01-01T00:00:01.5Z"})",
    R"({"id": 2})",
};

std::string SinkPipeline(const std::string& sink) {
  return "sources:\n"
         "  src: {type: file, path: in.jsonl, schema: s.json}\n"
         "sinks:\n"
         "  out: " +
         sink + "\n";
}

// Opens the sink `out` of `l` and writes one batch of `rows` through it, as the runner does.
std::vector<DeadLetterRecord> WriteThroughSink(const Loaded& l,
                                               const std::vector<std::string>& rows) {
  const PlannedNode& sink = l.Node("out");
  auto rt = sink.sink->Open(sink.input_schema);
  INFO(rt.status().message());
  REQUIRE(rt.ok());
  auto batch = InputBatch(l, "out", rows);
  std::string prepared;
  if ((*rt)->prepares()) {
    auto p = (*rt)->Prepare(*batch);
    REQUIRE(p.ok());
    prepared = *p;
  }
  MemoryDeadLetter dl;
  NodeContext ctx("out", &dl);
  REQUIRE((*rt)->Write(*batch, prepared, ctx).ok());
  REQUIRE((*rt)->Close().ok());
  return dl.records();
}

struct Sqlite {
  explicit Sqlite(const std::string& path) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                            nullptr) == SQLITE_OK);
  }
  ~Sqlite() { sqlite3_close_v2(db); }
  void Exec(const std::string& sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    INFO((err ? err : ""));
    sqlite3_free(err);
    REQUIRE(rc == SQLITE_OK);
  }
  // Every row of a query, each cell as "<typeof>:<text>".
  std::vector<std::vector<std::string>> Query(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    INFO(sql);
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
    std::vector<std::vector<std::string>> rows;
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        static const char* kTypes[] = {"?", "integer", "real", "text", "blob", "null"};
        const char* text = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
        row.push_back(std::string(kTypes[sqlite3_column_type(st, c)]) + ":" + (text ? text : ""));
      }
      rows.push_back(std::move(row));
    }
    sqlite3_finalize(st);
    return rows;
  }
  sqlite3* db = nullptr;
};

using Rows = std::vector<std::vector<std::string>>;

}  // namespace

TEST_CASE("sqlite sink creates the table from the schema and inserts typed values",
          "[operators][sqlite]") {
  TempDir dir;
  dir.Write("s.json", kTypesSchema);
  const std::string yaml =
      SinkPipeline("{type: sqlite, inputs: [src], path: db/out.db, table: 'my \"table\"'}");
  Loaded l = Load(yaml, dir.path());
  INFO(l.Text());
  REQUIRE_FALSE(l.diags.HasErrors());
  CHECK_FALSE(std::filesystem::exists(dir.File("db")));  // validation creates nothing
  WriteThroughSink(l, kTypesRows);                       // the folder is created at open

  Sqlite db(dir.File("db/out.db"));
  CHECK(db.Query(R"(SELECT id, name, score, ok, ts FROM "my ""table""" ORDER BY id)") ==
        Rows{{"integer:1", "text:it's \"quoted\"", "real:0.5", "integer:1",
              "text:2026-01-01T00:00:01.500000Z"},
             {"integer:2", "null:", "null:", "null:", "null:"}});
  // Declared types follow the schema; only the required field is NOT NULL.
  CHECK(db.Query(R"(SELECT name, type, "notnull" FROM pragma_table_info('my "table"'))") ==
        Rows{{"text:id", "text:INTEGER", "integer:1"},
             {"text:name", "text:TEXT", "integer:0"},
             {"text:score", "text:REAL", "integer:0"},
             {"text:ok", "text:INTEGER", "integer:0"},
             {"text:ts", "text:TIMESTAMP", "integer:0"}});

  SECTION("a second run appends to the existing table, which now passes validation") {
    Loaded again = Load(yaml, dir.path());
    INFO(again.Text());
    REQUIRE_FALSE(again.diags.HasErrors());
    WriteThroughSink(again, {R"({"id": 3, "ok": false})"});
    CHECK(db.Query(R"(SELECT count(*), sum(ok = 0) FROM "my ""table""")") ==
          Rows{{"integer:3", "integer:1"}});
  }
}

TEST_CASE("sqlite sink dead-letters rows the table refuses and keeps the rest of the batch",
          "[operators][sqlite]") {
  TempDir dir;
  dir.Write("s.json", kTypesSchema);
  {
    Sqlite db(dir.File("out.db"));
    db.Exec(
        "CREATE TABLE t (id INTEGER UNIQUE, name TEXT NOT NULL, score REAL, ok INTEGER, "
        "ts TEXT)");
  }
  Loaded l =
      Load(SinkPipeline("{type: sqlite, inputs: [src], path: out.db, table: t}"), dir.path());
  REQUIRE_FALSE(l.diags.HasErrors());
  auto dead = WriteThroughSink(
      l, {R"({"id": 1, "name": "a", "ts": "2026-01-01T00:00:01Z"})",
          R"({"id": 1, "name": "duplicate"})", R"({"id": 2})", R"({"id": 3, "name": "c"})"});
  REQUIRE(dead.size() == 2u);
  CHECK_THAT(dead[0].reason, Catch::Contains("UNIQUE constraint failed: t.id"));
  CHECK_THAT(dead[1].reason, Catch::Contains("NOT NULL constraint failed: t.name"));
  Sqlite db(dir.File("out.db"));
  // Timestamps always carry six fraction digits, so their text sorts in time order.
  CHECK(db.Query("SELECT id, name, ts FROM t ORDER BY id") ==
        Rows{{"integer:1", "text:a", "text:2026-01-01T00:00:01.000000Z"},
             {"integer:3", "text:c", "null:"}});
}

TEST_CASE("sqlite sink checks an existing table at validation", "[operators][sqlite]") {
  TempDir dir;
  dir.Write("s.json", kTypesSchema);
  {
    Sqlite db(dir.File("out.db"));
    db.Exec("CREATE TABLE few (id INTEGER)");
    db.Exec("CREATE TABLE wrong (id TEXT, name TEXT, score REAL, ok INTEGER, ts TEXT)");
    db.Exec(
        "CREATE TABLE fine (id BIGINT, name VARCHAR(20), score DOUBLE, ok BOOLEAN, "
        "ts DATETIME, extra BLOB)");
  }
  SECTION("missing columns: each is reported") {
    const std::string yaml =
        SinkPipeline("{type: sqlite, inputs: [src], path: out.db, table: few}");
    Loaded l = Load(yaml, dir.path());
    REQUIRE(l.diags.ErrorCount() == 4u);  // name, score, ok, ts
    CHECK(l.Errors()[0].message == "sqlite 'out': table 'few' has no column 'name' (columns: id)");
    CHECK(l.Errors()[0].mark.ToString() == At(yaml, "few"));
  }
  SECTION("incompatible column type") {
    Loaded l =
        Load(SinkPipeline("{type: sqlite, inputs: [src], path: out.db, table: wrong}"), dir.path());
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].message ==
          "sqlite 'out': column 'id' of table 'wrong' is TEXT but field 'id' is int64 (a column "
          "of type INTEGER would take it)");
  }
  SECTION("compatible declared types under other names") {
    Loaded l =
        Load(SinkPipeline("{type: sqlite, inputs: [src], path: out.db, table: fine}"), dir.path());
    INFO(l.Text());
    CHECK_FALSE(l.diags.HasErrors());
  }
  SECTION("a database that does not exist yet is fine") {
    Loaded l =
        Load(SinkPipeline("{type: sqlite, inputs: [src], path: new.db, table: t}"), dir.path());
    CHECK_FALSE(l.diags.HasErrors());
    // Validation does not create it.
    CHECK_FALSE(std::filesystem::exists(dir.File("new.db")));
  }
}

TEST_CASE("sqlite sink matches existing columns case-insensitively, as SQLite does",
          "[operators][sqlite]") {
  // Regression: existing columns were once matched case-sensitively, unlike SQLite.
  TempDir dir;
  dir.Write("s.json", kTypesSchema);
  {
    Sqlite db(dir.File("out.db"));
    db.Exec("CREATE TABLE upper (ID INTEGER, Name TEXT, Score REAL, OK INTEGER, TS TEXT)");
    // SQLite itself accepts the field names as they are.
    db.Exec("INSERT INTO upper (id, name, score, ok, ts) VALUES (1, 'a', 0.5, 1, 'x')");
  }
  Loaded l =
      Load(SinkPipeline("{type: sqlite, inputs: [src], path: out.db, table: upper}"), dir.path());
  INFO(l.Text());
  CHECK_FALSE(l.diags.HasErrors());
}

TEST_CASE("sqlite sink keys are checked", "[operators][sqlite]") {
  const std::string yaml =
      "sources:\n"
      "  src: {type: file, path: in.jsonl, schema: s.json}\n"
      "sinks:\n"
      "  out:\n"
      "    type: sqlite\n"
      "    inputs: [src]\n"
      "    path: out.db\n"
      "    tabel: t\n";
  Diagnostics diags;
  ParsePipelineText(yaml, kFile, "/tmp", Builtins(), diags);
  std::vector<std::string> messages;
  for (const auto& d : diags.items()) messages.push_back(d.mark.ToString() + " " + d.message);
  INFO(Catch::Detail::stringify(messages));
  REQUIRE(diags.ErrorCount() == 2u);
  CHECK(diags.items()[0].mark.ToString() == At(yaml, "tabel"));
  CHECK_THAT(diags.items()[0].message,
             Catch::Contains("unknown key 'tabel' (did you mean 'table'?)"));
  CHECK_THAT(diags.items()[1].message, Catch::Contains("missing required key 'table'"));
}

TEST_CASE("file sink writes JSON lines; truncate starts afresh, append adds",
          "[operators][file-sink]") {
  TempDir dir;
  dir.Write("s.json", kTypesSchema);
  const std::string expected =
      R"({"id":1,"name":"it's \"quoted\"","score":0.5,"ok":true,"ts":"2026-01-01T00:00:01.500000Z"})"
      "\n"
      R"({"id":2,"name":null,"score":null,"ok":null,"ts":null})"
      "\n";
  SECTION("truncate (the default)") {
    dir.Write("out/rows.jsonl", "old line\n");
    Loaded l = Load(SinkPipeline("{type: file, inputs: [src], path: out/rows.jsonl}"), dir.path());
    REQUIRE_FALSE(l.diags.HasErrors());
    WriteThroughSink(l, kTypesRows);
    CHECK(ReadFile(dir.File("out/rows.jsonl")) == expected);
    WriteThroughSink(l, {R"({"id": 9})"});
    CHECK(ReadFile(dir.File("out/rows.jsonl")) ==
          "{\"id\":9,\"name\":null,\"score\":null,\"ok\":null,\"ts\":null}\n");
  }
  SECTION("append") {
    dir.Write("out/rows.jsonl", "old line\n");
    Loaded l = Load(SinkPipeline("{type: file, inputs: [src], path: out/rows.jsonl, mode: append}"),
                    dir.path());
    REQUIRE_FALSE(l.diags.HasErrors());
    WriteThroughSink(l, kTypesRows);
    WriteThroughSink(l, kTypesRows);
    CHECK(ReadFile(dir.File("out/rows.jsonl")) == "old line\n" + expected + expected);
  }
  SECTION("an unknown mode") {
    const std::string yaml = SinkPipeline("{type: file, inputs: [src], path: x, mode: apend}");
    Loaded l = Load(yaml, dir.path());
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].message ==
          "file 'out': 'mode' must be one of truncate, append, found 'apend' (did you mean "
          "'append'?)");
    CHECK(l.Errors()[0].mark.ToString() == At(yaml, "apend"));
  }
  SECTION("a folder that does not exist is created at open") {
    Loaded l = Load(SinkPipeline("{type: file, inputs: [src], path: new/dir/x.jsonl}"), dir.path());
    REQUIRE_FALSE(l.diags.HasErrors());
    CHECK_FALSE(std::filesystem::exists(dir.File("new")));  // not at validation
    WriteThroughSink(l, {R"({"id": 1})"});
    CHECK(ReadFile(dir.File("new/dir/x.jsonl")) ==
          "{\"id\":1,\"name\":null,\"score\":null,\"ok\":null,\"ts\":null}\n");
  }
  SECTION("a folder that cannot be created fails at open with the path") {
    dir.Write("plain-file", "x");
    Loaded l =
        Load(SinkPipeline("{type: file, inputs: [src], path: plain-file/x.jsonl}"), dir.path());
    REQUIRE_FALSE(l.diags.HasErrors());
    auto rt = l.Node("out").sink->Open(l.Node("out").input_schema);
    REQUIRE_FALSE(rt.ok());
    CHECK(rt.status().code() == StatusCode::kIoError);
    CHECK_THAT(rt.status().message(), Catch::Contains(dir.path() + "/plain-file/x.jsonl"));
  }
}
