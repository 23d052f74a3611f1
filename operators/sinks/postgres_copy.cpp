#include "operators/sinks/postgres_copy.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "engine/json.h"

namespace sluice {

std::string QuotePgIdent(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

std::optional<PgBinary> PgBinaryFor(const std::string& t, TypeId type) {
  switch (type) {
    case TypeId::kBool:
      if (t == "boolean") return PgBinary::kBool;
      break;
    case TypeId::kInt64:
      if (t == "bigint") return PgBinary::kInt8;
      if (t == "integer") return PgBinary::kInt4;
      if (t == "smallint") return PgBinary::kInt2;
      if (t == "double precision") return PgBinary::kInt8AsFloat8;
      break;
    case TypeId::kFloat64:
      if (t == "double precision") return PgBinary::kFloat8;
      break;
    case TypeId::kString:
      if (t == "text" || t == "character varying" || t == "character" || t == "json") {
        return PgBinary::kBytes;
      }
      if (t == "jsonb") return PgBinary::kJsonb;
      break;
    case TypeId::kTimestamp:
      if (t == "timestamp with time zone" || t == "timestamp without time zone") {
        return PgBinary::kTimestamp;
      }
      break;
  }
  return std::nullopt;
}

namespace {

// PostgreSQL's timestamps count microseconds from 2000-01-01; the valid ones lie in
// [kPgMinTimestamp, kPgEndTimestamp) (MIN_TIMESTAMP and END_TIMESTAMP of its datatype/timestamp.h).
constexpr int64_t kPgEpochMicros = 946684800000000;
constexpr int64_t kPgMinTimestamp = -211813488000000000;
constexpr int64_t kPgEndTimestamp = 9223371331200000000;

// A field of the binary format: its length, then its bytes, big-endian.
inline void PutField(std::string& out, const void* bytes, uint32_t n) {
  const uint32_t len = __builtin_bswap32(n);
  out.append(reinterpret_cast<const char*>(&len), 4);
  out.append(static_cast<const char*>(bytes), n);
}
inline void PutInt16(std::string& out, int16_t v) {
  const uint16_t be = __builtin_bswap16(static_cast<uint16_t>(v));
  PutField(out, &be, 2);
}
inline void PutInt32(std::string& out, int32_t v) {
  const uint32_t be = __builtin_bswap32(static_cast<uint32_t>(v));
  PutField(out, &be, 4);
}
inline void PutInt64(std::string& out, int64_t v) {
  const uint64_t be = __builtin_bswap64(static_cast<uint64_t>(v));
  PutField(out, &be, 8);
}
inline void PutFloat64(std::string& out, double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, 8);
  PutInt64(out, static_cast<int64_t>(bits));
}

void AppendCopyText(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out.push_back(c);
    }
  }
}

void AppendCopyTextRow(std::string& out, const Batch& batch, size_t row,
                       const std::vector<int>& fields) {
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out.push_back('\t');
    const Column& c = batch.column(fields[i]);
    if (c.IsNull(row)) {
      out += "\\N";
      continue;
    }
    switch (c.type) {
      case TypeId::kBool: out.push_back(c.ints[row] ? 't' : 'f'); break;
      case TypeId::kInt64: AppendJsonInt(out, c.ints[row]); break;
      case TypeId::kFloat64: {
        const double d = c.doubles[row];
        // PostgreSQL's double precision has NaN and infinities; JSON's writer would say null.
        if (d != d) out += "NaN";
        else if (d == std::numeric_limits<double>::infinity()) out += "Infinity";
        else if (d == -std::numeric_limits<double>::infinity()) out += "-Infinity";
        else AppendJsonDouble(out, d);
        break;
      }
      case TypeId::kString: AppendCopyText(out, c.strings[row]); break;
      case TypeId::kTimestamp: out += FormatTimestamp(c.ints[row]); break;
    }
  }
  out.push_back('\n');
}

}  // namespace

