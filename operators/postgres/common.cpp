#include "operators/postgres/common.h"

#include <fmt/format.h>

namespace sluice {

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

void PgPositionTable::Ensure(pqxx::connection& conn) const {
  pqxx::work tx(conn);
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
  pqxx::result r = tx.exec_params(
      fmt::format("SELECT next_offset FROM {} WHERE pipeline = $1 AND node = $2 AND topic = $3 "
                  "AND \"partition\" = $4",
                  table_.Quoted()),
      pipeline_, node_, key.topic, key.partition);
  if (r.empty() || r[0][0].is_null()) return std::nullopt;
  return r[0][0].as<int64_t>();
}

PgPositions PgPositionTable::LoadForUpdate(pqxx::transaction_base& tx,
                                           const std::vector<PgPositionKey>& keys) const {
  PgPositions out;
  // Rows that do not exist yet cannot be locked: insert them first (a concurrent writer's
  // insert of the same key waits for this transaction), at -1, "nothing stored".
  for (const auto& k : keys) {
    tx.exec_params(fmt::format("INSERT INTO {} (pipeline, node, topic, \"partition\", "
                               "next_offset) VALUES ($1, $2, $3, $4, -1) ON CONFLICT DO NOTHING",
                               table_.Quoted()),
                   pipeline_, node_, k.topic, k.partition);
  }
  for (const auto& k : keys) {
    pqxx::result r = tx.exec_params(
        fmt::format("SELECT next_offset FROM {} WHERE pipeline = $1 AND node = $2 AND topic = $3 "
                    "AND \"partition\" = $4 FOR UPDATE",
                    table_.Quoted()),
        pipeline_, node_, k.topic, k.partition);
    if (!r.empty() && r[0][0].as<int64_t>() >= 0) out[k] = r[0][0].as<int64_t>();
  }
  return out;
}

void PgPositionTable::Store(pqxx::transaction_base& tx, const PgPositions& positions) const {
  for (const auto& [k, next] : positions) {
    tx.exec_params(
        fmt::format("INSERT INTO {} (pipeline, node, topic, \"partition\", next_offset) VALUES "
                    "($1, $2, $3, $4, $5) ON CONFLICT (pipeline, node, topic, \"partition\") DO "
                    "UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()",
                    table_.Quoted()),
        pipeline_, node_, k.topic, k.partition, next);
  }
}

}  // namespace sluice
