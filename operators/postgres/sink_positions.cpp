#include "operators/postgres/sink_positions.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "engine/log.h"
#include "operators/sinks/postgres_copy.h"

namespace sluice {
namespace {

// Where each stream and partition of a batch ends: the next position to read after it.
PgPositions EndsOf(const RawRecords& raw) {
  PgPositions ends;
  PgPositionKey last{"", -2};
  int64_t* slot = nullptr;
  for (size_t i = 0; i < raw.count(); ++i) {
    PgPositionKey k{raw.OriginOf(i), raw.PartitionOf(i)};
    if (!slot || k.partition != last.partition || k.topic != last.topic) {
      last = k;
      slot = &ends.try_emplace(k, -1).first->second;
    }
    *slot = std::max(*slot, raw.positions[i] + 1);
  }
  return ends;
}

}  // namespace

bool PgSinkPositions::Lock(pqxx::transaction_base& tx, const Batch& batch, bool at_known) {
  stored_.clear();
  next_.clear();
  stored_now_ = false;
  if (!batch.has_raw()) return true;
  const PgPositions ends = EndsOf(*batch.raw());
  if (ends.empty()) return true;
  // At the positions this sink stored last: one statement checks and moves them, half the
  // server's work of reading them under lock and then storing them, and a round trip less.
  PgPositions expected;
  for (const auto& [k, end] : ends) {
    if (!at_known) break;
    const auto it = known_.find(k);
    if (it == known_.end()) {
      expected.clear();
      break;
    }
    expected.emplace(k, it->second);
  }
  if (!expected.empty()) {
    for (const auto& [k, end] : ends) next_[k] = std::max(end, expected[k]);
    if (!table_.StoreIfAt(tx, next_, expected)) return false;
    stored_ = std::move(expected);
    stored_now_ = true;
    return true;
  }
  std::vector<PgPositionKey> keys;
  for (const auto& [k, end] : ends) keys.push_back(k);
  stored_ = table_.LoadForUpdate(tx, keys);
  for (const auto& [k, end] : ends) {
    const auto it = stored_.find(k);
    next_[k] = it == stored_.end() ? end : std::max(end, it->second);
  }
  return true;
}

const std::string& PgSinkPositions::TakeNewRows(const Batch& batch, const std::string& copy_text,
                                                std::string& kept) const {
  if (stored_.empty()) return copy_text;
  const PgCopyRows rows(copy_text);
  kept.push_back(rows.format());
  size_t start = 0, skipped = 0;
  // Rows often come in runs of one partition (always, unless the batch was put in key order):
  // look its position up once per run, not per row.
  auto it = stored_.end();
  const std::string* topic = nullptr;
  int32_t partition = -2;
  for (size_t i = 0; i < batch.num_rows(); ++i) {
    const size_t r = rows.BatchRow(i);
    const size_t end = rows.RowEnd(start);
    if (batch.Partition(r) != partition || !topic || batch.Origin(r) != *topic) {
      topic = &batch.Origin(r);
      partition = batch.Partition(r);
      it = stored_.find({*topic, partition});
    }
    if (it == stored_.end() || batch.Position(r) >= it->second) {
      kept.append(rows.rows().substr(start, end - start));
    } else {
      ++skipped;
    }
    start = end;
  }
  if (skipped == 0) return copy_text;
  Log(LogLevel::kInfo, fmt::format("sink '{}': {} rows were written before (by an earlier run "
                                   "or another process); skipped",
                                   sink_name_, skipped));
  return kept;
}

bool PgSinkPositions::WrittenBefore(const Batch& batch, size_t row) const {
  if (stored_.empty()) return false;
  const auto it = stored_.find({batch.Origin(row), batch.Partition(row)});
  return it != stored_.end() && batch.Position(row) < it->second;
}

void PgSinkPositions::Store(pqxx::transaction_base& tx) {
  if (stored_now_) return;
  PgPositions moved;
  for (const auto& [k, next] : next_) {
    const auto it = stored_.find(k);
    if (it == stored_.end() || next > it->second) moved[k] = next;
  }
  table_.Store(tx, moved);
}

void PgSinkPositions::Committed() {
  for (const auto& [k, next] : next_) known_[k] = next;
}

}  // namespace sluice
