// Where a kafka source's partitions start and resume, and its consumer lag (positions.h).
#include "operators/kafka/positions.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "engine/log.h"
#include "operators/kafka/client.h"

namespace sluice {
namespace {

constexpr int kBrokerQueryMs = 10000;
constexpr int kStoreAttempts = 6;  // reads of stored positions before the run fails (~6 s)
constexpr auto kStoreFirstBackoff = std::chrono::milliseconds(200);

}  // namespace

Result<int64_t> ResumeAfterLoss(const PositionPolicy& policy, const std::string& topic,
                                int32_t partition, int64_t position, int64_t low, int64_t high) {
  std::string what;
  if (position >= 0 && position < low) {
    what = fmt::format(
        "partition {}[{}]: the position to read, offset {}, is below the broker's low "
        "watermark {}: {} messages were deleted by the broker before they were read",
        topic, partition, position, low, low - position);
  } else {
    what = fmt::format(
        "partition {}[{}]: the position to read, offset {}, is outside the broker's range "
        "[{}, {}] (the topic was recreated or truncated); how many messages were lost is "
        "unknown",
        topic, partition, position, low, high);
  }
  if (!policy.continue_on_lost) {
    Log(LogLevel::kError, fmt::format("source '{}': {}", policy.node, what));
    return Status::DataLoss(fmt::format(
        "{}; stopping (lost_offsets: fail). To go on from the earliest available offset, "
        "set lost_offsets: continue",
        what));
  }
  Log(LogLevel::kError,
      fmt::format("source '{}': {}; continuing from offset {} (lost_offsets: continue)",
                  policy.node, what, low));
  return low;
}

Status StartPositions::Assign(rd_kafka_topic_partition_list_t* parts) {
  Status st = Prepare(parts);
  assigned_.clear();
  for (int i = 0; i < parts->cnt; ++i) {
    assigned_[{parts->elems[i].topic, parts->elems[i].partition}] = parts->elems[i].offset;
  }
  return st;
}

// The stored position wins over the group's committed offset, which wins over `start`; each
// is checked against the broker's range.
//
// The broker's ranges are asked with one request per leader for all the partitions. Handing
// librdkafka concrete offsets also spares it looking up `start` itself, partition by partition:
// at a group's first assignment those lookups race the partitions' move to their leader and are
// retried 500 ms later, while the partitions that did start reach their end and hold the one
// fetch in flight (fetch.wait.max.ms) that the others then wait for: up to a second lost.
Status StartPositions::Prepare(rd_kafka_topic_partition_list_t* parts) {
  rd_kafka_resp_err_t e = rd_kafka_committed(rk_, parts, kBrokerQueryMs);
  if (e) {
    return Status::Unavailable(
        fmt::format("cannot read the group's committed offsets: {}", rd_kafka_err2str(e)));
  }
  if (store_) {
    SLUICE_ASSIGN_OR_RETURN(auto stored, LoadStored());
    for (int i = 0; i < parts->cnt; ++i) {
      rd_kafka_topic_partition_t& p = parts->elems[i];
      auto it = stored.find({p.topic, p.partition});
      if (it != stored.end()) p.offset = it->second;
    }
  }
  const auto lows = ListOffsets(rk_, parts, RD_KAFKA_OFFSET_BEGINNING, kBrokerQueryMs);
  const auto highs = ListOffsets(rk_, parts, RD_KAFKA_OFFSET_END, kBrokerQueryMs);
  for (int i = 0; i < parts->cnt; ++i) {
    rd_kafka_topic_partition_t& p = parts->elems[i];
    const auto low_it = lows.find({p.topic, p.partition});
    const auto high_it = highs.find({p.topic, p.partition});
    const bool known = low_it != lows.end() && high_it != highs.end();
    if (p.offset < 0) {
      // Without an answer librdkafka looks the logical offset up itself.
      if (policy_.start_latest) {
        p.offset = known ? high_it->second : RD_KAFKA_OFFSET_END;
      } else {
        p.offset = known ? low_it->second : RD_KAFKA_OFFSET_BEGINNING;
      }
      continue;
    }
    int64_t low = 0, high = 0;
    if (known) {
      low = low_it->second;
      high = high_it->second;
    } else if ((e = rd_kafka_query_watermark_offsets(rk_, p.topic, p.partition, &low, &high,
                                                     kBrokerQueryMs))) {
      Log(LogLevel::kWarn, fmt::format("source '{}': partition {}[{}]: cannot read the "
                                       "broker's range ({}); the fetch will check it",
                                       policy_.node, p.topic, p.partition, rd_kafka_err2str(e)));
      continue;
    }
    if (p.offset >= low && p.offset <= high) continue;
    SLUICE_ASSIGN_OR_RETURN(p.offset,
                            ResumeAfterLoss(policy_, p.topic, p.partition, p.offset, low, high));
  }
  return Status::Ok();
}

// The positions a sink stored with its writes (exactly-once into a database); a failing store
// is asked again a few times before the run fails.
Result<std::map<PositionKey, int64_t>> StartPositions::LoadStored() {
  auto backoff = kStoreFirstBackoff;
  for (int attempt = 1;; ++attempt) {
    auto got = store_->Load();
    if (got.ok()) return got;
    if (attempt == kStoreAttempts) {
      return Status(got.status().code(), fmt::format("cannot read the stored positions: {}",
                                                     got.status().message()));
    }
    Log(LogLevel::kWarn, fmt::format("source '{}': cannot read the stored positions ({}); "
                                     "retrying in {} ms",
                                     policy_.node, got.status().message(), backoff.count()));
    std::this_thread::sleep_for(backoff);
    backoff *= 2;
  }
}

Status StartPositions::OnOutOfRange(const rd_kafka_message_t* m) {
  const std::string topic = rd_kafka_topic_name(m->rkt);
  int64_t low = 0, high = 0;
  rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk_, topic.c_str(), m->partition, &low,
                                                           &high, kBrokerQueryMs);
  if (e) {
    return Status::Unavailable(fmt::format(
        "partition {}[{}]: the read position is out of range ({}) and the broker's range "
        "cannot be read: {}",
        topic, m->partition, rd_kafka_message_errstr(m), rd_kafka_err2str(e)));
  }
  const int64_t from = m->offset >= 0 ? m->offset : -1;
  SLUICE_ASSIGN_OR_RETURN(int64_t resume,
                          ResumeAfterLoss(policy_, topic, m->partition, from, low, high));
  return Restart(topic, m->partition, resume);
}

