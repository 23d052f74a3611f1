// kafka: produces each row as a message to a topic. The value is the row as a JSON object, or a
// shape built from its fields and constants (`value`); the key, when configured, is a field's
// value; headers come from fields or constants. The producer is idempotent (acks=all), and a
// batch is acknowledged upstream only when every one of its messages has a successful delivery
// report. The sink settles (SinkRuntime::settles): Write queues a batch's messages and returns,
// so the next batches are produced while earlier ones wait for their reports, and Settle counts
// the batches whose reports are all in. A message whose delivery fails for good is kept and
// produced again after the runner's backoff (at-least-once: a message whose report was lost can
// arrive twice, and one sent again arrives after later ones). A row whose message is larger than
// the producer allows goes to the dead-letter output.
//
// With `delivery: exactly-once` each batch is one Kafka transaction that also commits the
// source's consumed offsets (Kafka → Kafka, KIP-98/KIP-447): the rows and the positions become
// visible together or not at all, and a failed transaction is aborted and the batch sent again.
// Such a sink writes one batch at a time and does not settle.
//
// Threading: Prepare (encoding keys and values) runs on several batches at once; Write and
// Settle are serial, on one thread, which is also the only one that polls the producer, so
// delivery reports run there.
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <map>

#include <fmt/format.h>

#include "engine/json.h"
#include "operators/builtin.h"
#include "operators/kafka/client.h"
#include "operators/sinks/value_template.h"
#include "operators/transforms/field_check.h"

namespace sluice {
namespace {

constexpr int kFlushSliceMs = 100;
constexpr int kTxnTimeoutMs = 60000;
constexpr uint32_t kAbsent = 0xFFFFFFFF;  // a null key or value in the prepared encoding

// A message to produce again: its delivery failed, or the producer refused it at once.
struct Undelivered {
  std::string key, value;
  bool has_key = false, has_value = false;
  std::unique_ptr<rd_kafka_headers_t, void (*)(rd_kafka_headers_t*)> headers{
      nullptr, rd_kafka_headers_destroy};
};

// The delivery reports of one written batch. The producer's callback fills it in, on the thread
// that polls (the sink's).
struct BatchDelivery {
  size_t rows = 0;
  int64_t pending = 0;                // messages produced and without a report yet
  std::vector<Undelivered> failed;    // to produce again
  std::string first_error;            // of `failed`
  bool resend_due = false;            // the runner has backed off: produce `failed` again
};

Undelivered Keep(const void* key, size_t key_len, const void* value, size_t value_len,
                 const rd_kafka_headers_t* headers) {
  Undelivered u;
  u.has_key = key != nullptr;
  if (key) u.key.assign(static_cast<const char*>(key), key_len);
  u.has_value = value != nullptr;
  if (value) u.value.assign(static_cast<const char*>(value), value_len);
  if (headers) u.headers.reset(rd_kafka_headers_copy(headers));
  return u;
}

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void*) {
  auto* d = static_cast<BatchDelivery*>(msg->_private);
  if (!d) return;
  if (msg->err) {
    rd_kafka_headers_t* headers = nullptr;
    rd_kafka_message_headers(msg, &headers);
    d->failed.push_back(Keep(msg->key, msg->key_len, msg->payload, msg->len, headers));
    if (d->first_error.empty()) d->first_error = rd_kafka_err2str(msg->err);
  }
  --d->pending;
}

// A header's value: a field's text, or a constant.
struct HeaderSpec {
  std::string name;
  int column = -1;
  std::string constant;
};

struct SinkShape {
  int key_column = -1;
  std::optional<ValueTemplate> value;  // none: the row as JSON
  std::vector<HeaderSpec> headers;
};

// The text of a cell as a key or header: a string as is, a timestamp in ISO 8601, a number or a
// bool as JSON writes it.
void AppendText(std::string& out, const Column& c, size_t row) {
  if (c.type == TypeId::kString) out.append(c.strings[row]);
  else if (c.type == TypeId::kTimestamp) out.append(FormatTimestamp(c.ints[row]));
  else AppendJsonCell(out, c, row);
}

void PutLength(std::string& out, uint32_t n) { out.append(reinterpret_cast<const char*>(&n), 4); }

// Reads the prepared encoding back: per row a key then a value, each a length (kAbsent for
// none) and that many bytes.
class PreparedReader {
 public:
  explicit PreparedReader(const std::string& s) : s_(s) {}
  // False for an absent key or value.
  bool Next(std::string_view& out) {
    uint32_t n;
    std::memcpy(&n, s_.data() + pos_, 4);
    pos_ += 4;
    if (n == kAbsent) return false;
    out = std::string_view(s_.data() + pos_, n);
    pos_ += n;
    return true;
  }

