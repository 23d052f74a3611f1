// The postgres source against a throwaway PostgreSQL 15 cluster each test starts
// (tests/integration/postgres.h): a table read whole with its values intact, text from a LATIN1
// database, rows picked up while running, the stored position across clean stops and kills, runs
// of equal timestamps, start: latest, start-up errors, the database restarting mid-stream, and
// the iris flow from the table through the development broker to pipelines/iris.yaml. Every wait
// is bounded.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "tests/integration/postgres.h"

using namespace sluice::testing;

namespace {

// The `"id":N` values of JSON lines, with how often each occurs.
std::map<long, int> IdCounts(const std::vector<std::string>& lines) {
  std::map<long, int> out;
  for (const auto& l : lines) {
    const size_t at = l.find("\"id\":");
    if (at != std::string::npos) ++out[std::stol(l.substr(at + 5))];
  }
  return out;
}

// Shell functions for the scripts below: `sql`, the output file's `lines`, starting and
// stopping `sluice run` on p.yaml in the background, and waiting for output.
std::string Prelude(const ThrowawayPostgres& pg, const TempDir& dir) {
  return "export DATABASE_URL='" + pg.url() + "'\nexport OUT=" + (dir / "out.jsonl") +
         "\ntouch \"$OUT\"\n" + R"SH(
sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -c "$1"; }
lines() { wc -l < "$OUT"; }
# wait_lines N SECONDS: until the output has N lines, the run ends, or the time is up.
wait_lines() {
  end=$(($(date +%s) + $2))
  while [ "$(date +%s)" -lt $end ]; do
    [ "$(lines)" -ge "$1" ] && return 0
    kill -0 $pid 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
start_run() {
  )SH" + Sluice() +
         " run --quiet " + (dir / "p.yaml") + " 2>>" + (dir / "run.err") + R"SH( &
  pid=$!
}
stop_run() { kill -$1 $pid; wait $pid; echo "run exit $? at $(lines) lines"; }
)SH";
}

// A pipeline of one postgres source over `table` by `column` (extra keys in `extra`) into a
// file sink that appends to $OUT.
void WritePipeline(const TempDir& dir, const std::string& table, const std::string& column,
                   const std::string& extra) {
  std::ofstream(dir / "p.yaml") << "name: pgsrc\n"
                                   "settings:\n  batch_size: ${BATCH:-100}\n"
                                   "sources:\n"
                                   "  rows: {type: postgres, url: \"${DATABASE_URL}\", table: " +
                                       table + ", column: " + column + ", poll_interval_ms: 100" +
                                       extra +
                                       "}\n"
                                       "sinks:\n"
                                       "  out: {type: file, inputs: [rows], path: \"${OUT}\", "
                                       "mode: append}\n";
}

const char* kEventsTable =
    "CREATE TABLE events (id serial PRIMARY KEY, at timestamp NOT NULL DEFAULT "
    "'2026-01-01', note text);\n";

std::string InsertEvents(int from, int to) {
  return "INSERT INTO events (id, at, note) SELECT i, '2026-01-01'::timestamp + i * interval "
         "'1 second', 'n' || i FROM generate_series(" +
         std::to_string(from) + ", " + std::to_string(to) + ") i;\n";
}

}  // namespace

