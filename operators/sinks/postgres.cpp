// postgres: writes rows into a PostgreSQL table with COPY, one transaction per batch. `mode:
// insert` copies straight into the table; `mode: upsert` copies into a temporary table and
// merges with one INSERT ... ON CONFLICT (key) DO UPDATE, keeping the last row of each key in
// the batch so the statement cannot trip over its own duplicates. At start-up the table is
// created from the input schema when `create: true`, otherwise its columns and types are
// checked. A batch the database refuses for a bad value or a constraint is written again row by
// row, each in a savepoint: refused rows go to the dead-letter output with the database's
// message, the rest are written. A lost connection is reported as unavailable (the runner
// retries with backoff, the pipeline pauses) and the next write reconnects.
//
// `delivery: exactly-once`: each batch's transaction also stores, in the positions table, where
// the batch ends in each partition of its kafka source, after locking those rows. The source
// resumes from the stored positions on start and on every assignment, and rows of a batch that
// lie before a partition's stored position (committed by an earlier run or by another process
// of the pipeline that held the partition) are skipped: each record is written once, however
// the process stops (operators/postgres/sink_positions.h).
//
// Rows travel in COPY's binary format where every column has an exact binary form, in its text
// format otherwise (postgres_copy.h). An upsert batch of new keys only is COPYed straight into
// the table (WriteBatch). A batch's rows go in the order of the table's key when nothing in the
// table can see the order they arrived in (RowOrderFields); payload rows then map back to batch
// rows through PgCopyRows::BatchRow.
//
// Threading: Prepare (the COPY payload) runs on several batches at once; Write is serial and
// owns the connection.
#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "engine/log.h"
#include "operators/builtin.h"
#include "operators/postgres/common.h"
#include "operators/postgres/sink_positions.h"
#include "operators/sinks/postgres_copy.h"
#include "operators/transforms/field_check.h"

namespace sluice {
namespace {

struct PgSinkConfig {
  std::string url;                    ///< libpq connection string or URI, with Sluice's options
  std::string user_url;               ///< the url as configured
  PgTable target;                     ///< [schema.]table
  bool upsert = false;               ///< mode: upsert
  std::vector<std::string> key;      ///< upsert key columns
  bool create = false;               ///< create the table when it does not exist
  std::vector<std::pair<std::string, std::string>> columns;  ///< column -> field
  bool exactly_once = false;         ///< delivery: exactly-once
  PgTable positions;                 ///< positions table (exactly-once)
  std::string pipeline;              ///< the pipeline's name, a key of the positions
  std::string node;                  ///< this sink's name, a key of the positions
  PgPositionTable PositionTable() const { return PgPositionTable(positions, pipeline, node); }
};

// The positions store of an exactly-once sink, read by its kafka source on assignment.
class PgPositionStore : public PositionStore {
 public:
  explicit PgPositionStore(const PgSinkConfig& cfg) : url_(cfg.url), table_(cfg.PositionTable()) {}
  Result<std::map<PositionKey, int64_t>> Load() override {
    try {
      pqxx::connection conn(url_);
      table_.Ensure(conn);
      pqxx::read_transaction tx(conn);
      std::map<PositionKey, int64_t> out;
      for (const auto& [k, next] : table_.Load(tx)) out[{k.topic, k.partition}] = next;
      return out;
    } catch (const std::exception& e) {
      return Status::Unavailable(fmt::format("PostgreSQL: {}", PgFirstLine(e.what())));
    }
  }

 private:
  std::string url_;
  PgPositionTable table_;
};

class PgSinkRuntime : public SinkRuntime {
 public:
  PgSinkRuntime(PgSinkConfig cfg, std::string name, PgCopyEncoder encoder,
                std::unique_ptr<pqxx::connection> conn)
      : cfg_(std::move(cfg)), name_(std::move(name)), encoder_(std::move(encoder)),
        conn_(std::move(conn)), positions_(cfg_.PositionTable(), name_) {
    for (const auto& [column, field] : cfg_.columns) quoted_columns_.push_back(QuotePgIdent(column));
    column_list_ = fmt::format("{}", fmt::join(quoted_columns_, ", "));
  }

