// The postgres source's reader: reads a table in the order of an increasing column, from a
// stored position, each row as its JSON object (`to_json`), and stores the position durably in
// the positions table once every sink has acknowledged the rows before it.
//
// Position semantics: the position is the increasing column's value as an int64 (integers as
// they are, timestamps as microseconds since the epoch); the stored `next_offset` is the value
// after the last row acknowledged, and a restart reads the rows whose value is >= it. Rows that
// share a value are never split across that boundary: a chunk that would end inside a run of
// equal values stops before it, and a run longer than a chunk is read whole (in several chunks
// that advance the position only with the last).
//
// Threading: a thread of the reader's own runs every query (reads, and the position writes) on
// the reader's one connection, reconnecting with backoff when the database fails, and keeps up
// to two chunks ready. Read (called by the runner, serially) only takes a ready chunk, waiting
// at most 100 ms.
// Acknowledge, from sink threads, only marks a chunk done and wakes the thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "engine/operator.h"
#include "operators/postgres/common.h"

namespace sluice {

// How the increasing column's values become int64 positions.
enum class PgPositionKind {
  kInteger,      // smallint, integer, bigint: the value
  kTimestamp,    // timestamp without time zone: microseconds since 1970-01-01 00:00 (as UTC)
  kTimestampTz,  // timestamptz: microseconds since the epoch
};

struct PgReadSpec {
  std::string url;  // with a connect_timeout
  PgTable table;
  std::string column;  // the increasing column
  PgPositionKind kind = PgPositionKind::kInteger;
  std::vector<std::string> columns;  // read into each record, in order
  bool follow = true;                // false: end once caught up
  std::chrono::milliseconds poll_interval{1000};
};

class PgIncrementalReader : public SourceReader {
 public:
  // `next`: where to start (nullopt: at the first row); `conn`: an open connection.
  PgIncrementalReader(PgReadSpec spec, std::string node, PgPositionTable positions,
                      std::optional<int64_t> next, std::unique_ptr<pqxx::connection> conn);
  ~PgIncrementalReader() override;

  Result<std::shared_ptr<RawRecords>> Read(size_t max_records) override;
  void Acknowledge(const RawRecords& raw) override;

  // SQL text of the queries, for tests and logs.
  static std::string PositionExpr(PgPositionKind kind, const std::string& column);
  static std::string BoundExpr(PgPositionKind kind, const std::string& param);
  // A position as people read it: the integer, or the timestamp in ISO 8601.
  static std::string ShowPosition(PgPositionKind kind, int64_t position);

 private:
  struct Pending {
    int64_t next_after;  // the position once this chunk and every one before are done
    bool done = false;
  };

  void PollLoop();
  // Reads the next rows into chunks; returns whether the table is caught up (a short read).
  bool ReadOnce(size_t limit);
  // Writes the acknowledged position when it moved; false when the database failed.
  bool CommitPosition();
  void Connect();
  void Disconnect();
  void Emit(std::vector<std::pair<std::string, int64_t>>& rows, size_t from, size_t to,
            int64_t next_after);

  const PgReadSpec spec_;
  const std::string node_;
  const PgPositionTable positions_;
  const PgPositionKey key_;
  std::string select_sql_;  // rows after $1; and the same from the first row
  std::string select_first_sql_;
  std::string group_sql_;  // every row whose value is $1

  // Only the polling thread uses the connection; conn_mu_ guards swapping it against a cancel
  // from the destructor.
  std::mutex conn_mu_;
  std::unique_ptr<pqxx::connection> conn_;
  std::optional<int64_t> next_;  // polling thread only: where the next read starts

  std::mutex mu_;  // everything below
  std::condition_variable cv_;
  std::deque<std::shared_ptr<RawRecords>> queue_;
  size_t max_records_ = 1024;
  bool stop_ = false;
  bool failing_ = false;  // the database failed since the last good read
  bool ended_ = false;    // follow: false and caught up: Read ends the input once queue_ is empty
  uint64_t next_id_ = 0;
  std::map<uint64_t, Pending> pending_;           // by chunk, in read order
  std::map<const RawRecords*, uint64_t> chunks_;  // chunk -> id
  std::optional<int64_t> acknowledged_;           // position of the done prefix
  std::optional<int64_t> stored_;                 // position in the positions table
  // The polling thread reads again (after catching up, or a failure) and stores the position
  // again (at most every so often while rows flow) no earlier than these.
  std::chrono::steady_clock::time_point read_after_{};
  std::chrono::steady_clock::time_point store_after_{};
  std::thread poller_;
};

}  // namespace sluice