namespace {

// Orders two rows of a column: nulls first, then by value (strings by their bytes).
int CompareRows(const Column& c, uint32_t a, uint32_t b) {
  const bool na = c.IsNull(a), nb = c.IsNull(b);
  if (na || nb) return static_cast<int>(nb) - static_cast<int>(na);
  switch (c.type) {
    case TypeId::kFloat64: {
      const double x = c.doubles[a], y = c.doubles[b];
      return x < y ? -1 : (y < x ? 1 : 0);
    }
    case TypeId::kString: return c.strings[a].compare(c.strings[b]);
    default: return c.ints[a] < c.ints[b] ? -1 : (c.ints[b] < c.ints[a] ? 1 : 0);
  }
}

// The order block of a reordered payload: the row count, then each payload row's batch row.
void PutOrder(std::string& out, const std::vector<uint32_t>& order) {
  const uint32_t n = static_cast<uint32_t>(order.size());
  out.append(reinterpret_cast<const char*>(&n), 4);
  out.append(reinterpret_cast<const char*>(order.data()), order.size() * 4);
}

}  // namespace

std::vector<uint32_t> PgCopyEncoder::RowOrder(const Batch& batch) const {
  const size_t n = batch.num_rows();
  std::vector<uint32_t> order;
  if (order_by_.empty() || n < 2 || n > std::numeric_limits<uint32_t>::max()) return order;
  std::vector<const Column*> keys;
  for (int f : order_by_) keys.push_back(&batch.column(f));
  auto less = [&](uint32_t a, uint32_t b) {
    for (const Column* c : keys) {
      const int d = CompareRows(*c, a, b);
      if (d) return d < 0;
    }
    return false;
  };
  bool sorted = true;
  for (uint32_t r = 1; r < n && sorted; ++r) sorted = !less(r, r - 1);
  if (sorted) return order;
  order.resize(n);
  for (uint32_t r = 0; r < n; ++r) order[r] = r;
  const Column& first = *keys[0];
  if (keys.size() == 1 && first.type != TypeId::kFloat64 && first.type != TypeId::kString &&
      first.valid.empty()) {
    // One integer key without nulls, the common primary key: sort (key, row) pairs, which
    // keeps rows of one key in their order without a stable sort's extra pass.
    std::vector<std::pair<int64_t, uint32_t>> pairs(n);
    for (uint32_t r = 0; r < n; ++r) pairs[r] = {first.ints[r], r};
    std::sort(pairs.begin(), pairs.end());
    for (uint32_t r = 0; r < n; ++r) order[r] = pairs[r].second;
  } else {
    std::stable_sort(order.begin(), order.end(), less);
  }
  return order;
}

std::string PgCopyEncoder::Encode(const Batch& batch) const {
  const std::vector<uint32_t> order = RowOrder(batch);
  std::string out;
  if (binary() && EncodeBinary(batch, order, out)) return out;
  out.clear();
  EncodeText(batch, order, out);
  return out;
}

void PgCopyEncoder::EncodeText(const Batch& batch, const std::vector<uint32_t>& order,
                               std::string& out) const {
  out.reserve(1 + order.size() * 4 + batch.num_rows() * 64);
  out.push_back(order.empty() ? 't' : 'T');
  if (!order.empty()) PutOrder(out, order);
  for (size_t i = 0; i < batch.num_rows(); ++i) {
    AppendCopyTextRow(out, batch, order.empty() ? i : order[i], fields_);
  }
}

