// Creating librdkafka clients from key/value properties, shared by the kafka source, the kafka
// sink and the development broker. Errors come back as a Status, never as a leaked conf.
#pragma once

#include <librdkafka/rdkafka.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "engine/status.h"

namespace sluice {

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
  if (configure) configure(conf);
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);  // rd_kafka_new takes the conf over only on success
    return Status::Unavailable(fmt::format("cannot create a Kafka client: {}", err));
  }
  return rk;
}

}  // namespace sluice
