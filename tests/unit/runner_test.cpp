// The runner's threading contract: sources, sinks, and transforms that block, run on threads of
// their own, never on the oneTBB workers, so a node waiting for its server (or a source waiting
// for input) leaves the workers to the next batches; a sink still writes its batches one at a
// time, in read order; and the thread that starts the run does no graph work while it runs.
#include <oneapi/tbb/task_arena.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <limits>
#include <mutex>
#include <thread>
#include <catch2/catch.hpp>

#include "engine/runner.h"
#include "unit_helpers.h"

using namespace sluice;
using namespace sluice::test;

namespace {

constexpr int kRows = 40;    // n = 0..39 in the input file
constexpr int kBatches = 4;  // of 10 rows: all of them fit in flight at once

// What the `hold` sink saw, shared with the test.
struct HoldLog {
  std::mutex mu;
  std::condition_variable cv;
  int prepared = 0;                 // batches prepared (on the workers)
  bool first_saw_all = false;       // the first write saw every batch prepared while it waited
  bool write_on_worker = false;     // some write ran on a oneTBB worker
  int concurrent = 0, most_concurrent = 0;
  std::vector<int64_t> written;     // `n` of every row, in write order
  int expected_batches = 0;
  std::thread::id caller;           // the thread that called RunPipeline, when a test sets it
  bool prepared_on_caller = false;  // some Prepare ran on it
};
HoldLog* g_log = nullptr;

// A sink whose first write waits (up to a bound) until every batch has been prepared: with a
// single worker thread that can only happen if the write does not hold the worker.
class HoldRuntime : public SinkRuntime {
 public:
  bool prepares() const override { return true; }
  Result<std::string> Prepare(const Batch&) const override {
    std::lock_guard<std::mutex> lock(g_log->mu);
    ++g_log->prepared;
    if (std::this_thread::get_id() == g_log->caller) g_log->prepared_on_caller = true;
    g_log->cv.notify_all();
    return std::string();
  }
  Status Write(const Batch& batch, const std::string&, NodeContext&) override {
    std::unique_lock<std::mutex> lock(g_log->mu);
    if (oneapi::tbb::this_task_arena::current_thread_index() !=
        oneapi::tbb::task_arena::not_initialized) {
      g_log->write_on_worker = true;
    }
    g_log->most_concurrent = std::max(g_log->most_concurrent, ++g_log->concurrent);
    if (g_log->written.empty()) {
      g_log->first_saw_all = g_log->cv.wait_for(lock, std::chrono::seconds(10), [] {
        return g_log->prepared == g_log->expected_batches;
      });
    }
    const Column& n = batch.column(0);
    for (size_t r = 0; r < batch.num_rows(); ++r) g_log->written.push_back(n.ints[r]);
    --g_log->concurrent;
    g_log->cv.notify_all();
    return Status::Ok();
  }
};

class HoldSink : public SinkNode {
 public:
  Status CheckInput(const SchemaPtr&) override { return Status::Ok(); }
  Result<std::unique_ptr<SinkRuntime>> Open(const SchemaPtr&) const override {
    return std::unique_ptr<SinkRuntime>(std::make_unique<HoldRuntime>());
  }
};

// What the `settle` sink saw, shared with the test.
struct SettleLog {
  std::mutex mu;
  std::condition_variable cv;
  int prepared = 0;
  int expected_prepared = 0;     // the first write waits (up to a bound) for this many
  std::vector<int64_t> written;  // `n` of every row, in write order
  size_t unsettled = 0;          // batches written and not yet settled
  size_t most_unsettled = 0;
  int settled = 0;
  int failures_to_return = 0;    // Settle calls that wait answer kUnavailable this many times
  int failures_returned = 0;
  int limit = 0;                 // settings.max_in_flight
  bool waited_for_read_ahead = false;
  bool read_ahead = false;       // a batch was read while `limit` others were not settled
};
SettleLog* g_settle = nullptr;

// A sink that settles, as a producer waiting for delivery reports: its batches become durable
// only when the runner asks it to wait for them, so that the test sees how many the runner
// lets it send ahead.
class SettleRuntime : public SinkRuntime {
 public:
  bool prepares() const override { return true; }
  Result<std::string> Prepare(const Batch&) const override {
    std::lock_guard<std::mutex> lock(g_settle->mu);
    ++g_settle->prepared;
    if (g_settle->prepared - g_settle->settled > g_settle->limit) g_settle->read_ahead = true;
    g_settle->cv.notify_all();
    return std::string();
  }
  Status Write(const Batch& batch, const std::string&, NodeContext&) override {
    std::unique_lock<std::mutex> lock(g_settle->mu);
    if (g_settle->written.empty()) {
      g_settle->cv.wait_for(lock, std::chrono::seconds(10), [] {
        return g_settle->prepared >= g_settle->expected_prepared;
      });
    }
    const Column& n = batch.column(0);
    for (size_t r = 0; r < batch.num_rows(); ++r) g_settle->written.push_back(n.ints[r]);
    g_settle->most_unsettled = std::max(g_settle->most_unsettled, ++g_settle->unsettled);
    return Status::Ok();
  }
  bool settles() const override { return true; }
  Result<size_t> Settle(size_t keep) override {
    std::unique_lock<std::mutex> lock(g_settle->mu);
    if (keep == std::numeric_limits<size_t>::max()) return size_t{0};
    if (g_settle->limit < kBatches && !g_settle->waited_for_read_ahead) {
      // Gives a runner that released batches before they settled the time to read ahead.
      g_settle->waited_for_read_ahead = true;
      g_settle->cv.wait_for(lock, std::chrono::seconds(1),
                            [] { return g_settle->prepared > g_settle->limit; });
    }
    if (g_settle->failures_returned < g_settle->failures_to_return) {
      ++g_settle->failures_returned;
      return Status::Unavailable("the broker is away");
    }
    const size_t n = g_settle->unsettled - std::min(g_settle->unsettled, keep);
    g_settle->unsettled -= n;
    g_settle->settled += static_cast<int>(n);
    return n;
  }
};

class SettleSink : public SinkNode {
 public:
  Status CheckInput(const SchemaPtr&) override { return Status::Ok(); }
  Result<std::unique_ptr<SinkRuntime>> Open(const SchemaPtr&) const override {
    return std::unique_ptr<SinkRuntime>(std::make_unique<SettleRuntime>());
  }
};

// What the `wait` transform saw, shared with the test.
struct WaitLog {
  std::mutex mu;
  std::condition_variable cv;
  int entered = 0;              // Process calls begun
  int inside = 0;               // Process calls not yet returned
  int most_at_once = 0;         // the most Process calls inside at the same time
  bool on_worker = false;       // some Process ran on a oneTBB worker
  int expected_batches = 0;
};
WaitLog* g_wait = nullptr;

// A transform that says it blocks, as a remote model call does: each call waits (up to a bound)
// until every batch has entered Process, which only threads other than the one worker can do.
class WaitRuntime : public TransformRuntime {
 public:
  bool blocks() const override { return true; }
  Result<BatchPtr> Process(const BatchPtr& in, NodeContext&) const override {
    std::unique_lock<std::mutex> lock(g_wait->mu);
    if (oneapi::tbb::this_task_arena::current_thread_index() !=
        oneapi::tbb::task_arena::not_initialized) {
      g_wait->on_worker = true;
    }
    ++g_wait->entered;
    g_wait->most_at_once = std::max(g_wait->most_at_once, ++g_wait->inside);
    g_wait->cv.notify_all();
    g_wait->cv.wait_for(lock, std::chrono::seconds(10),
                        [] { return g_wait->entered >= g_wait->expected_batches; });
    --g_wait->inside;
    return in;
  }
};

class WaitTransform : public TransformNode {
 public:
  Result<SchemaPtr> OutputSchema(const SchemaPtr& input) override { return input; }
  Result<std::unique_ptr<TransformRuntime>> Build() const override {
    return std::unique_ptr<TransformRuntime>(std::make_unique<WaitRuntime>());
  }
};

// A transform whose every call throws what no node body expects (not a std::exception): oneTBB
// then cancels the graph.
class ThrowRuntime : public TransformRuntime {
 public:
  Result<BatchPtr> Process(const BatchPtr&, NodeContext&) const override { throw 42; }
};

class ThrowTransform : public TransformNode {
 public:
  Result<SchemaPtr> OutputSchema(const SchemaPtr& input) override { return input; }
  Result<std::unique_ptr<TransformRuntime>> Build() const override {
    return std::unique_ptr<TransformRuntime>(std::make_unique<ThrowRuntime>());
  }
};

// What the `gate` source saw, shared with the test.
struct GateLog {
  bool read_on_worker = false;     // some Read ran on a oneTBB worker
  bool released_by_rows = false;   // its Read ended because the `hold` sink had every row
  size_t rows_to_wait_for = 0;
};
GateLog* g_gate = nullptr;

// A source that has nothing to read, as an idle topic or endpoint: its first Read waits (up to
// a bound) until the `hold` sink has written every row of the other source, then ends its input.
// With one worker thread that can only happen if the Read does not hold the worker.
class GateReader : public SourceReader {
 public:
  Result<std::shared_ptr<RawRecords>> Read(size_t) override {
    if (oneapi::tbb::this_task_arena::current_thread_index() !=
        oneapi::tbb::task_arena::not_initialized) {
      g_gate->read_on_worker = true;
    }
    std::unique_lock<std::mutex> lock(g_log->mu);
    g_gate->released_by_rows = g_log->cv.wait_for(lock, std::chrono::seconds(10), [] {
      return g_log->written.size() >= g_gate->rows_to_wait_for;
    });
    return std::shared_ptr<RawRecords>();
  }
};

class GateDecoder : public Decoder {
 public:
  explicit GateDecoder(SchemaPtr schema) : schema_(std::move(schema)) {}
  Result<std::shared_ptr<Batch>> Decode(std::shared_ptr<const RawRecords>,
                                        NodeContext&) const override {
    return std::make_shared<Batch>(schema_, std::vector<ColumnPtr>{}, 0);
  }

