#include "operators/postgres/common.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "engine/json.h"
#include "engine/log.h"

namespace sluice {

namespace {
constexpr char kPgUnknownStatement[] = "26000";  // invalid_sql_statement_name
}  // namespace

std::string PgConnectionString(const std::string& url, int64_t connect_timeout_s) {
  std::vector<std::string> options = {"client_encoding=UTF8"};
  if (url.find("connect_timeout") == std::string::npos && !std::getenv("PGCONNECT_TIMEOUT")) {
    options.push_back(fmt::format("connect_timeout={}", connect_timeout_s));
  }
  if (url.find("keepalives") == std::string::npos) {
    for (const char* o : {"keepalives=1", "keepalives_idle=30", "keepalives_interval=10",
                          "keepalives_count=3"}) {
      options.push_back(o);
    }
  }
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    return fmt::format("{}{}{}", url, url.find('?') == std::string::npos ? "?" : "&",
                       fmt::join(options, "&"));
  }
  return fmt::format("{}{}{}", url, url.empty() ? "" : " ", fmt::join(options, " "));
}

int64_t PgConnectTimeoutSeconds(int64_t timeout_ms) {
  return std::max<int64_t>(2, (timeout_ms + 999) / 1000);
}

PgInsertOrderInfo PgReadInsertOrderInfo(pqxx::transaction_base& tx, const PgTable& table) {
  pqxx::result r = tx.exec_params(
      "SELECT (SELECT array_agg(a.attname::text ORDER BY k.n) FROM pg_index i "
      "        CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) "
      "        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
      "        WHERE i.indrelid = c.oid AND i.indisprimary), "
      "       (SELECT array_agg(a.attname::text) FROM pg_attribute a "
      "        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
      "        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND "
      "        (a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE '%nextval(%')), "
      "       EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal) "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "WHERE n.nspname = $1 AND c.relname = $2",
      table.schema, table.table);
  PgInsertOrderInfo info;
  if (r.empty()) return info;
  info.primary_key = PgTextArrayItems(r[0][0]);
  info.sequenced = PgTextArrayItems(r[0][1]);
  info.triggers = r[0][2].as<bool>();
  return info;
}

std::string PgTextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ",";
    out += "\"";
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += "\"";
  }
  return out + "}";
}

std::vector<std::string> PgTextArrayItems(const pqxx::field& f) {
  std::vector<std::string> items;
  if (f.is_null()) return items;
  auto parser = f.as_array();
  for (auto [kind, value] = parser.get_next(); kind != pqxx::array_parser::done;
       std::tie(kind, value) = parser.get_next()) {
    if (kind == pqxx::array_parser::string_value) items.push_back(value);
  }
  return items;
}

std::string PgLackedPrivilege(pqxx::transaction_base& tx, const PgTable& table, bool creates,
                              const std::vector<std::string>& privileges) {
  const bool exists =
      !tx.exec_params1("SELECT to_regclass($1)", table.Quoted())[0].is_null();
  if (!exists) {
    if (!creates) return "";  // the caller reports a missing table its own way
    const bool may = tx.exec_params1("SELECT has_schema_privilege($1, 'CREATE')", table.schema)[0]
                         .as<bool>();
    if (may) return "";
    return fmt::format("table {} does not exist and the connection's role may not create it; "
                       "GRANT CREATE ON SCHEMA {} TO the role, or create the table",
                       table.Shown(), QuotePgIdent(table.schema));
  }
  for (const auto& privilege : privileges) {
    const bool may = tx.exec_params1("SELECT has_table_privilege($1, $2)", table.Quoted(),
                                     privilege)[0]
                         .as<bool>();
    if (!may) {
      return fmt::format("the connection's role may not {} table {}; GRANT {} ON {} TO the role",
                         privilege == "SELECT" ? "read" : privilege == "INSERT" ? "insert into"
                                                                                 : "update",
                         table.Shown(), fmt::join(privileges, ", "), table.Quoted());
    }
  }
  return "";
}

std::optional<PgTable> PgTable::Parse(const std::string& name) {
  PgTable t;
  const size_t dot = name.find('.');
  if (dot != std::string::npos) {
    t.schema = name.substr(0, dot);
    t.table = name.substr(dot + 1);
  } else {
    t.table = name;
  }
  if (t.schema.empty() || t.table.empty()) return std::nullopt;
  return t;
}

std::string PgFirstLine(const std::string& what) {
  std::string s = what.substr(0, what.find('\n'));
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.pop_back();
  if (s.rfind("ERROR:", 0) == 0) s = s.substr(6);
  while (!s.empty() && s.front() == ' ') s.erase(s.begin());
  return s;
}

bool IsPgDataError(const std::string& sqlstate) {
  return sqlstate.rfind("22", 0) == 0 || sqlstate.rfind("23", 0) == 0;
}

