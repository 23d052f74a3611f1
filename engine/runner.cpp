#include "engine/runner.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <limits>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include "engine/log.h"
#include "engine/metrics.h"

namespace sluice {
namespace {

namespace flow = oneapi::tbb::flow;

struct Chunk {
  std::shared_ptr<const RawRecords> raw;
  uint64_t seq = 0;
  std::shared_ptr<Ticket> ticket;
};

// A batch on its way into a sink, with what the sink's Prepare made of it.
struct SinkItem {
  BatchPtr batch;
  std::shared_ptr<const std::string> prepared;
};

// Threads of a node's own, for work that waits: a sink's writes (its database, broker or
// webhook, and the sleeps between retries) and transforms that call a remote server. TBB's
// workers only decode, transform and prepare; they hand such work over through an async_node
// and go on with the next batches. Each item holds the graph open (reserve_wait) until its work
// is done, so wait_for_all drains these threads too. With one thread, items are worked on in the
// order they were handed over. The sources' in-flight limits bound the queue.
template <typename In, typename Out>
class IoThreads {
 public:
  using Node = flow::async_node<In, Out>;
  using Gateway = typename Node::gateway_type;
  using Work = std::function<void(const In&, Gateway&)>;

  IoThreads(size_t threads, Work work) : work_(std::move(work)) {
    for (size_t t = 0; t < threads; ++t) threads_.emplace_back([this] { Loop(); });
  }
  ~IoThreads() { Join(); }

  // An item is on its way (a sink's Prepare has begun on it): counted until its Push.
  void Coming() {
    std::lock_guard<std::mutex> lock(mu_);
    ++coming_;
  }
  // Called by the async_node's body, on a TBB worker: queues the item and returns at once.
  void Push(const In& item, Gateway& gateway) {
    gateway.reserve_wait();
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.emplace_back(item, &gateway);
      if (coming_ > 0) --coming_;  // queued and no longer coming (items never Coming: none)
    }
    cv_.notify_one();
  }
  // True when items wait for a thread, or are on their way to the queue (any thread may ask).
  bool MoreComing() {
    std::lock_guard<std::mutex> lock(mu_);
    return !queue_.empty() || coming_ > 0;
  }
  // Ends the threads once the queue is empty.
  void Join() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  void Loop() {
    for (;;) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      auto [item, gateway] = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      work_(item, *gateway);
      gateway->release_wait();
    }
  }

  Work work_;
  size_t coming_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<In, Gateway*>> queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// A source's reads, on a thread of its own, for pipelines with several sources. Read may wait:
// on a broker, for an HTTP request, or on an idle stream, up to the reader's own bound. In an
// input_node that wait holds a worker, and with one worker (the default on a one-core machine)
// a second source that is idle let the first through only between its waits. The pump keeps at
// most `limit` chunks in flight (settings.max_in_flight), puts each into the graph from its
// thread, and holds the graph open (reserve_wait) until it ends: at the end of the input, on a
// stop, or on a failure. A pipeline's only source stays an input_node: a chunk put in from
// outside wakes the workers, which then spin looking for more (at 10,000 records/s in chunks of
// ~66, Sluice's CPU rose by 60%), while an input_node's worker waits in Read without spinning.
class SourcePump {
 public:
  SourcePump(flow::graph& g, size_t limit) : g_(g), limit_(std::max<size_t>(1, limit)) {}
  ~SourcePump() { Join(); }

  // Runs `step` (read one chunk and put it into the graph; false once the source is done)
  // whenever fewer than `limit` chunks are in flight, until it returns false or `stopping`.
  void Start(std::function<bool()> step, std::function<bool()> stopping,
             std::function<void()> ended) {
    g_.reserve_wait();
    thread_ = std::thread([this, step = std::move(step), stopping = std::move(stopping),
                           ended = std::move(ended)] {
      while (WaitForRoom(stopping) && step()) {
      }
      ended();
      g_.release_wait();
    });
  }
  // A slot is taken, before the read that may fill it (an idle read gives it back).
  void Sent() {
    std::lock_guard<std::mutex> lock(mu_);
    ++in_flight_;
  }
  // Every sink has acknowledged a chunk (any thread).
  void Released() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      --in_flight_;
    }
    cv_.notify_one();
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  // False on a stop. A stop is a flag (a signal handler's, or a failure's), not a notification,
  // so the wait looks at it every 100 ms.
  bool WaitForRoom(const std::function<bool()>& stopping) {
    std::unique_lock<std::mutex> lock(mu_);
    while (in_flight_ >= limit_) {
      if (stopping()) return false;
      cv_.wait_for(lock, std::chrono::milliseconds(100));
    }
    return !stopping();
  }

