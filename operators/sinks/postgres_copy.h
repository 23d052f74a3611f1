// COPY for the postgres sink: quoting identifiers, encoding a batch's rows in PostgreSQL's
// binary COPY format (or its text format where a column has no exact binary form here), walking
// the encoded rows one by one, sending them, and the column types Sluice's types map to.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/pqxx>

#include "engine/batch.h"

namespace sluice {

// "name" with embedded quotes doubled: safe for any identifier.
std::string QuotePgIdent(std::string_view name);

// How one column's values travel in the binary format: the bytes of the PostgreSQL type's
// send/recv form.
enum class PgBinary : uint8_t {
  kBool,          // boolean
  kInt2,          // smallint: int64 values that fit
  kInt4,          // integer: int64 values that fit
  kInt8,          // bigint
  kInt8AsFloat8,  // double precision from int64
  kFloat8,        // double precision
  kBytes,         // text, character varying, character, json: the string's bytes
  kJsonb,         // jsonb: version 1, then the text
  kTimestamp,     // timestamp with or without time zone: microseconds since 2000-01-01
};

// The binary form of values of `type` in a column of PostgreSQL type `data_type`
// (information_schema spelling), or none when only the text format takes them exactly (numeric,
// real, uuid).
std::optional<PgBinary> PgBinaryFor(const std::string& data_type, TypeId type);

// Encodes batches for COPY into one table's columns. The binary format spares the server
// parsing numbers and timestamps from text, the larger part of its work on narrow rows; a batch
// holding a value the binary form cannot carry as the text would (an int64 too big for an
// integer column, a timestamp past PostgreSQL's range) is encoded as text, so that the server
// refuses it with its own message and the sink can find the row.
//
// Rows can be encoded in the order of a key (`order_by`, input fields): the table's primary key
// index then takes a batch's keys in its own order, each leaf page once, rather than wherever
// the stream put them. Rows arriving from many Kafka partitions are spread over the whole key
// range: in batches of 8,192 the server spent 2.1-2.3 CPU-s per million such rows, 1.7-1.8 with
// each batch sorted (bench/pg_key_order.py). The sort is stable: rows of one key keep their
// order, so an upsert's last row still wins.
class PgCopyEncoder {
 public:
  PgCopyEncoder() = default;
  // `fields`: the input field written to each column; `binary`: each column's binary form, or
  // empty for the text format throughout; `order_by`: input fields to sort each batch's rows by
  // (empty: the batch's order).
  PgCopyEncoder(std::vector<int> fields, std::vector<PgBinary> binary,
                std::vector<int> order_by = {})
      : fields_(std::move(fields)), binary_(std::move(binary)), order_by_(std::move(order_by)) {}

  bool binary() const { return !binary_.empty(); }
  // The batch's rows as a COPY payload: a format byte, then the rows (in the binary format
  // without the file header and trailer, which PgCopy adds). When the rows are reordered, the
  // format byte is upper-case and the batch row of each payload row comes before the rows
  // (PgCopyRows reads both).
  std::string Encode(const Batch& batch) const;
  // The batch's rows in `order_by` order; empty when they already are in it (or no order).
  std::vector<uint32_t> RowOrder(const Batch& batch) const;

 private:
  bool EncodeBinary(const Batch& batch, const std::vector<uint32_t>& order,
                    std::string& out) const;
  void EncodeText(const Batch& batch, const std::vector<uint32_t>& order, std::string& out) const;

  std::vector<int> fields_;
  std::vector<PgBinary> binary_;
  std::vector<int> order_by_;
};

// The rows of a payload PgCopyEncoder made: its format, where each row ends, and which batch
// row each one is.
class PgCopyRows {
 public:
  explicit PgCopyRows(std::string_view payload);
  PgCopyRows(bool binary, std::string_view rows) : binary_(binary), rows_(rows) {}

  bool binary() const { return binary_; }
  // The format byte of a payload of some of these rows, in their own order: 'b' or 't'.
  char format() const { return binary_ ? 'b' : 't'; }
  std::string_view rows() const { return rows_; }
  // The offset just past the row that starts at `start`.
  size_t RowEnd(size_t start) const;
  // The batch row that payload row `i` holds.
  size_t BatchRow(size_t i) const;

 private:
  bool binary_;
  std::string_view order_;  // native uint32 batch rows, one per payload row; empty: the same
  std::string_view rows_;
};

// A savepoint taken at once. libpqxx 6.4's subtransaction sends its SAVEPOINT just before its
// first statement through libpqxx; PgCopy's go around it, and would run outside the savepoint.
class PgSavepoint : public pqxx::subtransaction {
 public:
  PgSavepoint(pqxx::dbtransaction& parent, const std::string& name)
      // namedclass is a virtual base: the most derived class names it, as subtransaction would.
      : pqxx::internal::namedclass("subtransaction", parent.conn().adorn_name(name)),
        pqxx::subtransaction(parent, name) {
    Begin();
  }
};

// COPY table (columns) FROM STDIN of `rows`, in the transaction `tx`. Throws as libpqxx
// does: pqxx::sql_error with the server's SQLSTATE when it refuses, pqxx::broken_connection when
// the connection fails.
void PgCopy(pqxx::dbtransaction& tx, const std::string& table, const std::string& columns,
            const PgCopyRows& rows);

// The column type a new table gets for a Sluice type.
const char* PgTypeFor(TypeId type);
// Whether an existing column of PostgreSQL type `data_type` (information_schema spelling) can
// take values of `type` without loss.
bool PgTypeAccepts(const std::string& data_type, TypeId type);

}  // namespace sluice
