// The built-in operators one by one: config errors at the right place, behaviour on small
// batches (in memory, through engine/testing.h), and the sinks' effects on disk.
// The spec examples of every operator are checked in registry_test.cpp.
#include <sqlite3.h>

#include <simdjson.h>
#include <catch2/catch.hpp>

#include "engine/formats.h"
#include "engine/testing.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

// The minified JSON value of `key` in the JSON object `row` ("<absent>" when it has none).
std::string Get(const std::string& row, const std::string& key) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(row);
  simdjson::dom::element doc, value;
  if (parser.parse(padded).get(doc)) return "<not JSON>";
  if (doc[key].get(value)) return "<absent>";
  return simdjson::minify(value);
}

double GetDouble(const std::string& row, const std::string& key) {
  return std::stod(Get(row, key));
}

// A planned pipeline and its in-memory run.
struct Running {
  Loaded loaded;
  std::unique_ptr<InMemoryRun> run;

  std::vector<std::string> Rows(const std::string& node) const {
    auto r = run->Rows(node);
    REQUIRE(r.ok());
    return *r;
  }
};

Running Start(const std::string& yaml, const std::string& base_dir = kPipelinesDir) {
  Running r{Load(yaml, base_dir), nullptr};
  INFO(r.loaded.Text());
  REQUIRE(r.loaded.plan);
  REQUIRE_FALSE(r.loaded.diags.HasErrors());
  auto built = InMemoryRun::Build(*r.loaded.plan);
  REQUIRE(built.ok());
  r.run = std::move(*built);
  return r;
}

// The first `n` lines of the shipped iris data (Kafka Connect envelopes).
std::vector<std::string> IrisLines(size_t n) {
  auto all = Lines(ReadFile(kPipelinesDir + "/data/iris_data.jsonl"));
  all.resize(n);
  return all;
}

// A batch of `node`'s input, decoded from JSON rows.
std::shared_ptr<Batch> InputBatch(const Loaded& l, const std::string& node,
                                  const std::vector<std::string>& rows) {
  MemoryDeadLetter dl;
  NodeContext ctx("test", &dl);
  auto decoded =
      MakeFormatDecoder(Format::kJson, l.Node(node).input_schema)->Decode(Raw(rows), ctx);
  REQUIRE(decoded.ok());
  REQUIRE(dl.records().empty());
  return *decoded;
}

const std::string kTransforms =
    "name: t\n" + kIrisSourceYaml +
    "transforms:\n"
    "  features: {type: drop-fields, inputs: [iris_data], fields: [id, target]}\n"
    "  pick: {type: select, inputs: [iris_data], fields: [petal_width, id]}\n"
    "  ren: {type: rename, inputs: [iris_data], fields: {sepal_length: sl, target: species}}\n"
    "sinks:\n"
    "  a: {type: stdout, inputs: [features]}\n"
    "  b: {type: stdout, inputs: [pick]}\n"
    "  c: {type: stdout, inputs: [ren]}\n";

}  // namespace

// ---- drop-fields, select, rename ----

TEST_CASE("drop-fields, select and rename reshape rows",
          "[operators][drop-fields][select][rename]") {
  Running r = Start(kTransforms);
  REQUIRE(r.run
              ->InjectRecords("iris_data", {IrisRow(1, 5.1, 3.5, 1.4, 0.2, 0),
                                            IrisRow(2, 6.9, 3.1, 5.4, 2.1, 2)})
              .ok());
  CHECK(
      r.Rows("features") ==
      std::vector<std::string>{
          R"({"timestamp":"2026-01-01T00:00:01Z","sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2})",
          R"({"timestamp":"2026-01-01T00:00:02Z","sepal_length":6.9,"sepal_width":3.1,"petal_length":5.4,"petal_width":2.1})"});
  CHECK(r.Rows("pick") ==
        std::vector<std::string>{R"({"petal_width":0.2,"id":1})", R"({"petal_width":2.1,"id":2})"});
  auto ren = r.Rows("ren");
  REQUIRE(ren.size() == 2u);
  CHECK(
      ren[1] ==
      R"({"id":2,"timestamp":"2026-01-01T00:00:02Z","sl":6.9,"sepal_width":3.1,"petal_length":5.4,"petal_width":2.1,"species":2})");
  // Sinks see what their input emitted.
  CHECK(r.Rows("b") == r.Rows("pick"));
  CHECK(r.run->dead_letters().count() == 0u);
}