 private:
  const std::string& s_;
  size_t pos_ = 0;
};

class KafkaSinkRuntime : public SinkRuntime {
 public:
  KafkaSinkRuntime(rd_kafka_t* rk, rd_kafka_topic_t* topic, SinkShape shape, std::string name,
                   bool transactional)
      : rk_(rk),
        topic_(topic),
        shape_(std::move(shape)),
        name_(std::move(name)),
        transactional_(transactional) {}
  ~KafkaSinkRuntime() override {
    rd_kafka_flush(rk_, 10000);
    // What is still undelivered was never acknowledged upstream: it is read again. Its reports
    // name batches in `unsettled_`, which outlives the producer.
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk_, 0);
    rd_kafka_topic_destroy(topic_);
    rd_kafka_destroy(rk_);
  }

  bool prepares() const override { return true; }
  Result<std::string> Prepare(const Batch& batch) const override {
    std::string out;
    out.reserve(batch.num_rows() * 128);
    std::optional<RowJsonEncoder> rows;
    if (!shape_.value) rows.emplace(*batch.schema());
    std::string cell;
    for (size_t r = 0; r < batch.num_rows(); ++r) {
      if (shape_.key_column >= 0 && !batch.column(shape_.key_column).IsNull(r)) {
        cell.clear();
        AppendText(cell, batch.column(shape_.key_column), r);
        PutLength(out, static_cast<uint32_t>(cell.size()));
        out.append(cell);
      } else {
        PutLength(out, kAbsent);
      }
      const size_t at = out.size();
      PutLength(out, 0);
      bool present = true;
      if (rows) rows->Append(out, batch, r);
      else present = shape_.value->Render(batch, r, out);
      uint32_t n = present ? static_cast<uint32_t>(out.size() - at - 4) : kAbsent;
      std::memcpy(out.data() + at, &n, 4);
    }
    return out;
  }

  Status Write(const Batch& batch, const std::string& prepared, NodeContext& ctx) override {
    if (transactional_) return WriteTransaction(batch, prepared, ctx);
    unsettled_.push_back(std::make_unique<BatchDelivery>());
    return ProduceRows(batch, prepared, *unsettled_.back(), ctx);
  }

  bool settles() const override { return !transactional_; }

  Result<size_t> Settle(size_t keep) override {
    size_t settled = 0;
    rd_kafka_poll(rk_, 0);
    for (;;) {
      while (!unsettled_.empty()) {
        BatchDelivery& d = *unsettled_.front();
        if (d.resend_due) {
          d.resend_due = false;
          SLUICE_RETURN_IF_ERROR(Resend(d));
        }
        if (d.pending > 0) break;
        if (!d.failed.empty()) {
          if (settled > 0) return settled;  // the next call reports the failure
          SLUICE_RETURN_IF_ERROR(FatalError());
          d.resend_due = true;
          return NotDelivered(d);
        }
        unsettled_.pop_front();
        ++settled;
      }
      if (unsettled_.size() <= keep) return settled;
      // Sends at once what waits for linger.ms (librdkafka >= 1.8), and serves the reports.
      rd_kafka_flush(rk_, kFlushSliceMs);
    }
  }

  Status Flush() override {
    rd_kafka_resp_err_t err = rd_kafka_flush(rk_, 30000);
    if (err) return Status::Unavailable(fmt::format("flushing: {}", rd_kafka_err2str(err)));
    return Status::Ok();
  }

