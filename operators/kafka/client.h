// Creating librdkafka clients from key/value properties, shared by the kafka source, the kafka
// sink and the development broker. Errors come back as a Status, never as a leaked conf.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "engine/config.h"
#include "engine/log.h"
#include "engine/status.h"
#include "engine/types.h"

namespace sluice {

// librdkafka's own log lines go through Sluice's logger (so --log-format json stays JSON).
inline void LogFromKafka(const rd_kafka_t* rk, int level, const char* facility, const char* msg) {
  // syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug
  LogLevel l = level <= 3   ? LogLevel::kError
               : level == 4 ? LogLevel::kWarn
               : level <= 6 ? LogLevel::kInfo
                            : LogLevel::kDebug;
  Log(l, fmt::format("kafka {}: {}", facility, msg), {{"client", rd_kafka_name(rk)}});
}

using KafkaProperties = std::vector<std::pair<std::string, std::string>>;

// `configure` may set callbacks and the opaque on the conf before the client is made.
inline Result<rd_kafka_t*> NewKafkaClient(
    rd_kafka_type_t type, const KafkaProperties& props,
    const std::function<void(rd_kafka_conf_t*)>& configure = {}) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return Status::InvalidConfig(fmt::format("librdkafka property '{}': {}", k, err));
    }
  }
  rd_kafka_conf_set_log_cb(conf, LogFromKafka);
  if (configure) configure(conf);
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);  // rd_kafka_new takes the conf over only on success
    return Status::Unavailable(fmt::format("cannot create a Kafka client: {}", err));
  }
  return rk;
}

// Whether librdkafka takes `props` (a node's settings followed by its `properties`) for a
// client of `type`, for `sluice validate`: each property's name and value, and the rules between
// them that librdkafka checks only when a client is made (fetch.max.bytes >= message.max.bytes,
// receive.message.max.bytes >= fetch.max.bytes + 512, acks=all with idempotence, ...). That
// client contacts no broker and touches no certificate or Kerberos setup: it is made without
// bootstrap servers and with plaintext security, and destroyed at once. A problem is reported
// at the node's `properties` key. plugin.library.paths is left out: librdkafka loads the
// libraries as soon as it is set, and validating a file must not run code it names.
inline Status CheckKafkaProperties(const NodeConfig& node, rd_kafka_type_t type,
                                   const KafkaProperties& props) {
  KafkaProperties offline;
  for (const auto& p : props) {
    if (p.first != "bootstrap.servers" && p.first != "metadata.broker.list" &&
        p.first != "plugin.library.paths") {
      offline.push_back(p);
    }
  }
  offline.emplace_back("security.protocol", "plaintext");
  offline.emplace_back("log_level", "0");
  auto client = NewKafkaClient(type, offline);
  if (!client.ok()) {
    // A name or value librdkafka refuses comes back as InvalidConfig, naming the property.
    if (client.status().code() == StatusCode::kInvalidConfig)
      return node.Error("properties", client.status().message());
    std::string_view message = client.status().message();
    constexpr std::string_view kPrefix = "cannot create a Kafka client: ";
    if (message.starts_with(kPrefix)) message.remove_prefix(kPrefix.size());
    return node.Error("properties",
                      fmt::format("librdkafka refuses these settings together: {}", message));
  }
  rd_kafka_destroy(*client);
  return Status::Ok();
}

