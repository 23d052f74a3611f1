// kafka: consumes one or more topics in a consumer group and decodes each message's value (json,
// connect-json, string or dataframe-split) into the declared schema, with the message's key, timestamp, topic,
// partition and offset as extra fields when asked. Offsets are never committed automatically: a
// chunk's offsets count as done once every sink downstream has acknowledged it, and the source
// commits, per partition, the end of the contiguous done prefix. When partitions are revoked, the
// chunks read from them are waited for (up to a bound) and their offsets committed before the
// partitions are released. A committed position the broker no longer holds (it deleted the
// messages before they were read) is reported with the count of lost offsets and handled as
// `lost_offsets` says, never reset silently (operators/kafka/positions.h).
//
// When a sink downstream commits the positions itself (`delivery: exactly-once`), the source
// commits none: a kafka sink puts them in its transaction, and a postgres sink stores them with
// its rows, from where the source starts each partition it is assigned.
//
// Threading: a thread of the reader's own polls the consumer, serves its rebalance callbacks
// (which may wait for in-flight chunks) and keeps up to two chunks ready; Read (called by the
// runner, serially) only takes a ready chunk, waiting at most 100 ms. Acknowledge is called
// from sink threads and only updates the offset tracker. A FetchWaker, with a thread of its own,
// wakes librdkafka's fetcher when a full read-ahead drains (operators/kafka/fetch_waker.h).
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <simdjson.h>

#include "engine/formats.h"
#include "engine/log.h"
#include "engine/metrics.h"
#include "operators/builtin.h"
#include "operators/kafka/client.h"
#include "operators/kafka/fetch_waker.h"
#include "operators/kafka/offset_tracker.h"
#include "operators/kafka/positions.h"

namespace sluice {
namespace {

// Message metadata a source can add to its records, and the type of each.
struct MetadataKind {
  const char* name;
  TypeId type;
  bool nullable;
};
constexpr MetadataKind kMetadata[] = {
    {"key", TypeId::kString, true},      {"timestamp", TypeId::kTimestamp, true},
    {"topic", TypeId::kString, false},   {"partition", TypeId::kInt64, false},
    {"offset", TypeId::kInt64, false},
};
enum MetadataIndex { kKey, kTimestamp, kTopic, kPartition, kOffset, kMetadataCount };

struct KafkaSourceConfig {
  std::string brokers;              ///< bootstrap servers
  std::vector<std::string> topics;  ///< topics to consume
  std::string group;                ///< consumer group id
  std::string start = "earliest";   ///< where a group without committed offsets starts
  Format format = Format::kJson;    ///< json, connect-json, string or dataframe-split
  std::string schema_path;          ///< JSON Schema of the records
  int64_t max_wait_ms = 100;        ///< longest wait to fill a batch while messages arrive
  int64_t linger_ms = 1;            ///< a batch is sent on after this long without a message
  bool continue_on_lost = false;    ///< lost_offsets: continue (else fail)
  int64_t connect_timeout_ms = 30000;  ///< wait for brokers and topics at start; 0: forever
  std::string metadata_fields[kMetadataCount];  ///< field name per metadata kind; empty: not kept
  std::vector<std::pair<std::string, std::string>> properties;  ///< librdkafka settings