TEST_CASE("drop-fields, select and rename share columns rather than copy them",
          "[operators][drop-fields][select][rename]") {
  Loaded l = Load(kTransforms);
  REQUIRE_FALSE(l.diags.HasErrors());
  auto in = InputBatch(l, "features", {IrisRow(1, 5.1, 3.5, 1.4, 0.2), IrisRow(2, 1, 2, 3, 4)});
  in->seq = 11;
  MemoryDeadLetter dl;
  NodeContext ctx("x", &dl);
  auto process = [&](const std::string& node) {
    auto rt = l.Node(node).transform->Build();
    REQUIRE(rt.ok());
    auto out = (*rt)->Process(in, ctx);
    REQUIRE(out.ok());
    CHECK((*out)->seq == 11u);
    CHECK((*out)->num_rows() == 2u);
    CHECK((*out)->schema() == l.Node(node).output_schema);
    return *out;
  };
  auto dropped = process("features");
  REQUIRE(dropped->columns().size() == 5u);
  for (size_t i = 0; i < 5; ++i) CHECK(dropped->columns()[i] == in->columns()[i + 1]);
  auto picked = process("pick");
  CHECK(picked->columns()[0] == in->columns()[5]);
  CHECK(picked->columns()[1] == in->columns()[0]);
  auto renamed = process("ren");
  CHECK(renamed->columns() == in->columns());
  CHECK(renamed->RawBytes(1) == in->RawBytes(1));
}

TEST_CASE("transform keys are checked at their line:col", "[operators]") {
  const std::string yaml = "name: t\n" + kIrisSourceYaml +
                           "transforms:\n"
                           "  d:\n"
                           "    type: drop-fields\n"
                           "    inputs: [iris_data]\n"
                           "    fields: [id]\n"
                           "    field: [target]\n"
                           "  s:\n"
                           "    type: select\n"
                           "    inputs: [d]\n"
                           "    fields: [timestamp]\n"
                           "    order: asc\n"
                           "  r:\n"
                           "    type: rename\n"
                           "    inputs: [s]\n"
                           "    fields: {timestamp: ts}\n"
                           "    mapping: {a: b}\n"
                           "sinks:\n"
                           "  out: {type: stdout, inputs: [r]}\n";
  Loaded l = Load(yaml);
  INFO(l.Text());
  auto field = l.ErrorsWith("drop-fields 'd': unknown key 'field' (did you mean 'fields'?)");
  REQUIRE(field.size() == 1u);
  CHECK(field[0].mark.ToString() == At(yaml, "field: [target]"));
  auto order = l.ErrorsWith("select 's': unknown key 'order'");
  REQUIRE(order.size() == 1u);
  CHECK(order[0].mark.ToString() == At(yaml, "order:"));
  auto mapping = l.ErrorsWith("rename 'r': unknown key 'mapping'");
  REQUIRE(mapping.size() == 1u);
  CHECK(mapping[0].mark.ToString() == At(yaml, "mapping:"));
  CHECK(l.diags.ErrorCount() == 3u);
}

// ---- predict ----

namespace {

std::string PredictPipeline(const std::string& outputs) {
  return "name: p\n" + kIrisSourceYaml +
         "transforms:\n"
         "  features: {type: drop-fields, inputs: [iris_data], fields: [id, target]}\n"
         "  classify: {type: predict, inputs: [features], model: ../models/iris,\n"
         "             outputs: " +
         outputs +
         "}\n"
         "sinks:\n"
         "  out: {type: stdout, inputs: [classify]}\n";
}

}  // namespace

TEST_CASE("predict labels the first iris rows as setosa", "[operators][predict]") {
  Running r = Start(PredictPipeline("{iris_class: label}"));
  REQUIRE(r.run->InjectLines("iris_data", IrisLines(5)).ok());
  auto rows = r.Rows("classify");
  REQUIRE(rows.size() == 5u);
  for (const auto& row : rows) CHECK(Get(row, "iris_class") == "0");
  // The features pass through untouched, with the prediction last.
  CHECK(
      rows[0] ==
      R"({"timestamp":"2026-01-01T00:00:00Z","sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2,"iris_class":0})");
  CHECK(r.run->dead_letters().count() == 0u);
}