TEST_CASE("postgres source: a table is read whole, every value intact, and its position kept",
          "[integration][postgres][postgres-source]") {
  ThrowawayPostgres pg;
  TempDir dir;
  pg.Sql(R"SQL(
CREATE SCHEMA shop;
CREATE TYPE shop.mood AS ENUM ('calm', 'busy');
CREATE TABLE shop.orders (
  id bigserial PRIMARY KEY, at timestamp, paid_at timestamptz, price float8, amount numeric(12, 3),
  ok boolean, note text, code varchar(8), grade char(2), mood shop.mood, qty int4 NOT NULL);
INSERT INTO shop.orders (at, paid_at, price, amount, ok, note, code, grade, mood, qty)
SELECT '2026-01-01'::timestamp + i * interval '1.5 second', '2026-01-01 09:00:00+09'::timestamptz + i * interval '1 hour',
       i / 4.0, i * 1.001, i % 2 = 0, 'note "' || i || E'"\\ é ✓\n', 'c' || i, 'g',
       CASE WHEN i % 2 = 0 THEN 'calm' ELSE 'busy' END::shop.mood, i
FROM generate_series(1, 999) i;
INSERT INTO shop.orders (qty) VALUES (1000);  -- every nullable column NULL
)SQL");
  // No schema file: the schema comes from the table's columns.
  WritePipeline(dir, "shop.orders", "id", ", follow: false");
  const std::string script = Prelude(pg, dir) + R"SH(
start_run; wait $pid; echo "run exit $? at $(lines) lines"
start_run; wait $pid; echo "run exit $? at $(lines) lines"
)SH";
  auto r = Run(script);
  const std::string err = Slurp(dir / "run.err");
  INFO(r.out + r.err + err);
  CHECK(r.out.find("run exit 0 at 1000 lines\nrun exit 0 at 1000 lines") != std::string::npos);
  auto lines = LinesOf(Slurp(dir / "out.jsonl"));
  REQUIRE(lines.size() == 1000u);
  auto ids = IdCounts(lines);
  CHECK(ids.size() == 1000u);
  CHECK(ids.begin()->first == 1);
  CHECK(ids.rbegin()->first == 1000);
  CHECK(lines[6] ==
        R"({"id":7,"at":"2026-01-01T00:00:10.500000Z","paid_at":"2026-01-01T07:00:00Z",)"
        R"("price":1.75,"amount":7.007,"ok":false,"note":"note \"7\"\\ é ✓\n","code":"c7",)"
        R"("grade":"g ","mood":"busy","qty":7})");
  CHECK(lines[999] == R"({"id":1000,"at":null,"paid_at":null,"price":null,"amount":null,"ok":null,)"
                      R"("note":null,"code":null,"grade":null,"mood":null,"qty":1000})");
  // The position is the last id plus one, in the table's schema, keyed by pipeline and node.
  CHECK(pg.Value("SELECT pipeline || ' ' || node || ' ' || topic || ' ' || \"partition\" || ' ' "
                 "|| next_offset FROM shop.sluice_positions") == "pgsrc rows shop.orders 0 1001");
}

TEST_CASE(
    "postgres source: rows added while it runs are read; a stop and a restart continue "
    "from the stored position",
    "[integration][postgres][postgres-source]") {
  ThrowawayPostgres pg;
  TempDir dir;
  pg.Sql(kEventsTable);
  WritePipeline(dir, "events", "id", ", follow: \"${FOLLOW:-true}\"");
  std::string script = Prelude(pg, dir) + "sql \"" + InsertEvents(1, 200) + "\"\n" + R"SH(
start_run
wait_lines 200 30
)SH";
  // Rows committed while the source polls, a few at a time.
  for (int i = 0; i < 10; ++i) {
    script += "sql \"" + InsertEvents(201 + i * 30, 230 + i * 30) + "\"\nsleep 0.05\n";
  }
  script += R"SH(
wait_lines 500 30
stop_run TERM
echo "stored $(sql "SELECT next_offset FROM sluice_positions")"
)SH" + std::string("sql \"") +
            InsertEvents(501, 650) + R"SH("
export FOLLOW=false
start_run; wait $pid; echo "run exit $? at $(lines) lines"
)SH";
  auto r = Run(script);
  const std::string err = Slurp(dir / "run.err");
  INFO(r.out + r.err + err);
  CHECK(r.out.find("run exit 0 at 500 lines") != std::string::npos);
  CHECK(r.out.find("stored 501") != std::string::npos);
  CHECK(r.out.find("run exit 0 at 650 lines") != std::string::npos);
  CHECK(err.find("reading public.events by 'id' from 501") != std::string::npos);
  // A clean stop acknowledges everything it read: no row twice, none missing.
  auto ids = IdCounts(LinesOf(Slurp(dir / "out.jsonl")));
  REQUIRE(ids.size() == 650u);
  CHECK(ids.rbegin()->first == 650);
  for (const auto& [id, n] : ids) CHECK(n == 1);
}

