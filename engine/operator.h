// The operator interface and registry. An operator declares a spec (name, role, config keys) and a
// factory; the factory parses one node's config into a plan object (no I/O), the plan computes
// its output schema from its input schema, and builds the runtime object that processes batches.
//
// Threading contract:
// - Plans are used on one thread during validation and build.
// - SourceReader::Read is called serially from one thread; it may block on I/O.
// - Decoder::Decode and TransformRuntime::Process are const and called concurrently from TBB
//   worker threads when the spec says `parallel`; otherwise serially. They do CPU work only,
//   except calls to a remote service whose every wait is bounded (predict's model-server
//   backends, operators/transforms/predict_http.h); those return Unavailable during an outage.
// - SinkRuntime::Prepare is const and may run concurrently; the other SinkRuntime methods are
//   called serially, in batch order per source.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/batch.h"
#include "engine/command.h"
#include "engine/config.h"
#include "engine/status.h"
#include "engine/types.h"

namespace sluice {

class DeadLetter;
class Counter;

// What a node sees of the run: its name, the dead-letter output and its counters.
class NodeContext {
 public:
  NodeContext(std::string node, DeadLetter* dead_letter)
      : node_(std::move(node)), dead_letter_(dead_letter) {}
  const std::string& node() const { return node_; }
  // Also counts rejections here (sluice_node_dead_letters_total).
  void SetRejectedCounter(Counter* counter) { rejected_metric_ = counter; }
  // Sends a row that this node cannot process to the dead-letter output, with the reason.
  void Reject(const Batch& batch, size_t row, std::string_view reason);
  void RejectRaw(const RawRecords& raw, size_t index, std::string_view reason);
  uint64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }

 private:
  std::string node_;
  DeadLetter* dead_letter_;
  std::atomic<uint64_t> rejected_{0};
  Counter* rejected_metric_ = nullptr;
};

// ---- positions ----
// Where a sink that commits its source's read positions with its own writes keeps them (a
// database table, for exactly-once into that database). The source asks it where to resume.
// Positions are "next to read", per stream (topic) and partition.
using PositionKey = std::pair<std::string, int32_t>;
class PositionStore {
 public:
  virtual ~PositionStore() = default;
  // Every stored position of this pipeline's sink. Called from the source's own thread;
  // may block on I/O.
  virtual Result<std::map<PositionKey, int64_t>> Load() = 0;
};

// `sluice validate --connect`: checks, without writing anything, what only the services a node
// reaches, or the machine it runs on, can tell (the brokers answer and the topic exists, a
// table's columns take the rows, a model server serves the model; a file can be read, a folder
// written, an address bound). Called after planning, on a node planned without error, from one
// thread; every wait is bounded by `timeout_ms`. Returns what was checked, for the report, or
// empty when there is nothing to ask.
struct ProbeOptions {
  int64_t timeout_ms = 5000;
};

// ---- sources ----
class SourceReader {
 public:
  virtual ~SourceReader() = default;
  // Up to `max_records` raw records; an empty result (nullptr) at the end of input.
  virtual Result<std::shared_ptr<RawRecords>> Read(size_t max_records) = 0;
  // Every sink downstream has durably written (or deliberately dropped) every row of `raw`.
  // Called from any thread, in any order across chunks; a source with positions commits the
  // contiguous acknowledged prefix of each partition.
  virtual void Acknowledge(const RawRecords& /*raw*/) {}
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Decodes the records into a batch of the source's schema; undecodable records are rejected
  // through `ctx` and left out. The batch keeps `raw` for dead letters downstream.
  virtual Result<std::shared_ptr<Batch>> Decode(std::shared_ptr<const RawRecords> raw,
                                                NodeContext& ctx) const = 0;
  // True when the first line of the input is a header (CSV), not a record.
  virtual bool TakesHeader() const { return false; }
};

class SourceNode {
 public:
  virtual ~SourceNode() = default;
  virtual Result<SchemaPtr> OutputSchema() = 0;
  virtual Result<std::unique_ptr<Decoder>> MakeDecoder() const = 0;
  virtual Result<std::unique_ptr<SourceReader>> OpenReader() const = 0;
  // See ProbeOptions.
  virtual Result<std::string> Probe(const ProbeOptions&) const { return std::string(); }
  // Whether a sink may commit this source's positions in its own transaction.
  virtual bool PositionsCommittableDownstream() const { return false; }
  // Called before OpenReader when a sink downstream commits this source's positions itself,
  // atomically with its writes (exactly-once): the source must not commit them too, and
  // resumes from `store` when there is one (otherwise from where it keeps positions itself).
  virtual void SetPositionsCommittedDownstream(std::shared_ptr<PositionStore> /*store*/) {}
};