  bool Wants(MetadataIndex m) const { return !metadata_fields[m].empty(); }
};

constexpr auto kRevokeWait = std::chrono::seconds(10);
constexpr int kReadAheadKiB = 16384;
constexpr size_t kChunksAhead = 2;  // chunks the polling thread may hold ready
constexpr int64_t kIdlePollMs = 100;  // longest wait for a first message before checking to stop
constexpr int64_t kCommitIntervalMs = 100;  // least time between two asynchronous commits
constexpr size_t kWakerCheckEvery = 256;  // messages between two looks at the read-ahead
constexpr size_t kClockEvery = 64;        // messages between two looks at the clock in a chunk

// The consumer's settings: Sluice's, then the source's `properties`.
KafkaProperties ConsumerProperties(const KafkaSourceConfig& cfg) {
  KafkaProperties props = {
      {"bootstrap.servers", cfg.brokers},
      {"group.id", cfg.group},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      // Where to start is decided on assignment (see Assign); a position that falls out of
      // range while consuming comes back as an error instead of a silent reset.
      {"auto.offset.reset", "error"},
      // librdkafka's read-ahead (64 MiB by default) would dwarf the batches Sluice holds in
      // flight; 16 MiB keeps fetches large while bounding memory (docs/operations.md#memory).
      // librdkafka also caps each fetch response (fetch.max.bytes, unless set) at this size.
      {"queued.max.messages.kbytes", std::to_string(kReadAheadKiB)},
      {"log_level", "3"},
  };
  for (const auto& p : cfg.properties) props.push_back(p);
  return props;
}

class KafkaReader : public SourceReader {
 public:
  // `commit`: false when a sink downstream commits the positions (exactly-once); `store`: where
  // that sink keeps them, when not in the group (a database table).
  KafkaReader(KafkaSourceConfig cfg, std::string pipeline, std::string node, bool commit,
              std::shared_ptr<PositionStore> store)
      : cfg_(std::move(cfg)),
        pipeline_(std::move(pipeline)),
        node_(std::move(node)),
        commit_(commit),
        store_(std::move(store)) {}
  ~KafkaReader() override {
    lag_collector_ = {};  // before the client goes: a scrape reads its watermarks
    if (!rk_) return;
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      stop_ = true;
    }
    queue_cv_.notify_all();
    if (poller_.joinable()) poller_.join();
    waker_.reset();
    // Chunks polled but never handed on will be read again by the next owner; forgetting them
    // lets the final revoke commit what was delivered without waiting for them.
    for (const auto& chunk : queue_) ForgetChunk(*chunk);
    queue_.clear();
    Commit(/*sync=*/true);
    rd_kafka_consumer_close(rk_);
    rd_kafka_destroy(rk_);
  }

  Status Open() {
    auto configure = [this](rd_kafka_conf_t* conf) {
      rd_kafka_conf_set_opaque(conf, this);
      rd_kafka_conf_set_rebalance_cb(conf, &KafkaReader::OnRebalance);
    };
    SLUICE_ASSIGN_OR_RETURN(rk_,
                            NewKafkaClient(RD_KAFKA_CONSUMER, ConsumerProperties(cfg_), configure));
    rd_kafka_poll_set_consumer(rk_);
    positions_ = std::make_unique<StartPositions>(
        rk_, PositionPolicy{node_, cfg_.start == "latest", cfg_.continue_on_lost}, store_);
    lag_ = std::make_unique<ConsumerLag>(rk_, tracker_, pipeline_, node_);
    waker_ = std::make_unique<FetchWaker>(
        rk_, Metrics().GetCounter("sluice_kafka_fetch_wakeups_total",
                                  "requests sent to wake the fetcher after a full read-ahead "
                                  "drained (librdkafka otherwise looks again up to a second later)",
                                  {{"pipeline", pipeline_}, {"node", node_}}));
    SLUICE_RETURN_IF_ERROR(WaitForTopics(rk_, cfg_.topics, cfg_.connect_timeout_ms, cfg_.brokers));
    rd_kafka_topic_partition_list_t* subs =
        rd_kafka_topic_partition_list_new(static_cast<int>(cfg_.topics.size()));
    for (const auto& t : cfg_.topics)
      rd_kafka_topic_partition_list_add(subs, t.c_str(), RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk_, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (e) return Status::Unavailable(fmt::format("cannot subscribe: {}", rd_kafka_err2str(e)));
    poller_ = std::thread([this] { PollLoop(); });
    lag_collector_ = Metrics().AddCollector([this] { lag_->Export(); });
    return Status::Ok();
  }

  // Hands on the next chunk the polling thread has ready, waiting at most kIdlePollMs: the
  // runner's thread that calls this (a worker, or the source's own) never blocks on the broker
  // or on a rebalance, and sees a stop within kIdlePollMs.
  Result<std::shared_ptr<RawRecords>> Read(size_t max_records) override {
    max_records_.store(max_records);
    std::unique_lock<std::mutex> lock(queue_mu_);
    queue_cv_.wait_for(lock, std::chrono::milliseconds(kIdlePollMs),
                       [&] { return !queue_.empty() || !fatal_.ok(); });
    if (!queue_.empty()) {
      auto chunk = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      queue_cv_.notify_all();  // room for the poller
      return chunk;
    }
    if (!fatal_.ok()) return fatal_;
    // An idle stream is not the end of input: an empty chunk, and the runner asks again.
    auto empty = std::make_shared<RawRecords>();
    empty->offsets.push_back(0);
    return empty;
  }

  void Acknowledge(const RawRecords& raw) override {
    std::map<OffsetTracker::Key, std::pair<int64_t, int64_t>> spans;
    {
      std::lock_guard<std::mutex> lock(chunks_mu_);
      auto it = chunks_.find(&raw);
      if (it == chunks_.end()) return;
      spans = std::move(it->second);
      chunks_.erase(it);
    }
    for (const auto& [k, span] : spans) tracker_.Done(k, span.first);
  }

 private:
  void PollLoop() {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(queue_mu_);
        // A full queue means the pipeline is behind: stop fetching (backpressure) until it
        // takes a chunk.
        queue_cv_.wait(lock, [&] {
          return stop_ || (queue_.size() < kChunksAhead && fatal_.ok());
        });
        if (stop_) return;
      }
      auto chunk = PollChunk(max_records_.load());
      std::lock_guard<std::mutex> lock(queue_mu_);
      if (chunk) queue_.push_back(std::move(chunk));
      queue_cv_.notify_all();
      if (!fatal_.ok()) return;
    }
  }