 private:
  SchemaPtr schema_;
};

class GateSource : public SourceNode {
 public:
  Result<SchemaPtr> OutputSchema() override { return schema_; }
  Result<std::unique_ptr<Decoder>> MakeDecoder() const override {
    return std::unique_ptr<Decoder>(std::make_unique<GateDecoder>(schema_));
  }
  Result<std::unique_ptr<SourceReader>> OpenReader() const override {
    return std::unique_ptr<SourceReader>(std::make_unique<GateReader>());
  }

 private:
  SchemaPtr schema_ = std::make_shared<Schema>(std::vector<Field>{});
};

OperatorSpec TestSpec(const char* name, Role role, const char* example) {
  OperatorSpec spec;
  spec.name = name;
  spec.role = role;
  spec.summary = "test operator";
  spec.example = example;
  return spec;
}

// The built-in operators plus the `gate` source, the `wait` and `throw` transforms and the
// `hold` and `settle` sinks.
const Registry& WithTestOperators() {
  static const Registry* registry = [] {
    auto* r = new Registry;
    RegisterBuiltinOperators(*r);
    OperatorSpec wait = TestSpec("wait", Role::kTransform, "{type: wait, inputs: [src]}");
    wait.parallel = true;
    wait.make_transform = [](const NodeConfig&) -> Result<std::unique_ptr<TransformNode>> {
      return std::unique_ptr<TransformNode>(std::make_unique<WaitTransform>());
    };
    r->Add(std::move(wait));
    OperatorSpec thrower = TestSpec("throw", Role::kTransform, "{type: throw, inputs: [src]}");
    thrower.make_transform = [](const NodeConfig&) -> Result<std::unique_ptr<TransformNode>> {
      return std::unique_ptr<TransformNode>(std::make_unique<ThrowTransform>());
    };
    r->Add(std::move(thrower));
    OperatorSpec hold = TestSpec("hold", Role::kSink, "{type: hold, inputs: [src]}");
    hold.make_sink = [](const NodeConfig&) -> Result<std::unique_ptr<SinkNode>> {
      return std::unique_ptr<SinkNode>(std::make_unique<HoldSink>());
    };
    r->Add(std::move(hold));
    OperatorSpec settle = TestSpec("settle", Role::kSink, "{type: settle, inputs: [src]}");
    settle.make_sink = [](const NodeConfig&) -> Result<std::unique_ptr<SinkNode>> {
      return std::unique_ptr<SinkNode>(std::make_unique<SettleSink>());
    };
    r->Add(std::move(settle));
    OperatorSpec gate = TestSpec("gate", Role::kSource, "{type: gate}");
    gate.make_source = [](const NodeConfig&) -> Result<std::unique_ptr<SourceNode>> {
      return std::unique_ptr<SourceNode>(std::make_unique<GateSource>());
    };
    r->Add(std::move(gate));
    return r;
  }();
  return *registry;
}


// Writes kRows records {"n": i} and their schema into `dir`, and returns the pipeline's
// settings and sources: a file source `src` of them in batches of 10, after `sources_before`.
std::string WriteInput(TempDir& dir, int max_in_flight, const std::string& sources_before = "") {
  dir.Write("s.json", R"({"type": "object", "properties": {"n": {"type": "integer"}},
                          "required": ["n"]})");
  std::string lines;
  for (int i = 0; i < kRows; ++i) lines += "{\"n\": " + std::to_string(i) + "}\n";
  dir.Write("in.jsonl", lines);
  return "settings: {batch_size: 10, max_in_flight: " + std::to_string(max_in_flight) + "}\n" +
         "sources:\n" + sources_before + "  src: {type: file, path: in.jsonl, schema: s.json}\n";
}