  flow::graph& g_;
  const size_t limit_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t in_flight_ = 0;
  std::thread thread_;
};

using SinkThread = IoThreads<SinkItem, flow::continue_msg>;
using TransformThreads = IoThreads<BatchPtr, BatchPtr>;

// A node's series in the process's metrics registry (engine/metrics.h), looked up once.
struct NodeMetrics {
  Counter* in = nullptr;
  Counter* out = nullptr;
  Histogram* duration = nullptr;
  Counter* retries = nullptr;
  Gauge* in_flight = nullptr;    // sources
  Histogram* latency = nullptr;  // sinks
};

struct NodeRt {
  std::unique_ptr<NodeContext> ctx;
  NodeMetrics m;
  std::atomic<uint64_t> rows_in{0};
  std::atomic<uint64_t> rows_out{0};
  std::unique_ptr<SourceReader> reader;
  std::unique_ptr<Decoder> decoder;
  std::unique_ptr<TransformRuntime> transform;
  std::unique_ptr<SinkRuntime> sink;

  // A source: an input_node behind a limiter when it is the pipeline's only one, else a pump.
  std::unique_ptr<flow::input_node<Chunk>> input;
  std::unique_ptr<flow::limiter_node<Chunk>> limiter;
  std::unique_ptr<SourcePump> pump;
  std::function<bool()> read_step;  // the pump's step: one chunk read and put into the graph
  std::unique_ptr<flow::function_node<Chunk, BatchPtr>> decode;
  std::unique_ptr<flow::function_node<BatchPtr, BatchPtr>> fn;
  std::unique_ptr<flow::function_node<BatchPtr, SinkItem>> prepare;
  std::unique_ptr<flow::sequencer_node<SinkItem>> sequencer;
  std::unique_ptr<TransformThreads> transform_threads;  // transforms that wait on a server
  std::unique_ptr<TransformThreads::Node> transform_io;
  std::unique_ptr<SinkThread> sink_thread;
  std::unique_ptr<SinkThread::Node> sink_fn;
  // A sink that settles: the batches written and not yet durable, oldest first (sink thread).
  struct Unsettled {
    BatchPtr batch;
    uint64_t written = 0;  // rows not refused one by one
    std::chrono::steady_clock::time_point started;
  };
  std::deque<Unsettled> unsettled;
  flow::sender<BatchPtr>* out_port = nullptr;
  flow::receiver<BatchPtr>* in_port = nullptr;
};

// Paths from node `from` to node `to` in the DAG.
int CountPaths(const Plan& plan, int from, int to) {
  if (from == to) return 1;
  int n = 0;
  for (int o : plan.nodes[from].outputs) n += CountPaths(plan, o, to);
  return n;
}

constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
// Threads of one blocking transform: more would only queue for the client's own bound on
// requests in flight (a remote predict's `concurrency`).
constexpr int64_t kMaxTransformThreads = 64;
constexpr auto kMaxBackoff = std::chrono::seconds(5);
// SinkRuntime::Settle's `keep` that waits for nothing.
constexpr size_t kNoWait = std::numeric_limits<size_t>::max();

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