  // Takes back a chunk that was read but will never be delivered.
  void ForgetChunk(const RawRecords& raw) {
    std::lock_guard<std::mutex> lock(chunks_mu_);
    auto it = chunks_.find(&raw);
    if (it == chunks_.end()) return;
    for (const auto& [k, span] : it->second) tracker_.Unread(k, span.first);
    chunks_.erase(it);
  }

  bool fatal_ok() {
    std::lock_guard<std::mutex> lock(queue_mu_);
    return fatal_.ok();
  }
  void SetFatal(Status st) {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (fatal_.ok()) fatal_ = std::move(st);
  }

  // Polls one chunk of up to `max_records` messages; null when nothing came within kIdlePollMs
  // (the polling thread then checks whether to stop, and polls again). From its first message a
  // chunk fills for at most max_wait_ms, and it is handed on as soon as no further message
  // arrives within linger_ms: waiting for records that are not coming only adds latency. Under
  // a backlog librdkafka's queue is never empty and chunks still fill to `max_records`; while the
  // sinks are busy the chunks wait and the queue refills, so a slow sink still gets large batches.
  // Runs on the polling thread, which also serves the rebalance callbacks.
  std::shared_ptr<RawRecords> PollChunk(size_t max_records) {
    // Chunks can come hundreds of times a second; the group coordinator hears from us at most
    // every kCommitIntervalMs (a crash replays at most that much more; revokes commit at once).
    if (const auto now = std::chrono::steady_clock::now();
        now - last_commit_ >= std::chrono::milliseconds(kCommitIntervalMs)) {
      Commit(/*sync=*/false);
      last_commit_ = now;
    }
    auto out = std::make_shared<RawRecords>();
    out->origin = cfg_.topics.size() == 1 ? cfg_.topics[0] : "kafka";
    Reserve(*out, max_records);
    // Offsets per partition of this chunk, for the tracker.
    std::map<OffsetTracker::Key, std::pair<int64_t, int64_t>> spans;
    auto span = spans.end();  // the span of the last message, and its topic's handle
    const rd_kafka_topic_t* span_rkt = nullptr;
    using Clock = std::chrono::steady_clock;
    const Clock::time_point idle_until = Clock::now() + std::chrono::milliseconds(kIdlePollMs);
    std::optional<Clock::time_point> deadline;  // max_wait_ms after the first message
    while (out->count() < max_records) {
      // Under a backlog the next message is already queued: take it without a timeout, and
      // read the clock only every kClockEvery messages (a clock read per message was a few
      // percent of the source's CPU).
      rd_kafka_message_t* m = nullptr;
      if (deadline && out->count() % kClockEvery != 0) m = rd_kafka_consumer_poll(rk_, 0);
      if (!m) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline.value_or(idle_until) - Clock::now())
                              .count();
        if (left <= 0) break;
        m = rd_kafka_consumer_poll(
            rk_, static_cast<int>(deadline ? std::min<int64_t>(left, cfg_.linger_ms) : left));
      }
      if (!fatal_ok()) {
        if (m) rd_kafka_message_destroy(m);
        break;  // a rebalance callback found lost offsets; the chunk so far is still delivered
      }
      if (!m) {
        waker_->Check([this] { return AssignedPartitions(); });
        if (deadline) break;
        continue;
      }
      if (m->err) {
        OnConsumeError(m);
        rd_kafka_message_destroy(m);
        if (!fatal_ok()) break;
        continue;
      }
      if (!deadline) deadline = Clock::now() + std::chrono::milliseconds(cfg_.max_wait_ms);
      waker_->Consumed(m->len);
      if (out->count() % kWakerCheckEvery == 0) {
        waker_->Check([this] { return AssignedPartitions(); });
      }
      AddMessage(*out, m);
      // Messages come in runs of one partition (a fetch's worth): only a new run looks its
      // partition up, which builds the key's topic string.
      if (span == spans.end() || m->rkt != span_rkt || m->partition != span->first.second) {
        span = spans.try_emplace({rd_kafka_topic_name(m->rkt), m->partition}, m->offset, m->offset)
                   .first;
        span_rkt = m->rkt;
      }
      span->second.second = m->offset;
      rd_kafka_message_destroy(m);
    }
    if (out->count() == 0) return nullptr;
    last_chunk_records_ = out->count();
    last_chunk_bytes_ = out->data.size();
    out->consumer_group_metadata = group_metadata_;
    for (const auto& [k, span] : spans) tracker_.Read(k, span.first, span.second);
    {
      std::lock_guard<std::mutex> lock(chunks_mu_);
      chunks_[out.get()] = std::move(spans);
    }
    return out;
  }

  FetchWaker::Partitions AssignedPartitions() const {
    FetchWaker::Partitions parts;
    parts.reserve(positions_->assigned().size());
    for (const auto& [k, start] : positions_->assigned()) parts.push_back(k);
    return parts;
  }

  // Sizes a chunk's buffers a little above the last chunk's, so that under a steady backlog
  // filling it copies each payload once instead of again at every doubling of the buffer.
  void Reserve(RawRecords& out, size_t max_records) const {
    const size_t n = std::min(max_records, last_chunk_records_ + last_chunk_records_ / 8);
    out.offsets.reserve(n + 1);
    out.offsets.push_back(0);
    out.positions.reserve(n);
    out.partitions.reserve(n);
    out.timestamps.reserve(n);
    out.data.reserve(last_chunk_bytes_ + last_chunk_bytes_ / 8);
  }

  void AddMessage(RawRecords& out, const rd_kafka_message_t* m) {
    out.Add(std::string_view(static_cast<const char*>(m->payload), m->len), m->offset);
    out.partitions.push_back(m->partition);
    if (cfg_.topics.size() > 1) {
      std::string_view topic = rd_kafka_topic_name(m->rkt);
      size_t idx = 0;
      while (idx < out.origin_names.size() && out.origin_names[idx] != topic) ++idx;
      if (idx == out.origin_names.size()) out.origin_names.emplace_back(topic);
      out.origin_of.push_back(static_cast<uint16_t>(idx));
    }
    if (cfg_.Wants(kKey)) {
      out.key_present.push_back(m->key != nullptr);
      out.keys.emplace_back(static_cast<const char*>(m->key), m->key ? m->key_len : 0);
    }
    // Kept always: the sinks measure end-to-end latency from it (sluice_end_to_end_latency).
    rd_kafka_timestamp_type_t type;
    const int64_t ms = rd_kafka_message_timestamp(m, &type);
    out.timestamps.push_back(ms < 0 ? RawRecords::kNoTimestamp : ms * 1000);
  }

  void OnConsumeError(const rd_kafka_message_t* m) {
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return;
    if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET && m->rkt) {
      // The fetch position fell out of the partition's range while consuming: the broker
      // deleted messages that had not been read yet.
      if (Status st = positions_->OnOutOfRange(m); !st.ok()) SetFatal(std::move(st));
      return;
    }
    // Transient broker errors are retried by librdkafka; say what happened.
    Log(LogLevel::kWarn, fmt::format("source '{}': {}", node_, rd_kafka_message_errstr(m)));
  }

  void Commit(bool sync) {
    auto commits = tracker_.TakeCommits();
    if (commits.empty() || !commit_) return;
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(static_cast<int>(commits.size()));
    for (const auto& [k, offset] : commits) {
      rd_kafka_topic_partition_list_add(list, k.first.c_str(), k.second)->offset = offset;
    }
    rd_kafka_resp_err_t e = rd_kafka_commit(rk_, list, sync ? 0 : 1);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
      Log(LogLevel::kWarn,
          fmt::format("source '{}': committing offsets: {}", node_, rd_kafka_err2str(e)));
    }
    rd_kafka_topic_partition_list_destroy(list);
  }

  // The group's identity (member, generation) as a transactional sink hands it to the broker
  // with the offsets it commits; refreshed on every assignment.
  void RefreshGroupMetadata() {
    rd_kafka_consumer_group_metadata_t* md = rd_kafka_consumer_group_metadata(rk_);
    if (!md) return;
    void* buf = nullptr;
    size_t size = 0;
    rd_kafka_error_t* err = rd_kafka_consumer_group_metadata_write(md, &buf, &size);
    if (!err) {
      group_metadata_.assign(static_cast<const char*>(buf), size);
      rd_kafka_mem_free(rk_, buf);
    } else {
      rd_kafka_error_destroy(err);
    }
    rd_kafka_consumer_group_metadata_destroy(md);
  }

  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* parts, void* opaque) {
    auto* self = static_cast<KafkaReader*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      if (Status st = self->positions_->Assign(parts); !st.ok()) self->SetFatal(std::move(st));
      self->lag_->Assigned(self->positions_->assigned());
      rd_kafka_assign(rk, parts);
      self->RefreshGroupMetadata();
      return;
    }
    // Revoked: finish and commit what was read from these partitions, then let them go.
    std::vector<OffsetTracker::Key> keys;
    for (int i = 0; i < parts->cnt; ++i)
      keys.emplace_back(parts->elems[i].topic, parts->elems[i].partition);
    if (!self->tracker_.WaitDrained(keys, kRevokeWait)) {
      Log(LogLevel::kWarn, fmt::format("source '{}': revoked partitions still had batches in "
                                       "flight after {} s; their records will be read again by "
                                       "the next owner",
                                       self->node_, kRevokeWait.count()));
    }
    self->Commit(/*sync=*/true);
    for (const auto& k : keys) self->tracker_.Forget(k);
    self->lag_->Revoked(keys);
    rd_kafka_assign(rk, nullptr);
  }

  KafkaSourceConfig cfg_;
  std::string pipeline_;
  std::string node_;
  rd_kafka_t* rk_ = nullptr;
  bool commit_ = true;  // false when a sink downstream commits the offsets
  std::shared_ptr<PositionStore> store_;  // where that sink keeps them, when not in the group
  Status fatal_;  // guarded by queue_mu_
  // Chunks polled ahead of the pipeline, and the thread that polls them.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<std::shared_ptr<RawRecords>> queue_;
  bool stop_ = false;
  std::chrono::steady_clock::time_point last_commit_;  // of the polling thread's last commit
  size_t last_chunk_records_ = 0;                        // messages in the last chunk
  size_t last_chunk_bytes_ = 0;                          // and their payload bytes
  std::atomic<size_t> max_records_{1024};
  std::thread poller_;
  std::unique_ptr<FetchWaker> waker_;  // used by the polling thread
  std::string group_metadata_;
  std::unique_ptr<StartPositions> positions_;  // used by the polling thread
  OffsetTracker tracker_;
  std::mutex chunks_mu_;
  std::map<const RawRecords*, std::map<OffsetTracker::Key, std::pair<int64_t, int64_t>>> chunks_;
  std::unique_ptr<ConsumerLag> lag_;
  MetricsRegistry::Collector lag_collector_;
};