  bool prepares() const override { return true; }
  Result<std::string> Prepare(const Batch& batch) const override { return encoder_.Encode(batch); }

  Status Write(const Batch& batch, const std::string& copy_text, NodeContext& ctx) override {
    // A batch whose rows were all filtered or dead-lettered still moves an exactly-once sink's
    // positions on; one that read nothing (an idle stream) has none to move.
    if (batch.num_rows() == 0 &&
        (!exactly_once() || !batch.has_raw() || batch.raw()->count() == 0)) {
      return Status::Ok();
    }
    SLUICE_RETURN_IF_ERROR(Connect());
    try {
      EnsureStaging();
      // Exactly-once: first at the positions this sink stored last; again, reading them under
      // lock, when another writer has moved one since. An upsert whose straight COPY a key
      // refused is written again, merged.
      for (bool at_known = true;;) {
        pqxx::work tx(*conn_);
        if (!LockPositions(tx, batch, at_known)) {
          tx.abort();
          at_known = false;
          continue;
        }
        std::string kept;
        const std::string& payload = positions_.TakeNewRows(batch, copy_text, kept);
        // More than the format: rows.
        if (payload.size() > 1 && !WriteBatch(tx, payload)) {
          tx.abort();
          continue;
        }
        positions_.Store(tx);
        tx.commit();
        positions_.Committed();
        return Status::Ok();
      }
    } catch (const pqxx::sql_error& e) {
      if (!IsPgDataError(PgSqlState(e))) return Failed(e);
    } catch (const std::exception& e) {
      return Lost(e.what());
    }
    return WriteRowByRow(batch, copy_text, ctx);
  }

 private:
  Status Connect() {
    if (conn_ && conn_->is_open()) return Status::Ok();
    try {
      conn_ = std::make_unique<pqxx::connection>(cfg_.url);
      staging_ready_ = false;  // temporary tables end with the session
      Log(LogLevel::kInfo, fmt::format("sink '{}': connected to PostgreSQL again", name_));
      return Status::Ok();
    } catch (const std::exception& e) {
      conn_.reset();
      return Status::Unavailable(fmt::format("cannot connect to PostgreSQL: {}", PgFirstLine(e.what())));
    }
  }

  // The staging table of upserts lives as long as the session and is emptied at each commit.
  // It is made in a transaction of its own, so a batch that rolls back cannot take it along.
  // It has the written columns with their types but none of the table's constraints (LIKE
  // would copy NOT NULL): a refused row is then refused by the table itself, and its
  // dead-letter reason names the user's table, not sluice_staging.
  void EnsureStaging() {
    if (!cfg_.upsert || staging_ready_) return;
    pqxx::work tx(*conn_);
    tx.exec0(fmt::format("CREATE TEMP TABLE IF NOT EXISTS sluice_staging ON COMMIT DELETE ROWS "
                         "AS SELECT {} FROM {} WITH NO DATA",
                         fmt::join(quoted_columns_, ", "), cfg_.target.Quoted()));
    tx.exec0("ALTER TABLE sluice_staging ADD COLUMN IF NOT EXISTS sluice_ord bigserial");
    tx.commit();
    staging_ready_ = true;
  }

  bool exactly_once() const { return cfg_.exactly_once; }

  // Exactly-once: locks the batch's partitions and finds the rows written before
  // (PgSinkPositions); nothing otherwise. False when the transaction must be rolled back and
  // the positions locked again with `at_known` false.
  bool LockPositions(pqxx::transaction_base& tx, const Batch& batch, bool at_known) {
    return !exactly_once() || positions_.Lock(tx, batch, at_known);
  }

  // A statement failed for another reason than its data: retried when the server or the
  // connection may come back (a restart, a dropped connection, a deadlock), otherwise (a
  // permission, a table dropped while running) the run stops with the database's message.
  Status Failed(const pqxx::sql_error& e) {
    positions_.Forget();  // the transaction may have committed or not
    const std::string state = PgSqlState(e);
    if (IsPgTransient(state)) return Lost(e.what());
    conn_.reset();
    return Status::IoError(fmt::format("PostgreSQL refused the batch: {} (SQLSTATE {})",
                                       PgFirstLine(e.what()), state));
  }