NodeMetrics MakeNodeMetrics(const std::string& pipeline, const NodeConfig& cfg,
                            size_t in_flight_limit) {
  MetricsRegistry& reg = Metrics();
  const MetricLabels labels = {{"pipeline", pipeline}, {"node", cfg.name}};
  MetricLabels with_role = labels;
  with_role.emplace_back("role", RoleName(cfg.role));
  NodeMetrics m;
  m.in = reg.GetCounter("sluice_node_records_in_total",
                        "records into the node (for a source: raw records read)", with_role);
  m.out = reg.GetCounter("sluice_node_records_out_total",
                         "rows out of the node (for a sink: rows durably written)", with_role);
  m.duration = reg.GetHistogram(
      "sluice_node_batch_duration_seconds",
      "time the node took for one batch: decoding, transforming, or writing (retries included)",
      labels, DurationBuckets());
  if (cfg.role != Role::kSource) {
    m.retries = reg.GetCounter(
        "sluice_node_retries_total",
        "retries of a batch whose dependency failed (a sink's database or broker, a model "
        "server); the pipeline is paused meanwhile",
        labels);
  }
  if (cfg.role == Role::kSource) {
    m.in_flight = reg.GetGauge("sluice_source_in_flight_batches",
                               "batches read and not yet acknowledged by every sink", labels);
    reg.GetGauge("sluice_source_in_flight_limit",
                 "the most batches a source may have in flight (settings.max_in_flight)", labels)
        ->Set(static_cast<double>(in_flight_limit));
  }
  if (cfg.role == Role::kSink) {
    m.latency = reg.GetHistogram(
        "sluice_end_to_end_latency_seconds",
        "per row: from the source's timestamp (a Kafka message's), or the time the source read "
        "it, to written by this sink",
        labels, DurationBuckets());
  }
  return m;
}

// Each row's time from its source timestamp (or its read time) to now, in seconds.
void ObserveLatency(Histogram* h, const Batch& b) {
  const auto& raw = b.raw();
  if (!h || !raw || b.num_rows() == 0) return;
  const int64_t now = NowMicros();
  if (raw->timestamps.empty()) {
    h->Observe(static_cast<double>(std::max<int64_t>(0, now - raw->read_at_us)) / 1e6,
               b.num_rows());
    return;
  }
  Histogram::Local local(*h);
  for (size_t r = 0; r < b.num_rows(); ++r) {
    const uint32_t idx = b.RawIndex(r);
    int64_t ts = idx < raw->timestamps.size() ? raw->timestamps[idx] : RawRecords::kNoTimestamp;
    if (ts == RawRecords::kNoTimestamp) ts = raw->read_at_us;
    local.Observe(static_cast<double>(std::max<int64_t>(0, now - ts)) / 1e6);
  }
  h->Add(local);
}

}  // namespace