// Decodes the value with the format's decoder, then adds the metadata fields that were asked for.
class MetadataDecoder : public Decoder {
 public:
  MetadataDecoder(std::unique_ptr<Decoder> inner, const KafkaSourceConfig& cfg, SchemaPtr schema)
      : inner_(std::move(inner)), schema_(std::move(schema)) {
    for (int m = 0; m < kMetadataCount; ++m) {
      if (cfg.Wants(static_cast<MetadataIndex>(m))) kinds_.push_back(static_cast<MetadataIndex>(m));
    }
  }

  Result<std::shared_ptr<Batch>> Decode(std::shared_ptr<const RawRecords> raw,
                                        NodeContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(auto batch, inner_->Decode(raw, ctx));
    std::vector<ColumnPtr> cols = batch->columns();
    std::vector<uint32_t> bad;  // rows whose key is not text
    for (MetadataIndex kind : kinds_) {
      auto c = std::make_shared<Column>(kMetadata[kind].type);
      c->Reserve(batch->num_rows());
      for (size_t r = 0; r < batch->num_rows(); ++r) {
        const uint32_t i = batch->RawIndex(r);
        switch (kind) {
          // Records that did not come from a broker (`sluice test` input) have no key or
          // timestamp: null.
          case kKey:
            if (i >= raw->key_present.size() || !raw->key_present[i]) {
              c->AppendNull();
            } else {
              const std::string& k = raw->keys[i];
              if (!simdjson::validate_utf8(k.data(), k.size())) bad.push_back(r);
              c->AppendString(k);
            }
            break;
          case kTimestamp:
            if (i >= raw->timestamps.size() || raw->timestamps[i] == RawRecords::kNoTimestamp)
              c->AppendNull();
            else c->AppendInt(raw->timestamps[i]);
            break;
          case kTopic: c->AppendString(raw->OriginOf(i)); break;
          case kPartition: c->AppendInt(raw->PartitionOf(i)); break;
          case kOffset: c->AppendInt(raw->positions[i]); break;
          case kMetadataCount: break;
        }
      }
      cols.push_back(std::move(c));
    }
    auto out = batch->WithColumns(schema_, std::move(cols));
    if (bad.empty()) return out;
    std::vector<uint32_t> keep;
    size_t b = 0;
    for (uint32_t r = 0; r < out->num_rows(); ++r) {
      if (b < bad.size() && bad[b] == r) {
        ctx.Reject(*out, r, "the message key is not valid UTF-8");
        ++b;
      } else {
        keep.push_back(r);
      }
    }
    return out->Take(keep);
  }

