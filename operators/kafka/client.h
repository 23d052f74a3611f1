// Creating librdkafka clients from key/value properties, shared by the kafka source, the kafka
// sink and the development broker. Errors come back as a Status, never as a leaked conf.
#pragma once

#include <librdkafka/rdkafka.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "engine/log.h"
#include "engine/status.h"

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

}  // namespace sluice
