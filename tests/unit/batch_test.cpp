// Columns, batches and delivery tickets: validity handling, row selection that keeps the
// source bytes and positions, column sharing, and the exactly-once acknowledgement.
#include <cmath>
#include <thread>

#include <catch2/catch.hpp>

#include "engine/batch.h"
#include "engine/dead_letter.h"
#include "engine/operator.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

SchemaPtr TwoFields() {
  return std::make_shared<const Schema>(
      std::vector<Field>{{"n", TypeId::kInt64, true}, {"s", TypeId::kString, true}});
}

// Rows (n, s) = (10*i, "r<i>") for the records of `raw`, with raw attached.
std::shared_ptr<Batch> BatchOver(std::shared_ptr<RawRecords> raw) {
  auto n = std::make_shared<Column>(TypeId::kInt64);
  auto s = std::make_shared<Column>(TypeId::kString);
  for (size_t i = 0; i < raw->count(); ++i) {
    n->AppendInt(static_cast<int64_t>(10 * i));
    s->AppendString("r" + std::to_string(i));
  }
  auto b = std::make_shared<Batch>(TwoFields(), std::vector<ColumnPtr>{n, s}, raw->count());
  b->SetRaw(std::move(raw), {});
  return b;
}

}  // namespace

TEST_CASE("validity is materialised at the first null and kept in step", "[batch]") {
  Column c(TypeId::kInt64);
  c.AppendInt(1);
  c.AppendInt(2);
  CHECK(c.valid.empty());  // all valid: no vector at all
  CHECK_FALSE(c.IsNull(0));
  c.AppendNull();
  REQUIRE(c.valid.size() == 3u);
  CHECK(c.valid == std::vector<uint8_t>{1, 1, 0});
  c.AppendInt(4);
  CHECK(c.valid == std::vector<uint8_t>{1, 1, 0, 1});
  CHECK(c.size() == 4u);
  CHECK(c.ints == std::vector<int64_t>{1, 2, 0, 4});
  CHECK(c.IsNull(2));
  CHECK_FALSE(c.IsNull(3));
  CHECK(c.GetDouble(1) == 2.0);
  CHECK(std::isnan(c.GetDouble(2)));
}

TEST_CASE("each column type keeps its values in its own vector", "[batch]") {
  Column d(TypeId::kFloat64);
  d.AppendNull();  // the very first row null
  d.AppendDouble(1.5);
  CHECK(d.valid == std::vector<uint8_t>{0, 1});
  CHECK(d.size() == 2u);
  CHECK(d.doubles.size() == 2u);
  CHECK(d.ints.empty());
  CHECK(d.GetDouble(1) == 1.5);

  Column s(TypeId::kString);
  s.AppendString("a");
  s.AppendNull();
  s.AppendString(std::string_view("bc"));
  CHECK(s.size() == 3u);
  CHECK(s.strings == std::vector<std::string>{"a", "", "bc"});
  CHECK(s.IsNull(1));

  Column t(TypeId::kTimestamp);
  t.AppendInt(1767225600000000);
  CHECK(t.size() == 1u);
  CHECK(t.GetDouble(0) == 1767225600000000.0);

  // AppendFrom copies values and nulls.
  Column copy(TypeId::kString);
  for (size_t r = 0; r < s.size(); ++r) copy.AppendFrom(s, r);
  CHECK(copy.strings == s.strings);
  CHECK(copy.valid == s.valid);
}

TEST_CASE("RawRecords stores records back to back", "[batch]") {
  auto raw = Raw({"alpha", "", "gamma"});
  REQUIRE(raw->count() == 3u);
  CHECK(raw->Get(0) == "alpha");
  CHECK(raw->Get(1).empty());
  CHECK(raw->Get(2) == "gamma");
  CHECK(raw->positions == std::vector<int64_t>{1, 2, 3});
  CHECK(raw->offsets == std::vector<uint32_t>{0, 5, 5, 10});
}

TEST_CASE("Take keeps each row's bytes and position, through repeated takes", "[batch]") {
  auto raw = Raw({"rec0", "rec1", "rec2", "rec3"});
  raw->positions = {100, 200, 300, 400};
  raw->origin = "topic-a";
  auto b = BatchOver(raw);
  b->seq = 7;
  b->ticket = std::make_shared<Ticket>(1, nullptr);

  auto t = b->Take({1, 3});
  REQUIRE(t->num_rows() == 2u);
  CHECK(t->column(0).ints == std::vector<int64_t>{10, 30});
  CHECK(t->column(1).strings == std::vector<std::string>{"r1", "r3"});
  CHECK(t->RawBytes(0) == "rec1");
  CHECK(t->RawBytes(1) == "rec3");
  CHECK(t->Position(0) == 200);
  CHECK(t->Position(1) == 400);
  CHECK(t->Origin(0) == "topic-a");
  CHECK(t->seq == 7u);
  CHECK(t->ticket == b->ticket);
  CHECK(t->schema() == b->schema());

  // A take of a take maps through to the original records.
  auto tt = t->Take({1});
  REQUIRE(tt->num_rows() == 1u);
  CHECK(tt->RawBytes(0) == "rec3");
  CHECK(tt->Position(0) == 400);
  CHECK(tt->column(1).strings == std::vector<std::string>{"r3"});

  // Nulls survive a take.
  auto n = std::make_shared<Column>(TypeId::kInt64);
  n->AppendInt(1);
  n->AppendNull();
  n->AppendInt(3);
  auto s = std::make_shared<Column>(TypeId::kString);
  for (int i = 0; i < 3; ++i) s->AppendString("x");
  Batch nb(TwoFields(), {n, s}, 3);
  auto nt = nb.Take({1, 2});
  CHECK(nt->column(0).IsNull(0));
  CHECK_FALSE(nt->column(0).IsNull(1));
  CHECK(nt->column(0).ints[1] == 3);
  // No source bytes: empty bytes and position -1, not a crash.
  CHECK_FALSE(nt->has_raw());
  CHECK(nt->RawBytes(0).empty());
  CHECK(nt->Position(0) == -1);
}

