// Columnar batches: what flows between nodes. A Batch is a block of rows, one typed column per
// schema field, plus the original bytes and positions of its rows (so any node can dead-letter a
// row with what the source read) and the delivery ticket that acknowledges it upstream.
// Batches are immutable once emitted; derived batches share untouched columns.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/types.h"

namespace sluice {

// One typed column. Only the vector matching `type` is used: bool/int64/timestamp in `ints`,
// float64 in `doubles`, string in `strings`. `valid` is empty when every row is non-null.
struct Column {
  explicit Column(TypeId t) : type(t) {}

  TypeId type;
  std::vector<uint8_t> valid;
  std::vector<int64_t> ints;
  std::vector<double> doubles;
  std::vector<std::string> strings;

  size_t size() const;
  bool IsNull(size_t row) const { return !valid.empty() && !valid[row]; }
  void Reserve(size_t n);
  // Appenders keep `valid` consistent: it is materialised on the first null.
  void AppendNull();
  void AppendInt(int64_t v);
  void AppendDouble(double v);
  void AppendString(std::string_view v);
  // Copies row `row` of `other` (same type) onto the end.
  void AppendFrom(const Column& other, size_t row);
  // Numeric value as double (int64 and float64 columns); NaN when null.
  double GetDouble(size_t row) const;
};

using ColumnPtr = std::shared_ptr<const Column>;

// The bytes a source read for each row, and where it read them (line number, offset).
struct RawRecords {
  std::string data;
  std::vector<uint32_t> offsets;    // size() == count + 1
  std::vector<int64_t> positions;   // one per record
  std::string origin;               // file name or topic
  std::string header;               // CSV: the header line of the file, when it has one
  std::vector<int32_t> partitions;  // Kafka: the partition of each record; empty elsewhere
  // A source reading several streams (topics) names each record's own: origin_names indexed by
  // origin_of[i]. Empty when every record comes from `origin`.
  std::vector<std::string> origin_names;
  std::vector<uint16_t> origin_of;
  // Message metadata, kept only when a source is asked for it (Kafka: key and timestamp).
  std::vector<std::string> keys;     // one per record when kept
  std::vector<uint8_t> key_present;  // 0 for a message without a key
  std::vector<int64_t> timestamps;   // microseconds since the epoch; kNoTimestamp when unknown

  // When the source handed these records on (microseconds since the epoch): the start of their
  // end-to-end latency where the records carry no timestamp of their own.
  int64_t read_at_us = 0;

  // Kafka: the consuming group's identity, serialized, for a sink that commits the offsets
  // in its own transaction.
  std::string consumer_group_metadata;

  static constexpr int64_t kNoTimestamp = INT64_MIN;

  int32_t PartitionOf(size_t i) const { return partitions.empty() ? -1 : partitions[i]; }
  const std::string& OriginOf(size_t i) const {
    return origin_of.empty() ? origin : origin_names[origin_of[i]];
  }

  size_t count() const { return positions.size(); }
  std::string_view Get(size_t i) const {
    return std::string_view(data).substr(offsets[i], offsets[i + 1] - offsets[i]);
  }
  void Add(std::string_view bytes, int64_t position) {
    if (offsets.empty()) offsets.push_back(0);
    data.append(bytes);
    offsets.push_back(static_cast<uint32_t>(data.size()));
    positions.push_back(position);
  }
};

// Acknowledges a source batch once every sink path downstream of it has finished with it.
class Ticket {
 public:
  Ticket(int paths, std::function<void()> on_done)
      : pending_(paths), on_done_(std::move(on_done)) {}
  // Called once per sink path. The last call runs on_done.
  void Done() {
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1 && on_done_) on_done_();
  }

 private:
  std::atomic<int> pending_;
  std::function<void()> on_done_;
};

class Batch;
using BatchPtr = std::shared_ptr<const Batch>;

class Batch {
 public:
  Batch(SchemaPtr schema, std::vector<ColumnPtr> columns, size_t num_rows);

  const SchemaPtr& schema() const { return schema_; }
  const std::vector<ColumnPtr>& columns() const { return columns_; }
  const Column& column(size_t i) const { return *columns_[i]; }
  size_t num_rows() const { return num_rows_; }

  // Original bytes and position of row `row`, when the source kept them.
  bool has_raw() const { return raw_ != nullptr; }
  std::string_view RawBytes(size_t row) const;
  int64_t Position(size_t row) const;
  int32_t Partition(size_t row) const;  // -1 when the source has no partitions
  const std::string& Origin(size_t row) const;
  // The record of raw() that row `row` was decoded from.
  uint32_t RawIndex(size_t row) const { return raw_index_.empty() ? row : raw_index_[row]; }
  // Everything the source read for this batch, including records rejected or dropped since.
  const std::shared_ptr<const RawRecords>& raw() const { return raw_; }

  // Delivery metadata, carried unchanged through transforms.
  uint64_t seq = 0;  // per-source sequence number of the batch, from 0
  std::shared_ptr<Ticket> ticket;

  void SetRaw(std::shared_ptr<const RawRecords> raw, std::vector<uint32_t> raw_index);
  // A new batch with the same metadata (raw, seq, ticket) and other columns.
  std::shared_ptr<Batch> WithColumns(SchemaPtr schema, std::vector<ColumnPtr> columns) const;
  // A new batch holding only `rows` (ascending), same metadata.
  std::shared_ptr<Batch> Take(const std::vector<uint32_t>& rows) const;
  // An empty batch that keeps this one's metadata: what a node emits when it drops every row, so
  // the position still advances.
  std::shared_ptr<Batch> Empty(SchemaPtr schema) const;

 private:
  SchemaPtr schema_;
  std::vector<ColumnPtr> columns_;
  size_t num_rows_;
  std::shared_ptr<const RawRecords> raw_;
  std::vector<uint32_t> raw_index_;  // row -> record in raw_; empty means identity
};

}  // namespace sluice