TEST_CASE("predict outputs: label, class, probabilities, model name and version",
          "[operators][predict]") {
  Running r = Start(PredictPipeline(
      "{label: label, cls: class, p: probability, p_setosa: 'probability:0', "
      "p_versicolor: 'probability:versicolor', p_virginica: 'probability:virginica', "
      "model: model_name, version: model_version}"));
  REQUIRE(r.run
              ->InjectRecords("iris_data",
                              {IrisRow(1, 5.1, 3.5, 1.4, 0.2), IrisRow(2, 6.9, 3.1, 5.4, 2.1),
                               IrisRow(3, 5.9, 2.8, 4.3, 1.3)})
              .ok());
  auto rows = r.Rows("classify");
  REQUIRE(rows.size() == 3u);
  const std::vector<std::string> labels = {"0", "2", "1"};
  const std::vector<std::string> names = {"\"setosa\"", "\"virginica\"", "\"versicolor\""};
  const std::vector<std::string> per_class = {"p_setosa", "p_versicolor", "p_virginica"};
  for (size_t i = 0; i < rows.size(); ++i) {
    INFO(rows[i]);
    CHECK(Get(rows[i], "label") == labels[i]);
    CHECK(Get(rows[i], "cls") == names[i]);
    CHECK(Get(rows[i], "model") == "\"iris\"");
    CHECK(Get(rows[i], "version") == "\"1\"");
    double sum = 0;
    for (const auto& k : per_class) sum += GetDouble(rows[i], k);
    CHECK(sum == Approx(1.0).epsilon(1e-5));
    // The probability of the predicted class is the largest of the three.
    const double p = GetDouble(rows[i], "p");
    CHECK(p == Approx(GetDouble(rows[i], per_class[std::stoul(labels[i])])));
    for (const auto& k : per_class) CHECK(p >= GetDouble(rows[i], k));
    CHECK(p > 0.5);
  }
  CHECK(GetDouble(rows[1], "p_virginica") > 0.5);
  CHECK(GetDouble(rows[0], "p_virginica") < 0.1);
}

TEST_CASE("predict dead-letters a row with a null feature and scores the others",
          "[operators][predict]") {
  TempDir dir;
  dir.Write("s.json", kNullableFeaturesSchema);
  const std::string yaml =
      "sources:\n"
      "  src: {type: file, path: in.jsonl, schema: s.json}\n"
      "transforms:\n"
      "  classify: {type: predict, inputs: [src], model: " +
      kIrisModel +
      ", outputs: {c: label}}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [classify]}\n";
  Running r = Start(yaml, dir.path());
  const std::vector<std::string> lines = {
      R"({"id": 1, "sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": null})",
      R"({"id": 2, "sepal_length": 6.9, "sepal_width": 3.1, "petal_length": 5.4, "petal_width": 2.1})",
      R"({"id": 3, "sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4})",
  };
  REQUIRE(r.run->InjectLines("src", lines).ok());
  auto rows = r.Rows("classify");
  REQUIRE(rows.size() == 1u);
  CHECK(Get(rows[0], "id") == "2");
  CHECK(Get(rows[0], "c") == "2");
  auto dead = r.run->dead_letters().records();
  REQUIRE(dead.size() == 2u);
  CHECK(dead[0].node == "classify");
  CHECK(dead[0].reason == "feature 'petal_width' is null");
  CHECK(dead[0].input == lines[0]);
  CHECK(dead[0].position == 1);
  CHECK(dead[0].origin == "test");
  CHECK(dead[1].input == lines[2]);
  CHECK(dead[1].position == 3);

  SECTION("a batch where every row is bad yields no rows, not an error") {
    REQUIRE(r.run->InjectLines("src", {lines[0]}).ok());
    CHECK(r.Rows("classify").size() == 1u);  // still only the earlier good row
    CHECK(r.run->dead_letters().count() == 3u);
  }
}

