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
class PgCopyEncoder {
 public:
  PgCopyEncoder() = default;
  // `fields`: the input field written to each column; `binary`: each column's binary form, or
  // empty for the text format throughout.
  PgCopyEncoder(std::vector<int> fields, std::vector<PgBinary> binary)
      : fields_(std::move(fields)), binary_(std::move(binary)) {}

  bool binary() const { return !binary_.empty(); }
  // The batch's rows as a COPY payload: a format byte, then the rows (in the binary format
  // without the file header and trailer, which PgCopy adds).
  std::string Encode(const Batch& batch) const;

 private:
  bool EncodeBinary(const Batch& batch, std::string& out) const;
  void EncodeText(const Batch& batch, std::string& out) const;

  std::vector<int> fields_;
  std::vector<PgBinary> binary_;
};

// The rows of a payload PgCopyEncoder made: its format, and where each row ends.
class PgCopyRows {
 public:
  explicit PgCopyRows(std::string_view payload)
      : binary_(!payload.empty() && payload[0] == 'b'),
        rows_(payload.empty() ? payload : payload.substr(1)) {}
  PgCopyRows(bool binary, std::string_view rows) : binary_(binary), rows_(rows) {}

  bool binary() const { return binary_; }
  std::string_view rows() const { return rows_; }
  // The offset just past the row that starts at `start`.
  size_t RowEnd(size_t start) const;

 private:
  bool binary_;
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