  // The connection or the server failed: reconnect on the next attempt.
  Status Lost(const std::string& what) {
    conn_.reset();
    positions_.Forget();  // a commit whose answer was lost may have happened or not
    return Status::Unavailable(fmt::format("PostgreSQL: {}", PgFirstLine(what)));
  }

  void Copy(pqxx::dbtransaction& tx, const std::string& table, const std::string& payload) {
    PgCopy(tx, table, column_list_, PgCopyRows(payload));
  }

  void WriteRows(pqxx::dbtransaction& tx, const std::string& payload) {
    if (!cfg_.upsert) {
      Copy(tx, cfg_.target.Quoted(), payload);
      return;
    }
    Copy(tx, "sluice_staging", payload);
    tx.exec0(upsert_sql_.empty() ? (upsert_sql_ = UpsertSql()) : upsert_sql_);
  }

  // A batch's rows. An upsert whose keys are all new is an insert: the batch is COPYed straight
  // into the table, less than half the server's work of the merge. When a key is already there
  // (or repeats within the batch) the key's unique index refuses the COPY, and this returns
  // false: `tx` is then rolled back and the batch written again, merged through the staging
  // table (a savepoint around the COPY would cost two round trips with every batch to save one
  // transaction's with each refusal). The batches after a refusal are merged at once, twice as
  // many after each further refusal (up to kMaxMergeRun), so a stream of updates wastes one
  // COPY in kMaxMergeRun batches.
  bool WriteBatch(pqxx::dbtransaction& tx, const std::string& payload) {
    if (!cfg_.upsert) {
      WriteRows(tx, payload);
      return true;
    }
    if (merge_next_ > 0) {
      --merge_next_;
      WriteRows(tx, payload);
      return true;
    }
    try {
      Copy(tx, cfg_.target.Quoted(), payload);
      merge_run_ = 1;
      return true;
    } catch (const pqxx::sql_error& e) {
      if (PgSqlState(e) != kUniqueViolation) throw;
    }
    merge_next_ = merge_run_ + 1;  // this batch again, and merge_run_ after it
    merge_run_ = std::min(merge_run_ * 2, kMaxMergeRun);
    return false;
  }

  std::string UpsertSql() const {
    std::vector<std::string> key, updates;
    for (const auto& k : cfg_.key) key.push_back(QuotePgIdent(k));
    for (const auto& [column, field] : cfg_.columns) {
      if (std::find(cfg_.key.begin(), cfg_.key.end(), column) != cfg_.key.end()) continue;
      updates.push_back(fmt::format("{0} = EXCLUDED.{0}", QuotePgIdent(column)));
    }
    const std::string cols = fmt::format("{}", fmt::join(quoted_columns_, ", "));
    const std::string keys = fmt::format("{}", fmt::join(key, ", "));
    // The last row of each key in the batch wins, as it would have with one insert per row.
    return fmt::format(
        "INSERT INTO {0} ({1}) SELECT {1} FROM (SELECT DISTINCT ON ({2}) * FROM sluice_staging "
        "ORDER BY {2}, sluice_ord DESC) AS latest ON CONFLICT ({2}) DO {3}",
        cfg_.target.Quoted(), cols, keys,
        updates.empty() ? "NOTHING" : fmt::format("UPDATE SET {}", fmt::join(updates, ", ")));
  }