TEST_CASE("predict config errors", "[operators][predict]") {
  SECTION("unknown output kind") {
    const std::string yaml = PredictPipeline("{iris_class: lable}");
    Loaded l = Load(yaml);
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK_THAT(l.Errors()[0].message,
               Catch::StartsWith("predict 'classify': output 'iris_class': unknown kind 'lable'") &&
                   Catch::EndsWith("(kinds: label, class, probability, probability:<class>, "
                                   "value, model_name, model_version)"));
    CHECK(l.Errors()[0].mark.ToString() == At(yaml, "{iris_class: lable}"));
  }
  SECTION("unknown class") {
    Loaded l = Load(PredictPipeline("{p: 'probability:rose'}"));
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].message ==
          "predict 'classify': output 'p': unknown class 'rose' (classes: setosa, versicolor, "
          "virginica)");
  }
  SECTION("class index out of range") {
    Loaded l = Load(PredictPipeline("{p: 'probability:3'}"));
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK_THAT(l.Errors()[0].message, Catch::Contains("unknown class '3'"));
  }
  SECTION("output already a field") {
    Loaded l = Load(PredictPipeline("{sepal_length: label}"));
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK_THAT(l.Errors()[0].message,
               Catch::Contains("output 'sepal_length' is already a field of 'features'"));
  }
  SECTION("missing model directory") {
    const std::string yaml =
        "name: p\n" + kIrisSourceYaml +
        "transforms:\n"
        "  classify: {type: predict, inputs: [iris_data], model: ../models/nope}\n"
        "sinks:\n"
        "  out: {type: stdout, inputs: [classify]}\n";
    Loaded l = Load(yaml);
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].mark.ToString() == At(yaml, "../models/nope"));
    CHECK_THAT(l.Errors()[0].message,
               Catch::Contains("model directory '" + kSourceDir + "/models/nope' does not exist"));
  }
  SECTION("default output is `prediction: label`") {
    Loaded l = Load("name: p\n" + kIrisSourceYaml +
                    "transforms:\n"
                    "  f: {type: drop-fields, inputs: [iris_data], fields: [id, target]}\n"
                    "  classify: {type: predict, inputs: [f], model: ../models/iris}\n"
                    "sinks:\n"
                    "  out: {type: stdout, inputs: [classify]}\n");
    REQUIRE_FALSE(l.diags.HasErrors());
    const Schema& s = *l.Node("classify").output_schema;
    CHECK(s.field(s.size() - 1) == Field{"prediction", TypeId::kInt64, false});
  }
  SECTION("unknown key") {
    const std::string yaml = "name: p\n" + kIrisSourceYaml +
                             "transforms:\n"
                             "  classify:\n"
                             "    type: predict\n"
                             "    inputs: [iris_data]\n"
                             "    modle: ../models/iris\n"
                             "sinks:\n"
                             "  out: {type: stdout, inputs: [classify]}\n";
    Loaded l = Load(yaml);
    auto errs = l.ErrorsWith("unknown key 'modle' (did you mean 'model'?)");
    REQUIRE(errs.size() == 1u);
    CHECK(errs[0].mark.ToString() == At(yaml, "modle"));
  }
}

// ---- file source ----

namespace {

std::vector<std::shared_ptr<RawRecords>> ReadAll(SourceReader& reader, size_t max_records) {
  std::vector<std::shared_ptr<RawRecords>> out;
  for (int guard = 0; guard < 1000; ++guard) {
    auto r = reader.Read(max_records);
    REQUIRE(r.ok());
    if (!*r) break;
    out.push_back(*r);
  }
  return out;
}

}  // namespace

TEST_CASE("file source reads lines with their line numbers, skipping blank lines",
          "[operators][file-source]") {
  TempDir dir;
  dir.Write("s.json", kNullableFeaturesSchema);
  dir.Write("in.jsonl", "{\"id\": 1}\n\n{\"id\": 2}\r\n   \n{\"id\": 3}");  // no final newline
  Loaded l = Load(
      "sources:\n"
      "  src: {type: file, path: in.jsonl, schema: s.json, repeat: 2}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [src]}\n",
      dir.path());
  INFO(l.Text());
  REQUIRE_FALSE(l.diags.HasErrors());
  auto reader = l.Node("src").source->OpenReader();
  REQUIRE(reader.ok());
  auto chunks = ReadAll(**reader, 2);
  std::vector<std::string> records;
  std::vector<int64_t> positions;
  for (const auto& c : chunks) {
    CHECK(c->count() <= 2u);
    CHECK(c->origin == dir.path() + "/in.jsonl");
    for (size_t i = 0; i < c->count(); ++i) {
      records.emplace_back(c->Get(i));
      positions.push_back(c->positions[i]);
    }
  }
  // Replayed twice; positions restart with the file.
  CHECK(records == std::vector<std::string>{"{\"id\": 1}", "{\"id\": 2}", "{\"id\": 3}",
                                            "{\"id\": 1}", "{\"id\": 2}", "{\"id\": 3}"});
  CHECK(positions == std::vector<int64_t>{1, 3, 5, 1, 3, 5});

  // The decoder of the source reads what the reader read.
  auto decoder = l.Node("src").source->MakeDecoder();
  REQUIRE(decoder.ok());
  MemoryDeadLetter dl;
  NodeContext ctx("src", &dl);
  auto batch = (*decoder)->Decode(chunks[0], ctx);
  REQUIRE(batch.ok());
  CHECK((*batch)->column(0).ints == std::vector<int64_t>{1, 2});
  CHECK((*batch)->Position(1) == 3);
}