 private:
  std::unique_ptr<Decoder> inner_;
  SchemaPtr schema_;
  std::vector<MetadataIndex> kinds_;
};

class KafkaSource : public SourceNode {
 public:
  KafkaSource(const NodeConfig& node, KafkaSourceConfig cfg) : node_(node), cfg_(std::move(cfg)) {}

  Result<SchemaPtr> OutputSchema() override {
    auto schema = SourceSchema(cfg_.format, cfg_.schema_path);
    if (!schema.ok()) return node_.Error("schema", schema.status().message());
    value_schema_ = *schema;
    std::vector<Field> fields = value_schema_->fields();
    for (int m = 0; m < kMetadataCount; ++m) {
      const std::string& name = cfg_.metadata_fields[m];
      if (name.empty()) continue;
      if (value_schema_->IndexOf(name) >= 0) {
        return node_.Error("metadata", fmt::format("field '{}' for the message {} is already a "
                                                   "field of the records; choose another name",
                                                   name, kMetadata[m].name));
      }
      fields.push_back({name, kMetadata[m].type, kMetadata[m].nullable});
    }
    schema_ = std::make_shared<Schema>(std::move(fields));
    return schema_;
  }
  Result<std::unique_ptr<Decoder>> MakeDecoder() const override {
    auto inner = MakeFormatDecoder(cfg_.format, value_schema_);
    if (schema_->size() == value_schema_->size()) return inner;
    return std::unique_ptr<Decoder>(
        std::make_unique<MetadataDecoder>(std::move(inner), cfg_, schema_));
  }
  Result<std::unique_ptr<SourceReader>> OpenReader() const override {
    auto reader = std::make_unique<KafkaReader>(cfg_, node_.pipeline, node_.name,
                                                !positions_downstream_, store_);
    Status st = reader->Open();
    if (!st.ok()) return Status(st.code(), fmt::format("{}: {}", node_.Prefix(), st.message()));
    return std::unique_ptr<SourceReader>(std::move(reader));
  }
  Result<std::string> Probe(const ProbeOptions& options) const override {
    return ProbeTopics(node_, RD_KAFKA_CONSUMER, cfg_.brokers, cfg_.properties, cfg_.topics,
                       options.timeout_ms);
  }
  bool PositionsCommittableDownstream() const override { return true; }
  void SetPositionsCommittedDownstream(std::shared_ptr<PositionStore> store) override {
    positions_downstream_ = true;
    store_ = std::move(store);
  }

