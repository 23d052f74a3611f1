// drop-fields, select and rename: config errors at the right place and behaviour on small
// batches, in memory.
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