std::string PgSqlState(const pqxx::sql_error& e) {
  if (!e.sqlstate().empty()) return e.sqlstate();
  const pqxx::sql_error* p = &e;
  if (dynamic_cast<const pqxx::integrity_constraint_violation*>(p)) return "23000";
  if (dynamic_cast<const pqxx::data_exception*>(p)) return "22000";
  if (dynamic_cast<const pqxx::insufficient_privilege*>(p)) return "42501";
  if (dynamic_cast<const pqxx::undefined_table*>(p)) return "42P01";
  if (dynamic_cast<const pqxx::undefined_column*>(p)) return "42703";
  if (dynamic_cast<const pqxx::undefined_function*>(p)) return "42883";
  if (dynamic_cast<const pqxx::syntax_error*>(p)) return "42601";
  if (dynamic_cast<const pqxx::feature_not_supported*>(p)) return "0A000";
  if (dynamic_cast<const pqxx::insufficient_resources*>(p)) return "53000";
  if (dynamic_cast<const pqxx::plpgsql_error*>(p)) return "P0001";
  return "";
}

bool IsPgTransient(const std::string& sqlstate) {
  if (sqlstate.empty() || sqlstate == kPgUnknownStatement) return true;
  for (const char* c : {"08", "40", "53", "57", "58"}) {
    if (sqlstate.rfind(c, 0) == 0) return true;
  }
  return false;
}

namespace {
std::atomic<bool> g_preparing{true};
}  // namespace

void PgStopPreparing() {
  if (g_preparing.exchange(false)) {
    Log(LogLevel::kWarn,
        "PostgreSQL does not know a statement prepared on this connection (a connection pooler "
        "in transaction mode?): statements are sent unprepared from now on");
  }
}
bool PgPreparing() { return g_preparing.load(std::memory_order_relaxed); }
void PgResumePreparing() { g_preparing = true; }

namespace {

// Runs `sql` with `args`, prepared on the transaction's connection while PgPreparing(): libpqxx
// prepares it there on its first use, under a name derived from the text.
template <typename... Args>
pqxx::result ExecPrepared(pqxx::transaction_base& tx, const std::string& sql, Args&&... args) {
  if (!PgPreparing()) return tx.exec_params(sql, std::forward<Args>(args)...);
  const std::string name = fmt::format("sluice_{:016x}", std::hash<std::string>{}(sql));
  tx.conn().prepare(name, sql);  // nothing new when the connection has it already
  try {
    return tx.exec_prepared(name, std::forward<Args>(args)...);
  } catch (const pqxx::sql_error& e) {
    if (PgSqlState(e) == kPgUnknownStatement) PgStopPreparing();
    throw;
  }
}

}  // namespace

void PgLockForCreate(pqxx::transaction_base& tx, const PgTable& table) {
  tx.exec_params("SELECT pg_advisory_xact_lock(hashtext($1))", "sluice create " + table.Quoted());
}

void PgPositionTable::Ensure(pqxx::connection& conn) const {
  pqxx::work tx(conn);
  PgLockForCreate(tx, table_);
  tx.exec0(fmt::format(
      "CREATE TABLE IF NOT EXISTS {} (pipeline text NOT NULL, node text NOT NULL, topic text NOT "
      "NULL, \"partition\" integer NOT NULL, next_offset bigint NOT NULL, updated_at timestamptz "
      "NOT NULL DEFAULT now(), PRIMARY KEY (pipeline, node, topic, \"partition\"))",
      table_.Quoted()));
  tx.commit();
}

PgPositions PgPositionTable::Load(pqxx::transaction_base& tx) const {
  PgPositions out;
  pqxx::result r = tx.exec_params(
      fmt::format("SELECT topic, \"partition\", next_offset FROM {} WHERE pipeline = $1 AND "
                  "node = $2",
                  table_.Quoted()),
      pipeline_, node_);
  for (const auto& row : r) {
    const int64_t next = row[2].as<int64_t>();
    if (next >= 0) out[{row[0].as<std::string>(), row[1].as<int32_t>()}] = next;
  }
  return out;
}

std::optional<int64_t> PgPositionTable::LoadOne(pqxx::transaction_base& tx,
                                               const PgPositionKey& key) const {
  pqxx::result r = ExecPrepared(
      tx,
      fmt::format("SELECT next_offset FROM {} WHERE pipeline = $1 AND node = $2 AND topic = $3 "
                  "AND \"partition\" = $4",
                  table_.Quoted()),
      pipeline_, node_, key.topic, key.partition);
  if (r.empty() || r[0][0].is_null()) return std::nullopt;
  return r[0][0].as<int64_t>();
}

namespace {

// PostgreSQL array literals of numbers for unnest(): {1,2} (PgTextArray makes {"a","b"}).
template <typename T>
std::string NumberArray(const std::vector<T>& items) {
  return fmt::format("{{{}}}", fmt::join(items, ","));
}

}  // namespace

