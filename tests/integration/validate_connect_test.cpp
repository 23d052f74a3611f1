// `sluice validate --connect` against real services: a throwaway PostgreSQL, the development
// broker and the FastAPI model server (tests/integration/model_server.py), all on loopback. Each
// pipeline is valid on its own, so what the command reports comes from asking the services: a
// topic that does not exist, a column of the wrong type, a role without the INSERT privilege, a
// model the server does not serve or whose input tensor does not fit, a webhook host that takes no
// connection. Nothing is written: a table the sink would create is still missing afterwards, and
// the webhook's host is sent nothing.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <string>

#include "tests/integration/postgres.h"
#include "tests/integration/process.h"

using namespace sluice::testing;

namespace {

// The line (1-based) of the first occurrence of `needle` in `text`.
int LineOf(const std::string& text, const std::string& needle) {
  const size_t at = text.find(needle);
  if (at == std::string::npos) return -1;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n'));
}

// The problems of `sluice validate --format json` output as "line: message" strings.
std::vector<std::string> Problems(const std::string& json) {
  static const std::regex kProblem(
      R"re("severity":"error","file":"[^"]*","line":(\d+),"column":\d+,"node":"([^"]*)","message":"((?:[^"\\]|\\.)*)")re");
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(json.begin(), json.end(), kProblem);
       it != std::sregex_iterator(); ++it) {
    out.push_back((*it)[1].str() + " " + (*it)[2].str() + ": " + (*it)[3].str());
  }
  return out;
}

bool Has(const std::vector<std::string>& problems, const std::string& start,
         const std::string& text) {
  for (const auto& p : problems)
    if (p.rfind(start, 0) == 0 && p.find(text) != std::string::npos) return true;
  return false;
}

const std::string kSchema = Source("schemas/iris_data.json");
const std::string kModel = Source("models/iris");

}  // namespace

TEST_CASE(
    "validate --connect asks the brokers, the database and the model server, and writes "
    "nothing",
    "[integration][validate]") {
  ThrowawayPostgres pg;
  pg.Sql(
      "CREATE TABLE iris_prediction (id bigint PRIMARY KEY, timestamp timestamp, "
      "iris_class integer);\n"
      "CREATE TABLE bad_prediction (id bigint, timestamp timestamp, iris_class timestamp);\n"
      "CREATE TABLE iris_data (id bigint, timestamp timestamp, sepal_length float8, "
      "sepal_width float8, petal_length float8, petal_width float8, target integer);\n"
      "CREATE ROLE reader LOGIN;\nGRANT SELECT ON iris_prediction TO reader;\n"
      "CREATE TABLE reader_prediction (id bigint, timestamp timestamp, iris_class integer);\n"
      "GRANT SELECT, INSERT ON reader_prediction TO reader;\n");
  TempDir dir;

  const std::string good =
      "name: good\nsources:\n"
      "  iris_data: {type: kafka, brokers: \"${KAFKA_BROKERS}\", topic: iris-in, group: g, "
      "format: connect-json, schema: " +
      kSchema +
      "}\n"
      "transforms:\n"
      "  classify:\n    type: predict\n    inputs: [iris_data]\n    model: " +
      kModel +
      "\n"
      "    backend: kserve-v2\n    url: http://127.0.0.1:${PORT}\n"
      "    outputs: {iris_class: label}\n"
      "  prediction: {type: select, inputs: [classify], fields: [id, timestamp, iris_class]}\n"
      "sinks:\n"
      "  target_db: {type: postgres, inputs: [prediction], url: \"${DATABASE_URL}\", "
      "table: iris_prediction, mode: upsert, key: [id]}\n"
      "  made_db: {type: postgres, inputs: [prediction], url: \"${DATABASE_URL}\", "
      "table: made_at_start, create: true}\n"
      "  out_topic: {type: kafka, inputs: [prediction], brokers: \"${KAFKA_BROKERS}\", "
      "topic: iris-out}\n";
  const std::string good2 =
      "name: good2\nsources:\n"
      "  iris_rows: {type: postgres, url: \"${DATABASE_URL}\", table: iris_data, column: id}\n"
      "transforms:\n"
      "  by_mlflow: {type: predict, inputs: [iris_rows], model: " +
      kModel +
      ", backend: mlflow, url: \"http://127.0.0.1:${PORT}\", outputs: {c1: label}}\n"
      "  by_json: {type: predict, inputs: [by_mlflow], model: " +
      kModel +
      ", backend: json, url: \"http://127.0.0.1:${PORT}/predict\", "
      "outputs: {iris_class: iris_class}}\n"
      "sinks:\n  out: {type: stdout, inputs: [by_json]}\n"
      "  alert: {type: http, inputs: [by_json], url: "
      "\"http://hook:TOKEN@127.0.0.1:${HOOK_PORT}/services/T0/SECRET\", format: json}\n";
  const std::string bad =
      "name: bad\nsources:\n"
      "  iris_data: {type: kafka, brokers: \"${KAFKA_BROKERS}\", topic: iris-inn, group: g, "
      "format: connect-json, schema: " +
      kSchema +
      "}\n"
      "transforms:\n"
      "  classify:\n    type: predict\n    inputs: [iris_data]\n    model: " +
      kModel +
      "\n"
      "    backend: kserve-v2\n    url: http://127.0.0.1:${PORT}\n    model_name: irsi\n"
      "    outputs: {iris_class: label}\n"
      "  fp32:\n    type: predict\n    inputs: [iris_data]\n    model: " +
      kModel +
      "\n"
      "    backend: kserve-v2\n    url: http://127.0.0.1:${PORT}\n    datatype: FP32\n"
      "    outputs: {iris_class: label}\n"
      "  three:\n    type: predict\n    inputs: [iris_data]\n    backend: kserve-v2\n"
      "    url: http://127.0.0.1:${PORT}\n    model_name: iris\n"
      "    features: [sepal_length, sepal_width, petal_length]\n"
      "    outputs: {score: value}\n"
      "  prediction: {type: select, inputs: [classify], fields: [id, timestamp, iris_class]}\n"
      "sinks:\n"
      "  wrong_type: {type: postgres, inputs: [prediction], url: \"${DATABASE_URL}\", "
      "table: bad_prediction}\n"
      "  no_grant: {type: postgres, inputs: [prediction], url: \"${READER_URL}\", "
      "table: iris_prediction}\n"
      "  no_create: {type: postgres, inputs: [prediction], url: \"${READER_URL}\", "
      "table: made_by_reader, create: true}\n"
      "  fp32_out: {type: stdout, inputs: [fp32]}\n"
      "  three_out: {type: stdout, inputs: [three]}\n";
  // Exactly-once keeps the positions in a table the sink creates at start: the role needs
  // CREATE on its schema.
  const std::string eo =
      "name: eo\nsources:\n"
      "  iris_data: {type: kafka, brokers: \"${KAFKA_BROKERS}\", topic: iris-in, group: g, "
      "format: connect-json, schema: " +
      kSchema +
      "}\n"
      "transforms:\n"
      "  prediction: {type: select, inputs: [iris_data], fields: [id, timestamp]}\n"
      "sinks:\n"
      "  rows: {type: postgres, inputs: [prediction], url: \"${READER_URL}\", "
      "table: reader_prediction,\n         delivery: exactly-once}\n";
  const int closed = FreeLoopbackPort();
  const std::string away =
      "name: away\nsources:\n"
      "  iris_data: {type: kafka, brokers: \"127.0.0.1:" +
      std::to_string(closed) +
      "\", topic: iris-in, group: g, format: connect-json, schema: " + kSchema +
      "}\n"
      "  hung_rows: {type: postgres, table: t, column: id, schema: " +
      kSchema + ", url: \"postgresql://sluice@127.0.0.1:${HUNG_PORT}/postgres\"}\n"
      "transforms:\n"
      "  classify: {type: predict, inputs: [iris_data], model: " +
      kModel + ", backend: mlflow, url: \"http://127.0.0.1:" + std::to_string(closed) +
      "\", outputs: {iris_class: label}}\n"
      "sinks:\n  out: {type: stdout, inputs: [classify]}\n"
      "  alert: {type: http, inputs: [classify], url: \"http://127.0.0.1:" +
      std::to_string(closed) +
      "/services/T0/SECRET\", format: json}\n"
      "  hung_db: {type: postgres, inputs: [classify], table: t, "
      "url: \"postgresql://sluice@127.0.0.1:${HUNG_PORT}/postgres\"}\n"
      "  rows_out: {type: stdout, inputs: [hung_rows]}\n";
  std::ofstream(dir / "good.yaml") << good;
  std::ofstream(dir / "good2.yaml") << good2;
  std::ofstream(dir / "bad.yaml") << bad;
  std::ofstream(dir / "away.yaml") << away;
  std::ofstream(dir / "eo.yaml") << eo;
  // On this machine: the files read, the folders written, the dead-letter file.
  std::ofstream(dir / "afile") << "a file, not a folder\n";
  const std::string files =
      "name: files\nsources:\n"
      "  present: {type: file, path: " +
      Source("pipelines/data/iris_data.jsonl") + ", format: connect-json, schema: " + kSchema +
      "}\n"
      "  absent: {type: file, path: " +
      (dir / "nope.jsonl") + ", format: connect-json, schema: " + kSchema +
      "}\n"
      "sinks:\n"
      "  fresh: {type: file, inputs: [present], path: " +
      (dir / "new/deeper/out.jsonl") +
      "}\n"
      "  under_file: {type: file, inputs: [absent], path: " +
      (dir / "afile/out.jsonl") +
      "}\n"
      "  db_under_file: {type: sqlite, inputs: [present], path: " +
      (dir / "afile/x.db") +
      ", table: t}\n"
      "dead_letter: {path: " +
      (dir / "afile/dead.jsonl") + "}\n";
  std::ofstream(dir / "files.yaml") << files;
  // The http source's address: the model server's port is taken.
  const int open_port = FreeLoopbackPort();
  const std::string listen =
      "name: listen\nsources:\n"
      "  taken: {type: http, address: \"127.0.0.1:${PORT}\", format: json, schema: " +
      kSchema + "}\n  open: {type: http, address: \"127.0.0.1:" + std::to_string(open_port) +
      "\", format: json, schema: " + kSchema +
      "}\nsinks:\n  out: {type: stdout, inputs: [taken, open]}\n";
  std::ofstream(dir / "listen.yaml") << listen;
  // A file with a static error is not taken to the services: that error is the one to fix.
  std::ofstream(dir / "static.yaml") << files << "settings: {batch_sise: 10}\n";

  // A webhook's host: it writes down each connection and the bytes sent on it. And
  // a server that takes connections but never answers (its backlog accepts them).
  const std::string listeners =
      "/usr/bin/python3 -c \"import socket, sys\n"
      "h = socket.socket(); h.bind(('127.0.0.1', 0)); h.listen(8)\n"
      "open(sys.argv[3], 'w').write(str(h.getsockname()[1]))\n"
      "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); s.settimeout(60)\n"
      "open(sys.argv[1], 'w').write(str(s.getsockname()[1]))\n"
      "while True:\n"
      "    c, _ = s.accept(); c.settimeout(2)\n"
      "    try:\n        d = '%d bytes' % len(c.recv(65536))\n"
      "    except OSError:\n        d = 'still open after 2 s'\n"
      "    open(sys.argv[2], 'a').write('connection: ' + d + '\\n'); c.close()\" " +
      (dir / "hook.port") + " " + (dir / "hook.log") + " " + (dir / "hung.port") +
      " &\nhook=$!\nfor i in $(seq 1 100); do [ -s " + (dir / "hook.port") +
      " ] && break; sleep 0.1; done\nexport HOOK_PORT=$(cat " + (dir / "hook.port") +
      ") HUNG_PORT=$(cat " + (dir / "hung.port") + ")\n";

  // validate NAME [ARGS]: --connect, JSON to NAME.json, standard error to NAME.err.
  const std::string validate =
      "validate() {\n  name=$1; shift\n  start=$(date +%s%N)\n  " + Sluice() +
      " validate --connect --format json \"$@\" " + dir.path().string() + "/$name.yaml >" +
      dir.path().string() + "/$name.json 2>" + dir.path().string() +
      "/$name.err\n  echo \"$name exit $? in $((($(date +%s%N) - start) / 1000000)) ms\"\n}\n";
  auto r = Run("export DATABASE_URL='" + pg.url() + "'\nexport READER_URL='" +
               "postgresql://reader@127.0.0.1:" + std::to_string(pg.port()) + "/postgres'\n" +
               StartBroker(dir, "-t iris-in:2 -t iris-out:1 --run-seconds 120") +
               StartModelServer(dir, kModel, "") + listeners +
               "trap 'kill -9 $server $broker $hook 2>/dev/null' EXIT\n" + validate +
               "validate good\nvalidate good2\nvalidate bad\nvalidate eo\nvalidate files\nvalidate "
               "static\nvalidate listen\n"
               "validate away --connect-timeout-ms 1500\n" +
               Sluice() + " validate --connect " + (dir / "good.yaml") + " 2>" +
               (dir / "good.txt") + "; echo \"good text exit $?\"\n");
  INFO(r.out + r.err + Slurp(dir / "server.log") + Slurp(dir / "broker.err"));
  for (const char* name : {"good", "good2", "bad", "away"}) {
    INFO(name << ": "
              << Slurp(dir / (std::string(name) + ".json")) +
                     Slurp(dir / (std::string(name) + ".err")));
  }

  {  // a pipeline the services agree with is valid, and says what was asked
    const std::string json = Slurp(dir / "good.json");
    INFO(json + Slurp(dir / "good.err"));
    CHECK(r.out.find("good exit 0") != std::string::npos);
    CHECK(json.find("\"valid\":true") != std::string::npos);
    CHECK(json.find(
              R"({"node":"iris_data","checked":"topic 'iris-in' (2 partitions) on 127.0.0.1:)") !=
          std::string::npos);
    CHECK(json.find("model 'iris' (versions 1) is served at http://127.0.0.1:") !=
          std::string::npos);
    CHECK(json.find("input 'input-0' FP64 [-1, 4]") != std::string::npos);
    CHECK(json.find("table public.iris_prediction takes the 3 columns and has a unique key for "
                    "the upsert") != std::string::npos);
    CHECK(json.find("table public.made_at_start does not exist yet and is created at start") !=
          std::string::npos);
    CHECK(json.find("topic 'iris-out' (1 partition) on") != std::string::npos);
    // Asking created nothing.
    CHECK(pg.Value("SELECT count(*) FROM pg_tables WHERE tablename = 'made_at_start'") == "0");
    // The text format prints the same on standard error.
    const std::string text = Slurp(dir / "good.txt");
    INFO(text);
    CHECK(r.out.find("good text exit 0") != std::string::npos);
    CHECK(text.find("reached: iris_data: topic 'iris-in' (2 partitions)") != std::string::npos);
    CHECK(text.find(": valid") != std::string::npos);
  }

  {  // a postgres source and the mlflow and json backends are reached too
    const std::string json = Slurp(dir / "good2.json");
    INFO(json + Slurp(dir / "good2.err"));
    CHECK(r.out.find("good2 exit 0") != std::string::npos);
    CHECK(json.find("table public.iris_data has the columns read, and 'id' to follow") !=
          std::string::npos);
    CHECK(json.find("/invocations answers (GET http://127.0.0.1:") != std::string::npos);
    CHECK(json.find("/ping: HTTP 200)") != std::string::npos);
    // A GET of the json endpoint, which takes POSTs: FastAPI answers 405, and it is there.
    CHECK(json.find("/predict answers (GET http://127.0.0.1:") != std::string::npos);
    CHECK(json.find("HTTP 405)") != std::string::npos);
    // A webhook: its host takes a connection, on which nothing is sent (a request would post an
    // alert); the url's path (a chat webhook's secret) and user info are not printed.
    CHECK(json.find("{\"node\":\"alert\",\"checked\":\"http://...@127.0.0.1:") !=
          std::string::npos);
    CHECK(json.find("/... takes connections (at 127.0.0.1:") != std::string::npos);
    CHECK(json.find("SECRET") == std::string::npos);
    CHECK(json.find("TOKEN") == std::string::npos);
    CHECK(Slurp(dir / "hook.log") == "connection: 0 bytes\n");
  }

  {  // every disagreement is reported at its node's key, each with a hint
    const std::string json = Slurp(dir / "bad.json");
    INFO(json + Slurp(dir / "bad.err"));
    CHECK(r.out.find("bad exit 1") != std::string::npos);
    const auto problems = Problems(json);
    CHECK(problems.size() == 7u);
    const auto at = [&](const std::string& needle) { return std::to_string(LineOf(bad, needle)); };
    CHECK(Has(problems, at("topic: iris-inn") + " iris_data:",
              "topic 'iris-inn' does not exist on 127.0.0.1:"));
    CHECK(Has(problems, at("topic: iris-inn") + " iris_data:", "did you mean 'iris-in'?"));
    CHECK(Has(problems,
              at("model_name: irsi") + " classify:", "the server does not serve model 'irsi'"));
    CHECK(Has(problems, at("datatype: FP32") + " fp32:",
              "takes FP64 (input 'input-0' FP64 [-1, 4]), but this node sends FP32; set "
              "datatype: FP64"));
    CHECK(Has(problems, at("features: [sepal_length") + " three:",
              "model 'iris' on the server takes 4 numbers per row"));
    CHECK(Has(problems, at("table: bad_prediction") + " wrong_type:",
              "column 'iris_class' of table public.bad_prediction is timestamp without time "
              "zone but field 'iris_class' is int64"));
    CHECK(Has(problems, at("table: iris_prediction}\n  no_create") + " no_grant:",
              "the connection's role may not insert into table public.iris_prediction; GRANT "
              "INSERT ON \\\"public\\\".\\\"iris_prediction\\\" TO the role"));
    CHECK(Has(problems, at("table: made_by_reader") + " no_create:",
              "table public.made_by_reader does not exist and the connection's role may not "
              "create it; GRANT CREATE ON SCHEMA \\\"public\\\" TO the role, or create the "
              "table"));
    // Asking created nothing, for a role that could not have either.
    CHECK(pg.Value("SELECT count(*) FROM pg_tables WHERE tablename = 'made_by_reader'") == "0");
  }

  {  // exactly-once: the positions table too
    const std::string json = Slurp(dir / "eo.json");
    INFO(json + Slurp(dir / "eo.err"));
    CHECK(r.out.find("eo exit 1") != std::string::npos);
    const auto problems = Problems(json);
    CHECK(problems.size() == 1u);
    CHECK(Has(problems, std::to_string(LineOf(eo, "delivery: exactly-once")) + " rows:",
              "table public.sluice_positions does not exist and the connection's role may not "
              "create it"));
  }

  {  // files: what this machine can tell
    const std::string json = Slurp(dir / "files.json");
    INFO(json + Slurp(dir / "files.err"));
    CHECK(r.out.find("files exit 1") != std::string::npos);
    const auto problems = Problems(json);
    CHECK(problems.size() == 4u);
    CHECK(Has(
        problems, std::to_string(LineOf(files, "afile/x.db")) + " db_under_file:",
        "cannot create '" + (dir / "afile/x.db") + "': '" + (dir / "afile") + "' is not a folder"));
    CHECK(Has(problems, std::to_string(LineOf(files, "nope.jsonl")) + " absent:",
              "cannot open '" + (dir / "nope.jsonl") + "': No such file or directory"));
    CHECK(Has(problems, std::to_string(LineOf(files, "afile/out.jsonl")) + " under_file:",
              "cannot create '" + (dir / "afile/out.jsonl") + "': '" + (dir / "afile") +
                  "' is not a folder"));
    CHECK(Has(problems, std::to_string(LineOf(files, "afile/dead.jsonl")) + " :",
              "dead_letter: cannot create '" + (dir / "afile/dead.jsonl") + "'"));
    CHECK(json.find("{\"node\":\"present\",\"checked\":\"'" +
                    Source("pipelines/data/iris_data.jsonl") + "' is readable (") !=
          std::string::npos);
    CHECK(json.find("'" + (dir / "new/deeper/out.jsonl") + "' can be created (folder '" +
                    dir.path().string() + "' is writable)") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir / "new"));  // nothing made
  }