 private:
  const NodeConfig& node_;
  bool positions_downstream_ = false;
  std::shared_ptr<PositionStore> store_;
  KafkaSourceConfig cfg_;
  SchemaPtr value_schema_;
  SchemaPtr schema_;
};

Result<std::unique_ptr<SourceNode>> MakeKafkaSource(const NodeConfig& node) {
  KafkaSourceConfig cfg;
  cfg.brokers = node.String("brokers");
  if (cfg.brokers.empty()) {
    return node.Error("brokers", "'brokers' is empty; expected host:port[,host:port]");
  }
  cfg.topics = node.StringList("topic");
  cfg.group = node.String("group");
  if (cfg.group.empty()) return node.Error("group", "'group' is empty; name the consumer group");
  cfg.start = node.String("start");
  cfg.format = *ParseFormat(node.String("format"));
  if (cfg.format == Format::kCsv) return node.Error("format", "csv is not a Kafka format here");
  if (node.Has("schema")) cfg.schema_path = node.Path("schema");
  cfg.max_wait_ms = node.Int("max_wait_ms");
  if (cfg.max_wait_ms < 1) {
    return node.Error("max_wait_ms",
                      fmt::format("'max_wait_ms' must be at least 1, found {}", cfg.max_wait_ms));
  }
  cfg.linger_ms = node.Int("linger_ms");
  if (cfg.linger_ms < 0 || cfg.linger_ms > cfg.max_wait_ms) {
    return node.Error("linger_ms", fmt::format("'linger_ms' must be from 0 to max_wait_ms ({}), "
                                               "found {}",
                                               cfg.max_wait_ms, cfg.linger_ms));
  }
  cfg.connect_timeout_ms = node.Int("connect_timeout_ms");
  if (cfg.connect_timeout_ms < 0) {
    return node.Error("connect_timeout_ms",
                      fmt::format("'connect_timeout_ms' must be 0 (wait forever) or more, found {}",
                                  cfg.connect_timeout_ms));
  }
  cfg.continue_on_lost = node.String("lost_offsets") == "continue";
  for (const auto& [kind, field] : node.StringMap("metadata")) {
    int m = 0;
    while (m < kMetadataCount && kind != kMetadata[m].name) ++m;
    if (m == kMetadataCount) {
      return node.Error("metadata",
                        fmt::format("unknown message metadata '{}' (known: key, timestamp, "
                                    "topic, partition, offset)",
                                    kind));
    }
    if (field.empty()) return node.Error("metadata", fmt::format("'{}' names no field", kind));
    for (int other = 0; other < kMetadataCount; ++other) {
      if (cfg.metadata_fields[other] == field) {
        return node.Error("metadata", fmt::format("'{}' and '{}' both name the field '{}'",
                                                  kMetadata[other].name, kind, field));
      }
    }
    cfg.metadata_fields[m] = field;
  }
  cfg.properties = node.StringMap("properties");
  if (cfg.topics.empty() ||
      std::find(cfg.topics.begin(), cfg.topics.end(), "") != cfg.topics.end()) {
    return node.Error("topic", "'topic' names no topic; expected a topic or a list of topics");
  }
  SLUICE_RETURN_IF_ERROR(CheckKafkaProperties(node, RD_KAFKA_CONSUMER, ConsumerProperties(cfg)));
  return std::unique_ptr<SourceNode>(std::make_unique<KafkaSource>(node, std::move(cfg)));
}

}  // namespace