TEST_CASE("file source keeps a csv header apart from the records", "[operators][file-source]") {
  TempDir dir;
  dir.Write("s.json", kNullableFeaturesSchema);
  dir.Write("in.csv", "petal_width,id\n0.2,1\n0.4,2\n");
  Loaded l = Load(
      "sources:\n"
      "  src: {type: file, path: in.csv, format: csv, schema: s.json}\n"
      "sinks:\n"
      "  out: {type: stdout, inputs: [src]}\n",
      dir.path());
  REQUIRE_FALSE(l.diags.HasErrors());
  auto reader = l.Node("src").source->OpenReader();
  REQUIRE(reader.ok());
  auto chunks = ReadAll(**reader, 100);
  REQUIRE(chunks.size() == 1u);
  CHECK(chunks[0]->header == "petal_width,id");
  REQUIRE(chunks[0]->count() == 2u);
  CHECK(chunks[0]->Get(0) == "0.2,1");
  CHECK(chunks[0]->positions[0] == 2);
  MemoryDeadLetter dl;
  NodeContext ctx("src", &dl);
  auto batch = (*l.Node("src").source->MakeDecoder())->Decode(chunks[0], ctx);
  REQUIRE(batch.ok());
  CHECK((*batch)->column(0).ints == std::vector<int64_t>{1, 2});
  CHECK((*batch)->column(4).doubles == std::vector<double>{0.2, 0.4});
}

TEST_CASE("file source config errors", "[operators][file-source]") {
  TempDir dir;
  dir.Write("s.json", kNullableFeaturesSchema);
  auto text = [](const std::string& extra) {
    return "sources:\n"
           "  src: {type: file, path: in.jsonl, schema: s.json" +
           extra +
           "}\n"
           "sinks:\n"
           "  out: {type: stdout, inputs: [src]}\n";
  };
  auto load = [&](const std::string& extra) { return Load(text(extra), dir.path()); };
  {
    Loaded l = load(", repeat: 0");
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].message == "file 'src': 'repeat' must be at least 1");
    CHECK(l.Errors()[0].mark.ToString() == At(text(", repeat: 0"), "0}"));
  }
  {
    Loaded l = load(", csv_delimiter: ';;'");
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].message == "file 'src': 'csv_delimiter' is one character");
    CHECK(l.Errors()[0].mark.ToString() == At(text(", csv_delimiter: ';;'"), "';;'"));
  }
  {
    Loaded l = load(", colour: red");
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK_THAT(l.Errors()[0].message, Catch::StartsWith("file 'src': unknown key 'colour'"));
    CHECK(l.Errors()[0].mark.ToString() == At(text(", colour: red"), "colour"));
  }
  {
    // A file that does not exist is found missing when it is opened, not when planning.
    Loaded l = load("");
    REQUIRE_FALSE(l.diags.HasErrors());
    auto reader = l.Node("src").source->OpenReader();
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.status().code() == StatusCode::kNotFound);
    CHECK_THAT(reader.status().message(),
               Catch::StartsWith("file 'src': cannot open '" + dir.path() + "/in.jsonl'"));
  }
}

// ---- sinks ----

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
  SECTION("missing column") {
    const std::string yaml =
        SinkPipeline("{type: sqlite, inputs: [src], path: out.db, table: few}");
    Loaded l = Load(yaml, dir.path());
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].message == "sqlite 'out': table 'few' has no column 'name' (columns: id)");
    CHECK(l.Errors()[0].mark.ToString() == At(yaml, "few"));
  }
  SECTION("incompatible column type") {
    Loaded l =
        Load(SinkPipeline("{type: sqlite, inputs: [src], path: out.db, table: wrong}"), dir.path());
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].message ==
          "sqlite 'out': column 'id' of table 'wrong' is TEXT but field 'id' is int64");
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