 private:
  // Queues the batch's messages, each reporting to `delivery`. A row whose message is larger
  // than the producer allows is dead-lettered; a message the producer refuses for another
  // reason is kept in `delivery.failed`, to be sent again.
  Status ProduceRows(const Batch& batch, const std::string& prepared, BatchDelivery& delivery,
                     NodeContext& ctx) {
    delivery.rows = batch.num_rows();
    PreparedReader in(prepared);
    std::string header_value;
    for (size_t r = 0; r < batch.num_rows(); ++r) {
      std::string_view key, value;
      const bool has_key = in.Next(key);
      const bool has_value = in.Next(value);
      rd_kafka_headers_t* headers = MakeHeaders(batch, r, header_value);
      rd_kafka_resp_err_t err = Produce(has_key ? &key : nullptr, has_value ? &value : nullptr,
                                        headers, delivery);
      if (!err) continue;  // the message owns the headers now
      if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
        ctx.Reject(batch, r,
                   fmt::format("sink '{}': the message ({} bytes of key and value) is larger than "
                               "the producer's message.max.bytes",
                               name_, key.size() + value.size()));
      } else {
        delivery.failed.push_back(Keep(has_key ? key.data() : nullptr, key.size(),
                                       has_value ? value.data() : nullptr, value.size(),
                                       headers));
        if (delivery.first_error.empty()) delivery.first_error = rd_kafka_err2str(err);
      }
      if (headers) rd_kafka_headers_destroy(headers);
      if (err == RD_KAFKA_RESP_ERR__FATAL) return FatalError();
    }
    return Status::Ok();
  }

  // Queues one message, waiting while the producer's queue is full. On success the message
  // owns `headers`.
  rd_kafka_resp_err_t Produce(const std::string_view* key, const std::string_view* value,
                              rd_kafka_headers_t* headers, BatchDelivery& delivery) {
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk_, RD_KAFKA_V_RKT(topic_), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_VALUE(value ? const_cast<char*>(value->data()) : nullptr,
                           value ? value->size() : 0),
          RD_KAFKA_V_KEY(key ? key->data() : nullptr, key ? key->size() : 0),
          RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(&delivery), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk_, kFlushSliceMs);  // let deliveries drain the local queue
        continue;
      }
      if (!err) {
        ++delivery.pending;
        rd_kafka_poll(rk_, 0);
      }
      return err;
    }
  }

  // Produces a batch's failed messages again, after the runner's backoff.
  Status Resend(BatchDelivery& d) {
    std::vector<Undelivered> again = std::move(d.failed);
    d.failed.clear();
    d.first_error.clear();
    for (Undelivered& u : again) {
      const std::string_view key(u.key), value(u.value);
      rd_kafka_headers_t* headers = u.headers ? rd_kafka_headers_copy(u.headers.get()) : nullptr;
      rd_kafka_resp_err_t err =
          Produce(u.has_key ? &key : nullptr, u.has_value ? &value : nullptr, headers, d);
      if (!err) continue;
      if (headers) rd_kafka_headers_destroy(headers);
      if (d.first_error.empty()) d.first_error = rd_kafka_err2str(err);
      d.failed.push_back(std::move(u));
      if (err == RD_KAFKA_RESP_ERR__FATAL) return FatalError();
    }
    return Status::Ok();
  }

  Status NotDelivered(const BatchDelivery& d) const {
    return Status::Unavailable(fmt::format("{} of {} messages were not delivered: {}",
                                           d.failed.size(), d.rows, d.first_error));
  }

  // The idempotent producer's fatal errors (a broken sequence) end it: the pipeline stops, and
  // a restart resumes from the last acknowledged positions.
  Status FatalError() {
    char reason[512];
    if (rd_kafka_fatal_error(rk_, reason, sizeof(reason)) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::Ok();
    }
    return Status::Internal(
        fmt::format("sink '{}': the producer failed for good: {}", name_, reason));
  }

  rd_kafka_headers_t* MakeHeaders(const Batch& batch, size_t row, std::string& scratch) const {
    if (shape_.headers.empty()) return nullptr;
    rd_kafka_headers_t* h = rd_kafka_headers_new(shape_.headers.size());
    for (const auto& spec : shape_.headers) {
      if (spec.column < 0) {
        rd_kafka_header_add(h, spec.name.data(), static_cast<ssize_t>(spec.name.size()),
                            spec.constant.data(), static_cast<ssize_t>(spec.constant.size()));
        continue;
      }
      const Column& c = batch.column(spec.column);
      if (c.IsNull(row)) {
        rd_kafka_header_add(h, spec.name.data(), static_cast<ssize_t>(spec.name.size()), nullptr,
                            0);
        continue;
      }
      scratch.clear();
      AppendText(scratch, c, row);
      rd_kafka_header_add(h, spec.name.data(), static_cast<ssize_t>(spec.name.size()),
                          scratch.data(), static_cast<ssize_t>(scratch.size()));
    }
    return h;
  }

  // One transaction: the batch's messages and the source offsets it covers.
  Status WriteTransaction(const Batch& batch, const std::string& prepared, NodeContext& ctx) {
    const RawRecords* raw = batch.raw().get();
    if (!raw || raw->consumer_group_metadata.empty()) {
      // A batch that read nothing (an idle poll) has no positions to commit.
      if (batch.num_rows() == 0) return Status::Ok();
      return Status::Internal(
          fmt::format("sink '{}': a batch without consumer positions reached a transactional "
                      "sink",
                      name_));
    }
    SLUICE_RETURN_IF_ERROR(Check(rd_kafka_begin_transaction(rk_), "beginning a transaction"));
    BatchDelivery delivery;
    Status st = ProduceRows(batch, prepared, delivery, ctx);
    WaitForDeliveries(delivery);
    if (st.ok() && !delivery.failed.empty()) st = NotDelivered(delivery);
    if (!st.ok()) return Abort(st);
    // The positions after the last record of each partition this batch covers.
    std::map<std::pair<std::string, int32_t>, int64_t> next;
    for (size_t i = 0; i < raw->count(); ++i) {
      int64_t& n = next[{raw->OriginOf(i), raw->PartitionOf(i)}];
      n = std::max(n, raw->positions[i] + 1);
    }
    rd_kafka_topic_partition_list_t* offsets =
        rd_kafka_topic_partition_list_new(static_cast<int>(next.size()));
    for (const auto& [k, offset] : next) {
      rd_kafka_topic_partition_list_add(offsets, k.first.c_str(), k.second)->offset = offset;
    }
    rd_kafka_consumer_group_metadata_t* group = nullptr;
    rd_kafka_error_t* err = rd_kafka_consumer_group_metadata_read(
        &group, raw->consumer_group_metadata.data(), raw->consumer_group_metadata.size());
    if (!err) {
      err = rd_kafka_send_offsets_to_transaction(rk_, offsets, group, kTxnTimeoutMs);
      rd_kafka_consumer_group_metadata_destroy(group);
    }
    rd_kafka_topic_partition_list_destroy(offsets);
    st = Check(err, "adding the source offsets to the transaction");
    if (!st.ok()) return Abort(st);
    st = Check(rd_kafka_commit_transaction(rk_, kTxnTimeoutMs), "committing the transaction");
    if (!st.ok()) return Abort(st);
    return Status::Ok();
  }

  // Turns a transactional API error into a status: a fatal one (this producer was fenced by a
  // newer instance with the same transactional id) stops the pipeline; any other is retried.
  Status Check(rd_kafka_error_t* err, const char* what) {
    if (!err) return Status::Ok();
    std::string message = fmt::format("sink '{}': {}: {}", name_, what, rd_kafka_error_string(err));
    const bool fatal = rd_kafka_error_is_fatal(err);
    rd_kafka_error_destroy(err);
    if (fatal) return Status::Internal(message + " (fatal: the producer cannot go on)");
    return Status::Unavailable(message);
  }

  Status Abort(Status why) {
    if (why.code() != StatusCode::kUnavailable) return why;
    rd_kafka_error_t* err = rd_kafka_abort_transaction(rk_, kTxnTimeoutMs);
    if (err) {
      Status st = Check(err, "aborting the transaction");
      if (st.code() != StatusCode::kUnavailable) return st;
    }
    return why;  // retried from the start: a new transaction
  }

  // Delivery reports arrive through poll, which flush calls; librdkafka's own retries and
  // timeouts bound the wait (message.timeout.ms), after which a failed report arrives. Flushing
  // rather than polling sends what waits for `linger.ms` at once (librdkafka >= 1.8): in a
  // transaction the batch is all there is to send until it is acknowledged.
  void WaitForDeliveries(const BatchDelivery& delivery) {
    while (delivery.pending > 0) rd_kafka_flush(rk_, kFlushSliceMs);
  }

  rd_kafka_t* rk_;
  rd_kafka_topic_t* topic_;
  SinkShape shape_;
  std::string name_;
  bool transactional_;
  // Batches written and not yet counted by Settle, oldest first. Declared after the producer's
  // handles but destroyed after the destructor's body, so late reports find their batch.
  std::deque<std::unique_ptr<BatchDelivery>> unsettled_;
};