// Runs `nodes` (YAML of the transforms and sinks sections) on a file source of kRows records
// {"n": i} in batches of 10, up to `max_in_flight` in flight, with one oneTBB worker: a node
// that held it would stall every other batch. `sources_before` declares sources ahead of it.
RunSummary RunOnOneWorker(const std::string& nodes, const std::string& sources_before = "",
                          int max_in_flight = kBatches) {
  TempDir dir;
  const std::string yaml = WriteInput(dir, max_in_flight, sources_before) + nodes;
  Diagnostics diags;
  auto decl = ParsePipelineText(yaml, kFile, dir.path(), WithTestOperators(), diags);
  REQUIRE(decl);
  auto plan = PlanPipeline(std::move(*decl), diags);
  REQUIRE(plan);
  REQUIRE_FALSE(diags.HasErrors());
  MemoryDeadLetter dead;
  RunOptions options;
  options.dead_letter = &dead;
  options.threads = 1;
  auto summary = RunPipeline(*plan, options);
  REQUIRE(summary.ok());
  INFO(summary->status.message());
  REQUIRE(summary->status.ok());
  CHECK(summary->rows_written == static_cast<uint64_t>(kRows));
  CHECK(dead.records().empty());
  return std::move(*summary);
}

std::vector<int64_t> AllRows() {
  std::vector<int64_t> rows(kRows);
  for (int i = 0; i < kRows; ++i) rows[static_cast<size_t>(i)] = i;
  return rows;
}

}  // namespace

