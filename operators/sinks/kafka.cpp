// kafka: produces each row as a message to a topic. The value is the row as a JSON object; the
// key, when configured, is a field's value. The producer is idempotent (acks=all), and a batch is
// acknowledged upstream only when every one of its messages has a successful delivery report:
// a delivery that fails for good makes the batch fail with a retryable status, so the runner
// sends it again (at-least-once: a retried batch can repeat messages that did arrive).
//
// Threading: Prepare (JSON encoding) runs on several batches at once; Write is serial.
#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "engine/json.h"
#include "operators/builtin.h"
#include "operators/kafka/client.h"
#include "operators/sinks/jsonl_writer.h"
#include "operators/transforms/field_check.h"

namespace sluice {
namespace {

constexpr int kFlushSliceMs = 100;

// Counts the delivery reports of one batch; the producer's callback fills it in.
struct BatchDelivery {
  std::atomic<int64_t> pending{0};
  std::atomic<int64_t> failed{0};
  std::string first_error;  // written once, by the first failure
  std::atomic<bool> has_error{false};
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* msg, void*) {
  auto* d = static_cast<BatchDelivery*>(msg->_private);
  if (!d) return;
  if (msg->err) {
    d->failed.fetch_add(1);
    bool expected = false;
    if (d->has_error.compare_exchange_strong(expected, true)) {
      d->first_error = rd_kafka_err2str(msg->err);
    }
  }
  d->pending.fetch_sub(1);
}

class KafkaSinkRuntime : public SinkRuntime {
 public:
  KafkaSinkRuntime(rd_kafka_t* rk, rd_kafka_topic_t* topic, int key_column, std::string name)
      : rk_(rk), topic_(topic), key_column_(key_column), name_(std::move(name)) {}
  ~KafkaSinkRuntime() override {
    rd_kafka_flush(rk_, 10000);
    rd_kafka_topic_destroy(topic_);
    rd_kafka_destroy(rk_);
  }

  bool prepares() const override { return true; }
  // One JSON object per row, each followed by a newline that separates it from the next.
  Result<std::string> Prepare(const Batch& batch) const override {
    return JsonlWriter::Encode(batch);
  }

  Status Write(const Batch& batch, const std::string& values, NodeContext&) override {
    if (batch.num_rows() == 0) return Status::Ok();
    BatchDelivery delivery;
    delivery.pending = static_cast<int64_t>(batch.num_rows());
    size_t pos = 0;
    std::string key;
    for (size_t r = 0; r < batch.num_rows(); ++r) {
      size_t nl = values.find('\n', pos);
      std::string_view value(values.data() + pos, nl - pos);
      pos = nl + 1;
      const void* key_ptr = nullptr;
      size_t key_len = 0;
      if (key_column_ >= 0 && !batch.column(key_column_).IsNull(r)) {
        key.clear();
        const Column& c = batch.column(key_column_);
        // The key is the value's text: a string as is, a timestamp in ISO 8601, a number or a
        // bool as JSON writes it.
        if (c.type == TypeId::kString) {
          key = c.strings[r];
        } else if (c.type == TypeId::kTimestamp) {
          key = FormatTimestamp(c.ints[r]);
        } else {
          AppendJsonCell(key, c, r);
        }
        key_ptr = key.data();
        key_len = key.size();
      }
      for (;;) {
        int rc = rd_kafka_produce(topic_, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                                  const_cast<char*>(value.data()), value.size(), key_ptr, key_len,
                                  &delivery);
        if (rc == 0) break;
        rd_kafka_resp_err_t err = rd_kafka_last_error();
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
          rd_kafka_poll(rk_, kFlushSliceMs);  // let deliveries drain the local queue
          continue;
        }
        // Messages of this batch already queued still report to `delivery`: wait for them.
        delivery.pending.fetch_sub(static_cast<int64_t>(batch.num_rows() - r));
        WaitForDeliveries(delivery);
        return Status::Unavailable(
            fmt::format("sink '{}': producing failed: {}", name_, rd_kafka_err2str(err)));
      }
      rd_kafka_poll(rk_, 0);
    }
    WaitForDeliveries(delivery);
    if (delivery.failed.load() > 0) {
      return Status::Unavailable(fmt::format("{} of {} messages were not delivered: {}",
                                             delivery.failed.load(), batch.num_rows(),
                                             delivery.first_error));
    }
    return Status::Ok();
  }

