#include "operators/postgres/incremental_reader.h"

#include <algorithm>

#include <fmt/format.h>

#include "engine/log.h"
#include "operators/sinks/postgres_copy.h"

namespace sluice {
namespace {

constexpr size_t kChunksAhead = 2;  // chunks the polling thread may hold ready
constexpr auto kReadWait = std::chrono::milliseconds(100);
// Acknowledged positions are written at most this often while rows flow, and at once when the
// reader is caught up or stops.
constexpr auto kStoreEvery = std::chrono::milliseconds(500);
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::seconds(5);

}  // namespace

std::string PgIncrementalReader::PositionExpr(PgPositionKind kind, const std::string& column) {
  if (kind == PgPositionKind::kInteger) return fmt::format("{}::bigint", column);
  // extract() returns numeric in PostgreSQL 14 and later: exact to the microsecond.
  return fmt::format("(extract(epoch FROM {}) * 1000000)::bigint", column);
}

std::string PgIncrementalReader::BoundExpr(PgPositionKind kind, const std::string& param) {
  // An interval of whole microseconds is multiplied exactly (no float seconds), so the bound is
  // the very instant the position was taken from.
  switch (kind) {
    case PgPositionKind::kInteger: return fmt::format("{}::bigint", param);
    case PgPositionKind::kTimestamp:
      return fmt::format(
          "('1970-01-01 00:00:00'::timestamp + {}::bigint * interval '1 microsecond')", param);
    case PgPositionKind::kTimestampTz:
      return fmt::format(
          "('1970-01-01 00:00:00+00'::timestamptz + {}::bigint * interval '1 microsecond')", param);
  }
  return param;
}

std::string PgIncrementalReader::ShowPosition(PgPositionKind kind, int64_t position) {
  if (kind == PgPositionKind::kInteger) return std::to_string(position);
  return FormatTimestamp(position);
}

PgIncrementalReader::PgIncrementalReader(PgReadSpec spec, std::string node,
                                         PgPositionTable positions, std::optional<int64_t> next,
                                         std::unique_ptr<pqxx::connection> conn)
    : spec_(std::move(spec)),
      node_(std::move(node)),
      positions_(std::move(positions)),
      key_{spec_.table.Shown(), 0},
      conn_(std::move(conn)),
      next_(next),
      stored_(next) {
  std::vector<std::string> cols;
  for (const auto& c : spec_.columns) cols.push_back("sluice_t." + QuotePgIdent(c));
  const std::string col = "sluice_t." + QuotePgIdent(spec_.column);
  // Each record is the row as a JSON object of the chosen columns, in their order; the
  // lateral subquery names its members. NULL and infinite values of the increasing column
  // have no position: those rows are never read (the source warns about them at start).
  const bool timestamp = spec_.kind != PgPositionKind::kInteger;
  const std::string select = fmt::format(
      "SELECT to_json(sluice_row)::text, {} FROM {} AS sluice_t CROSS JOIN LATERAL (SELECT {}) "
      "AS sluice_row WHERE {} IS NOT NULL{}",
      PositionExpr(spec_.kind, col), spec_.table.Quoted(), fmt::join(cols, ", "), col,
      timestamp ? fmt::format(" AND isfinite({})", col) : "");
  select_first_sql_ = fmt::format("{} ORDER BY {}", select, col);
  select_sql_ =
      fmt::format("{} AND {} >= {} ORDER BY {}", select, col, BoundExpr(spec_.kind, "$1"), col);
  group_sql_ = fmt::format("{} AND {} = {}", select, col, BoundExpr(spec_.kind, "$1"));
}

PgIncrementalReader::~PgIncrementalReader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (poller_.joinable()) {
    {
      // A read in progress is cancelled rather than waited for: its rows would not be
      // delivered anyway.
      std::lock_guard<std::mutex> lock(conn_mu_);
      if (conn_) {
        try {
          conn_->cancel_query();
        } catch (const std::exception&) {
        }
      }
    }
    poller_.join();
  }
  // Everything handed on has been acknowledged or never will be: store how far the sinks got.
  if (!CommitPosition()) {
    // One more try, on a fresh connection (a failed store drops the old one).
    if (!CommitPosition()) {
      Log(LogLevel::kWarn,
          fmt::format("source '{}': the last position could not be stored; rows after the "
                      "stored position will be read again at the next start",
                      node_));
    }
  }
}

