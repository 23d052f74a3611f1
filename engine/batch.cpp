#include "engine/batch.h"

#include <cmath>
#include <limits>

namespace sluice {

size_t Column::size() const {
  switch (type) {
    case TypeId::kFloat64: return doubles.size();
    case TypeId::kString: return strings.size();
    default: return ints.size();
  }
}

void Column::Reserve(size_t n) {
  switch (type) {
    case TypeId::kFloat64: doubles.reserve(n); break;
    case TypeId::kString: strings.reserve(n); break;
    default: ints.reserve(n);
  }
}

void Column::AppendNull() {
  if (valid.empty()) valid.assign(size(), 1);
  valid.push_back(0);
  switch (type) {
    case TypeId::kFloat64: doubles.push_back(std::numeric_limits<double>::quiet_NaN()); break;
    case TypeId::kString: strings.emplace_back(); break;
    default: ints.push_back(0);
  }
}

void Column::AppendInt(int64_t v) {
  if (!valid.empty()) valid.push_back(1);
  ints.push_back(v);
}

void Column::AppendDouble(double v) {
  if (!valid.empty()) valid.push_back(1);
  doubles.push_back(v);
}

void Column::AppendString(std::string_view v) {
  if (!valid.empty()) valid.push_back(1);
  strings.emplace_back(v);
}

void Column::AppendFrom(const Column& other, size_t row) {
  if (other.IsNull(row)) {
    AppendNull();
    return;
  }
  switch (type) {
    case TypeId::kFloat64: AppendDouble(other.doubles[row]); break;
    case TypeId::kString: AppendString(other.strings[row]); break;
    default: AppendInt(other.ints[row]);
  }
}

double Column::GetDouble(size_t row) const {
  if (IsNull(row)) return std::numeric_limits<double>::quiet_NaN();
  if (type == TypeId::kFloat64) return doubles[row];
  return static_cast<double>(ints[row]);
}

Batch::Batch(SchemaPtr schema, std::vector<ColumnPtr> columns, size_t num_rows)
    : schema_(std::move(schema)), columns_(std::move(columns)), num_rows_(num_rows) {}

std::string_view Batch::RawBytes(size_t row) const {
  if (!raw_) return {};
  return raw_->Get(raw_index_.empty() ? row : raw_index_[row]);
}

int64_t Batch::Position(size_t row) const {
  if (!raw_) return -1;
  return raw_->positions[raw_index_.empty() ? row : raw_index_[row]];
}

int32_t Batch::Partition(size_t row) const {
  if (!raw_) return -1;
  return raw_->PartitionOf(raw_index_.empty() ? row : raw_index_[row]);
}

const std::string& Batch::Origin(size_t row) const {
  static const std::string kNone;
  return raw_ ? raw_->OriginOf(RawIndex(row)) : kNone;
}

void Batch::SetRaw(std::shared_ptr<const RawRecords> raw, std::vector<uint32_t> raw_index) {
  raw_ = std::move(raw);
  raw_index_ = std::move(raw_index);
}

std::shared_ptr<Batch> Batch::WithColumns(SchemaPtr schema, std::vector<ColumnPtr> columns) const {
  auto out = std::make_shared<Batch>(std::move(schema), std::move(columns), num_rows_);
  out->raw_ = raw_;
  out->raw_index_ = raw_index_;
  out->seq = seq;
  out->ticket = ticket;
  return out;
}

std::shared_ptr<Batch> Batch::Take(const std::vector<uint32_t>& rows) const {
  std::vector<ColumnPtr> cols;
  cols.reserve(columns_.size());
  for (const auto& c : columns_) {
    auto nc = std::make_shared<Column>(c->type);
    nc->Reserve(rows.size());
    for (uint32_t r : rows) nc->AppendFrom(*c, r);
    cols.push_back(std::move(nc));
  }
  auto out = std::make_shared<Batch>(schema_, std::move(cols), rows.size());
  out->raw_ = raw_;
  if (raw_) {
    out->raw_index_.reserve(rows.size());
    for (uint32_t r : rows) out->raw_index_.push_back(raw_index_.empty() ? r : raw_index_[r]);
  }
  out->seq = seq;
  out->ticket = ticket;
  return out;
}

std::shared_ptr<Batch> Batch::Empty(SchemaPtr schema) const {
  std::vector<ColumnPtr> cols;
  for (const auto& f : schema->fields()) cols.push_back(std::make_shared<Column>(f.type));
  auto out = std::make_shared<Batch>(std::move(schema), std::move(cols), 0);
  out->seq = seq;
  out->ticket = ticket;
  return out;
}

}  // namespace sluice