  // The batch as a whole was refused for its data: find the rows, one savepoint each.
  Status WriteRowByRow(const Batch& batch, const std::string& copy_text, NodeContext& ctx) {
    SLUICE_RETURN_IF_ERROR(Connect());
    try {
      EnsureStaging();
      pqxx::work tx(*conn_);
      LockPositions(tx, batch, /*at_known=*/false);
      std::string kept;
      positions_.TakeNewRows(batch, copy_text, kept);  // logs the rows written before
      const PgCopyRows rows(copy_text);
      size_t start = 0;
      for (size_t i = 0; i < batch.num_rows(); ++i) {
        const size_t r = rows.BatchRow(i);
        const size_t end = rows.RowEnd(start);
        const std::string line = rows.format() + std::string(rows.rows().substr(start, end - start));
        start = end;
        if (positions_.WrittenBefore(batch, r)) continue;
        try {
          PgSavepoint row(tx, "row");
          WriteRows(row, line);
          if (cfg_.upsert) row.exec0("DELETE FROM sluice_staging");  // merged: not again
          row.commit();
        } catch (const pqxx::sql_error& e) {
          if (!IsPgDataError(PgSqlState(e))) throw;
          ctx.Reject(batch, r, fmt::format("postgres refused the row: {}", PgFirstLine(e.what())));
        }
      }
      positions_.Store(tx);
      tx.commit();
      positions_.Committed();
      return Status::Ok();
    } catch (const pqxx::sql_error& e) {
      return Failed(e);
    } catch (const std::exception& e) {
      return Lost(e.what());
    }
  }

  static constexpr const char* kUniqueViolation = "23505";
  static constexpr size_t kMaxMergeRun = 256;

  PgSinkConfig cfg_;
  std::string name_;
  PgCopyEncoder encoder_;
  std::vector<std::string> quoted_columns_;
  std::string column_list_;  // the quoted columns, comma-separated
  std::unique_ptr<pqxx::connection> conn_;
  bool staging_ready_ = false;
  std::string upsert_sql_;
  size_t merge_next_ = 0;  // upsert: batches to merge before trying a straight COPY again
  size_t merge_run_ = 1;   // upsert: how many batches the next refusal sends to the merge
  PgSinkPositions positions_;  // exactly-once
};

class PgSink : public SinkNode {
 public:
  PgSink(const NodeConfig& node, PgSinkConfig cfg) : node_(node), cfg_(std::move(cfg)) {}

  Status CheckInput(const SchemaPtr& input) override {
    cfg_.columns = configured_columns_;
    if (cfg_.columns.empty()) {
      for (const auto& f : input->fields()) cfg_.columns.emplace_back(f.name, f.name);
    }
    fields_.clear();
    for (const auto& [column, field] : cfg_.columns) {
      int i = input->IndexOf(field);
      if (i < 0) {
        return node_.Error("columns", fmt::format("column '{}': {}", column,
                                                  NotAFieldMessage(node_, field, *input)));
      }
      fields_.push_back(i);
    }
    for (const auto& k : cfg_.key) {
      bool found = false;
      for (const auto& c : cfg_.columns) found |= c.first == k;
      if (!found) {
        return node_.Error("key", fmt::format("key column '{}' is not written by this sink "
                                              "(columns: {})",
                                              k, ColumnList()));
      }
    }
    input_ = input;
    return Status::Ok();
  }

  Result<std::unique_ptr<SinkRuntime>> Open(const SchemaPtr&) const override {
    std::unique_ptr<pqxx::connection> conn;
    std::vector<std::string> pg_types;  // of the written columns
    std::vector<int> order_by;
    try {
      conn = std::make_unique<pqxx::connection>(cfg_.url);
      SLUICE_RETURN_IF_ERROR(PrepareTable(*conn, pg_types));
      if (cfg_.exactly_once) cfg_.PositionTable().Ensure(*conn);
      order_by = RowOrderFields(*conn);
    } catch (const std::exception& e) {
      return Status::Unavailable(fmt::format("{}: PostgreSQL: {}", node_.Prefix(),
                                             PgFirstLine(e.what())));
    }
    std::vector<PgBinary> binary;
    for (size_t i = 0; i < fields_.size(); ++i) {
      auto b = PgBinaryFor(pg_types[i], input_->field(fields_[i]).type);
      if (!b) {
        binary.clear();  // the text format for every column
        break;
      }
      binary.push_back(*b);
    }
    return std::unique_ptr<SinkRuntime>(std::make_unique<PgSinkRuntime>(
        cfg_, node_.name, PgCopyEncoder(fields_, std::move(binary), std::move(order_by)),
        std::move(conn)));
  }

  bool CommitsSourcePositions() const override { return cfg_.exactly_once; }
  Result<std::shared_ptr<PositionStore>> OpenPositionStore() const override {
    return std::shared_ptr<PositionStore>(std::make_shared<PgPositionStore>(cfg_));
  }

