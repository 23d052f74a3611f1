// What the postgres source and sink share: table names, error text, error classes, and the
// positions table in which a pipeline keeps how far it has read, in the database itself.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "operators/sinks/postgres_copy.h"

namespace sluice {

// The connection string Sluice opens: the user's, and then
// - client_encoding=UTF8, always: Sluice's strings are UTF-8. With libpq's default (the
//   database's encoding, or PGCLIENTENCODING) a LATIN1 database would store the UTF-8 bytes
//   as they are, garbled, instead of converting them or refusing a character it cannot hold.
// - connect_timeout=10, unless set: libpq waits for ever on a server that takes the TCP
//   connection but never answers (a hung server, a stale proxy), so start-up and every
//   reconnect would hang, deaf even to SIGTERM.
// - TCP keepalives (idle 30 s, then 3 probes 10 s apart), unless set: a server that vanished
//   from the network is noticed in about a minute instead of the system's two hours.
// `connect_timeout_s` replaces the 10 s (libpq takes 2 s at least).
std::string PgConnectionString(const std::string& url, int64_t connect_timeout_s = 10);
// A bound in milliseconds as libpq's connect_timeout: whole seconds, rounded up, at least 2
// (libpq's least).
int64_t PgConnectTimeoutSeconds(int64_t timeout_ms);

// A table named as `table` or `schema.table`.
struct PgTable {
  std::string schema = "public";
  std::string table;
  // Parses `name`; nullopt when a part is empty.
  static std::optional<PgTable> Parse(const std::string& name);
  std::string Quoted() const { return QuotePgIdent(schema) + "." + QuotePgIdent(table); }
  std::string Shown() const { return schema + "." + table; }
};

// Serialises Sluice's `CREATE TABLE IF NOT EXISTS` of `table` across processes, until `tx` ends.
// PostgreSQL's IF NOT EXISTS is not safe against a concurrent creator: of two sessions creating
// the same table at once, one fails on pg_type's unique index. Two pipelines started together on
// one database (a source and a sink sharing the positions table) did exactly that.
void PgLockForCreate(pqxx::transaction_base& tx, const PgTable& table);

// `sluice validate --connect`: what `tx`'s role lacks to use `table` as a pipeline would. When
// the table exists: each of `privileges` (SELECT, INSERT, UPDATE); when it does not and
// `creates` (Sluice creates it at start): CREATE on its schema. Returns the problem with the
// GRANT that fixes it, or empty. Reads only.
std::string PgLackedPrivilege(pqxx::transaction_base& tx, const PgTable& table, bool creates,
                              const std::vector<std::string>& privileges);

// What of `table` could tell the order its rows are inserted in: its primary key's columns (in
// index order), the columns a sequence fills when not written (serial, identity), and whether
// a user trigger runs on it. Empty and false when the table does not exist. Reads only.
struct PgInsertOrderInfo {
  std::vector<std::string> primary_key;
  std::vector<std::string> sequenced;
  bool triggers = false;
};
PgInsertOrderInfo PgReadInsertOrderInfo(pqxx::transaction_base& tx, const PgTable& table);

// {"a","b"} as a PostgreSQL text[] literal, and the items of a text[] value (none when null).
std::string PgTextArray(const std::vector<std::string>& items);
std::vector<std::string> PgTextArrayItems(const pqxx::field& f);

// The first line of a libpqxx error (which repeats the query after it), without "ERROR:".
std::string PgFirstLine(const std::string& what);

// The error's SQLSTATE. libpqxx 6.4 leaves it empty on some of the exception classes it throws
// (insufficient_privilege, among others); the class then tells it.
std::string PgSqlState(const pqxx::sql_error& e);

// SQLSTATE classes 22 (data exception) and 23 (integrity constraint violation): the database
// refuses this data, as opposed to failing as a connection or server.
bool IsPgDataError(const std::string& sqlstate);

// Errors after which the same statement may succeed later: the connection (class 08, or no
// SQLSTATE: libpq lost the server), a transaction rolled back for a serialization failure or a
// deadlock (40), insufficient resources (53), an administrator's or a crash's shutdown (57),
// the server's system errors (58), and a prepared statement the server does not know (26000,
// see PgStopPreparing).
bool IsPgTransient(const std::string& sqlstate);

// The statements that run with every batch (the positions table's) are prepared on their
// connection, so that the server parses and plans them once per connection rather than at every
// batch. A connection pooler in transaction mode (PgBouncer before 1.21) can give a transaction
// a server connection that never saw them: the statement then fails with SQLSTATE 26000, which
// calls PgStopPreparing(), and from then on this process sends them unprepared. The failed
// transaction is retried as any other transient failure.
void PgStopPreparing();
// Whether statements are prepared (until PgStopPreparing); tests turn it back on.
bool PgPreparing();
void PgResumePreparing();

// The positions table: per pipeline, node (the node that owns the position: an exactly-once
// sink, or a postgres source), topic (or source table) and partition, the next position to
// read. Written in the same transaction as the rows it accounts for.
//
//   CREATE TABLE sluice_positions (pipeline text, node text, topic text, "partition" integer,
//     next_offset bigint, updated_at timestamptz, PRIMARY KEY (pipeline, node, topic, "partition"))
struct PgPositionKey {
  std::string topic;
  int32_t partition = 0;
  bool operator<(const PgPositionKey& o) const {
    return std::tie(topic, partition) < std::tie(o.topic, o.partition);
  }
  bool operator==(const PgPositionKey&) const = default;
};
using PgPositions = std::map<PgPositionKey, int64_t>;

class PgPositionTable {
 public:
  PgPositionTable(PgTable table, std::string pipeline, std::string node)
      : table_(std::move(table)), pipeline_(std::move(pipeline)), node_(std::move(node)) {}

  const PgTable& table() const { return table_; }
  // Creates the table when it does not exist (in its own transaction).
  void Ensure(pqxx::connection& conn) const;
  // The stored next positions of this pipeline and node (every topic and partition).
  PgPositions Load(pqxx::transaction_base& tx) const;
  // The stored next position of one key, whatever its value. For an owner that never stores
  // the -1 placeholder of LoadForUpdate (the postgres source, whose positions are column
  // values and may be negative).
  std::optional<int64_t> LoadOne(pqxx::transaction_base& tx, const PgPositionKey& key) const;
  // Locks the rows of `keys` for the rest of `tx` and returns their stored positions, so that
  // two writers of the same partitions take turns.
  PgPositions LoadForUpdate(pqxx::transaction_base& tx, const std::vector<PgPositionKey>& keys) const;
  // Stores `positions` (insert or overwrite) in `tx`.
  void Store(pqxx::transaction_base& tx, const PgPositions& positions) const;
  // Moves each key of `next` from its position in `expected` (which names every key of `next`)
  // to its position in `next`, in one statement that locks the rows in key order, as
  // LoadForUpdate does. True when every stored position was the expected one. False when one
  // was not or a row was missing: `tx` has then changed some rows and must be rolled back.
  bool StoreIfAt(pqxx::transaction_base& tx, const PgPositions& next,
                 const PgPositions& expected) const;

 private:
  PgTable table_;
  std::string pipeline_;
  std::string node_;
};

}  // namespace sluice