  {  // an http source's address in use
    const std::string json = Slurp(dir / "listen.json");
    INFO(json + Slurp(dir / "listen.err"));
    CHECK(r.out.find("listen exit 1") != std::string::npos);
    const auto problems = Problems(json);
    CHECK(problems.size() == 1u);
    CHECK(Has(problems, std::to_string(LineOf(listen, "taken:")) + " taken:",
              "Address already in use (another process listens there"));
    CHECK(json.find("127.0.0.1:" + std::to_string(open_port) + " is free to listen on") !=
          std::string::npos);
  }

  {  // a static error first
    const std::string json = Slurp(dir / "static.json");
    INFO(json + Slurp(dir / "static.err"));
    CHECK(r.out.find("static exit 1") != std::string::npos);
    const auto problems = Problems(json);
    REQUIRE(problems.size() == 1u);
    CHECK(problems[0].find("unknown key 'batch_sise'") != std::string::npos);
    CHECK(json.find("\"reached\":[]") != std::string::npos);
  }

  {  // services that do not answer are errors, within the timeout
    const std::string json = Slurp(dir / "away.json");
    INFO(json + Slurp(dir / "away.err"));
    std::smatch m;
    REQUIRE(std::regex_search(r.out, m, std::regex("away exit 1 in (\\d+) ms")));
    // Five services, each given 1.5 s (PostgreSQL: 2 s, libpq's least): bounded, well short of
    // the operators' own 30 s and of the 10 s PostgreSQL's sink and source allow themselves.
    CHECK(std::stoi(m[1]) < 10000);
    const auto problems = Problems(json);
    CHECK(problems.size() == 5u);
    CHECK(Has(problems, std::to_string(LineOf(away, "topic: iris-in")) + " iris_data:",
              "cannot reach the brokers 127.0.0.1:" + std::to_string(closed)));
    CHECK(Has(problems, std::to_string(LineOf(away, "classify:")) + " classify:",
              "GET http://127.0.0.1:" + std::to_string(closed) + "/ping: "));
    CHECK(Has(problems, std::to_string(LineOf(away, "alert:")) + " alert:",
              "cannot connect to http://127.0.0.1:" + std::to_string(closed) + "/...: "));
    CHECK(json.find("SECRET") == std::string::npos);
    CHECK(Has(problems,
              std::to_string(LineOf(away, "hung_db:")) + " hung_db:", "failed: timeout expired"));
    CHECK(Has(problems, std::to_string(LineOf(away, "hung_rows:")) + " hung_rows:",
              "cannot connect to PostgreSQL within --connect-timeout-ms (1500 ms)"));
    CHECK(Has(problems, std::to_string(LineOf(away, "hung_rows:")) + " hung_rows:",
              "failed: timeout expired"));
    // Only the dead-letter file, which needs no service.
    CHECK(json.find("\"reached\":[{\"node\":\"dead_letter\",") != std::string::npos);
    CHECK(json.find("},{\"node\":") == std::string::npos);
  }
}