  Status Flush() override {
    rd_kafka_resp_err_t err = rd_kafka_flush(rk_, 30000);
    if (err) return Status::Unavailable(fmt::format("flushing: {}", rd_kafka_err2str(err)));
    return Status::Ok();
  }

 private:
  // Delivery reports arrive through poll; librdkafka's own retries and timeouts bound the wait
  // (message.timeout.ms), after which a failed report arrives.
  void WaitForDeliveries(const BatchDelivery& delivery) {
    while (delivery.pending.load() > 0) rd_kafka_poll(rk_, kFlushSliceMs);
  }

  rd_kafka_t* rk_;
  rd_kafka_topic_t* topic_;
  int key_column_;
  std::string name_;
};

class KafkaSink : public SinkNode {
 public:
  explicit KafkaSink(const NodeConfig& node) : node_(node) {}

  Status CheckInput(const SchemaPtr& input) override {
    if (node_.Has("key")) {
      SLUICE_RETURN_IF_ERROR(CheckFieldsExist(node_, "key", {node_.String("key")}, *input));
    }
    return Status::Ok();
  }

  Result<std::unique_ptr<SinkRuntime>> Open(const SchemaPtr& input) const override {
    KafkaProperties props = {
        {"bootstrap.servers", node_.String("brokers")},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"linger.ms", "5"},
        {"log_level", "3"},
    };
    for (const auto& p : node_.StringMap("properties")) props.push_back(p);
    auto client = NewKafkaClient(RD_KAFKA_PRODUCER, props, [](rd_kafka_conf_t* conf) {
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
    rd_kafka_topic_t* topic = rd_kafka_topic_new(rk, node_.String("topic").c_str(), nullptr);
    if (!topic) {
      rd_kafka_destroy(rk);
      return Status::InvalidConfig(
          fmt::format("{}: cannot use topic '{}'", node_.Prefix(), node_.String("topic")));
    }
    int key_column = node_.Has("key") ? input->IndexOf(node_.String("key")) : -1;
    return std::unique_ptr<SinkRuntime>(
        std::make_unique<KafkaSinkRuntime>(rk, topic, key_column, node_.name));
  }

 private:
  const NodeConfig& node_;
};

}  // namespace

void RegisterKafkaSink(Registry& registry) {
  OperatorSpec spec;
  spec.name = "kafka";
  spec.role = Role::kSink;
  spec.summary = "Produces each row as a JSON message to a Kafka topic.";
  spec.description =
      "The producer is idempotent (acks=all); a batch is acknowledged only when every message "
      "has a successful delivery report, and a batch whose delivery fails is sent again "
      "(at-least-once). `key` names the field whose value becomes the message key. "
      "`properties` passes librdkafka settings through (SASL/SSL); put secrets in `${VAR}`.";
  spec.fields = {
      {"brokers", ConfigType::kString, true, "", "bootstrap servers, host:port[,host:port]", {}},
      {"topic", ConfigType::kString, true, "", "topic to produce to", {}},
      {"key", ConfigType::kString, false, "", "field whose value is the message key", {}},
      {"properties",
       ConfigType::kStringMap,
       false,
       "",
       "librdkafka producer settings, e.g. {security.protocol: SASL_SSL}",
       {}},
  };
  spec.example =
      "{type: kafka, inputs: [classify], brokers: \"${KAFKA_BROKERS:-127.0.0.1:9092}\", topic: "
      "iris-predictions, "
      "key: timestamp}";
  spec.make_sink = [](const NodeConfig& node) -> Result<std::unique_ptr<SinkNode>> {
    return std::unique_ptr<SinkNode>(std::make_unique<KafkaSink>(node));
  };
  registry.Add(std::move(spec));
}

}  // namespace sluice
