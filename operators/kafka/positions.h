// Where a kafka source's partitions start and resume, and how far behind it is. Each assigned
// partition starts at the position an exactly-once sink stored with its rows, else at the group's
// committed offset, else at `start`; a position the broker no longer holds (it deleted the
// messages before they were read) is reported with the count of lost offsets and handled as
// `lost_offsets` says, never reset silently. ConsumerLag exports sluice_kafka_consumer_lag.
//
// Threading: StartPositions belongs to the source's polling thread, which serves librdkafka's
// rebalance callbacks and consume errors. ConsumerLag's Assigned and Revoked run there too, and
// Export on the thread that scrapes the metrics; a mutex of its own keeps them apart.
#pragma once

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "engine/metrics.h"
#include "engine/operator.h"
#include "engine/status.h"
#include "operators/kafka/offset_tracker.h"

namespace sluice {

// What the source's config says about positions.
struct PositionPolicy {
  std::string node;               ///< the source's node name, for log lines
  bool start_latest = false;      ///< `start: latest` (else earliest)
  bool continue_on_lost = false;  ///< `lost_offsets: continue` (else fail)
};

// A position outside the broker's range [low, high]: logs it and returns where to resume (the
// earliest available offset) under `lost_offsets: continue`, else a DataLoss status that says
// how many messages were lost, where that can be known.
Result<int64_t> ResumeAfterLoss(const PositionPolicy& policy, const std::string& topic,
                                int32_t partition, int64_t position, int64_t low, int64_t high);

class StartPositions {
 public:
  // `store`: where an exactly-once sink keeps the positions, or null when they are the group's.
  StartPositions(rd_kafka_t* rk, PositionPolicy policy, std::shared_ptr<PositionStore> store)
      : rk_(rk), policy_(std::move(policy)), store_(std::move(store)) {}

  // Sets the start offset of each partition the group assigned, and remembers them. An error
  // means the run cannot go on; `parts` then holds what was decided so far.
  Status Assign(rd_kafka_topic_partition_list_t* parts);

  // The fetch position of the partition of `m` (a consume error RD_KAFKA_RESP_ERR__AUTO_OFFSET
  // _RESET) fell out of the broker's range while consuming: reports the loss and, under
  // `lost_offsets: continue`, restarts the partition at the earliest available offset.
  Status OnOutOfRange(const rd_kafka_message_t* m);

  // Where each partition of the current assignment was assigned to start.
  const std::map<OffsetTracker::Key, int64_t>& assigned() const { return assigned_; }

 private:
  Status Prepare(rd_kafka_topic_partition_list_t* parts);
  Result<std::map<PositionKey, int64_t>> LoadStored();
  Status Restart(const std::string& topic, int32_t partition, int64_t offset);

  rd_kafka_t* rk_;
  PositionPolicy policy_;
  std::shared_ptr<PositionStore> store_;
  std::map<OffsetTracker::Key, int64_t> assigned_;
};

// sluice_kafka_consumer_lag per assigned partition: the partition's high watermark (librdkafka's
// cached value from the last fetch: no broker round trip) minus the first offset not yet written
// by every sink; before anything was read since the assignment, minus where the partition was
// assigned to start. A partition whose start is unknown has no series (unknown, not zero).
class ConsumerLag {
 public:
  ConsumerLag(rd_kafka_t* rk, OffsetTracker& tracker, std::string pipeline, std::string node)
      : rk_(rk), tracker_(tracker), pipeline_(std::move(pipeline)), node_(std::move(node)) {}

  void Assigned(const std::map<OffsetTracker::Key, int64_t>& starts);
  void Revoked(const std::vector<OffsetTracker::Key>& keys);
  // Sets the gauges at a scrape, and removes those of partitions no longer assigned.
  void Export();

 private:
  MetricLabels Labels(const OffsetTracker::Key& key) const;

  rd_kafka_t* rk_;
  OffsetTracker& tracker_;
  std::string pipeline_;
  std::string node_;
  std::mutex mu_;
  std::map<OffsetTracker::Key, int64_t> starts_;  // guarded by mu_
  std::set<OffsetTracker::Key> exported_;         // partitions with a series; Export only
};

}  // namespace sluice
