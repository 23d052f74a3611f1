// The file source: reading lines with their positions, CSV headers, config errors.
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
    CHECK(l.Errors()[0].message == "file 'src': 'repeat' must be at least 1, found 0");
    CHECK(l.Errors()[0].mark.ToString() == At(text(", repeat: 0"), "0}"));
  }
  {
    Loaded l = load(", csv_delimiter: ';;'");
    REQUIRE(l.diags.ErrorCount() == 1u);
    CHECK(l.Errors()[0].message == "file 'src': 'csv_delimiter' must be one character, found ';;'");
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
