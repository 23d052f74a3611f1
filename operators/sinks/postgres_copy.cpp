#include "operators/sinks/postgres_copy.h"

#include <limits>

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

namespace {

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

}  // namespace

void AppendCopyRow(std::string& out, const Batch& batch, size_t row,
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
