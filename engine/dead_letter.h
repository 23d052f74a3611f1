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

 protected:
  std::atomic<uint64_t> count_{0};
};

// One JSON object per line: {"pipeline", "node", "reason", "origin", "position", "input"}.
class FileDeadLetter : public DeadLetter {
 public:
  FileDeadLetter(std::string pipeline, std::string path);
  ~FileDeadLetter() override;
  // Opens lazily: a clean run leaves no empty dead-letter file behind.
  void Write(DeadLetterRecord record) override;
  Status Flush() override;
  const std::string& path() const { return path_; }

 private:
  std::string pipeline_;
  std::string path_;
  std::mutex mu_;
  FILE* file_ = nullptr;
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