class KafkaSink : public SinkNode {
 public:
  explicit KafkaSink(const NodeConfig& node) : node_(node) {}

  bool CommitsSourcePositions() const override { return exactly_once(); }

  Status CheckInput(const SchemaPtr& input) override {
    if (node_.String("brokers").empty()) {
      return node_.Error("brokers", "'brokers' is empty; expected host:port[,host:port]");
    }
    if (node_.String("topic").empty()) {
      return node_.Error("topic", "'topic' is empty; name the topic to produce to");
    }
    if (node_.Int("connect_timeout_ms") < 0) {
      return node_.Error("connect_timeout_ms",
                         fmt::format("'connect_timeout_ms' must be 0 (wait forever) or more, "
                                     "found {}",
                                     node_.Int("connect_timeout_ms")));
    }
    SLUICE_RETURN_IF_ERROR(CheckKafkaProperties(node_, RD_KAFKA_PRODUCER, ProducerProperties()));
    shape_ = SinkShape();
    if (node_.Has("key")) {
      SLUICE_RETURN_IF_ERROR(CheckFieldsExist(node_, "key", {node_.String("key")}, *input));
      shape_.key_column = input->IndexOf(node_.String("key"));
    }
    if (node_.Has("value")) {
      SLUICE_ASSIGN_OR_RETURN(auto t, ValueTemplate::Parse(node_, node_.Raw("value"), *input));
      shape_.value = std::move(t);
    }
    for (const auto& [name, text] : node_.StringMap("headers")) {
      HeaderSpec h{name, -1, text};
      if (text.size() >= 1 && text[0] == '.') {
        h.column = input->IndexOf(text.substr(1));
        if (h.column < 0) {
          return node_.Error("headers", fmt::format("header '{}': {}", name,
                                                    NotAFieldMessage(node_, text.substr(1),
                                                                     *input)));
        }
      } else if (text.rfind("\\.", 0) == 0) {
        h.constant = text.substr(1);
      }
      shape_.headers.push_back(std::move(h));
    }
    return Status::Ok();
  }