// ---- transforms ----
class TransformRuntime {
 public:
  virtual ~TransformRuntime() = default;
  virtual Result<BatchPtr> Process(const BatchPtr& input, NodeContext& ctx) const = 0;
  // True when Process waits on I/O (a remote server): the runner then calls it on threads of
  // the node's own, so that the oneTBB workers do CPU work only.
  virtual bool blocks() const { return false; }
};

class TransformNode {
 public:
  virtual ~TransformNode() = default;
  virtual Result<SchemaPtr> OutputSchema(const SchemaPtr& input) = 0;
  virtual Result<std::unique_ptr<TransformRuntime>> Build() const = 0;
  // See ProbeOptions.
  virtual Result<std::string> Probe(const ProbeOptions&) const { return std::string(); }
};

// ---- sinks ----
class SinkRuntime {
 public:
  virtual ~SinkRuntime() = default;
  // Optional CPU-only work done before Write, on several batches at once (e.g. encoding rows
  // to bytes), so that the serial Write only does I/O. Its result is handed to Write.
  virtual bool prepares() const { return false; }
  virtual Result<std::string> Prepare(const Batch&) const { return std::string(); }
  // Durably writes (or buffers, then writes in Flush) the batch. Serial, in batch order.
  // A sink that settles only hands the batch over here (to a producer's queue); Settle says when
  // it is durable. Every Write that returns Ok is then one batch for Settle to count; one that
  // fails must leave none (the runner retries it, or the run ends).
  virtual Status Write(const Batch& batch, const std::string& prepared, NodeContext& ctx) = 0;
  // True when Write returns before the batch is durable, so that the next batches can be sent
  // while the earlier ones wait for their acknowledgements (a Kafka producer's delivery
  // reports). The runner acknowledges a batch upstream only once Settle has counted it.
  virtual bool settles() const { return false; }
  // Waits until at most `keep` written batches are not yet durable (keep = SIZE_MAX: no wait),
  // and returns how many of the oldest written batches have become durable since the last call;
  // batches become durable in the order they were written. kUnavailable: some of the oldest
  // batch's rows failed; the runner backs off and calls again, and that call sends them again.
  // Called on the thread that calls Write.
  virtual Result<size_t> Settle(size_t /*keep*/) { return size_t{0}; }
  // Makes everything written so far durable.
  virtual Status Flush() { return Status::Ok(); }
  virtual Status Close() { return Flush(); }
};

class SinkNode {
 public:
  virtual ~SinkNode() = default;
  // Checks that rows of `input` can be written (columns, types).
  virtual Status CheckInput(const SchemaPtr& input) = 0;
  virtual Result<std::unique_ptr<SinkRuntime>> Open(const SchemaPtr& input) const = 0;
  // See ProbeOptions.
  virtual Result<std::string> Probe(const ProbeOptions&) const { return std::string(); }
  // True when the sink commits the positions of the source it reads from atomically with its
  // writes (exactly-once). Such a sink must be the only one that source feeds.
  virtual bool CommitsSourcePositions() const { return false; }
  // Where such a sink keeps the positions, when not with the source's own system (a database
  // table rather than the Kafka group): the source resumes from it. Null otherwise.
  virtual Result<std::shared_ptr<PositionStore>> OpenPositionStore() const {
    return std::shared_ptr<PositionStore>();
  }
};

struct OperatorSpec {
  std::string name;  // the YAML `type`, the file name, the docs heading
  Role role = Role::kTransform;
  std::string summary;      // one line
  std::string description;  // a paragraph for the docs (optional)
  std::vector<ConfigField> fields;
  std::string example;    // YAML of one node's mapping, e.g. "{type: drop-fields, ...}"
  bool parallel = false;  // Process/Decode may run concurrently on several batches

  std::function<Result<std::unique_ptr<SourceNode>>(const NodeConfig&)> make_source;
  std::function<Result<std::unique_ptr<TransformNode>>(const NodeConfig&)> make_transform;
  std::function<Result<std::unique_ptr<SinkNode>>(const NodeConfig&)> make_sink;
};

class Registry {
 public:
  // Registers an operator; a duplicate name is a programmer error.
  void Add(OperatorSpec spec);
  // Sources and sinks may share a name (`file`): operators are keyed by role and name.
  const OperatorSpec* Find(Role role, std::string_view name) const;
  // Roles that have an operator of this name.
  std::vector<Role> RolesOf(std::string_view name) const;
  std::vector<const OperatorSpec*> All() const;  // sorted by role, then name
  std::vector<std::string> Names(Role role) const;

  // Subcommands of `sluice` beyond the engine's own.
  void AddCommand(CommandSpec command) { commands_.push_back(std::move(command)); }
  const std::vector<CommandSpec>& commands() const { return commands_; }

 private:
  std::vector<CommandSpec> commands_;
  std::map<std::pair<int, std::string>, std::unique_ptr<OperatorSpec>> specs_;
};

// Keys every node accepts besides its operator's own.
const std::vector<ConfigField>& CommonNodeFields(Role role);

}  // namespace sluice
