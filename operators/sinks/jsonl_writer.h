// Writes batches as JSON lines to a stdio stream; shared by the file and stdout sinks.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <fmt/format.h>
#include <unistd.h>

#include "engine/json.h"
#include "engine/operator.h"

namespace sluice {

class JsonlWriter {
 public:
  JsonlWriter(FILE* file, std::string name, bool owned, bool sync)
      : file_(file), name_(std::move(name)), owned_(owned), sync_(sync) {}
  ~JsonlWriter() {
    if (owned_ && file_) std::fclose(file_);
  }

  // Encoding is separate from writing so it can run in parallel on several batches.
  static std::string Encode(const Batch& batch) {
    std::string out;
    out.reserve(batch.num_rows() * 128);
    RowJsonEncoder(*batch.schema()).AppendBatch(out, batch);
    return out;
  }

  // Hands the bytes to the operating system before the batch is acknowledged, so a crash of
  // the process loses nothing acknowledged; `sync_each` also fsyncs (survives power loss).
  Status Write(const std::string& bytes, bool sync_each = false) {
    if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
      return Status::IoError(fmt::format("writing '{}': {}", name_, std::strerror(errno)));
    }
    if (std::fflush(file_) != 0) {
      return Status::IoError(fmt::format("writing '{}': {}", name_, std::strerror(errno)));
    }
    return sync_each ? Flush() : Status::Ok();
  }

  Status Flush() {
    if (std::fflush(file_) != 0) {
      return Status::IoError(fmt::format("flushing '{}': {}", name_, std::strerror(errno)));
    }
    // A regular file is made durable; a pipe or terminal has nothing to sync.
    if (sync_ && fsync(fileno(file_)) != 0 && errno != EINVAL && errno != EROFS) {
      return Status::IoError(fmt::format("syncing '{}': {}", name_, std::strerror(errno)));
    }
    return Status::Ok();
  }

 private:
  FILE* file_;
  std::string name_;
  bool owned_;
  bool sync_;
};

}  // namespace sluice
