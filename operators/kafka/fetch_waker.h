// FetchWaker: keeps a consumer's read-ahead flowing on librdkafka before 2.2.
//
// librdkafka stops fetching once the consumer's local queue holds `queued.max.messages.kbytes`
// (or `queued.min.messages`), and looks at the queue again only when the broker's thread wakes
// up: on network I/O, on a request handed to it, or after at most one second (librdkafka 2.2
// made that second `fetch.queue.backoff.ms`; 2.0 has no setting for it). A consumer that empties
// a full read-ahead in less than a second then waits, with nothing to read, for whatever wakes
// that thread next: with Sluice's 16 MiB read-ahead, 647-byte messages and the development
// broker, 91,899 messages/s against 270,386 with the waker (bench/README.md).
//
// The waker watches the queue from the polling thread. Once the read-ahead has been seen full
// and then drains below half, it sends one ListOffsets request (offsets for the latest
// timestamp) for one assigned partition per leader, from a thread of its own: the request goes
// to each leader's broker thread, which wakes up, finds the queue below its threshold and
// fetches again. That is one small request per read-ahead's worth of messages, and none at all
// while the consumer keeps up with its input (the read-ahead is then never full).
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/metrics.h"

namespace sluice {

class FetchWaker {
 public:
  using Partitions = std::vector<std::pair<std::string, int32_t>>;

  // `rk`: the consumer, which must outlive the waker. Reads its read-ahead limits from its
  // configuration. `wakeups`: counts the requests sent (may be null).
  FetchWaker(rd_kafka_t* rk, Counter* wakeups);
  // Waits for the requests in flight: a metadata request per topic when the assignment changed,
  // then ListOffsets, each bounded by kRequestTimeoutMs.
  ~FetchWaker();
  FetchWaker(const FetchWaker&) = delete;
  FetchWaker& operator=(const FetchWaker&) = delete;

  // Called by the polling thread with each message's payload size.
  void Consumed(size_t payload_bytes) {
    // A running mean over the last ~1,000 messages: the queue's length times it estimates the
    // bytes librdkafka counts against queued.max.messages.kbytes (payloads only).
    mean_bytes_ += (static_cast<double>(payload_bytes) - mean_bytes_) / 1024.0;
  }

  // Called by the polling thread every few hundred messages and when a poll finds nothing:
  // looks at the queue and, once a full read-ahead has drained below half, asks for a wake-up
  // of the brokers leading `partitions` (the callable gives them; it is only called then).
  template <typename GetPartitions>
  void Check(GetPartitions&& partitions) {
    if (!queue_) return;
    const double messages = static_cast<double>(rd_kafka_queue_length(queue_));
    const double bytes = messages * mean_bytes_;
    if (messages >= 0.75 * max_messages_ || bytes >= 0.75 * max_bytes_) {
      full_ = true;
      return;
    }
    if (!full_ || messages >= 0.5 * max_messages_ || bytes >= 0.5 * max_bytes_) return;
    full_ = false;
    Wake(partitions());
  }

  // Sends one wake-up request for `partitions` (replacing one not yet sent).
  void Wake(Partitions partitions);

  // The first of `parts` led by each leader in `leaders` (broker id by partition), and every
  // partition whose leader is not known: the request then reaches each leader's broker thread
  // all the same, with one partition each instead of all of them. librdkafka 2.0 matches a
  // ListOffsets answer to its request in time quadratic in the partitions asked for: at 2,048
  // partitions that was 5% of the kafka source's CPU.
  static Partitions OnePerLeader(const Partitions& parts,
                                 const std::map<std::pair<std::string, int32_t>, int32_t>& leaders);

  static constexpr int kRequestTimeoutMs = 2000;
  // How long a choice of partitions stands while the assignment does not change: a leader that
  // moved in the meantime is left to librdkafka's own one-second look until then.
  static constexpr std::chrono::seconds kLeadersRefresh{10};

 private:
  void Run();
  // Broker id of each partition's leader among the topics of `parts`, from a metadata request;
  // empty when it fails.
  std::map<std::pair<std::string, int32_t>, int32_t> Leaders(const Partitions& parts);

  rd_kafka_t* rk_;
  rd_kafka_queue_t* queue_;  // the consumer's queue, which holds the read-ahead
  Counter* wakeups_;
  double max_bytes_;
  double max_messages_;
  double mean_bytes_ = 0;
  bool full_ = false;  // the read-ahead was seen full since the last wake-up
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;
  bool stop_ = false;
  Partitions partitions_;
  // The waker thread's own: the partitions last asked for, the choice among them, and when.
  Partitions chosen_for_;
  Partitions chosen_;
  std::chrono::steady_clock::time_point chosen_at_;
  std::thread thread_;
};

}  // namespace sluice