// The earliest (RD_KAFKA_OFFSET_BEGINNING) or latest (RD_KAFKA_OFFSET_END) offset of each of
// `parts`' partitions, asked of each partition's leader in one ListOffsets request for all its
// partitions (rd_kafka_query_watermark_offsets asks per partition). Partitions whose answer is
// an error are left out; a request that fails as a whole leaves the map empty.
inline std::map<std::pair<std::string, int32_t>, int64_t> ListOffsets(
    rd_kafka_t* rk, const rd_kafka_topic_partition_list_t* parts, int64_t which, int timeout_ms) {
  std::map<std::pair<std::string, int32_t>, int64_t> out;
  rd_kafka_topic_partition_list_t* query = rd_kafka_topic_partition_list_copy(parts);
  // For ListOffsets the "offset" is a timestamp: BEGINNING (-2) and END (-1) ask for the ends.
  for (int i = 0; i < query->cnt; ++i) query->elems[i].offset = which;
  if (rd_kafka_offsets_for_times(rk, query, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    for (int i = 0; i < query->cnt; ++i) {
      const rd_kafka_topic_partition_t& p = query->elems[i];
      if (!p.err && p.offset >= 0) out[{p.topic, p.partition}] = p.offset;
    }
  }
  rd_kafka_topic_partition_list_destroy(query);
  return out;
}

// Waits until the brokers answer and every topic exists. `timeout_ms` bounds the wait (0: wait
// and retry forever, saying so every few seconds). librdkafka itself retries connections without
// end, so without this check a wrong address or topic would look like an idle stream.
// `advice` ends the timeout's message; without `wait_for_missing`, a topic the brokers say
// does not exist is reported (NotFound) at their first answer.
inline Status WaitForTopics(
    rd_kafka_t* rk, const std::vector<std::string>& topics, int64_t timeout_ms,
    const std::string& brokers,
    std::string_view advice = "raise connect_timeout_ms, or 0 to wait without end",
    bool wait_for_missing = true) {
  constexpr int kAttemptMs = 2000;
  constexpr auto kReportEvery = std::chrono::seconds(10);
  const auto start = std::chrono::steady_clock::now();
  auto next_report = start + kReportEvery;
  std::string problem;
  for (;;) {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &md, kAttemptMs);
    if (err) {
      problem = fmt::format("cannot reach the brokers {}: {}", brokers, rd_kafka_err2str(err));
    } else {
      std::set<std::string> known;
      for (int i = 0; i < md->topic_cnt; ++i) {
        if (!md->topics[i].err) known.insert(md->topics[i].topic);
      }
      rd_kafka_metadata_destroy(md);
      problem.clear();
      for (const auto& t : topics) {
        if (known.count(t)) continue;
        std::vector<std::string> names(known.begin(), known.end());
        std::string hint;
        if (auto near = ClosestMatch(t, names)) hint = fmt::format("; did you mean '{}'?", *near);
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
        problem = fmt::format("topic '{}' does not exist on {}{} (topics: {})", t, brokers, hint,
                              list.empty() ? "none" : list);
        break;
      }
      if (problem.empty()) return Status::Ok();
      if (!wait_for_missing) return Status::NotFound(problem);
    }
    const auto now = std::chrono::steady_clock::now();
    const auto waited =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - start).count();
    if (timeout_ms > 0 && waited >= timeout_ms) {
      return Status::Unavailable(
          fmt::format("{} (waited {} s; {})", problem, (waited + 500) / 1000, advice));
    }
    if (err) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    else std::this_thread::sleep_for(std::chrono::milliseconds(500));
    if (now >= next_report) {
      Log(LogLevel::kWarn, fmt::format("{}; still trying", problem));
      next_report = now + kReportEvery;
    }
  }
}

// `sluice validate --connect` for kafka node `node`: a short-lived client of `type` with the
// node's `properties` asks the brokers for the topics' metadata (no group joined, nothing
// produced), waiting up to `timeout_ms`. Returns what it found, e.g. "topic 'a' (4 partitions)
// on host:9092", or the problem at the node's `topic` (or `properties`) key.
inline Result<std::string> ProbeTopics(const NodeConfig& node, rd_kafka_type_t type,
                                       const std::string& brokers,
                                       const KafkaProperties& properties,
                                       const std::vector<std::string>& topics,
                                       int64_t timeout_ms) {
  KafkaProperties props = {{"bootstrap.servers", brokers}, {"log_level", "3"}};
  for (const auto& p : properties) props.push_back(p);
  auto client = NewKafkaClient(type, props);
  if (!client.ok()) {
    if (client.status().code() == StatusCode::kInvalidConfig)
      return node.Error("properties", client.status().message());
    return Status(client.status().code(), fmt::format("{}: {}: {}",
                                                      node.MarkOf("properties").ToString(),
                                                      node.Prefix(), client.status().message()));
  }
  rd_kafka_t* rk = *client;
  // The brokers' answer is the check: a topic missing now is reported at once.
  Status st = WaitForTopics(rk, topics, timeout_ms, brokers, "raise --connect-timeout-ms",
                            /*wait_for_missing=*/false);
  std::map<std::string, int> partitions;
  const rd_kafka_metadata_t* md = nullptr;
  if (st.ok() && rd_kafka_metadata(rk, 1, nullptr, &md, static_cast<int>(timeout_ms)) == 0) {
    for (int i = 0; i < md->topic_cnt; ++i)
      partitions[md->topics[i].topic] = md->topics[i].partition_cnt;
    rd_kafka_metadata_destroy(md);
  }
  rd_kafka_destroy(rk);
  if (!st.ok()) {
    return Status(st.code(), fmt::format("{}: {}: {}", node.MarkOf("topic").ToString(),
                                         node.Prefix(), st.message()));
  }
  std::string found;
  for (const auto& t : topics) {
    const int n = partitions.count(t) ? partitions[t] : 0;
    found += fmt::format("{}topic '{}' ({} partition{})", found.empty() ? "" : ", ", t, n,
                         n == 1 ? "" : "s");
  }
  return fmt::format("{} on {}", found, brokers);
}

}  // namespace sluice
