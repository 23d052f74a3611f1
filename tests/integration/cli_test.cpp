// The `sluice` command line, run as a user runs it: exit codes, output formats, the demo end to
// end into SQLite, draining on SIGTERM, and the generated docs being current.
#include <sqlite3.h>

#include <simdjson.h>
#include <catch2/catch.hpp>

#include <map>

#include "tests/integration/process.h"

using namespace sluice::testing;

namespace {

int64_t SqliteCount(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(h);
  return n;
}

size_t CountLines(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

// The last JSON log line on stderr: the run summary.
simdjson::dom::element Summary(simdjson::dom::parser& parser, const std::string& err,
                               simdjson::padded_string& keep) {
  std::string last;
  std::stringstream ss(err);
  for (std::string l; std::getline(ss, l);)
    if (l.find("records_read") != std::string::npos) last = l;
  keep = simdjson::padded_string(last);
  return parser.parse(keep);
}

}  // namespace

TEST_CASE("validate: exit codes and every problem in one run", "[integration][cli]") {
  auto ok = Run(Sluice() + " validate " + Source("pipelines/iris-demo.yaml"));
  INFO(ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(ok.err.find("valid") != std::string::npos);

  auto bad = Run(Sluice() + " validate " +
                 Source("tests/golden/errors/all_problems_at_once/pipeline.yaml") + " " +
                 Source("pipelines/iris-demo.yaml"));
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("invalid (4 errors)") != std::string::npos);
  CHECK(bad.err.find("pipeline.yaml:9:43: error: stdout 'out': unknown key 'colour'") !=
        std::string::npos);

  auto usage = Run(Sluice() + " validate --format yaml x.yaml");
  CHECK(usage.exit_code == 2);
  auto none = Run(Sluice() + " frobnicate");
  CHECK(none.exit_code == 2);
}

TEST_CASE("validate --format json is machine-readable", "[integration][cli]") {
  auto r = Run(Sluice() + " validate --format json " +
               Source("tests/golden/errors/model_signature/pipeline.yaml"));
  CHECK(r.exit_code == 1);
  simdjson::dom::parser parser;
  simdjson::padded_string padded(r.out);
  simdjson::dom::element doc;
  REQUIRE_FALSE(parser.parse(padded).get(doc));
  auto first = doc.at(0);
  CHECK(bool(first["valid"]) == false);
  auto problem = first["problems"].at(0);
  CHECK(std::string_view(problem["severity"]) == "error");
  CHECK(int64_t(problem["line"]) == 5);
  CHECK(int64_t(problem["column"]) == 56);
  CHECK(std::string_view(problem["node"]) == "classify");
  CHECK(std::string(std::string_view(problem["message"])).find("model input 'petal_width'") !=
        std::string::npos);
}

TEST_CASE("graph prints DOT and Mermaid", "[integration][cli]") {
  auto dot = Run(Sluice() + " graph " + Source("pipelines/iris-demo.yaml"));
  CHECK(dot.exit_code == 0);
  CHECK(dot.out.find("\"iris_data\" -> \"features\"") != std::string::npos);
  CHECK(dot.out.find("\"prediction\" -> \"target_db\"") != std::string::npos);
  auto mm = Run(Sluice() + " graph --format mermaid " + Source("pipelines/iris-demo.yaml"));
  CHECK(mm.exit_code == 0);
  CHECK(mm.out.rfind("flowchart LR", 0) == 0);
  CHECK(CountLines(mm.out) == 1 + 5 + 4);  // header, 5 nodes, 4 edges
}

TEST_CASE("the committed operator reference and pipeline schema are current",
          "[integration][docs]") {
  auto docs = Run(Sluice() + " operators --docs");
  REQUIRE(docs.exit_code == 0);
  INFO("regenerate with: build/sluice operators --docs -o docs/operators.md");
  CHECK(docs.out == Slurp(Source("docs/operators.md")));
  auto schema = Run(Sluice() + " operators --json-schema");
  REQUIRE(schema.exit_code == 0);
  INFO("regenerate with: build/sluice operators --json-schema -o schemas/pipeline.schema.json");
  CHECK(schema.out == Slurp(Source("schemas/pipeline.schema.json")));
}

TEST_CASE("the iris demo writes every good record to SQLite and dead-letters the rest",
          "[integration][demo]") {
  TempDir out;
  auto r = Run("SLUICE_OUT=" + out.path().string() + " " + Sluice() + " --log-format json run " +
               Source("pipelines/iris-demo.yaml"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const std::string input = Slurp(Source("pipelines/data/iris_data.jsonl"));
  const size_t input_lines = CountLines(input);
  const size_t dead = CountLines(Slurp(out / "iris-demo.dead-letter.jsonl"));
  CHECK(dead == 4);
  const int64_t rows = SqliteCount(out / "iris.db", "SELECT count(*) FROM iris_prediction");
  CHECK(rows == static_cast<int64_t>(input_lines - dead));

  simdjson::dom::parser parser;
  simdjson::padded_string keep;
  auto summary = Summary(parser, r.err, keep);
  CHECK(int64_t(summary["records_read"]) == static_cast<int64_t>(input_lines));
  CHECK(int64_t(summary["rows_written"]) == rows);
  CHECK(int64_t(summary["dead_letters"]) == static_cast<int64_t>(dead));
  CHECK(std::string_view(summary["outcome"]) == "finished");

  // Every prediction is the true class of its row (the model fits iris perfectly): match rows
  // by timestamp, which is unique per input line.
  std::map<std::string, int64_t> target;
  simdjson::dom::parser p;
  std::stringstream ss(input);
  for (std::string line; std::getline(ss, line);) {
    simdjson::padded_string pl(line);
    simdjson::dom::element doc;
    if (p.parse(pl).get(doc)) continue;
    int64_t ts, cls;
    if (doc["payload"]["timestamp"].get(ts) || doc["payload"]["target"].get(cls)) continue;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(ts));
    target[buf] = cls;
  }
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open_v2((out / "iris.db").c_str(), &h, SQLITE_OPEN_READONLY, nullptr) ==
          SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(h,
                             "SELECT CAST(round((julianday(timestamp) - 2440587.5) * 86400000) "
                             "AS INTEGER), iris_class FROM iris_prediction",
                             -1, &st, nullptr) == SQLITE_OK);
  int checked = 0, wrong = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    auto it = target.find(std::to_string(sqlite3_column_int64(st, 0)));
    if (it == target.end()) continue;
    ++checked;
    wrong += it->second != sqlite3_column_int64(st, 1);
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  CHECK(checked == rows);
  CHECK(wrong == 0);
}

TEST_CASE("SIGTERM drains: what was acknowledged is in the database, exit code 0",
          "[integration][shutdown]") {
  TempDir out;
  // About three million records: long enough to be stopped half-way.
  const std::string cmd = "SLUICE_OUT=" + out.path().string() + " IRIS_REPEAT=2000 " + Sluice() +
                          " --log-format json run " + Source("pipelines/iris-demo.yaml");
  auto r = Run("( " + cmd + " & pid=$!; sleep 1; kill -TERM $pid; wait $pid )");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  simdjson::dom::parser parser;
  simdjson::padded_string keep;
  auto summary = Summary(parser, r.err, keep);
  const int64_t written = int64_t(summary["rows_written"]);
  const int64_t read = int64_t(summary["records_read"]);
  const int64_t dead = int64_t(summary["dead_letters"]);
  CHECK(std::string_view(summary["outcome"]) == "stopped");
  CHECK(read < 2000 * 1504);      // it really stopped early
  CHECK(read == written + dead);  // drained: nothing read was left in flight
  CHECK(SqliteCount(out / "iris.db", "SELECT count(*) FROM iris_prediction") == written);
}

TEST_CASE("sluice test runs a pipeline's cases and fails on a wrong expectation",
          "[integration][cli]") {
  TempDir dir;
  const std::string pipeline = R"(
sources:
  iris_data: {type: file, path: none.jsonl, format: connect-json, schema: )" +
                               Source("schemas/iris_data.json") + R"(}
transforms:
  features: {type: drop-fields, inputs: [iris_data], fields: [id, target]}
  classify: {type: predict, inputs: [features], model: )" +
                               Source("models/iris") + R"(, outputs: {iris_class: label}}
sinks:
  db: {type: stdout, inputs: [classify]}
tests:
  - name: a virginica
    input:
      node: classify
      records:
        - {timestamp: "2026-01-01T00:00:00Z", sepal_length: 6.9, sepal_width: 3.1, petal_length: 5.4, petal_width: 2.1}
    expect:
      node: db
      records: [{iris_class: 2}]
)";
  std::ofstream(dir / "p.yaml") << pipeline;
  auto ok = Run(Sluice() + " test " + (dir / "p.yaml"));
  INFO(ok.out + ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("1 passed, 0 failed") != std::string::npos);