Result<RunSummary> RunPipeline(Plan& plan, const RunOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const PipelineDecl& decl = plan.decl;
  std::unique_ptr<FileDeadLetter> file_dlq;
  DeadLetter* dlq = options.dead_letter;
  if (!dlq) {
    file_dlq = std::make_unique<FileDeadLetter>(decl.name, decl.settings.dead_letter_path,
                                                options.stop);
    dlq = file_dlq.get();
  }

  // TBB's workers do the graph's work, `threads` of them in an arena of the graph's own; this
  // thread does not take a slot. It sleeps until the sources end (or a stop or failure) and
  // only then joins in to drain: a thread waiting in wait_for_all while the stream runs is woken
  // by every chunk and spins looking for work between chunks.
  const int threads =
      options.threads > 0 ? options.threads : oneapi::tbb::info::default_concurrency();
  oneapi::tbb::global_control parallelism(oneapi::tbb::global_control::max_allowed_parallelism,
                                          static_cast<size_t>(threads) + 1);
  oneapi::tbb::task_arena arena(threads, /*reserved_for_masters=*/0);

  std::atomic<bool> failed{false};
  std::mutex fatal_mu;
  Status fatal;
  auto fail = [&](Status st) {
    std::lock_guard<std::mutex> lock(fatal_mu);
    if (fatal.ok()) fatal = std::move(st);
    failed = true;
  };
  auto stopping = [&]() { return failed.load() || (options.stop && options.stop->load()); };
  // A row the dead-letter output gave up on (stopped while it could not be written) fails the
  // run before the batch it came from is acknowledged.
  auto dead_letters_lost = [&]() {
    if (!dlq->failed()) return false;
    fail(dlq->Flush());
    return true;
  };

  // A node body's exception cancels the context, which this thread also looks at while it waits.
  oneapi::tbb::task_group_context graph_context;
  // The graph outlives the nodes in `rt`, declared after it: a node's destructor unregisters
  // itself from its graph.
  std::unique_ptr<flow::graph> graph;
  arena.execute([&] {  // the graph's tasks go to `arena`
    graph = std::make_unique<flow::graph>(graph_context);
  });
  flow::graph& g = *graph;
  // Sources that have not ended yet; the last to end wakes this thread.
  std::mutex sources_mu;
  std::condition_variable sources_cv;
  int sources_live = 0;
  auto source_ended = [&] {
    {
      std::lock_guard<std::mutex> lock(sources_mu);
      --sources_live;
    }
    sources_cv.notify_all();
  };
  // Build phase: readers, decoders, transform runtimes, sinks.
  std::vector<std::unique_ptr<NodeRt>> rt(plan.nodes.size());
  for (int i : plan.topo) {
    PlannedNode& pn = plan.nodes[i];
    const NodeConfig& cfg = *pn.cfg;
    if (!pn.ok) return Status::Internal(fmt::format("node '{}' did not plan", cfg.name));
    auto r = std::make_unique<NodeRt>();
    r->ctx = std::make_unique<NodeContext>(cfg.name, dlq);
    r->m = MakeNodeMetrics(decl.name, cfg, static_cast<size_t>(decl.settings.max_in_flight));
    r->ctx->SetRejectedCounter(Metrics().GetCounter(
        "sluice_node_dead_letters_total", "rows the node sent to the dead-letter output",
        {{"pipeline", decl.name}, {"node", cfg.name}}));
    switch (cfg.role) {
      case Role::kSource: {
        SLUICE_ASSIGN_OR_RETURN(r->decoder, pn.source->MakeDecoder());
        if (int by = plan.PositionsCommittedBy(i); by >= 0) {
          SLUICE_ASSIGN_OR_RETURN(auto store, plan.nodes[by].sink->OpenPositionStore());
          pn.source->SetPositionsCommittedDownstream(std::move(store));
        }
        SLUICE_ASSIGN_OR_RETURN(r->reader, pn.source->OpenReader());
        break;
      }
      case Role::kTransform: {
        SLUICE_ASSIGN_OR_RETURN(r->transform, pn.transform->Build());
        break;
      }
      case Role::kSink: {
        SLUICE_ASSIGN_OR_RETURN(r->sink, pn.sink->Open(pn.input_schema));
        break;
      }
    }
    rt[i] = std::move(r);
  }

  const size_t batch_size = static_cast<size_t>(decl.settings.batch_size);
  const int plan_sources = static_cast<int>(
      std::count_if(plan.nodes.begin(), plan.nodes.end(),
                    [](const PlannedNode& n) { return n.cfg->role == Role::kSource; }));
  const size_t in_flight = static_cast<size_t>(decl.settings.max_in_flight);
  LiveCounters local_live;
  LiveCounters& live = options.live ? *options.live : local_live;

  // Runs a sink's `attempt` until it succeeds. A failure of its dependency (kUnavailable) is
  // retried with backoff, the pipeline paused meanwhile; any other failure, or one while
  // stopping, fails the run. False once the run has failed.
  auto sink_retrying = [&](NodeRt& n, const std::function<Status()>& attempt) {
    auto backoff = kFirstBackoff;
    while (!failed.load()) {
      Status st;
      try {
        st = attempt();
      } catch (const std::exception& e) {
        st = Status::Internal(e.what());
      }
      if (st.ok()) return true;
      if (st.code() != StatusCode::kUnavailable || (options.stop && options.stop->load())) {
        fail(Status(st.code(), fmt::format("sink '{}': {}", n.ctx->node(), st.message())));
        break;
      }
      Log(LogLevel::kWarn,
          fmt::format("sink '{}': {}; retrying in {} ms", n.ctx->node(), st.message(),
                      backoff.count()),
          {{"node", n.ctx->node()}});
      n.m.retries->Inc();
      std::this_thread::sleep_for(backoff);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
    }
    return false;
  };
  // A batch is durable in a sink: counted, and acknowledged upstream for this sink's path.
  auto sink_acknowledge = [&](NodeRt& n, const NodeRt::Unsettled& b) {
    n.rows_out += b.written;
    n.m.out->Inc(static_cast<double>(b.written));
    if (b.batch->num_rows() > 0) {
      n.m.duration->Observe(SecondsSince(b.started));
      ObserveLatency(n.m.latency, *b.batch);
    }
    live.rows_written += b.written;
    live.rejected.store(dlq->count(), std::memory_order_relaxed);
    if (b.batch->ticket) b.batch->ticket->Done();
  };
  // Acknowledges what a settling sink has made durable, waiting until at most `keep` of its
  // batches are not.
  auto sink_settle = [&](NodeRt& n, size_t keep) {
    do {
      const bool settled = sink_retrying(n, [&] {
        Result<size_t> got = n.sink->Settle(keep);
        if (!got.ok()) return got.status();
        if (*got > n.unsettled.size()) {
          return Status::Internal(fmt::format("settled {} batches of {} written", *got,
                                              n.unsettled.size()));
        }
        for (size_t k = 0; k < *got; ++k) {
          sink_acknowledge(n, n.unsettled.front());
          n.unsettled.pop_front();
        }
        return Status::Ok();
      });
      if (!settled) return;  // the run failed
    } while (n.unsettled.size() > keep);
  };

  for (int i : plan.topo) {
    PlannedNode& pn = plan.nodes[i];
    NodeRt& r = *rt[i];
    const NodeConfig& cfg = *pn.cfg;
    const bool parallel = cfg.spec->parallel;
    const size_t concurrency = parallel ? flow::unlimited : flow::serial;
    switch (cfg.role) {
      case Role::kSource: {
        const int paths = plan.SinkPaths(i);
        // Reads one chunk into `out`. False at the end of the input or on a failure. An idle
        // read (no records yet) leaves `out` without records when `skip_idle`, and otherwise
        // makes it an empty chunk for the graph. `slot_released` runs once every sink has
        // acknowledged the chunk.
        auto read = [&, seq = std::make_shared<uint64_t>(0), paths, rp = &r](
                        Chunk& out, bool skip_idle, std::function<void()> slot_released) -> bool {
          Result<std::shared_ptr<RawRecords>> got = Status::Internal("not read");
          try {
            got = rp->reader->Read(batch_size);
          } catch (const std::exception& e) {
            got = Status::Internal(e.what());
          }
          if (!got.ok()) {
            fail(Status(got.status().code(), fmt::format("source '{}': {}", rp->ctx->node(),
                                                         got.status().message())));
            return false;
          }
          if (!*got) return false;  // the end of the input
          if (skip_idle && (*got)->count() == 0) {
            rp->reader->Acknowledge(**got);  // nothing for the graph
            return true;
          }
          (*got)->read_at_us = NowMicros();
          out.raw = std::move(*got);
          out.seq = (*seq)++;
          rp->rows_in += out.raw->count();
          rp->m.in->Inc(static_cast<double>(out.raw->count()));
          live.records_read += out.raw->count();
          rp->m.in_flight->Inc();
          auto release = [rp, raw = out.raw, slot_released = std::move(slot_released)] {
            rp->reader->Acknowledge(*raw);
            rp->m.in_flight->Dec();
            slot_released();
          };
          if (paths == 0) {
            release();  // nothing downstream will acknowledge it
          } else {
            out.ticket = std::make_shared<Ticket>(paths, std::move(release));
          }
          return true;
        };
        if (plan_sources > 1) {
          // Several sources: each on a thread of its own (SourcePump).
          r.pump = std::make_unique<SourcePump>(g, in_flight);
          r.read_step = [read, rp = &r]() mutable -> bool {
            SourcePump* pump = rp->pump.get();
            pump->Sent();  // before the read: a chunk with no sink is released at once
            Chunk c;
            if (!read(c, true, [pump] { pump->Released(); })) return false;
            if (!c.raw) {
              pump->Released();  // an idle read took no slot
              return true;
            }
            rp->decode->try_put(c);
            return true;
          };
        } else {
          // One source: an input_node, on the workers, behind a limiter_node.
          r.limiter = std::make_unique<flow::limiter_node<Chunk>>(g, in_flight);
          r.input = std::make_unique<flow::input_node<Chunk>>(
              g, [&, read, limiter = r.limiter.get()](oneapi::tbb::flow_control& fc) mutable {
                Chunk c;
                if (stopping() || !read(c, false, [limiter] {
                      limiter->decrementer().try_put(flow::continue_msg());
                    })) {
                  source_ended();
                  fc.stop();
                  return Chunk{};
                }
                // An idle read is an empty chunk, so that the input_node asks again.
                return c;
              });
        }
        r.decode = std::make_unique<flow::function_node<Chunk, BatchPtr>>(
            g, concurrency, [&, rp = &r, schema = pn.output_schema](const Chunk& c) -> BatchPtr {
              const auto started = std::chrono::steady_clock::now();
              std::shared_ptr<Batch> b;
              Result<std::shared_ptr<Batch>> got = Status::Internal("not decoded");
              try {
                got = rp->decoder->Decode(c.raw, *rp->ctx);
              } catch (const std::exception& e) {
                got = Status::Internal(e.what());
              }
              const bool unfit = !got.ok() && got.status().code() == StatusCode::kInvalidConfig;
              if (unfit) {
                // The input does not fit the configuration at all (a CSV header without a
                // required column): stop the run; dead-lettering every record would only hide
                // a configuration error.
                fail(Status(got.status().code(), fmt::format("source '{}': {}", rp->ctx->node(),
                                                             got.status().message())));
              }
              if (got.ok()) {
                b = std::move(*got);
              } else {
                for (size_t k = 0; !unfit && k < c.raw->count(); ++k)
                  rp->ctx->RejectRaw(*c.raw, k, got.status().message());
                std::vector<ColumnPtr> cols;
                for (const auto& f : schema->fields())
                  cols.push_back(std::make_shared<Column>(f.type));
                b = std::make_shared<Batch>(schema, std::move(cols), 0);
              }
              dead_letters_lost();
              b->seq = c.seq;
              b->ticket = c.ticket;
              rp->rows_out += b->num_rows();
              rp->m.out->Inc(static_cast<double>(b->num_rows()));
              if (c.raw->count() > 0) rp->m.duration->Observe(SecondsSince(started));
              return b;
            });
        if (r.input) {
          flow::make_edge(*r.input, *r.limiter);
          flow::make_edge(*r.limiter, *r.decode);
        }
        r.out_port = r.decode.get();
        break;
      }
      case Role::kTransform: {
        auto process = [&, rp = &r, schema = pn.output_schema](const BatchPtr& in) -> BatchPtr {
          const auto started = std::chrono::steady_clock::now();
          rp->rows_in += in->num_rows();
          rp->m.in->Inc(static_cast<double>(in->num_rows()));
          Result<BatchPtr> got = Status::Internal("not processed");
          // A dependency that is down (a model server) pauses the batch, retried with
          // backoff, rather than failing its rows; a stop ends the run without them, so
          // their positions are not committed and the next run reads them again.
          auto backoff = kFirstBackoff;
          for (;;) {
            try {
              got = rp->transform->Process(in, *rp->ctx);
            } catch (const std::exception& e) {
              got = Status::Internal(e.what());
            }
            if (got.ok() || got.status().code() != StatusCode::kUnavailable) break;
            if (stopping()) {
              fail(Status(got.status().code(), fmt::format("transform '{}': {}",
                                                           rp->ctx->node(),
                                                           got.status().message())));
              return in->Empty(schema);
            }
            Log(LogLevel::kWarn,
                fmt::format("transform '{}': {}; retrying in {} ms", rp->ctx->node(),
                            got.status().message(), backoff.count()),
                {{"node", rp->ctx->node()}});
            rp->m.retries->Inc();
            std::this_thread::sleep_for(backoff);
            backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
          }
          BatchPtr out;
          if (got.ok() && *got) {
            out = std::move(*got);
          } else {
            // A failure of the whole batch: every row is dead-lettered with the reason and
            // the (empty) batch still flows so its position advances.
            std::string reason = got.ok() ? "no output" : got.status().message();
            for (size_t k = 0; k < in->num_rows(); ++k) rp->ctx->Reject(*in, k, reason);
            out = in->Empty(schema);
          }
          dead_letters_lost();
          rp->rows_out += out->num_rows();
          rp->m.out->Inc(static_cast<double>(out->num_rows()));
          if (in->num_rows() > 0) rp->m.duration->Observe(SecondsSince(started));
          return out;
        };
        if (r.transform->blocks()) {
          // It waits on a server: threads of its own call it, one per batch that may be in
          // flight when it runs on several batches at once (up to kMaxTransformThreads).
          const size_t threads =
              parallel ? static_cast<size_t>(std::clamp<int64_t>(decl.settings.max_in_flight, 1,
                                                                 kMaxTransformThreads))
                       : 1;
          r.transform_threads = std::make_unique<TransformThreads>(
              threads, [process](const BatchPtr& in, TransformThreads::Gateway& gateway) {
                gateway.try_put(process(in));
              });
          r.transform_io = std::make_unique<TransformThreads::Node>(
              g, concurrency,
              [threads = r.transform_threads.get()](const BatchPtr& in,
                                                    TransformThreads::Gateway& gateway) {
                threads->Push(in, gateway);
              });
          r.in_port = r.transform_io.get();
          // An async_node takes successors only through its port (its own register_successor
          // refuses them).
          r.out_port = &flow::output_port<0>(*r.transform_io);
        } else {
          r.fn = std::make_unique<flow::function_node<BatchPtr, BatchPtr>>(g, concurrency, process);
          r.in_port = r.fn.get();
          r.out_port = r.fn.get();
        }
        break;
      }
      case Role::kSink: {
        static const auto kNothing = std::make_shared<const std::string>();
        r.prepare = std::make_unique<flow::function_node<BatchPtr, SinkItem>>(
            g, flow::unlimited, [&, rp = &r](const BatchPtr& in) -> SinkItem {
              if (rp->sink->settles()) rp->sink_thread->Coming();  // only it asks MoreComing
              SinkItem item{in, kNothing};
              if (!rp->sink->prepares() || failed.load()) return item;
              Result<std::string> got = Status::Internal("not prepared");
              try {
                got = rp->sink->Prepare(*in);
              } catch (const std::exception& e) {
                got = Status::Internal(e.what());
              }
              if (!got.ok()) {
                fail(Status(got.status().code(),
                            fmt::format("sink '{}': {}", rp->ctx->node(), got.status().message())));
                return item;
              }
              item.prepared = std::make_shared<const std::string>(std::move(*got));
              return item;
            });
        r.sink_thread = std::make_unique<SinkThread>(1, [&, rp = &r](const SinkItem& item,
                                                                     SinkThread::Gateway&) {
          const Batch& in = *item.batch;
          const auto started = std::chrono::steady_clock::now();
          rp->rows_in += in.num_rows();
          rp->m.in->Inc(static_cast<double>(in.num_rows()));
          uint64_t refused = 0;
          const bool wrote = sink_retrying(*rp, [&] {
            const uint64_t refused_before = rp->ctx->rejected();
            Status st = rp->sink->Write(in, *item.prepared, *rp->ctx);
            refused = rp->ctx->rejected() - refused_before;
            return st;
          });
          if (!wrote || dead_letters_lost()) return;
          // Rows the sink refused one by one went to the dead-letter output instead.
          NodeRt::Unsettled done{item.batch, in.num_rows() - refused, started};
          if (!rp->sink->settles()) {
            sink_acknowledge(*rp, done);
            return;
          }
          // While more batches wait or are being prepared, send them before waiting for this
          // one's acknowledgement; with none coming, wait for every batch sent.
          rp->unsettled.push_back(std::move(done));
          sink_settle(*rp, rp->sink_thread->MoreComing() ? kNoWait : 0);
        });
        r.sink_fn = std::make_unique<SinkThread::Node>(
            g, flow::serial, [thread = r.sink_thread.get()](const SinkItem& item,
                                                            SinkThread::Gateway& gateway) {
              thread->Push(item, gateway);
            });
        r.in_port = r.prepare.get();
        // A sink reached by exactly one path from one source sees batches in read order.
        int sources = 0, paths = 0;
        for (size_t s = 0; s < plan.nodes.size(); ++s) {
          if (plan.nodes[s].cfg->role != Role::kSource) continue;
          int p = CountPaths(plan, static_cast<int>(s), i);
          if (p > 0) ++sources;
          paths += p;
        }
        if (sources == 1 && paths == 1) {
          r.sequencer = std::make_unique<flow::sequencer_node<SinkItem>>(
              g, [](const SinkItem& item) { return static_cast<size_t>(item.batch->seq); });
          flow::make_edge(*r.prepare, *r.sequencer);
          flow::make_edge(*r.sequencer, *r.sink_fn);
        } else {
          flow::make_edge(*r.prepare, *r.sink_fn);
        }
        break;
      }
    }
  }
  for (size_t i = 0; i < plan.nodes.size(); ++i) {
    for (int o : plan.nodes[i].outputs) flow::make_edge(*rt[i]->out_port, *rt[o]->in_port);
  }
  Readiness local_readiness;
  Readiness& readiness = options.readiness ? *options.readiness : local_readiness;
  readiness.stop = options.stop;
  Gauge* ready = Metrics().GetGauge("sluice_pipeline_ready",
                                    "1 while the pipeline runs: built, not draining",
                                    {{"pipeline", decl.name}});
  auto ready_collector = Metrics().AddCollector(
      [ready, &readiness, &failed] { ready->Set(readiness.Ready() && !failed.load() ? 1 : 0); });
  readiness.state = Readiness::kRunning;
  for (auto& r : rt) {
    if (r && (r->input || r->pump)) ++sources_live;
  }
  for (auto& r : rt) {
    if (r && r->input) r->input->activate();
    if (r && r->pump) r->pump->Start(r->read_step, stopping, source_ended);
  }
  {
    // A stop, a failure or a cancelled graph is a flag, not a notification: looked at every
    // 100 ms.
    std::unique_lock<std::mutex> lock(sources_mu);
    while (sources_live > 0 && !stopping() && !graph_context.is_group_execution_cancelled()) {
      sources_cv.wait_for(lock, std::chrono::milliseconds(100));
    }
  }
  g.wait_for_all();
  for (auto& r : rt) {
    if (r && r->pump) r->pump->Join();
    if (r && r->transform_threads) r->transform_threads->Join();
    if (r && r->sink_thread) r->sink_thread->Join();
  }
  readiness.state = Readiness::kStopped;
  ready_collector = {};
  ready->Set(0);

  // Drained: make everything durable, even after a failure, so what was written stays written.
  for (int i : plan.topo) {
    NodeRt& r = *rt[i];
    if (r.sink) {
      Status st = r.sink->Close();
      if (!st.ok())
        fail(Status(st.code(), fmt::format("sink '{}': {}", r.ctx->node(), st.message())));
    }
  }
  Status dst = dlq->Flush();
  if (!dst.ok()) fail(dst);

  RunSummary summary;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  summary.dead_letters = dlq->count();
  summary.dead_letter_path = file_dlq ? file_dlq->path() : "";
  for (int i : plan.topo) {
    NodeRt& r = *rt[i];
    const NodeConfig& cfg = *plan.nodes[i].cfg;
    NodeStats s{cfg.name,         cfg.type,          cfg.role,
                r.rows_in.load(), r.rows_out.load(), r.ctx->rejected()};
    if (cfg.role == Role::kSource) summary.records_read += s.rows_in;
    if (cfg.role == Role::kSink) summary.rows_written += s.rows_out;
    summary.nodes.push_back(std::move(s));
  }
  summary.stopped = options.stop && options.stop->load();
  summary.status = fatal;
  return summary;
}

}  // namespace sluice