  void SetConfiguredColumns(std::vector<std::pair<std::string, std::string>> c) {
    configured_columns_ = std::move(c);
  }

 private:
  std::string ColumnList() const {
    std::string out;
    for (const auto& c : cfg_.columns) out += (out.empty() ? "" : ", ") + c.first;
    return out;
  }

  Result<std::string> Probe(const ProbeOptions& options) const override {
    // The check's timeout bounds the connection, unless the url sets a connect_timeout.
    try {
      pqxx::connection conn(
          PgConnectionString(cfg_.user_url, PgConnectTimeoutSeconds(options.timeout_ms)));
      pqxx::read_transaction tx(conn);
      std::vector<std::string> pg_types;
      bool missing = false;
      SLUICE_RETURN_IF_ERROR(CheckTable(tx, pg_types, missing));
      std::vector<std::string> needs = {"INSERT"};
      if (!cfg_.key.empty()) needs.push_back("UPDATE");
      std::string lacked = PgLackedPrivilege(tx, cfg_.target, cfg_.create, needs);
      if (!lacked.empty()) return node_.Error("table", lacked);
      if (cfg_.exactly_once) {
        // Created at start when missing; read, inserted and updated with every batch.
        lacked = PgLackedPrivilege(tx, cfg_.positions, true, {"SELECT", "INSERT", "UPDATE"});
        if (!lacked.empty()) {
          return node_.Error(node_.Has("positions_table") ? "positions_table" : "delivery",
                             lacked);
        }
      }
      if (missing) {
        return fmt::format("PostgreSQL answers; table {} does not exist yet and is created "
                           "at start (create: true)",
                           cfg_.target.Shown());
      }
      return fmt::format("table {} takes the {} column{}{}", cfg_.target.Shown(),
                         cfg_.columns.size(), cfg_.columns.size() == 1 ? "" : "s",
                         cfg_.key.empty() ? "" : " and has a unique key for the upsert");
    } catch (const std::exception& e) {
      return Status::Unavailable(fmt::format("{}: {}: cannot check table {}: PostgreSQL: {}",
                                             node_.MarkOf("url").ToString(), node_.Prefix(),
                                             cfg_.target.Shown(), PgFirstLine(e.what())));
    }
  }

  // The input fields to sort each batch's rows by before COPY (PgCopyEncoder): the upsert key,
  // or the table's primary key when this sink writes all of its columns. None when the table
  // could see the order the rows arrive in: a column this sink leaves to a sequence (serial,
  // identity) or a trigger would then see the key's order instead of the stream's.
  std::vector<int> RowOrderFields(pqxx::connection& conn) const {
    pqxx::read_transaction tx(conn);
    const PgInsertOrderInfo info = PgReadInsertOrderInfo(tx, cfg_.target);
    if (info.triggers) return {};
    auto written = [&](const std::string& column) -> int {
      for (size_t i = 0; i < cfg_.columns.size(); ++i) {
        if (cfg_.columns[i].first == column) return fields_[i];
      }
      return -1;
    };
    for (const auto& column : info.sequenced) {
      if (written(column) < 0) return {};  // a sequence numbers the rows as they come
    }
    std::vector<int> order_by;
    for (const auto& column : cfg_.key.empty() ? info.primary_key : cfg_.key) {
      const int f = written(column);
      if (f < 0) return {};
      order_by.push_back(f);
    }
    return order_by;
  }

  // Creates the table when asked and missing; otherwise checks it (CheckTable). `pg_types`: the
  // written columns' types.
  Status PrepareTable(pqxx::connection& conn, std::vector<std::string>& pg_types) const {
    pqxx::work tx(conn);
    if (cfg_.create) PgLockForCreate(tx, cfg_.target);
    bool missing = false;
    SLUICE_RETURN_IF_ERROR(CheckTable(tx, pg_types, missing));
    if (missing) {
      std::vector<std::string> defs;
      for (size_t i = 0; i < cfg_.columns.size(); ++i) {
        const Field& f = input_->field(fields_[i]);
        defs.push_back(fmt::format("{} {}{}", QuotePgIdent(cfg_.columns[i].first),
                                   PgTypeFor(f.type), f.nullable ? "" : " NOT NULL"));
        pg_types.push_back(PgTypeFor(f.type));
      }
      if (!cfg_.key.empty()) {
        std::vector<std::string> key;
        for (const auto& k : cfg_.key) key.push_back(QuotePgIdent(k));
        defs.push_back(fmt::format("PRIMARY KEY ({})", fmt::join(key, ", ")));
      }
      tx.exec0(fmt::format("CREATE TABLE IF NOT EXISTS {} ({})", cfg_.target.Quoted(),
                           fmt::join(defs, ", ")));
      tx.commit();
      Log(LogLevel::kInfo, fmt::format("sink '{}': created table {}", node_.name,
                                       cfg_.target.Shown()));
    }
    return Status::Ok();
  }

