// Seed 000's whole flow with Sluice alone and the seed's model API: rows of the iris_data table
// (pipelines/iris-source.yaml) → the Connect topic on the development broker → the FastAPI model
// server's POST /predict (pipelines/iris-api.yaml) → the seed's iris_prediction table. The model
// server is killed mid-stream and started again: the pipeline pauses, and every row still ends
// up in the table once, classified as the in-process model classifies it. Every server is
// started here on loopback and stopped at the end; every wait is bounded.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "tests/integration/postgres.h"

using namespace sluice::testing;

namespace {

// The valid payloads of the shipped envelopes as CSV rows of iris_data.
const char* kToCsv = R"PY(
import csv, json, math, sys
from datetime import datetime, timezone
out = csv.writer(open(sys.argv[2], "w", newline=""))
n = 0
for line in open(sys.argv[1]):
    try:
        p = json.loads(line)["payload"]
        row = [int(p["id"]), datetime.fromtimestamp(p["timestamp"] / 1000, timezone.utc)
               .strftime("%Y-%m-%d %H:%M:%S.%f")]
        row += [float(p[k]) for k in ("sepal_length", "sepal_width", "petal_length",
                                      "petal_width")]
        row.append(int(p["target"]))
        if not all(math.isfinite(v) for v in row[2:6]):
            continue
    except Exception:
        continue
    out.writerow(row)
    n += 1
print(n)
)PY";

std::map<int, int> ClassesOfFile(const std::string& path) {
  static const std::regex kRow(R"(^\{"id":(\d+),"iris_class":(\d+)\}$)");
  std::map<int, int> out;
  std::istringstream in(Slurp(path));
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (std::regex_match(l, m, kRow)) out[std::stoi(m[1])] = std::stoi(m[2]);
  }
  return out;
}

}  // namespace