TEST_CASE("runner: a sink writes on a thread of its own, in order, one batch at a time",
          "[runner]") {
  HoldLog log;
  log.expected_batches = kBatches;
  g_log = &log;
  RunOnOneWorker(
      "sinks:\n"
      "  out: {type: hold, inputs: [src]}\n");
  g_log = nullptr;

  CHECK_FALSE(log.write_on_worker);
  CHECK(log.first_saw_all);  // the worker prepared batches 2-4 while batch 1 was being written
  CHECK(log.most_concurrent == 1);
  CHECK(log.written == AllRows());
}

TEST_CASE("runner: a transform that blocks runs on threads of its own, several batches at once",
          "[runner]") {
  WaitLog wait;
  wait.expected_batches = kBatches;
  HoldLog hold;
  hold.expected_batches = kBatches;
  g_wait = &wait;
  g_log = &hold;
  RunOnOneWorker(
      "transforms:\n"
      "  slow: {type: wait, inputs: [src]}\n"
      "sinks:\n"
      "  out: {type: hold, inputs: [slow]}\n");
  g_wait = nullptr;
  g_log = nullptr;

  CHECK_FALSE(wait.on_worker);
  CHECK(wait.most_at_once == kBatches);  // all calls waited together, while one worker was free
  // The transform's threads may finish batches out of order; the sink still writes in order.
  CHECK(hold.written == AllRows());
}