void RegisterKafkaSource(Registry& registry) {
  OperatorSpec spec;
  spec.name = "kafka";
  spec.role = Role::kSource;
  spec.summary = "Consumes topics in a consumer group; commits offsets only after the sinks.";
  spec.description =
      "Message values are decoded as `json`, `connect-json` or `dataframe-split` (a pandas "
      "DataFrame, one or many rows per message) into the fields of `schema`, or "
      "kept as they are in one field, `value` (`format: string`). `metadata` adds the "
      "message's key (string), timestamp, topic, partition and offset as fields. Offsets are "
      "committed per partition only up to the last record that every sink downstream has "
      "written (at-least-once); on a rebalance, revoked partitions are drained and committed "
      "before they are released. With a sink's `delivery: exactly-once` the sink commits them "
      "instead (a postgres sink stores them with its rows, and each assigned partition starts "
      "from there). A group without committed offsets starts at `start`. A "
      "committed offset the broker no longer holds (deleted by retention before it was read) "
      "is reported with the number of lost messages, then `lost_offsets` decides: `fail` stops "
      "the pipeline, `continue` reads on from the earliest available offset. At start the "
      "brokers must answer and the topics exist within `connect_timeout_ms`. Undecodable "
      "messages go to the dead-letter output with topic, partition and offset. `properties` "
      "passes librdkafka consumer settings through (SASL/SSL), checked by `sluice validate` as "
      "librdkafka checks them at start; put secrets in `${VAR}`.";
  spec.parallel = true;  // decoding
  spec.fields = {
      {"brokers", ConfigType::kString, true, "", "bootstrap servers, host:port[,host:port]", {}},
      {"topic", ConfigType::kStringList, true, "", "topic, or list of topics, to consume", {}},
      {"group", ConfigType::kString, true, "", "consumer group id", {}},
      {"start",
       ConfigType::kString,
       false,
       "earliest",
       "where a group without committed offsets starts",
       {"earliest", "latest"}},
      {"format",
       ConfigType::kString,
       false,
       "json",
       "message value format (string: the value as it is, in field `value`; dataframe-split: "
       "pandas' to_json(orient=\"split\"), one or many rows per message)",
       {"json", "connect-json", "string", "dataframe-split"}},
      {"schema",
       ConfigType::kPath,
       false,
       "",
       "JSON Schema file describing the records (every format but string)",
       {}},
      {"metadata",
       ConfigType::kStringMap,
       false,
       "",
       "message metadata to add as fields: {key|timestamp|topic|partition|offset: field name}",
       {}},
      {"max_wait_ms",
       ConfigType::kInt,
       false,
       "100",
       "longest wait for a batch to fill while messages keep arriving",
       {}},
      {"linger_ms",
       ConfigType::kInt,
       false,
       "1",
       "a batch that is not full is sent on once no message has come for this long (more: "
       "fewer, larger batches at moderate rates, for more latency)",
       {}},
      {"lost_offsets",
       ConfigType::kString,
       false,
       "fail",
       "when the committed offset was deleted by the broker before it was read",
       {"fail", "continue"}},
      {"connect_timeout_ms",
       ConfigType::kInt,
       false,
       "30000",
       "how long to wait at start for the brokers and topics; 0 waits (and retries) forever",
       {}},
      {"properties",
       ConfigType::kStringMap,
       false,
       "",
       "librdkafka consumer settings, e.g. {security.protocol: SASL_SSL}",
       {}},
  };
  spec.example =
      "{type: kafka, brokers: \"${KAFKA_BROKERS:-127.0.0.1:9092}\", topic: "
      "postgres-source-iris_data, group: iris-data-consumer-group, format: connect-json, schema: "
      "../schemas/iris_data.json, metadata: {offset: kafka_offset}}";
  spec.make_source = MakeKafkaSource;
  registry.Add(std::move(spec));
}

}  // namespace sluice