TEST_CASE("seed 000 end to end: table → topic → model API → table, the API killed mid-stream",
          "[integration][postgres][kafka][http][seed]") {
  TempDir dir;
  ThrowawayPostgres pg;
  pg.Sql(Slurp(Source("pipelines/sql/iris_data.sql")) + "\nTRUNCATE iris_data;\n" +
         Slurp(Source("pipelines/sql/iris_prediction.sql")));
  std::ofstream(dir / "to_csv.py") << kToCsv;
  auto conv = Run("python3 " + (dir / "to_csv.py") + " " +
                  Source("pipelines/data/iris_data.jsonl") + " " + (dir / "rows.csv"));
  REQUIRE(conv.exit_code == 0);
  const int rows = std::stoi(conv.out);
  REQUIRE(rows >= 1400);
  pg.Sql("\\copy iris_data FROM '" + (dir / "rows.csv") + "' WITH (FORMAT csv)");
  REQUIRE(pg.Value("SELECT count(*) FROM iris_data") == std::to_string(rows));

  // The in-process model's classes for the same rows, from the file.
  std::ofstream(dir / "local.yaml")
      << "name: local\nsources:\n  iris_data: {type: file, path: " +
             Source("pipelines/data/iris_data.jsonl") +
             ", format: connect-json, schema: " + Source("schemas/iris_data.json") +
             "}\ntransforms:\n  classify: {type: predict, inputs: [iris_data], model: " +
             Source("models/iris") +
             ", outputs: {iris_class: label}}\n"
             "  prediction: {type: select, inputs: [classify], fields: [id, iris_class]}\n"
             "sinks:\n  out: {type: file, inputs: [prediction], path: " +
             (dir / "local.jsonl") + "}\ndead_letter: {path: " + (dir / "local.dead.jsonl") +
             "}\n";
  REQUIRE(Run(Sluice() + " run --quiet " + (dir / "local.yaml")).exit_code == 0);
  const auto expected = ClassesOfFile(dir / "local.jsonl");
  REQUIRE(expected.size() >= static_cast<size_t>(rows));

  const std::string bs = dir / "bootstrap.txt";
  const std::string port_file = dir / "port.txt";
  const std::string start_server =
      "rm -f " + port_file + "\n/usr/bin/python3 " + Source("tests/integration/model_server.py") +
      " --model " + Source("models/iris") + " --port-file " + port_file +
      " $SERVER_ARGS >>" + (dir / "server.log") +
      " 2>&1 &\nserver=$!\nfor i in $(seq 1 150); do [ -s " + port_file +
      " ] && break; sleep 0.1; done\nPORT=$(cat " + port_file +
      ")\nfor i in $(seq 1 100); do curl -sf http://127.0.0.1:$PORT/health >/dev/null && break; "
      "sleep 0.1; done\n";
  const std::string script =
      "export DATABASE_URL='" + pg.url() + "' SLUICE_OUT=" + dir.path().string() +
      "\ntrap 'kill -9 $server 2>/dev/null' EXIT\n" + Sluice() +
      " dev-kafka -t postgres-source-iris_data:2 --run-seconds 150 --bootstrap-file " + bs +
      " >/dev/null 2>" + (dir / "broker.err") + " &\nbroker=$!\nfor i in $(seq 1 100); do [ -s " +
      bs + " ] && break; sleep 0.1; done\nexport KAFKA_BROKERS=$(cat " + bs + ")\n" +
      // Slow enough (16 requests at a time, 20 ms each: ~2 s for the rows) that the kill below,
      // once 200 rows are answered, lands mid-stream; fast again after the restart.
      "SERVER_ARGS='--delay-ms 20'\n" + start_server +
      "export MODEL_API_URL=http://127.0.0.1:$PORT\n" + Sluice() + " run --quiet " +
      Source("pipelines/iris-source.yaml") + " 2>" + (dir / "source.err") + " &\nsrc=$!\n" +
      Sluice() + " run --quiet " + Source("pipelines/iris-api.yaml") + " 2>" + (dir / "api.err") +
      R"SH( &
api=$!
count() { psql -X -At -d "$DATABASE_URL" -c "SELECT count(*) FROM iris_prediction" 2>/dev/null || echo 0; }
wait_count() {
  end=$(($(date +%s) + $2))
  while [ "$(date +%s)" -lt $end ]; do [ "$(count)" -ge "$1" ] && return 0; sleep 0.1; done
  return 1
}
answered() { n=$(curl -sf http://127.0.0.1:$PORT/answered | tr -dc 0-9); echo "${n:-0}"; }
end=$(($(date +%s) + 60))
while [ "$(date +%s)" -lt $end ] && [ "$(answered)" -lt 200 ]; do sleep 0.02; done
kill -9 $server; wait $server 2>/dev/null
echo "killed at $(count) rows"
sleep 3
echo "after 3 s down: $(count) rows"
SERVER_ARGS="--delay-ms 2 --port $PORT"
)SH" + start_server + "wait_count " + std::to_string(rows) + R"SH( 90
sleep 1
kill -TERM $src $api; wait $src; echo "source exit $?"; wait $api; echo "api exit $?"
kill -TERM $broker; wait $broker
)SH";
  auto r = Run(script);
  const std::string api_err = Slurp(dir / "api.err");
  INFO(r.out + r.err + Slurp(dir / "source.err") + api_err + Slurp(dir / "broker.err"));
  CHECK(r.out.find("source exit 0") != std::string::npos);
  CHECK(r.out.find("api exit 0") != std::string::npos);
  std::smatch m;
  REQUIRE(std::regex_search(r.out, m, std::regex(R"(killed at (\d+) rows)")));
  CHECK(std::stoi(m[1]) < rows);  // the outage came mid-stream
  REQUIRE(std::regex_search(r.out, m, std::regex(R"(after 3 s down: (\d+) rows)")));
  CHECK(std::stoi(m[1]) < rows);  // and paused it
  CHECK(api_err.find("retrying in") != std::string::npos);
  // Every source row once, with its timestamp, classified as the in-process model does.
  CHECK(pg.Value("SELECT count(*) FROM iris_prediction") == std::to_string(rows));
  CHECK(pg.Value("SELECT count(*) FROM iris_prediction p JOIN iris_data d USING (id) WHERE "
                 "p.timestamp = d.timestamp") == std::to_string(rows));
  std::map<int, int> got;
  std::istringstream table(pg.Sql("SELECT id, iris_class FROM iris_prediction"));
  for (std::string l; std::getline(table, l);) {
    const size_t bar = l.find('|');
    if (bar != std::string::npos) got[std::stoi(l.substr(0, bar))] = std::stoi(l.substr(bar + 1));
  }
  int differ = 0;
  for (const auto& [id, cls] : got) differ += expected.count(id) == 0 || expected.at(id) != cls;
  CHECK(differ == 0);
}