  // The producer's settings: Sluice's, then the sink's `properties`.
  KafkaProperties ProducerProperties() const {
    KafkaProperties props = {
        {"bootstrap.servers", node_.String("brokers")},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"linger.ms", "5"},
        {"log_level", "3"},
    };
    if (exactly_once()) {
      std::string id = node_.Has("transactional_id")
                           ? node_.String("transactional_id")
                           : fmt::format("sluice.{}.{}", node_.String("topic"), node_.name);
      props.push_back({"transactional.id", id});
      props.push_back({"transaction.timeout.ms", std::to_string(kTxnTimeoutMs)});
    }
    for (const auto& p : node_.StringMap("properties")) props.push_back(p);
    return props;
  }

  Result<std::string> Probe(const ProbeOptions& options) const override {
    // A producer that produces nothing, and no transactions begun: initialising them would
    // fence a running pipeline that uses the same transactional id.
    return ProbeTopics(node_, RD_KAFKA_PRODUCER, node_.String("brokers"),
                       node_.StringMap("properties"), {node_.String("topic")},
                       options.timeout_ms);
  }

  Result<std::unique_ptr<SinkRuntime>> Open(const SchemaPtr&) const override {
    const std::string topic_name = node_.String("topic");
    auto client = NewKafkaClient(RD_KAFKA_PRODUCER, ProducerProperties(), [](rd_kafka_conf_t* conf) {
      rd_kafka_conf_set_dr_msg_cb(conf, OnDelivery);
    });
    if (!client.ok()) {
      if (client.status().code() == StatusCode::kInvalidConfig) {
        return node_.Error("properties", client.status().message());
      }
      return Status(client.status().code(),
                    fmt::format("{}: {}", node_.Prefix(), client.status().message()));
    }
    rd_kafka_t* rk = *client;
    auto fail = [&](Status st) -> Status {
      rd_kafka_destroy(rk);
      return Status(st.code(), fmt::format("{}: {}", node_.Prefix(), st.message()));
    };
    Status st = WaitForTopics(rk, {topic_name}, node_.Int("connect_timeout_ms"),
                              node_.String("brokers"));
    if (!st.ok()) return fail(st);
    if (exactly_once()) {
      rd_kafka_error_t* err = rd_kafka_init_transactions(rk, kTxnTimeoutMs);
      if (err) {
        Status e = Status::Unavailable(
            fmt::format("initialising transactions: {}", rd_kafka_error_string(err)));
        rd_kafka_error_destroy(err);
        return fail(e);
      }
    }
    rd_kafka_topic_t* topic = rd_kafka_topic_new(rk, topic_name.c_str(), nullptr);
    if (!topic) return fail(Status::InvalidConfig(fmt::format("cannot use topic '{}'", topic_name)));
    return std::unique_ptr<SinkRuntime>(
        std::make_unique<KafkaSinkRuntime>(rk, topic, shape_, node_.name, exactly_once()));
  }

 private:
  bool exactly_once() const { return node_.String("delivery") == "exactly-once"; }

  const NodeConfig& node_;
  SinkShape shape_;
};

}  // namespace

