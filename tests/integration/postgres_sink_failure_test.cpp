// The postgres sink when things go wrong, against a throwaway PostgreSQL 15 cluster: rows the
// table refuses (dead letters with the database's reason, the rest written), a table that does
// not fit, an unreachable or silent server, the server stopping and starting again mid-stream,
// and a refusal that is not about the data. Every run of sluice and every wait is bounded.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/postgres_sink_support.h"

using namespace sluice::testing;

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
  CHECK(Contains(r.err,
                 "sink 'db': PostgreSQL refused the batch: permission denied for table t "
                 "(SQLSTATE 42501)"));
  CHECK_FALSE(Contains(r.err, "retrying"));
  CHECK(pg.Value("SELECT count(*) FROM t") == "0");
}