// The fetcher stopped the partition when its position fell out of range (auto.offset.reset=
// error), and a stopped partition cannot be sought, so the whole assignment is handed back with
// every other partition at its current position (or, if nothing was consumed from it yet, where
// it was assigned to start).
Status StartPositions::Restart(const std::string& topic, int32_t partition, int64_t offset) {
  rd_kafka_topic_partition_list_t* current = nullptr;
  rd_kafka_resp_err_t e = rd_kafka_assignment(rk_, &current);
  if (!e) e = rd_kafka_position(rk_, current);
  if (!e) {
    for (int i = 0; i < current->cnt; ++i) {
      rd_kafka_topic_partition_t& p = current->elems[i];
      if (p.topic == topic && p.partition == partition) {
        p.offset = offset;
      } else if (p.offset < 0) {
        auto a = assigned_.find({p.topic, p.partition});
        p.offset = a == assigned_.end() ? RD_KAFKA_OFFSET_STORED : a->second;
      }
    }
    e = rd_kafka_assign(rk_, current);
  }
  if (current) rd_kafka_topic_partition_list_destroy(current);
  if (e) {
    return Status::Unavailable(fmt::format("partition {}[{}]: cannot resume at offset {}: {}",
                                           topic, partition, offset, rd_kafka_err2str(e)));
  }
  return Status::Ok();
}

void ConsumerLag::Assigned(const std::map<OffsetTracker::Key, int64_t>& starts) {
  std::lock_guard<std::mutex> lock(mu_);
  starts_ = starts;
}

void ConsumerLag::Revoked(const std::vector<OffsetTracker::Key>& keys) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& k : keys) starts_.erase(k);
}

void ConsumerLag::Export() {
  rd_kafka_topic_partition_list_t* parts = nullptr;
  if (rd_kafka_assignment(rk_, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts) return;
  std::map<OffsetTracker::Key, int64_t> starts;
  {
    std::lock_guard<std::mutex> lock(mu_);
    starts = starts_;
  }
  std::set<OffsetTracker::Key> now;
  for (int i = 0; i < parts->cnt; ++i) {
    const auto& p = parts->elems[i];
    int64_t low = -1, high = -1;
    if (rd_kafka_get_watermark_offsets(rk_, p.topic, p.partition, &low, &high) || high < 0) {
      continue;
    }
    OffsetTracker::Key key{p.topic, p.partition};
    int64_t at = tracker_.FirstUnacknowledged(key);
    if (at < 0) {
      auto s = starts.find(key);
      at = s == starts.end()                       ? -1
           : s->second == RD_KAFKA_OFFSET_BEGINNING ? low
           : s->second == RD_KAFKA_OFFSET_END       ? high
                                                    : s->second;
    }
    if (at < 0) continue;  // nowhere known to start from: unknown, not zero
    now.insert(key);
    Metrics()
        .GetGauge("sluice_kafka_consumer_lag",
                  "messages between the first one not yet written by every sink and the "
                  "partition's high watermark",
                  Labels(key))
        ->Set(static_cast<double>(std::max<int64_t>(0, high - std::max(at, low))));
  }
  rd_kafka_topic_partition_list_destroy(parts);
  for (const auto& key : exported_) {
    if (!now.count(key)) Metrics().Remove("sluice_kafka_consumer_lag", Labels(key));
  }
  exported_ = std::move(now);
}

MetricLabels ConsumerLag::Labels(const OffsetTracker::Key& key) const {
  return {{"pipeline", pipeline_},
          {"node", node_},
          {"topic", key.first},
          {"partition", std::to_string(key.second)}};
}

}  // namespace sluice