TEST_CASE(
    "postgres source: killed mid-stream, a restart reads again only what was not "
    "acknowledged",
    "[integration][postgres][postgres-source]") {
  ThrowawayPostgres pg;
  TempDir dir;
  pg.Sql(kEventsTable);
  WritePipeline(dir, "events", "id", ", follow: \"${FOLLOW:-true}\"");
  std::string script = Prelude(pg, dir) + "export BATCH=20\nstart_run\n";
  for (int i = 0; i < 20; ++i) {
    script += "sql \"" + InsertEvents(1 + i * 100, 100 + i * 100) + "\"\nsleep 0.03\n";
    if (i == 12) script += "stop_run KILL\n";
  }
  script += R"SH(
echo "stored $(sql "SELECT next_offset FROM sluice_positions")"
export FOLLOW=false
start_run; wait $pid; echo "run exit $? at $(lines) lines"
)SH";
  auto r = Run(script);
  const std::string err = Slurp(dir / "run.err");
  INFO(r.out + r.err + err);
  long stored = 0;
  for (const auto& line : LinesOf(r.out))
    if (line.rfind("stored ", 0) == 0) stored = std::stol(line.substr(7));
  CHECK(r.out.find("run exit 137") != std::string::npos);  // SIGKILL: no drain, no last store
  REQUIRE(stored > 1);    // the first run stored positions before it was killed
  CHECK(stored <= 1301);  // and was killed before the last rows were inserted
  CHECK(r.out.find("run exit 0 at") != std::string::npos);
  auto ids = IdCounts(LinesOf(Slurp(dir / "out.jsonl")));
  size_t twice = 0;
  for (const auto& [id, n] : ids) twice += n > 1;
  INFO("stored " << stored << ", read twice " << twice);
  REQUIRE(ids.size() == 2000u);  // none missed
  for (const auto& [id, n] : ids) {
    INFO("id " << id);
    // Below the stored position: acknowledged, never read again.
    if (id < stored) CHECK(n == 1);
    if (id >= stored) CHECK(n <= 2);
  }
}

TEST_CASE(
    "postgres source: runs of equal timestamps are never split; start: latest skips "
    "what is there",
    "[integration][postgres][postgres-source]") {
  ThrowawayPostgres pg;
  TempDir dir;
  // 7 rows per second: batches of 10 end inside a run; one run of 15 is longer than a batch.
  // NULL and infinite timestamps have no position.
  pg.Sql(R"SQL(
CREATE TABLE ticks (id int, at timestamptz);
INSERT INTO ticks SELECT i, '2026-01-01 00:00:00+00'::timestamptz + (i / 7) * interval '1 second'
FROM generate_series(0, 69) i;
INSERT INTO ticks SELECT 100 + i, '2026-01-02 00:00:00+00' FROM generate_series(1, 15) i;
INSERT INTO ticks VALUES (-1, NULL), (-2, 'infinity');
)SQL");
  WritePipeline(dir, "ticks", "at", ", follow: false");
  std::ofstream(dir / "latest.yaml")
      << "name: pgsrc\nsources:\n  late: {type: postgres, url: \"${DATABASE_URL}\", table: ticks, "
         "column: at, start: latest, follow: false}\nsinks:\n  out: {type: file, inputs: [late], "
         "path: \"${OUT}.latest\", mode: append}\n";
  const std::string latest = Sluice() + " run --quiet " + (dir / "latest.yaml") + " 2>>" +
                             (dir / "run.err") + "; echo \"latest exit $?\"\n";
  const std::string script =
      Prelude(pg, dir) + "export BATCH=10\n" +
      "start_run; wait $pid; echo \"run exit $? at $(lines) lines\"\n" + latest +
      "sql \"INSERT INTO ticks VALUES (200, '2026-01-03 00:00:00+00')\"\n" + latest;
  auto r = Run(script);
  const std::string err = Slurp(dir / "run.err");
  INFO(r.out + r.err + err);
  CHECK(r.out.find("run exit 0 at 85 lines") != std::string::npos);
  auto ids = IdCounts(LinesOf(Slurp(dir / "out.jsonl")));
  CHECK(ids.size() == 85u);
  CHECK(ids.count(-1) == 0);
  CHECK(err.find("rows of public.ticks that are never read: 1 with a NULL and 1 with an "
                 "infinite 'at'") != std::string::npos);
  CHECK(err.find("15 rows share the value 2026-01-02T00:00:00Z of column 'at'") !=
        std::string::npos);
  // The position of a timestamp is microseconds since the epoch, plus one.
  CHECK(pg.Value("SELECT next_offset FROM sluice_positions WHERE node = 'rows'") ==
        "1767312000000001");
  // start: latest: nothing of what was there, then only the new row.
  CHECK(r.out.find("latest exit 0\nlatest exit 0") != std::string::npos);
  auto late = LinesOf(Slurp(dir / "out.jsonl.latest"));
  REQUIRE(late.size() == 1u);
  CHECK(late[0] == R"({"id":200,"at":"2026-01-03T00:00:00Z"})");
}

