// kafka: consumes one or more topics in a consumer group and decodes each message's value (json
// or connect-json) into the declared schema. Offsets are never committed automatically: a
// chunk's offsets count as done once every sink downstream has acknowledged it, and the source
// commits, per partition, the end of the contiguous done prefix. When partitions are revoked, the
// chunks read from them are waited for (up to a bound) and their offsets committed before the
// partitions are released.
//
// Threading: Read runs on one thread (it polls the consumer and serves its rebalance callbacks);
// Acknowledge is called from sink threads and only updates the offset tracker.
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "engine/formats.h"
#include "engine/log.h"
#include "operators/builtin.h"
#include "operators/kafka/client.h"

namespace sluice {
namespace {

struct KafkaSourceConfig {
  std::string brokers;              ///< bootstrap servers
  std::vector<std::string> topics;  ///< topics to consume
  std::string group;                ///< consumer group id
  std::string start = "earliest";   ///< where a group without committed offsets starts
  Format format = Format::kJson;    ///< json or connect-json
  std::string schema_path;          ///< JSON Schema of the records
  int64_t max_wait_ms = 100;        ///< longest wait to fill a batch
  std::vector<std::pair<std::string, std::string>> properties;  ///< librdkafka settings
};

constexpr auto kRevokeWait = std::chrono::seconds(10);

// Offsets read and acknowledged, per topic-partition.
class OffsetTracker {
 public:
  using Key = std::pair<std::string, int32_t>;

  // A chunk read offsets [first, last] of the partition.
  void Read(const Key& k, int64_t first, int64_t last) {
    std::lock_guard<std::mutex> lock(mu_);
    parts_[k].ranges[first] = {last, false};
  }
  void Done(const Key& k, int64_t first) {
    std::lock_guard<std::mutex> lock(mu_);
    auto p = parts_.find(k);
    if (p == parts_.end()) return;  // revoked meanwhile: no longer ours to commit
    auto r = p->second.ranges.find(first);
    if (r == p->second.ranges.end()) return;
    r->second.done = true;
    // The contiguous done prefix advances the commit position.
    auto& ranges = p->second.ranges;
    while (!ranges.empty() && ranges.begin()->second.done) {
      p->second.commit = ranges.begin()->second.last + 1;
      ranges.erase(ranges.begin());
    }
    cv_.notify_all();
  }
  // Positions to commit that have not been committed yet.
  std::vector<std::pair<Key, int64_t>> TakeCommits() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::pair<Key, int64_t>> out;
    for (auto& [k, p] : parts_) {
      if (p.commit > p.committed) {
        out.emplace_back(k, p.commit);
        p.committed = p.commit;
      }
    }
    return out;
  }
  // Waits until the partitions have nothing in flight, up to `limit`; true when drained.
  bool WaitDrained(const std::vector<Key>& keys, std::chrono::steady_clock::duration limit) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, limit, [&] {
      for (const auto& k : keys) {
        auto p = parts_.find(k);
        if (p != parts_.end() && !p->second.ranges.empty()) return false;
      }
      return true;
    });
  }
  void Forget(const Key& k) {
    std::lock_guard<std::mutex> lock(mu_);
    parts_.erase(k);
  }

 private:
  struct Range {
    int64_t last;
    bool done;
  };
  struct Partition {
    std::map<int64_t, Range> ranges;  // by first offset; reads are in offset order
    int64_t commit = -1;              // next offset to consume, once committed
    int64_t committed = -1;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<Key, Partition> parts_;
};

class KafkaReader : public SourceReader {
 public:
  KafkaReader(KafkaSourceConfig cfg, std::string node)
      : cfg_(std::move(cfg)), node_(std::move(node)) {}
  ~KafkaReader() override {
    if (!rk_) return;
    Commit(/*sync=*/true);
    rd_kafka_consumer_close(rk_);
    rd_kafka_destroy(rk_);
  }