PgPositions PgPositionTable::LoadForUpdate(pqxx::transaction_base& tx,
                                           const std::vector<PgPositionKey>& keys) const {
  PgPositions out;
  if (keys.empty()) return out;
  // One statement both locks the keys' rows until the end of `tx` (a concurrent writer of the
  // same partitions waits) and returns the stored positions; a new row starts at -1, "nothing
  // stored". Keys go in sorted, so two writers lock in the same order and cannot deadlock.
  std::vector<std::string> topics;
  std::vector<int32_t> partitions;
  for (const auto& k : keys) {
    topics.push_back(k.topic);
    partitions.push_back(k.partition);
  }
  pqxx::result r = ExecPrepared(
      tx,
      fmt::format("INSERT INTO {0} AS p (pipeline, node, topic, \"partition\", next_offset) "
                  "SELECT $1, $2, k.topic, k.part, -1 FROM unnest($3::text[], $4::int[]) WITH "
                  "ORDINALITY AS k(topic, part, n) ORDER BY k.n "
                  "ON CONFLICT (pipeline, node, topic, \"partition\") DO UPDATE SET next_offset "
                  "= p.next_offset RETURNING p.topic, p.\"partition\", p.next_offset",
                  table_.Quoted()),
      pipeline_, node_, PgTextArray(topics), NumberArray(partitions));
  for (const auto& row : r) {
    const int64_t next = row[2].as<int64_t>();
    if (next >= 0) out[{row[0].as<std::string>(), row[1].as<int32_t>()}] = next;
  }
  return out;
}

void PgPositionTable::Store(pqxx::transaction_base& tx, const PgPositions& positions) const {
  if (positions.empty()) return;
  std::vector<std::string> topics;
  std::vector<int32_t> partitions;
  std::vector<int64_t> nexts;
  for (const auto& [k, next] : positions) {
    topics.push_back(k.topic);
    partitions.push_back(k.partition);
    nexts.push_back(next);
  }
  ExecPrepared(
      tx,
      fmt::format("INSERT INTO {0} AS p (pipeline, node, topic, \"partition\", next_offset) "
                  "SELECT $1, $2, k.topic, k.part, k.next FROM unnest($3::text[], $4::int[], "
                  "$5::bigint[]) AS k(topic, part, next) "
                  "ON CONFLICT (pipeline, node, topic, \"partition\") DO UPDATE SET next_offset "
                  "= EXCLUDED.next_offset, updated_at = now()",
                  table_.Quoted()),
      pipeline_, node_, PgTextArray(topics), NumberArray(partitions), NumberArray(nexts));
}

bool PgPositionTable::StoreIfAt(pqxx::transaction_base& tx, const PgPositions& next,
                                const PgPositions& expected) const {
  if (next.empty()) return true;
  std::vector<std::string> topics;
  std::vector<int32_t> partitions;
  std::vector<int64_t> nexts;
  // The expected positions as {"topic": {"partition": position}}: the statement's condition
  // looks each row's up there (the proposed row, EXCLUDED, has only the table's columns).
  std::string expected_json = "{";
  const std::string* topic = nullptr;
  for (const auto& [k, position] : next) {
    topics.push_back(k.topic);
    partitions.push_back(k.partition);
    nexts.push_back(position);
    if (!topic || *topic != k.topic) {
      if (topic) expected_json += "},";
      AppendJsonString(expected_json, k.topic);
      expected_json += ":{";
      topic = &k.topic;
    } else {
      expected_json += ',';
    }
    const auto it = expected.find(k);
    fmt::format_to(std::back_inserter(expected_json), "\"{}\":{}", k.partition,
                   it == expected.end() ? -2 : it->second);
  }
  expected_json += "}}";
  // A row whose stored position is not the expected one is locked but neither changed nor
  // returned; a missing row is inserted, and returned with xmax 0 (a row an upsert updated has
  // the updating transaction in xmax).
  pqxx::result r = ExecPrepared(
      tx,
      fmt::format("INSERT INTO {0} AS p (pipeline, node, topic, \"partition\", next_offset) "
                  "SELECT $1, $2, k.topic, k.part, k.next FROM unnest($3::text[], $4::int[], "
                  "$5::bigint[]) WITH ORDINALITY AS k(topic, part, next, n) ORDER BY k.n "
                  "ON CONFLICT (pipeline, node, topic, \"partition\") DO UPDATE SET next_offset "
                  "= EXCLUDED.next_offset, updated_at = now() WHERE p.next_offset = ($6::jsonb "
                  "-> EXCLUDED.topic ->> EXCLUDED.\"partition\"::text)::bigint "
                  "RETURNING p.xmax = 0",
                  table_.Quoted()),
      pipeline_, node_, PgTextArray(topics), NumberArray(partitions), NumberArray(nexts),
      expected_json);
  if (r.size() != next.size()) return false;
  for (const auto& row : r) {
    if (row[0].as<bool>()) return false;  // inserted: the row was missing
  }
  return true;
}

}  // namespace sluice