  std::string wrong = pipeline;
  wrong.replace(wrong.find("iris_class: 2"), 13, "iris_class: 1");
  std::ofstream(dir / "p.yaml") << wrong;
  auto bad = Run(Sluice() + " test " + (dir / "p.yaml"));
  CHECK(bad.exit_code == 1);
  CHECK(bad.out.find("'iris_class' is 2, expected 1") != std::string::npos);
}

TEST_CASE("sluice test checks a .tests.yaml file as it checks a pipeline file",
          "[integration][cli]") {
  TempDir dir;
  std::ofstream(dir / "p.yaml") << R"(
sources:
  in: {type: file, path: none.jsonl, schema: )" + Source("schemas/iris_data.json") + R"(}
sinks:
  out: {type: stdout, inputs: [in]}
)";
  const std::string side = dir / "p.tests.yaml";
  auto run = [&](const std::string& text) {
    std::ofstream(side) << text;
    auto r = Run(Sluice() + " test " + (dir / "p.yaml"));
    INFO(r.out + r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find("p.tests.yaml: invalid test file, its tests not run") != std::string::npos);
    return r.err;
  };
  // A key given twice: the first expectation would have been dropped silently.
  std::string err = run(R"(- name: twice
  input: {node: in, records: [{id: 1}]}
  expect: {node: out, count: 1}
  expect: {node: out, count: 0}
)");
  CHECK(err.find("p.tests.yaml:4:3: error: key 'expect' is given twice") != std::string::npos);
  // Aliases of aliases: a few lines that expand without bound, refused instead of walked.
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'k'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + static_cast<char>(c - 1);
    bomb += "]\n";
  }
  err = run(bomb);
  CHECK(err.find("p.tests.yaml:") != std::string::npos);
  CHECK(err.find("alias") != std::string::npos);
  // A second document.
  err = run("- name: one\n---\n- name: two\n");
  CHECK(err.find("p.tests.yaml:2:1: error: a second YAML document starts here; a test file holds "
                 "one list of test cases") != std::string::npos);
  // Invalid YAML keeps its position.
  err = run("- name: [unclosed\n");
  CHECK(err.find("p.tests.yaml:") != std::string::npos);
  CHECK(err.find("invalid YAML") != std::string::npos);
}

