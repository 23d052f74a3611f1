#include "engine/dead_letter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "engine/config.h"
#include "engine/json.h"
#include "engine/log.h"

namespace sluice {

FileDeadLetter::FileDeadLetter(std::string pipeline, std::string path,
                               const std::atomic<bool>* stop)
    : pipeline_(std::move(pipeline)), path_(std::move(path)), stop_(stop) {}

FileDeadLetter::~FileDeadLetter() {
  if (fd_ >= 0) close(fd_);
}

Status FileDeadLetter::TryWrite(const std::string& line) {
  if (fd_ < 0) {
    SLUICE_RETURN_IF_ERROR(EnsureParentDir(path_));
    fd_ = open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      return Status::IoError(
          fmt::format("cannot open dead-letter file '{}': {}", path_, std::strerror(errno)));
    }
    struct stat st {};
    regular_ = fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
    size_ = regular_ ? st.st_size : 0;
  }
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : ENOSPC;
      // No half line stays behind to break the file's one-object-per-line form.
      if (done > 0 && regular_ && ftruncate(fd_, size_) != 0) {
        return Status::IoError(fmt::format("cannot write dead-letter file '{}': {}; a partial "
                                           "line could not be removed",
                                           path_, std::strerror(errno)));
      }
      // Opened afresh at the next attempt, so a path that was fixed meanwhile (space freed on
      // another volume, a link re-pointed, permissions given) is used.
      close(fd_);
      fd_ = -1;
      return Status::IoError(
          fmt::format("cannot write dead-letter file '{}': {}", path_, std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  size_ += static_cast<int64_t>(line.size());
  return Status::Ok();
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
  if (failed_.load()) return;  // the run is ending failed: nothing more is acknowledged
  // Each record reaches the operating system at once: the batch it came from may be
  // acknowledged (and its source offset committed) right after, so it must not wait in a buffer.
  auto backoff = std::chrono::milliseconds(100);
  auto last_log = std::chrono::steady_clock::time_point();
  bool paused = false;
  for (;;) {
    Status st = TryWrite(line);
    if (st.ok()) {
      count_.fetch_add(1, std::memory_order_relaxed);
      if (paused) {
        Log(LogLevel::kInfo,
            fmt::format("dead-letter file '{}' can be written again; the pipeline resumes", path_));
      }
      return;
    }
    if (stop_ && stop_->load()) {
      error_ = Status::IoError(fmt::format(
          "{}; stopped before the rejected rows could be written: their batches were not "
          "acknowledged and will be read again",
          st.message()));
      failed_.store(true, std::memory_order_release);
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_log >= std::chrono::seconds(60)) {
      Log(LogLevel::kError,
          fmt::format("{}; the pipeline is paused until it can be written (nothing is dropped)",
                      st.message()));
      last_log = now;
    }
    paused = true;
    std::this_thread::sleep_for(backoff);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(5));
  }
}

Status FileDeadLetter::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ >= 0 && regular_ && fsync(fd_) != 0 && error_.ok()) {
    error_ = Status::IoError(
        fmt::format("cannot flush dead-letter file '{}': {}", path_, std::strerror(errno)));
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