Result<std::shared_ptr<RawRecords>> PgIncrementalReader::Read(size_t max_records) {
  std::unique_lock<std::mutex> lock(mu_);
  max_records_ = std::max<size_t>(max_records, 1);
  // The polling thread starts with the first read, which says how many rows a chunk holds.
  if (!poller_.joinable()) poller_ = std::thread([this] { PollLoop(); });
  cv_.wait_for(lock, kReadWait, [&] { return !queue_.empty() || ended_; });
  if (!queue_.empty()) {
    auto chunk = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    cv_.notify_all();  // room for the poller
    return chunk;
  }
  if (ended_) return std::shared_ptr<RawRecords>();
  // Caught up: an empty chunk, so that the runner asks again (and sees stop requests).
  auto empty = std::make_shared<RawRecords>();
  empty->offsets.push_back(0);
  return empty;
}

void PgIncrementalReader::Acknowledge(const RawRecords& raw) {
  std::lock_guard<std::mutex> lock(mu_);
  auto c = chunks_.find(&raw);
  if (c == chunks_.end()) return;  // an empty chunk
  auto p = pending_.find(c->second);
  chunks_.erase(c);
  if (p == pending_.end()) return;
  p->second.done = true;
  bool moved = false;
  while (!pending_.empty() && pending_.begin()->second.done) {
    acknowledged_ = pending_.begin()->second.next_after;
    pending_.erase(pending_.begin());
    moved = true;
  }
  if (moved) cv_.notify_all();
}

void PgIncrementalReader::PollLoop() {
  auto backoff = kFirstBackoff;
  for (;;) {
    bool store_due = false, read_due = false;
    size_t limit;
    {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        if (stop_) return;
        const auto now = std::chrono::steady_clock::now();
        const bool to_store = acknowledged_ && acknowledged_ != stored_;
        // A full queue means the pipeline is behind: read nothing more until it takes a chunk.
        const bool may_read = !ended_ && queue_.size() < kChunksAhead;
        store_due = to_store && now >= store_after_;
        read_due = may_read && now >= read_after_;
        if (store_due || read_due) break;
        auto wake = now + kStoreEvery;
        if (to_store) wake = std::min(wake, store_after_);
        if (may_read) wake = std::min(wake, read_after_);
        cv_.wait_until(lock, wake);
      }
      limit = max_records_;
    }
    if (store_due) {
      CommitPosition();
      std::lock_guard<std::mutex> lock(mu_);
      store_after_ = std::chrono::steady_clock::now() + kStoreEvery;
    }
    if (!read_due) continue;
    bool caught_up = false;
    std::string failure;
    try {
      Connect();
      caught_up = ReadOnce(limit);
    } catch (const std::exception& e) {
      failure = PgFirstLine(e.what());
    }
    if (!failure.empty()) Disconnect();
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;  // a cancelled read
    const auto now = std::chrono::steady_clock::now();
    if (!failure.empty()) {
      // The rows are still in the table: the pipeline waits for them, nothing is lost.
      Log(LogLevel::kWarn, fmt::format("source '{}': PostgreSQL: {}; retrying in {} ms", node_,
                                       failure, backoff.count()));
      failing_ = true;
      read_after_ = now + backoff;
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
      continue;
    }
    if (failing_) {
      Log(LogLevel::kInfo, fmt::format("source '{}': reading from PostgreSQL again", node_));
      failing_ = false;
    }
    backoff = kFirstBackoff;
    if (caught_up) {
      ended_ = !spec_.follow;
      read_after_ = now + spec_.poll_interval;
      store_after_ = now;  // idle: store what is acknowledged without waiting
      cv_.notify_all();
    }
  }
}