TEST_CASE("postgres source: start-up errors name the table, the column and the server",
          "[integration][postgres][postgres-source]") {
  ThrowawayPostgres pg;
  TempDir dir;
  pg.Sql("CREATE TABLE items (id int, price numeric, blob bytea);");
  auto run = [&](const std::string& table, const std::string& column, const std::string& extra,
                 const std::string& url) {
    WritePipeline(dir, table, column, extra);
    return Run("DATABASE_URL='" + url + "' OUT=" + (dir / "out") + " " + Sluice() +
               " run --quiet " + (dir / "p.yaml"));
  };
  const std::string schema = ", schema: " + Source("schemas/iris_data.json");
  auto missing_table = run("nope", "id", schema, pg.url());
  CHECK(missing_table.exit_code == 1);
  CHECK_THAT(missing_table.err,
             Catch::Contains("p.yaml:5:57: postgres 'rows': table public.nope does not exist"));
  auto missing_column = run("items", "idd", ", columns: [id]", pg.url());
  CHECK(missing_column.exit_code == 1);
  CHECK_THAT(missing_column.err,
             Catch::Contains("postgres 'rows': table public.items has no column 'idd'; did you "
                             "mean 'id'? (columns: id, price, blob)"));
  auto bad_type = run("items", "price", ", columns: [id]", pg.url());
  CHECK_THAT(bad_type.err, Catch::Contains("column 'price' of table public.items is numeric; the "
                                           "increasing column must be an integer"));
  auto unsupported = run("items", "id", "", pg.url());
  CHECK_THAT(unsupported.err,
             Catch::Contains("column 'blob' of table public.items is bytea, which has no Sluice "
                             "type"));
  auto schema_mismatch = run("items", "id", schema + ", columns: [id]", pg.url());
  CHECK_THAT(schema_mismatch.err,
             Catch::Contains("field 'timestamp' of the schema is not among the columns read"));
  auto unreachable =
      run("items", "id", schema + ", connect_timeout_ms: 1000",
          "postgresql://sluice@127.0.0.1:" + std::to_string(FreeLoopbackPort()) + "/postgres");
  CHECK(unreachable.exit_code == 1);
  CHECK_THAT(unreachable.err,
             Catch::Contains("postgres 'rows': cannot connect to PostgreSQL within "
                             "connect_timeout_ms (1000 ms)"));
}

TEST_CASE("postgres source: text from a LATIN1 database arrives as UTF-8",
          "[integration][postgres][postgres-source]") {
  ThrowawayPostgres pg;
  TempDir dir;
  const std::string url = pg.CreateDatabase("latin", "LATIN1");
  // é is chr(233) and ï chr(239) in LATIN1: one byte each in the database.
  auto made = Run("psql -X -q -v ON_ERROR_STOP=1 -d '" + url +
                  "' -c \"CREATE TABLE words (id int PRIMARY KEY, s text); INSERT INTO words "
                  "VALUES (1, 'caf' || chr(233)), (2, 'na' || chr(239) || 've')\"");
  REQUIRE(made.exit_code == 0);
  WritePipeline(dir, "words", "id", ", follow: false");
  // A PGCLIENTENCODING in the environment does not change it either.
  auto r = Run("PGCLIENTENCODING=LATIN1 DATABASE_URL='" + url + "' OUT=" + (dir / "out.jsonl") +
               " " + Sluice() + " run --quiet " + (dir / "p.yaml"));
  INFO(r.out + r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(LinesOf(Slurp(dir / "out.jsonl")) ==
        std::vector<std::string>{"{\"id\":1,\"s\":\"caf\xc3\xa9\"}",
                                 "{\"id\":2,\"s\":\"na\xc3\xafve\"}"});
}

TEST_CASE(
    "postgres source: the database restarting mid-stream pauses the pipeline, loses "
    "nothing",
    "[integration][postgres][postgres-source][faults]") {
  ThrowawayPostgres pg;
  TempDir dir;
  pg.Sql(kEventsTable);
  WritePipeline(dir, "events", "id", "");
  const std::string script = Prelude(pg, dir) + "sql \"" + InsertEvents(1, 300) + "\"\n" +
                             R"SH(
start_run
wait_lines 300 30
)SH" + pg.StopCommand() + "\nsleep 1.5\n" +
                             pg.StartCommand() + "\nsql \"" + InsertEvents(301, 600) + R"SH("
wait_lines 600 30
stop_run TERM
echo "stored $(sql "SELECT next_offset FROM sluice_positions")"
)SH";
  auto r = Run(script);
  pg.SetRunning(true);
  const std::string err = Slurp(dir / "run.err");
  INFO(r.out + r.err + err);
  CHECK(r.out.find("run exit 0 at 600 lines") != std::string::npos);
  CHECK(r.out.find("stored 601") != std::string::npos);
  CHECK(err.find("retrying in") != std::string::npos);
  CHECK(err.find("reading from PostgreSQL again") != std::string::npos);
  auto ids = IdCounts(LinesOf(Slurp(dir / "out.jsonl")));
  CHECK(ids.size() == 600u);
  for (const auto& [id, n] : ids) CHECK(n == 1);
}