bool PgCopyEncoder::EncodeBinary(const Batch& batch, const std::vector<uint32_t>& order,
                                 std::string& out) const {
  out.reserve(1 + order.size() * 4 + batch.num_rows() * (2 + fields_.size() * 12));
  out.push_back(order.empty() ? 'b' : 'B');
  if (!order.empty()) PutOrder(out, order);
  std::vector<const Column*> columns;
  for (int f : fields_) columns.push_back(&batch.column(f));
  const uint16_t count = __builtin_bswap16(static_cast<uint16_t>(fields_.size()));
  constexpr uint32_t kNull = 0xffffffff;  // a length of -1
  for (size_t i = 0; i < batch.num_rows(); ++i) {
    const size_t r = order.empty() ? i : order[i];
    out.append(reinterpret_cast<const char*>(&count), 2);
    for (size_t i = 0; i < columns.size(); ++i) {
      const Column& c = *columns[i];
      if (c.IsNull(r)) {
        out.append(reinterpret_cast<const char*>(&kNull), 4);
        continue;
      }
      switch (binary_[i]) {
        case PgBinary::kBool: {
          const char b = c.ints[r] ? 1 : 0;
          PutField(out, &b, 1);
          break;
        }
        case PgBinary::kInt2: {
          const int64_t v = c.ints[r];
          if (v < std::numeric_limits<int16_t>::min() || v > std::numeric_limits<int16_t>::max()) {
            return false;
          }
          PutInt16(out, static_cast<int16_t>(v));
          break;
        }
        case PgBinary::kInt4: {
          const int64_t v = c.ints[r];
          if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
            return false;
          }
          PutInt32(out, static_cast<int32_t>(v));
          break;
        }
        case PgBinary::kInt8: PutInt64(out, c.ints[r]); break;
        case PgBinary::kInt8AsFloat8: PutFloat64(out, static_cast<double>(c.ints[r])); break;
        case PgBinary::kFloat8: PutFloat64(out, c.doubles[r]); break;
        case PgBinary::kBytes: {
          const std::string& s = c.strings[r];
          if (s.size() >= std::numeric_limits<int32_t>::max()) return false;
          PutField(out, s.data(), static_cast<uint32_t>(s.size()));
          break;
        }
        case PgBinary::kJsonb: {
          const std::string& s = c.strings[r];
          if (s.size() >= std::numeric_limits<int32_t>::max() - 1) return false;
          const uint32_t len = __builtin_bswap32(static_cast<uint32_t>(s.size() + 1));
          out.append(reinterpret_cast<const char*>(&len), 4);
          out.push_back(1);  // jsonb's binary version
          out.append(s);
          break;
        }
        case PgBinary::kTimestamp: {
          int64_t pg;
          if (__builtin_sub_overflow(c.ints[r], kPgEpochMicros, &pg) || pg < kPgMinTimestamp ||
              pg >= kPgEndTimestamp) {
            return false;
          }
          PutInt64(out, pg);
          break;
        }
      }
    }
  }
  return true;
}

PgCopyRows::PgCopyRows(std::string_view payload)
    : binary_(!payload.empty() && (payload[0] == 'b' || payload[0] == 'B')),
      rows_(payload.empty() ? payload : payload.substr(1)) {
  if (payload.empty() || (payload[0] != 'B' && payload[0] != 'T') || rows_.size() < 4) return;
  uint32_t n = 0;
  std::memcpy(&n, rows_.data(), 4);
  const size_t bytes = std::min(rows_.size() - 4, size_t{n} * 4);
  order_ = rows_.substr(4, bytes);
  rows_.remove_prefix(4 + bytes);
}

size_t PgCopyRows::BatchRow(size_t i) const {
  if (order_.empty()) return i;
  uint32_t r;
  std::memcpy(&r, order_.data() + i * 4, 4);
  return r;
}

size_t PgCopyRows::RowEnd(size_t start) const {
  if (!binary_) {
    const size_t nl = rows_.find('\n', start);
    return nl == std::string_view::npos ? rows_.size() : nl + 1;
  }
  auto u16 = [&](size_t at) {
    uint16_t v;
    std::memcpy(&v, rows_.data() + at, 2);
    return __builtin_bswap16(v);
  };
  auto u32 = [&](size_t at) {
    uint32_t v;
    std::memcpy(&v, rows_.data() + at, 4);
    return __builtin_bswap32(v);
  };
  // The encoder wrote these rows: a count, then per field a length (-1 for null) and bytes.
  const size_t fields = u16(start);
  size_t at = start + 2;
  for (size_t i = 0; i < fields; ++i) {
    const uint32_t len = u32(at);
    at += 4;
    if (len != 0xffffffff) at += len;
  }
  return at;
}

