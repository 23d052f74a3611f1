#include "engine/dead_letter.h"

#include <unistd.h>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "engine/config.h"
#include "engine/json.h"

namespace sluice {

FileDeadLetter::FileDeadLetter(std::string pipeline, std::string path)
    : pipeline_(std::move(pipeline)), path_(std::move(path)) {}

FileDeadLetter::~FileDeadLetter() {
  if (file_) std::fclose(file_);
}

void FileDeadLetter::Write(DeadLetterRecord r) {
  std::string line = "{\"pipeline\":";
  AppendJsonString(line, pipeline_);
  line += ",\"node\":";
  AppendJsonString(line, r.node);
  line += ",\"reason\":";
  AppendJsonString(line, r.reason);
  line += ",\"origin\":";
  AppendJsonString(line, r.origin);
  if (r.partition >= 0) line += fmt::format(",\"partition\":{}", r.partition);
  line += fmt::format(",\"position\":{},\"input\":", r.position);
  AppendJsonString(line, r.input);
  line += "}\n";
  std::lock_guard<std::mutex> lock(mu_);
  count_.fetch_add(1, std::memory_order_relaxed);
  if (!file_ && error_.ok()) {
    error_ = EnsureParentDir(path_);
  }
  if (!file_ && error_.ok()) {
    file_ = std::fopen(path_.c_str(), "a");
    if (!file_) {
      error_ = Status::IoError(
          fmt::format("cannot open dead-letter file '{}': {}", path_, std::strerror(errno)));
    }
  }
  // Each record reaches the operating system at once: the batch it came from may be
  // acknowledged (and its source offset committed) right after, so it must not wait in a buffer.
  if (file_ &&
      (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)) {
    error_ = Status::IoError(fmt::format("cannot write dead-letter file '{}'", path_));
  }
}

Status FileDeadLetter::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  if (file_ && (std::fflush(file_) != 0 || fsync(fileno(file_)) != 0) && error_.ok()) {
    error_ = Status::IoError(fmt::format("cannot flush dead-letter file '{}'", path_));
  }
  return error_;
}

void MemoryDeadLetter::Write(DeadLetterRecord record) {
  std::lock_guard<std::mutex> lock(mu_);
  count_.fetch_add(1, std::memory_order_relaxed);
  records_.push_back(std::move(record));
}

std::vector<DeadLetterRecord> MemoryDeadLetter::records() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_;
}

}  // namespace sluice