TEST_CASE(
    "postgres source: pipelines/iris-source.yaml feeds pipelines/iris.yaml through the "
    "development broker",
    "[integration][postgres][postgres-source][kafka]") {
  ThrowawayPostgres pg;
  TempDir dir;
  pg.Sql(Slurp(Source("pipelines/sql/iris_data.sql")));
  pg.Sql(Slurp(Source("pipelines/sql/iris_prediction.sql")));
  const std::string bs = dir / "bootstrap.txt";
  const std::string script =
      "export DATABASE_URL='" + pg.url() + "' SLUICE_OUT=" + dir.path().string() + "\n" + Sluice() +
      " dev-kafka -t postgres-source-iris_data:1 -t iris-predictions:1 --run-seconds 60 " +
      "--bootstrap-file " + bs + " >/dev/null 2>" + (dir / "broker.err") +
      " &\nbroker=$!\nfor i in $(seq 1 100); do [ -s " + bs +
      " ] && break; sleep 0.1; done\nexport KAFKA_BROKERS=$(cat " + bs + ")\n" + Sluice() +
      " run --quiet " + Source("pipelines/iris-source.yaml") + " 2>" + (dir / "source.err") +
      " &\nsrc=$!\n" + Sluice() + " run --quiet " + Source("pipelines/iris.yaml") + " 2>" +
      (dir / "iris.err") + R"SH( &
iris=$!
count() { psql -X -At -d "$DATABASE_URL" -c "SELECT count(*) FROM iris_prediction" 2>/dev/null || echo 0; }
for i in $(seq 1 200); do [ "$(count)" -ge 6 ] && break; sleep 0.1; done
kill -TERM $src $iris; wait $src; echo "source exit $?"; wait $iris; echo "iris exit $?"
timeout 10 kcat -C -b "$KAFKA_BROKERS" -t postgres-source-iris_data -e -o beginning -q > )SH" +
      (dir / "topic.txt") + R"SH(
kill -TERM $broker; wait $broker
)SH";
  auto r = Run(script);
  INFO(r.out + r.err + Slurp(dir / "source.err") + Slurp(dir / "iris.err") +
       Slurp(dir / "broker.err"));
  CHECK(r.out.find("source exit 0") != std::string::npos);
  CHECK(r.out.find("iris exit 0") != std::string::npos);
  auto topic = LinesOf(Slurp(dir / "topic.txt"));
  REQUIRE(topic.size() == 6u);
  // The envelope of Kafka Connect's JsonConverter, as the seed's consumer reads it.
  CHECK(topic[1].rfind(R"({"schema":{"type":"struct","fields":[{"type":"int32","optional":false,)"
                       R"("field":"id"},)",
                       0) == 0);
  CHECK(topic[1].find(R"(,"payload":{"id":2,"timestamp":"2026-01-01T00:00:01.006000Z",)"
                      R"("sepal_length":4.9,"sepal_width":3,"petal_length":1.4,)"
                      R"("petal_width":0.2,"target":0}})") != std::string::npos);
  // iris.yaml's connect-json source decoded every envelope and classified it into the seed's
  // table: each source row once, with its own timestamp, and the class it is labelled with.
  CHECK(pg.Value("SELECT count(*) FROM iris_prediction") == "6");
  CHECK(pg.Value("SELECT count(*) FROM iris_prediction p JOIN iris_data d USING (id) WHERE "
                 "p.timestamp = d.timestamp AND p.iris_class = d.target") == "6");
}