void PgIncrementalReader::Connect() {
  if (conn_ && conn_->is_open()) return;
  auto conn = std::make_unique<pqxx::connection>(spec_.url);
  // Timestamps with a time zone come out of to_json in UTC; set_variable keeps the setting
  // should libpqxx reconnect by itself.
  conn->set_variable("TimeZone", "'UTC'");
  std::lock_guard<std::mutex> lock(conn_mu_);
  conn_ = std::move(conn);
}

void PgIncrementalReader::Disconnect() {
  std::lock_guard<std::mutex> lock(conn_mu_);
  conn_.reset();
}

bool PgIncrementalReader::ReadOnce(size_t limit) {
  std::vector<std::pair<std::string, int64_t>> rows;
  // One snapshot for the read and, when needed, the rest of a run of equal values.
  pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(*conn_);
  const std::string limit_sql = fmt::format(" LIMIT {}", limit);
  pqxx::result r = next_ ? tx.exec_params(select_sql_ + limit_sql, *next_)
                         : tx.exec(select_first_sql_ + limit_sql);
  rows.reserve(r.size());
  for (const auto& row : r) rows.emplace_back(row[0].c_str(), row[1].as<int64_t>());
  if (rows.size() < limit) {
    tx.commit();
    if (!rows.empty()) Emit(rows, 0, rows.size(), rows.back().second + 1);
    return true;
  }
  const int64_t last = rows.back().second;
  if (rows.front().second != last) {
    // The run of the last value may go on past the limit: leave it whole to the next read.
    tx.commit();
    size_t end = rows.size();
    while (rows[end - 1].second == last) --end;
    Emit(rows, 0, end, rows[end - 1].second + 1);
    return false;
  }
  // A run of one value longer than a chunk: read all of it, in chunks of `limit`; only the
  // last moves the position past the value.
  rows.clear();
  pqxx::result g = tx.exec_params(group_sql_, last);
  tx.commit();
  for (const auto& row : g) rows.emplace_back(row[0].c_str(), row[1].as<int64_t>());
  Log(LogLevel::kInfo,
      fmt::format("source '{}': {} rows share the value {} of column '{}'; "
                  "they are read together",
                  node_, rows.size(), ShowPosition(spec_.kind, last), spec_.column));
  for (size_t from = 0; from < rows.size(); from += limit) {
    const size_t to = std::min(rows.size(), from + limit);
    Emit(rows, from, to, to == rows.size() ? last + 1 : last);
  }
  return false;
}

void PgIncrementalReader::Emit(std::vector<std::pair<std::string, int64_t>>& rows, size_t from,
                               size_t to, int64_t next_after) {
  auto out = std::make_shared<RawRecords>();
  out->origin = spec_.table.Shown();
  out->offsets.reserve(to - from + 1);
  out->positions.reserve(to - from);
  out->offsets.push_back(0);
  for (size_t i = from; i < to; ++i) out->Add(rows[i].first, rows[i].second);
  // Room past the last record lets the JSON parser read it in place.
  out->data.reserve(out->data.size() + 64);
  next_ = next_after;
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = next_id_++;
  pending_[id] = Pending{next_after};
  chunks_[out.get()] = id;
  queue_.push_back(std::move(out));
  cv_.notify_all();
}

bool PgIncrementalReader::CommitPosition() {
  std::optional<int64_t> target;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!acknowledged_ || acknowledged_ == stored_) return true;
    target = acknowledged_;
  }
  try {
    Connect();
    pqxx::work tx(*conn_);
    positions_.Store(tx, {{key_, *target}});
    tx.commit();
  } catch (const std::exception& e) {
    Log(LogLevel::kWarn, fmt::format("source '{}': storing the position {} failed: {}", node_,
                                     *target, PgFirstLine(e.what())));
    Disconnect();
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  stored_ = target;
  return true;
}

}  // namespace sluice