  // Reads only. Checks that every column exists with a type that takes the field's values, and
  // that an upsert key is unique. A missing table is an error, or with create: true sets
  // `missing`. `pg_types`: the written columns' types.
  Status CheckTable(pqxx::transaction_base& tx, std::vector<std::string>& pg_types,
                    bool& missing) const {
    pqxx::result cols = tx.exec_params(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        cfg_.target.schema, cfg_.target.table);
    if (cols.empty()) {
      if (!cfg_.create) {
        return node_.Error("table", fmt::format("table {} does not exist; create it, or set "
                                                "create: true to have it made from the input",
                                                cfg_.target.Shown()));
      }
      missing = true;
      return Status::Ok();
    }
    std::map<std::string, std::string> types;
    std::vector<std::string> names;
    for (const auto& row : cols) {
      types[row[0].c_str()] = row[1].c_str();
      names.push_back(row[0].c_str());
    }
    for (size_t i = 0; i < cfg_.columns.size(); ++i) {
      const std::string& column = cfg_.columns[i].first;
      const Field& f = input_->field(fields_[i]);
      auto t = types.find(column);
      if (t == types.end()) {
        auto near = ClosestMatch(column, names);
        return node_.Error("table", fmt::format("table {} has no column '{}'{} (columns: {})",
                                                cfg_.target.Shown(), column,
                                                near ? fmt::format("; did you mean '{}'?", *near)
                                                     : "",
                                                fmt::join(names, ", ")));
      }
      if (!PgTypeAccepts(t->second, f.type)) {
        return node_.Error("table", fmt::format("column '{}' of table {} is {} but field '{}' is "
                                                "{}; a {} column takes it",
                                                column, cfg_.target.Shown(), t->second,
                                                cfg_.columns[i].second, TypeName(f.type),
                                                PgTypeFor(f.type)));
      }
      pg_types.push_back(t->second);
    }
    if (!cfg_.key.empty()) {
      // ON CONFLICT needs a unique index on exactly the key columns. A partial, expression
      // or deferrable one is no arbiter: every write would fail, and be retried for ever.
      pqxx::result idx = tx.exec_params(
          "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
          "JOIN pg_namespace n ON n.oid = c.relnamespace "
          "WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique AND i.indimmediate AND "
          "i.indpred IS NULL AND i.indexprs IS NULL AND "
          "(SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a "
          " WHERE a.attrelid = c.oid AND a.attnum = ANY(i.indkey)) = "
          "(SELECT array_agg(k ORDER BY k) FROM unnest($3::text[]) AS k)",
          cfg_.target.schema, cfg_.target.table, PgTextArray(cfg_.key));
      if (idx.empty()) {
        return node_.Error("key", fmt::format("table {} has no unique index or primary key on "
                                              "({}), which upsert needs",
                                              cfg_.target.Shown(), fmt::join(cfg_.key, ", ")));
      }
    }
    return Status::Ok();
  }

