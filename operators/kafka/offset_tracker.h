// Delivery tracking for the kafka source: which offsets of each partition were read, which are
// done (every sink downstream acknowledged them), and the position that may be committed: the end
// of the contiguous done prefix, so a later chunk finishing first never commits over an earlier
// one that is still in flight.
//
// Threading: every method locks; Read is called by the polling thread, Done by sink threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

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
  // The first offset of the partition not yet acknowledged: the start of the oldest chunk in
  // flight, else the end of the done prefix; -1 when nothing was read since the assignment.
  int64_t FirstUnacknowledged(const Key& k) {
    std::lock_guard<std::mutex> lock(mu_);
    auto p = parts_.find(k);
    if (p == parts_.end()) return -1;
    if (!p->second.ranges.empty()) return p->second.ranges.begin()->first;
    return p->second.commit;
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
  // A chunk read from [first, ...] will not be delivered (the reader is closing): drop it, so
  // that waiting for the partition to drain does not wait for it.
  void Unread(const Key& k, int64_t first) {
    std::lock_guard<std::mutex> lock(mu_);
    auto p = parts_.find(k);
    if (p == parts_.end()) return;
    p->second.ranges.erase(first);
    cv_.notify_all();
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

}  // namespace sluice