TEST_CASE("input that cannot fit the configuration stops the run instead of dead-lettering all",
          "[integration][cli]") {
  TempDir dir;
  std::ofstream(dir / "s.json") << R"({"type": "object", "properties": {
      "name": {"type": "string"}, "size": {"type": "number"}}, "required": ["name", "size"]})";
  std::ofstream(dir / "in.csv") << "name,weight\na,1\nb,2\n";
  std::ofstream(dir / "p.yaml") << R"(
sources:
  rows: {type: file, path: in.csv, format: csv, schema: s.json}
sinks:
  out: {type: file, inputs: [rows], path: out.jsonl}
dead_letter: {path: dead.jsonl}
)";
  auto r = Run(Sluice() + " --log-format json run " + (dir / "p.yaml"));
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("the header has no column 'size'") != std::string::npos);
  CHECK(r.err.find("\"outcome\":\"failed\"") != std::string::npos);  // the summary still comes
}

TEST_CASE("rows the table refuses are dead-lettered and not counted as written",
          "[integration][demo]") {
  TempDir out;
  {
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open((out / "iris.db").c_str(), &h) == SQLITE_OK);
    REQUIRE(sqlite3_exec(h,
                         "CREATE TABLE iris_prediction (timestamp TEXT UNIQUE, iris_class "
                         "INTEGER)",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(h);
  }
  // The file is read twice: the second pass repeats every timestamp.
  auto r = Run("SLUICE_OUT=" + out.path().string() + " IRIS_REPEAT=2 " + Sluice() +
               " --log-format json run " + Source("pipelines/iris-demo.yaml"));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  simdjson::dom::parser parser;
  simdjson::padded_string keep;
  auto summary = Summary(parser, r.err, keep);
  CHECK(int64_t(summary["records_read"]) == 2 * 1504);
  CHECK(int64_t(summary["rows_written"]) == 1500);
  CHECK(int64_t(summary["dead_letters"]) == 8 + 1500);
  CHECK(SqliteCount(out / "iris.db", "SELECT count(*) FROM iris_prediction") == 1500);
  CHECK(Slurp(out / "iris-demo.dead-letter.jsonl").find("UNIQUE constraint failed") !=
        std::string::npos);
}

// `sluice run` and `sluice dev-kafka` start themselves once more with glibc.malloc.hugetlb=1 when
// the kernel gives transparent huge pages on request (main.cpp). What the process was last
// started with is /proc/PID/environ; the variable SLUICE_SAVED_GLIBC_TUNABLES marks the second
// start.
TEST_CASE("run and dev-kafka ask for huge pages for the heap unless told not to",
          "[integration][cli]") {
  std::string mode = Slurp("/sys/kernel/mm/transparent_hugepage/enabled");
  const bool on_request = mode.find("[madvise]") != std::string::npos;
  INFO("transparent_hugepage/enabled: " << mode);

  auto start_environ = [](const std::string& env) {
    TempDir dir;
    const std::string bs = dir / "bootstrap.txt";
    CommandResult r =
        Run(env + " " + Sluice() + " dev-kafka --run-seconds 20 -t t:1 --bootstrap-file " + bs +
            " >/dev/null 2>" + (dir / "broker.err") +
            " &\nbroker=$!\nfor i in $(seq 1 100); do [ -s " + bs +
            " ] && break; sleep 0.1; done\ntr '\\0' '\\n' </proc/$broker/environ\n"
            "echo \"comm=$(cat /proc/$broker/comm)\"\n"
            "kill -TERM $broker; wait $broker");
    INFO(Slurp(dir / "broker.err"));
    REQUIRE(r.exit_code == 0);
    std::map<std::string, std::string> vars;
    for (const auto& line : LinesOf(r.out)) {
      size_t eq = line.find('=');
      if (eq != std::string::npos) vars[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return vars;
  };

  SECTION("by default: a second start with the tunable, on kernels that give them on request") {
    auto vars = start_environ("env -u GLIBC_TUNABLES");
    if (on_request) {
      CHECK(vars["SLUICE_SAVED_GLIBC_TUNABLES"] == "0");  // unset before: unset again after
      CHECK(vars["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1");
    } else {
      CHECK(vars.count("SLUICE_SAVED_GLIBC_TUNABLES") == 0);
      CHECK(vars.count("GLIBC_TUNABLES") == 0);
    }
    CHECK(vars["comm"] == "sluice");  // ps and pkill find it by its own name, not "exe"
  }
  SECTION("the user's own tunables are kept") {
    auto vars = start_environ("GLIBC_TUNABLES=glibc.malloc.tcache_count=8");
    if (on_request) {
      CHECK(vars["SLUICE_SAVED_GLIBC_TUNABLES"] == "1glibc.malloc.tcache_count=8");
    } else {
      CHECK(vars.count("SLUICE_SAVED_GLIBC_TUNABLES") == 0);
    }
  }
  SECTION("glibc.malloc.hugetlb=0 opts out: no second start") {
    auto vars = start_environ("GLIBC_TUNABLES=glibc.malloc.hugetlb=0");
    CHECK(vars.count("SLUICE_SAVED_GLIBC_TUNABLES") == 0);
    CHECK(vars["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=0");
  }
}