  Status Open() {
    KafkaProperties props = {
        {"bootstrap.servers", cfg_.brokers},
        {"group.id", cfg_.group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", cfg_.start == "latest" ? "latest" : "earliest"},
        {"log_level", "3"},
    };
    for (const auto& p : cfg_.properties) props.push_back(p);
    SLUICE_ASSIGN_OR_RETURN(rk_,
                            NewKafkaClient(RD_KAFKA_CONSUMER, props, [this](rd_kafka_conf_t* conf) {
                              rd_kafka_conf_set_opaque(conf, this);
                              rd_kafka_conf_set_rebalance_cb(conf, &KafkaReader::OnRebalance);
                            }));
    rd_kafka_poll_set_consumer(rk_);
    rd_kafka_topic_partition_list_t* subs =
        rd_kafka_topic_partition_list_new(static_cast<int>(cfg_.topics.size()));
    for (const auto& t : cfg_.topics)
      rd_kafka_topic_partition_list_add(subs, t.c_str(), RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk_, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (e) return Status::Unavailable(fmt::format("cannot subscribe: {}", rd_kafka_err2str(e)));
    return Status::Ok();
  }

  Result<std::shared_ptr<RawRecords>> Read(size_t max_records) override {
    Commit(/*sync=*/false);
    auto out = std::make_shared<RawRecords>();
    out->origin = cfg_.topics.size() == 1 ? cfg_.topics[0] : "kafka";
    out->offsets.push_back(0);
    // Offsets per partition of this chunk, for the tracker.
    std::map<OffsetTracker::Key, std::pair<int64_t, int64_t>> spans;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg_.max_wait_ms);
    while (out->count() < max_records) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) break;
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, static_cast<int>(left));
      if (!m) continue;
      if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          // Transient broker errors are retried by librdkafka; say what happened.
          Log(LogLevel::kWarn, fmt::format("source '{}': {}", node_, rd_kafka_message_errstr(m)));
        }
        rd_kafka_message_destroy(m);
        continue;
      }
      std::string topic = rd_kafka_topic_name(m->rkt);
      out->Add(std::string_view(static_cast<const char*>(m->payload), m->len), m->offset);
      out->partitions.push_back(m->partition);
      auto [it, fresh] = spans.try_emplace({topic, m->partition}, m->offset, m->offset);
      if (!fresh) it->second.second = m->offset;
      rd_kafka_message_destroy(m);
    }
    if (out->count() == 0) {
      // An idle stream is not the end of input: an empty chunk keeps the graph asking.
      return out;
    }
    for (const auto& [k, span] : spans) tracker_.Read(k, span.first, span.second);
    out->data.reserve(out->data.size() + 64);
    {
      std::lock_guard<std::mutex> lock(chunks_mu_);
      chunks_[out.get()] = std::move(spans);
    }
    return out;
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
  void Commit(bool sync) {
    auto commits = tracker_.TakeCommits();
    if (commits.empty()) return;
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

  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* parts, void* opaque) {
    auto* self = static_cast<KafkaReader*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      rd_kafka_assign(rk, parts);
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
    rd_kafka_assign(rk, nullptr);
  }

  KafkaSourceConfig cfg_;
  std::string node_;
  rd_kafka_t* rk_ = nullptr;
  OffsetTracker tracker_;
  std::mutex chunks_mu_;
  std::map<const RawRecords*, std::map<OffsetTracker::Key, std::pair<int64_t, int64_t>>> chunks_;
};

class KafkaSource : public SourceNode {
 public:
  KafkaSource(const NodeConfig& node, KafkaSourceConfig cfg) : node_(node), cfg_(std::move(cfg)) {}

  Result<SchemaPtr> OutputSchema() override {
    auto schema = LoadJsonSchemaFile(cfg_.schema_path);
    if (!schema.ok()) return node_.Error("schema", schema.status().message());
    schema_ = *schema;
    return schema_;
  }
  Result<std::unique_ptr<Decoder>> MakeDecoder() const override {
    return MakeFormatDecoder(cfg_.format, schema_);
  }
  Result<std::unique_ptr<SourceReader>> OpenReader() const override {
    auto reader = std::make_unique<KafkaReader>(cfg_, node_.name);
    Status st = reader->Open();
    if (!st.ok()) return Status(st.code(), fmt::format("{}: {}", node_.Prefix(), st.message()));
    return std::unique_ptr<SourceReader>(std::move(reader));
  }

 private:
  const NodeConfig& node_;
  KafkaSourceConfig cfg_;
  SchemaPtr schema_;
};

Result<std::unique_ptr<SourceNode>> MakeKafkaSource(const NodeConfig& node) {
  KafkaSourceConfig cfg;
  cfg.brokers = node.String("brokers");
  cfg.topics = node.StringList("topic");
  cfg.group = node.String("group");
  cfg.start = node.String("start");
  cfg.format = *ParseFormat(node.String("format"));
  if (cfg.format == Format::kCsv) return node.Error("format", "csv is not a Kafka format here");
  cfg.schema_path = node.Path("schema");
  cfg.max_wait_ms = node.Int("max_wait_ms");
  if (cfg.max_wait_ms < 1) return node.Error("max_wait_ms", "'max_wait_ms' must be at least 1");
  cfg.properties = node.StringMap("properties");
  if (cfg.topics.empty()) return node.Error("topic", "names no topic");
  return std::unique_ptr<SourceNode>(std::make_unique<KafkaSource>(node, std::move(cfg)));
}

}  // namespace

void RegisterKafkaSource(Registry& registry) {
  OperatorSpec spec;
  spec.name = "kafka";
  spec.role = Role::kSource;
  spec.summary = "Consumes topics in a consumer group; commits offsets only after the sinks.";
  spec.description =
      "Message values are decoded as `json` or `connect-json` into the fields of `schema`. "
      "Offsets are committed per partition only up to the last record that every sink "
      "downstream has written (at-least-once); on a rebalance, revoked partitions are drained "
      "and committed before they are released. Undecodable messages go to the dead-letter "
      "output with topic, partition and offset. `properties` passes librdkafka consumer "
      "settings through (SASL/SSL); put secrets in `${VAR}`.";
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
       "message value format",
       {"json", "connect-json"}},
      {"schema", ConfigType::kPath, true, "", "JSON Schema file describing the records", {}},
      {"max_wait_ms",
       ConfigType::kInt,
       false,
       "100",
       "longest wait for a batch to fill before it is sent on",
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
      "../schemas/iris_data.json}";
  spec.make_source = MakeKafkaSource;
  registry.Add(std::move(spec));
}

}  // namespace sluice