  const NodeConfig& node_;
  PgSinkConfig cfg_;
  std::vector<std::pair<std::string, std::string>> configured_columns_;
  std::vector<int> fields_;
  SchemaPtr input_;
};

Result<std::unique_ptr<SinkNode>> MakePgSink(const NodeConfig& node) {
  PgSinkConfig cfg;
  cfg.user_url = node.String("url");
  cfg.url = PgConnectionString(cfg.user_url);
  const std::string table = node.String("table");
  auto target = PgTable::Parse(table);
  if (!target) {
    return node.Error("table", fmt::format("'{}' is not a table name (table or schema.table)",
                                           table));
  }
  cfg.target = *target;
  cfg.upsert = node.String("mode") == "upsert";
  cfg.key = node.StringList("key");
  if (cfg.upsert && cfg.key.empty()) {
    return node.Error("mode", "mode: upsert needs 'key', the columns that identify a row");
  }
  if (!cfg.upsert && !cfg.key.empty()) {
    return node.Error("key", "'key' is for mode: upsert; remove it, or set mode: upsert");
  }
  cfg.create = node.Bool("create");
  cfg.exactly_once = node.String("delivery") == "exactly-once";
  cfg.pipeline = node.pipeline;
  cfg.node = node.name;
  const std::string positions = node.String("positions_table");
  auto pt = PgTable::Parse(positions.find('.') == std::string::npos
                               ? cfg.target.schema + "." + positions
                               : positions);
  if (!pt) {
    return node.Error("positions_table",
                      fmt::format("'{}' is not a table name (table or schema.table)", positions));
  }
  cfg.positions = *pt;
  auto columns = node.StringMap("columns");
  auto sink = std::make_unique<PgSink>(node, std::move(cfg));
  sink->SetConfiguredColumns(std::move(columns));
  return std::unique_ptr<SinkNode>(std::move(sink));
}

}  // namespace

void RegisterPostgresSink(Registry& registry) {
  OperatorSpec spec;
  spec.name = "postgres";
  spec.role = Role::kSink;
  spec.summary = "Writes rows into a PostgreSQL table with COPY; insert or upsert.";
  spec.description =
      "Each batch is one transaction and travels as binary COPY (text COPY when a column is "
      "numeric, real or uuid): `mode: insert` COPYs the rows into the table; `mode: upsert` "
      "first COPYs them straight into the table and, when a key is already there, COPYs them "
      "into a temporary table instead and merges them with INSERT ... ON CONFLICT (`key`) DO "
      "UPDATE, the last row of a key in a batch winning. Every input field is "
      "written to the column of the same name, or `columns` maps columns to fields. At "
      "start-up the table is created from the input when `create: true`; otherwise its "
      "columns and types are checked, and an upsert key must have a unique index. Rows the "
      "database refuses (a constraint, a bad value) go to the dead-letter output with its "
      "message and the rest of the batch is written; a lost connection pauses the pipeline "
      "and is retried. With `delivery: exactly-once` the kafka source's positions are stored in "
      "`positions_table` in the same transaction as the rows and the source resumes from them, "
      "so each message is written once across crashes and restarts (docs/pipelines.md#exactly-"
      "once-into-postgresql). Put the password in the environment (`${DATABASE_URL}` or "
      "PGPASSWORD).";
  spec.fields = {
      {"url", ConfigType::kString, true, "",
       "libpq connection string or URI, e.g. postgresql://user@host:5432/db", {}},
      {"table", ConfigType::kString, true, "", "table to write, as table or schema.table", {}},
      {"mode", ConfigType::kString, false, "insert", "insert, or upsert by `key`",
       {"insert", "upsert"}},
      {"key", ConfigType::kStringList, false, "", "columns that identify a row, for upsert", {}},
      {"create", ConfigType::kBool, false, "false",
       "create the table from the input's fields when it does not exist", {}},
      {"columns", ConfigType::kStringMap, false, "",
       "column: field to write; default every field to the column of its name", {}},
      {"delivery", ConfigType::kString, false, "at-least-once",
       "exactly-once: store the kafka source's positions with the rows, in one transaction",
       {"at-least-once", "exactly-once"}},
      {"positions_table", ConfigType::kString, false, "sluice_positions",
       "table of the stored positions (exactly-once); in the target's schema unless qualified",
       {}},
  };
  spec.example =
      "{type: postgres, inputs: [classify], url: \"${DATABASE_URL:-postgresql://127.0.0.1/"
      "iris}\", table: iris_prediction, create: true}";
  spec.make_sink = MakePgSink;
  registry.Add(std::move(spec));
}

}  // namespace sluice
