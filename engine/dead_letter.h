// The dead-letter output: where a row goes when a node cannot process it, with the node, the
// reason, and the bytes and position the source read. Thread-safe: any node may reject rows.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"

namespace sluice {

struct DeadLetterRecord {
  std::string node;
  std::string reason;
  std::string input;   // the original bytes
  std::string origin;  // file or topic
  int64_t position = -1;
  int32_t partition = -1;  // Kafka partition; -1 for sources without partitions
};

class DeadLetter {
 public:
  virtual ~DeadLetter() = default;
  virtual void Write(DeadLetterRecord record) = 0;
  virtual Status Flush() { return Status::Ok(); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  // True once a record could not be written and the output gave up on it: the batch it came
  // from must not be acknowledged. The reason is in Flush()'s status.
  bool failed() const { return failed_.load(std::memory_order_acquire); }

 protected:
  std::atomic<uint64_t> count_{0};
  std::atomic<bool> failed_{false};
};

// One JSON object per line: {"pipeline", "node", "reason", "origin", "position", "input"}.
//
// A record that cannot be written (a full disk, a folder without permission) is never dropped:
// Write logs the error once and retries with backoff, holding the rejecting node, so the batches
// in flight stop and the sources pause until the file can be written. If a stop is requested
// meanwhile, Write gives up on that record, failed() turns true and the run ends failed, without
// acknowledging the batch (its source position is not committed: it is read again next time).
// A partial line left by a failed write is cut off before the next attempt.
class FileDeadLetter : public DeadLetter {
 public:
  // `stop`: the run's stop request, which ends a pause.
  FileDeadLetter(std::string pipeline, std::string path, const std::atomic<bool>* stop = nullptr);
  ~FileDeadLetter() override;
  // Opens lazily: a clean run leaves no empty dead-letter file behind.
  void Write(DeadLetterRecord record) override;
  Status Flush() override;
  const std::string& path() const { return path_; }

 private:
  Status TryWrite(const std::string& line);

  std::string pipeline_;
  std::string path_;
  const std::atomic<bool>* stop_;
  std::mutex mu_;
  int fd_ = -1;
  bool regular_ = false;  // fsync only means something for a regular file
  int64_t size_ = 0;      // bytes of whole lines in the file
  Status error_;
};

class MemoryDeadLetter : public DeadLetter {
 public:
  void Write(DeadLetterRecord record) override;
  std::vector<DeadLetterRecord> records() const;

 private:
  mutable std::mutex mu_;
  std::vector<DeadLetterRecord> records_;
};

}  // namespace sluice