void RegisterKafkaSink(Registry& registry) {
  OperatorSpec spec;
  spec.name = "kafka";
  spec.role = Role::kSink;
  spec.summary = "Produces each row as a message to a Kafka topic.";
  spec.description =
      "The value is the row as a JSON object, or the shape in `value`: YAML where a string "
      "`.name` is the row's field and anything else a constant, e.g. `{model: ride, "
      "prediction: {ride_id: .ride_id}}`; `value: .payload` sends a string field's text as it "
      "is (replaying messages verbatim) and a null field as a message without a value. `key` "
      "names the field whose value becomes the message key; `headers` maps header names to "
      "`.field` or constant text. The producer is idempotent (acks=all). The next batches are "
      "produced while earlier ones wait for their delivery reports; a batch is acknowledged "
      "upstream only when every message has a successful report, and a message whose delivery "
      "fails for good is produced again after a backoff (at-least-once; it then arrives after "
      "later messages). A row whose message is larger than the producer's `message.max.bytes` "
      "goes to the dead-letter output. `delivery: exactly-once` (kafka "
      "source → kafka sink) makes each batch one transaction that also commits the consumed "
      "offsets; this sink must then be the only one the source feeds, and consumers of the "
      "topic should read with isolation.level=read_committed. `properties` passes librdkafka "
      "settings through (SASL/SSL), checked by `sluice validate` as librdkafka checks them at "
      "start; put secrets in `${VAR}`.";
  spec.fields = {
      {"brokers", ConfigType::kString, true, "", "bootstrap servers, host:port[,host:port]", {}},
      {"topic", ConfigType::kString, true, "", "topic to produce to", {}},
      {"key", ConfigType::kString, false, "", "field whose value is the message key", {}},
      {"value", ConfigType::kAny, false, "",
       "message value: a shape of `.field`s and constants; default the row as JSON", {}},
      {"headers", ConfigType::kStringMap, false, "",
       "message headers: {name: .field or constant text}", {}},
      {"delivery",
       ConfigType::kString,
       false,
       "at-least-once",
       "at-least-once, or exactly-once (transactions; kafka source only)",
       {"at-least-once", "exactly-once"}},
      {"transactional_id", ConfigType::kString, false, "",
       "transactional id for exactly-once (default sluice.<topic>.<node>); unique per process",
       {}},
      {"connect_timeout_ms",
       ConfigType::kInt,
       false,
       "30000",
       "how long to wait at start for the brokers and topic; 0 waits forever",
       {}},
      {"properties",
       ConfigType::kStringMap,
       false,
       "",
       "librdkafka producer settings, e.g. {security.protocol: SASL_SSL}",
       {}},
  };
  spec.example =
      "{type: kafka, inputs: [classify], brokers: \"${KAFKA_BROKERS:-127.0.0.1:9092}\", topic: "
      "iris-predictions, key: timestamp, value: {model: iris, prediction: {iris_class: "
      ".iris_class}}, headers: {producer: sluice}}";
  spec.make_sink = [](const NodeConfig& node) -> Result<std::unique_ptr<SinkNode>> {
    return std::unique_ptr<SinkNode>(std::make_unique<KafkaSink>(node));
  };
  registry.Add(std::move(spec));
}

}  // namespace sluice