TEST_CASE("WithColumns shares columns and keeps the metadata", "[batch]") {
  auto b = BatchOver(Raw({"a", "b"}));
  b->seq = 3;
  b->ticket = std::make_shared<Ticket>(1, nullptr);
  auto renamed = std::make_shared<const Schema>(
      std::vector<Field>{{"m", TypeId::kInt64, true}, {"t", TypeId::kString, true}});
  auto w = b->WithColumns(renamed, b->columns());
  CHECK(w->columns()[0].get() == b->columns()[0].get());
  CHECK(w->columns()[1].get() == b->columns()[1].get());
  CHECK(w->schema() == renamed);
  CHECK(w->num_rows() == 2u);
  CHECK(w->seq == 3u);
  CHECK(w->ticket == b->ticket);
  CHECK(w->RawBytes(1) == "b");
  CHECK(w->Position(1) == 2);

  // After a take, WithColumns keeps the take's row mapping.
  auto t = b->Take({1});
  auto wt = t->WithColumns(t->schema(), t->columns());
  CHECK(wt->RawBytes(0) == "b");
}

TEST_CASE("Empty keeps seq and ticket so the position still advances", "[batch]") {
  auto b = BatchOver(Raw({"a"}));
  b->seq = 42;
  b->ticket = std::make_shared<Ticket>(1, nullptr);
  auto other = std::make_shared<const Schema>(
      std::vector<Field>{{"f", TypeId::kFloat64, false}, {"ts", TypeId::kTimestamp, true}});
  auto e = b->Empty(other);
  CHECK(e->num_rows() == 0u);
  CHECK(e->seq == 42u);
  CHECK(e->ticket == b->ticket);
  CHECK(e->schema() == other);
  REQUIRE(e->columns().size() == 2u);
  CHECK(e->column(0).type == TypeId::kFloat64);
  CHECK(e->column(1).type == TypeId::kTimestamp);
  CHECK(e->column(0).size() == 0u);
}

TEST_CASE("Ticket runs on_done once, after the last of N calls", "[batch][ticket]") {
  int calls = 0;
  Ticket t(3, [&] { ++calls; });
  t.Done();
  t.Done();
  CHECK(calls == 0);
  t.Done();
  CHECK(calls == 1);
  t.Done();  // a stray extra call must not acknowledge twice
  CHECK(calls == 1);

  Ticket no_callback(1, nullptr);
  no_callback.Done();  // no callback: nothing to run, no crash
}

TEST_CASE("Ticket acknowledges exactly once under concurrent calls", "[batch][ticket]") {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 500;
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> calls{0};
    Ticket t(kThreads * kPerThread, [&] { calls.fetch_add(1); });
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    for (int i = 0; i < kThreads; ++i)
      threads.emplace_back([&] {
        for (int k = 0; k < kPerThread; ++k) t.Done();
      });
    for (auto& th : threads) th.join();
    REQUIRE(calls.load() == 1);
  }
}

TEST_CASE("records from several streams keep their own origin, through takes and dead letters",
          "[batch]") {
  auto raw = Raw({"a0", "b1", "a2"});
  raw->origin = "kafka";
  raw->origin_names = {"rides", "payments"};
  raw->origin_of = {0, 1, 0};
  raw->partitions = {3, 0, 3};
  auto b = BatchOver(raw);
  CHECK(b->Origin(0) == "rides");
  CHECK(b->Origin(1) == "payments");
  auto t = b->Take({1, 2});
  CHECK(t->Origin(0) == "payments");
  CHECK(t->Origin(1) == "rides");
  CHECK(t->Partition(1) == 3);

  MemoryDeadLetter dl;
  NodeContext ctx("n", &dl);
  ctx.Reject(*t, 0, "bad");
  ctx.RejectRaw(*raw, 2, "worse");
  REQUIRE(dl.records().size() == 2u);
  CHECK(dl.records()[0].origin == "payments");
  CHECK(dl.records()[1].origin == "rides");
}