TEST_CASE("runner: a source waiting for input holds up no other source", "[runner]") {
  HoldLog hold;
  hold.expected_batches = kBatches;
  GateLog gate;
  gate.rows_to_wait_for = kRows;
  hold.caller = std::this_thread::get_id();
  g_log = &hold;
  g_gate = &gate;
  RunOnOneWorker(
      "sinks:\n"
      "  out: {type: hold, inputs: [src]}\n"
      "  idle_out: {type: stdout, inputs: [idle]}\n",
      "  idle: {type: gate}\n");
  g_gate = nullptr;
  g_log = nullptr;

  CHECK_FALSE(gate.read_on_worker);
  // Every row of `src` was written while `idle` waited in Read, on the one worker's watch.
  CHECK(gate.released_by_rows);
  CHECK(hold.written == AllRows());
  // The thread that started the run only sleeps while a source is live: the workers prepared
  // every batch (a thread waiting in the graph is woken by each batch and spins between them).
  CHECK(hold.prepared == kBatches);
  CHECK_FALSE(hold.prepared_on_caller);
}

TEST_CASE("runner: a sink that settles sends the next batches before the first is durable, "
          "within max_in_flight",
          "[runner]") {
  for (int in_flight : {kBatches, 2}) {
    SettleLog log;
    log.expected_prepared = in_flight;
    log.limit = in_flight;
    g_settle = &log;
    RunOnOneWorker("sinks:\n  out: {type: settle, inputs: [src]}\n", "", in_flight);
    g_settle = nullptr;
    INFO("max_in_flight " << in_flight);
    // Every batch waiting was written before any was settled; a batch not settled holds its
    // place in flight, so the source read no further until the sink settled.
    CHECK(log.most_unsettled == static_cast<size_t>(in_flight));
    CHECK_FALSE(log.read_ahead);
    CHECK(log.settled == kBatches);
    CHECK(log.unsettled == 0u);
    CHECK(log.written == AllRows());
  }
}

TEST_CASE("runner: a sink's failing settle is retried, and the run ends once it succeeds",
          "[runner]") {
  SettleLog log;
  log.expected_prepared = kBatches;
  log.failures_to_return = 2;
  log.limit = kBatches;
  g_settle = &log;
  const RunSummary summary = RunOnOneWorker("sinks:\n  out: {type: settle, inputs: [src]}\n");
  g_settle = nullptr;
  CHECK(log.failures_returned == 2);
  CHECK(log.settled == kBatches);
  CHECK(summary.rows_written == static_cast<uint64_t>(kRows));
  CHECK(log.written == AllRows());  // written once: a failed settle sends nothing again itself
}

TEST_CASE("runner: a graph cancelled by an exception ends the run while its source is still live",
          "[runner]") {
  // Every batch is lost to the exception, so none is acknowledged and, with all of them in
  // flight, the source is never asked for the end of its input: only the cancelled graph can
  // end the wait of the thread that started the run.
  TempDir dir;
  const std::string yaml = WriteInput(dir, 2) +
                           "transforms:\n  boom: {type: throw, inputs: [src]}\n"
                           "sinks:\n  out: {type: stdout, inputs: [boom]}\n";
  Diagnostics diags;
  auto decl = ParsePipelineText(yaml, kFile, dir.path(), WithTestOperators(), diags);
  REQUIRE(decl);
  auto plan = PlanPipeline(std::move(*decl), diags);
  REQUIRE(plan);
  MemoryDeadLetter dead;
  std::atomic<bool> stop{false};
  RunOptions options;
  options.dead_letter = &dead;
  options.threads = 1;
  options.stop = &stop;
  auto run = std::async(std::launch::async, [&] {
    try {
      (void)RunPipeline(*plan, options);
    } catch (int thrown) {
      return thrown;
    }
    return 0;
  });
  const bool ended = run.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  if (!ended) stop = true;  // releases a run that waits for its source, to fail, not hang
  CHECK(ended);
  CHECK(run.get() == 42);  // the exception reaches the caller, as from wait_for_all
}