namespace {

// libpqxx 6.4 gives the PGconn of a transaction to its large objects only.
class RawConnection : public pqxx::largeobject {
 public:
  static PGconn* Of(const pqxx::dbtransaction& tx) { return raw_connection(tx); }
};

// The error of `result` (or of the connection, without one) as libpqxx would throw it.
[[noreturn]] void ThrowPgError(PGconn* conn, PGresult* result, const std::string& query) {
  const std::string message = result ? PQresultErrorMessage(result) : PQerrorMessage(conn);
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string sqlstate = state ? state : "";
  if (result) PQclear(result);
  if (sqlstate.empty() || PQstatus(conn) == CONNECTION_BAD) {
    throw pqxx::broken_connection(message);
  }
  throw pqxx::sql_error(message, query, sqlstate.c_str());
}

}  // namespace

void PgCopy(pqxx::dbtransaction& tx, const std::string& table, const std::string& columns,
            const PgCopyRows& rows) {
  // libpqxx 6.4's COPY writers send text lines only, each with a newline of their own, which
  // the binary format cannot take: the rows go through libpq on the transaction's connection.
  PGconn* conn = RawConnection::Of(tx);
  const std::string query = "COPY " + table + " (" + columns + ") FROM STDIN" +
                            (rows.binary() ? " (FORMAT binary)" : "");
  PGresult* started = PQexec(conn, query.c_str());
  if (PQresultStatus(started) != PGRES_COPY_IN) ThrowPgError(conn, started, query);
  PQclear(started);
  static constexpr char kHeader[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n',
                                       '\0', 0, 0, 0, 0, 0, 0, 0, 0};
  static constexpr char kTrailer[2] = {'\377', '\377'};
  bool sent = true;
  if (rows.binary()) sent = PQputCopyData(conn, kHeader, sizeof kHeader) == 1;
  std::string_view data = rows.rows();
  // PQputCopyData takes an int: a large batch goes in pieces.
  constexpr size_t kPiece = size_t{1} << 30;
  while (sent && !data.empty()) {
    const size_t n = std::min(data.size(), kPiece);
    sent = PQputCopyData(conn, data.data(), static_cast<int>(n)) == 1;
    data.remove_prefix(n);
  }
  if (sent && rows.binary()) sent = PQputCopyData(conn, kTrailer, sizeof kTrailer) == 1;
  if (!sent || PQputCopyEnd(conn, nullptr) != 1) ThrowPgError(conn, nullptr, query);
  // Every result is read, so that the connection is ready for what comes next; the first
  // error is the one to report.
  PGresult* failed = nullptr;
  while (PGresult* r = PQgetResult(conn)) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && !failed) {
      failed = r;
    } else {
      PQclear(r);
    }
  }
  if (failed) ThrowPgError(conn, failed, query);
  if (PQstatus(conn) == CONNECTION_BAD) ThrowPgError(conn, nullptr, query);
}

const char* PgTypeFor(TypeId type) {
  switch (type) {
    case TypeId::kBool: return "boolean";
    case TypeId::kInt64: return "bigint";
    case TypeId::kFloat64: return "double precision";
    case TypeId::kString: return "text";
    case TypeId::kTimestamp: return "timestamp with time zone";
  }
  return "text";
}

bool PgTypeAccepts(const std::string& t, TypeId type) {
  switch (type) {
    case TypeId::kBool: return t == "boolean";
    // A narrower integer column takes int64 values until one overflows; such a row is then
    // refused by the database and dead-lettered, so it is allowed.
    case TypeId::kInt64:
      return t == "bigint" || t == "integer" || t == "smallint" || t == "numeric" ||
             t == "double precision" || t == "real";
    case TypeId::kFloat64: return t == "double precision" || t == "real" || t == "numeric";
    case TypeId::kString:
      return t == "text" || t == "character varying" || t == "character" || t == "json" ||
             t == "jsonb" || t == "uuid";
    case TypeId::kTimestamp:
      return t == "timestamp with time zone" || t == "timestamp without time zone";
  }
  return false;
}

}  // namespace sluice
