#include "operators/kafka/fetch_waker.h"

#include <cstdlib>
#include <set>

namespace sluice {
namespace {

// One of the consumer's numeric settings, or `fallback` if it cannot be read.
double ConfNumber(rd_kafka_t* rk, const char* name, double fallback) {
  char buf[64];
  size_t size = sizeof(buf);
  if (rd_kafka_conf_get(rd_kafka_conf(rk), name, buf, &size) != RD_KAFKA_CONF_OK) return fallback;
  char* end = nullptr;
  const double v = std::strtod(buf, &end);
  return end != buf && v > 0 ? v : fallback;
}

}  // namespace

FetchWaker::FetchWaker(rd_kafka_t* rk, Counter* wakeups)
    : rk_(rk),
      queue_(rd_kafka_queue_get_consumer(rk)),
      wakeups_(wakeups),
      max_bytes_(ConfNumber(rk, "queued.max.messages.kbytes", 65536) * 1024),
      max_messages_(ConfNumber(rk, "queued.min.messages", 100000)),
      thread_([this] { Run(); }) {}

FetchWaker::~FetchWaker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (queue_) rd_kafka_queue_destroy(queue_);
}

void FetchWaker::Wake(Partitions partitions) {
  if (partitions.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    partitions_ = std::move(partitions);
    pending_ = true;
  }
  cv_.notify_all();
}

void FetchWaker::Run() {
  for (;;) {
    Partitions parts;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || pending_; });
      if (stop_) return;
      parts = std::move(partitions_);
      pending_ = false;
    }
    const auto now = std::chrono::steady_clock::now();
    if (parts != chosen_for_ || now - chosen_at_ >= kLeadersRefresh) {
      chosen_ = OnePerLeader(parts, Leaders(parts));
      chosen_for_ = std::move(parts);
      chosen_at_ = now;
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;  // the metadata took a while: do not hold up the destructor further
    }
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(static_cast<int>(chosen_.size()));
    for (const auto& [topic, partition] : chosen_) {
      // For ListOffsets the "offset" is a timestamp; END asks for the high watermark.
      rd_kafka_topic_partition_list_add(list, topic.c_str(), partition)->offset =
          RD_KAFKA_OFFSET_END;
    }
    // The answer does not matter, only that each leader's broker thread had a request to send;
    // an error (a broker down, a timeout) leaves the fetcher to librdkafka's own one-second
    // look.
    rd_kafka_offsets_for_times(rk_, list, kRequestTimeoutMs);
    rd_kafka_topic_partition_list_destroy(list);
    if (wakeups_) wakeups_->Inc();
  }
}

FetchWaker::Partitions FetchWaker::OnePerLeader(
    const Partitions& parts, const std::map<std::pair<std::string, int32_t>, int32_t>& leaders) {
  Partitions out;
  std::set<int32_t> seen;
  for (const auto& part : parts) {
    const auto it = leaders.find(part);
    if (it == leaders.end() || it->second < 0 || seen.insert(it->second).second) {
      out.push_back(part);
    }
  }
  return out;
}

std::map<std::pair<std::string, int32_t>, int32_t> FetchWaker::Leaders(const Partitions& parts) {
  std::map<std::pair<std::string, int32_t>, int32_t> leaders;
  std::set<std::string> topics;
  for (const auto& part : parts) topics.insert(part.first);
  for (const std::string& topic : topics) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, topic.c_str(), nullptr);
    if (!rkt) continue;
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk_, 0, rkt, &md, kRequestTimeoutMs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      for (int t = 0; t < md->topic_cnt; ++t) {
        const rd_kafka_metadata_topic_t& mt = md->topics[t];
        if (mt.err || topic != mt.topic) continue;
        for (int p = 0; p < mt.partition_cnt; ++p) {
          leaders[{topic, mt.partitions[p].id}] = mt.partitions[p].leader;
        }
      }
      rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
  }
  return leaders;
}

}  // namespace sluice
