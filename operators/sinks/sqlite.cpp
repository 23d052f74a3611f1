// sqlite: writes rows into a SQLite table, the embedded default store. Creates the table from the
// input schema when it does not exist, checks its columns when it does, and inserts each batch
// with one prepared statement inside one transaction (durable on commit: WAL, synchronous=FULL).
#include <algorithm>
#include <filesystem>
#include <map>

#include <fmt/format.h>
#include <sqlite3.h>

#include "operators/builtin.h"

namespace sluice {
namespace {

std::string QuoteIdent(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

const char* SqlType(TypeId t) {
  switch (t) {
    case TypeId::kBool:
    case TypeId::kInt64: return "INTEGER";
    case TypeId::kFloat64: return "REAL";
    case TypeId::kString: return "TEXT";
    case TypeId::kTimestamp: return "TIMESTAMP";  // ISO 8601 text, SQLite's date functions read it
  }
  return "TEXT";
}

// SQLite's type affinity rules (https://sqlite.org/datatype3.html, 3.1).
enum class Affinity { kInteger, kText, kBlob, kReal, kNumeric };
Affinity AffinityOf(std::string decl) {
  std::transform(decl.begin(), decl.end(), decl.begin(), ::toupper);
  if (decl.find("INT") != std::string::npos) return Affinity::kInteger;
  if (decl.find("CHAR") != std::string::npos || decl.find("CLOB") != std::string::npos ||
      decl.find("TEXT") != std::string::npos)
    return Affinity::kText;
  if (decl.empty() || decl.find("BLOB") != std::string::npos) return Affinity::kBlob;
  if (decl.find("REAL") != std::string::npos || decl.find("FLOA") != std::string::npos ||
      decl.find("DOUB") != std::string::npos)
    return Affinity::kReal;
  return Affinity::kNumeric;
}

bool Compatible(TypeId t, Affinity a) {
  switch (t) {
    case TypeId::kBool:
    case TypeId::kInt64: return a != Affinity::kText;
    case TypeId::kFloat64:
      return a == Affinity::kReal || a == Affinity::kNumeric || a == Affinity::kBlob;
    case TypeId::kString: return a == Affinity::kText || a == Affinity::kBlob;
    case TypeId::kTimestamp:
      return a == Affinity::kText || a == Affinity::kNumeric || a == Affinity::kBlob;
  }
  return false;
}

class Db {
 public:
  ~Db() {
    if (db_) sqlite3_close_v2(db_);
  }
  Status Open(const std::string& path, int flags) {
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
      return Status::IoError(fmt::format("cannot open SQLite database '{}': {}", path,
                                         db_ ? sqlite3_errmsg(db_) : "out of memory"));
    }
    sqlite3_busy_timeout(db_, 5000);
    return Status::Ok();
  }
  Status Exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      int code = sqlite3_errcode(db_);
      if (code == SQLITE_BUSY || code == SQLITE_LOCKED) return Status::Unavailable(msg);
      return Status::IoError(msg);
    }
    return Status::Ok();
  }
  // Declared column types of `table`; empty when the table does not exist.
  Result<std::map<std::string, std::string>> Columns(const std::string& table) {
    std::map<std::string, std::string> cols;
    sqlite3_stmt* st = nullptr;
    std::string sql = fmt::format("PRAGMA table_info({})", QuoteIdent(table));
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
      return Status::IoError(sqlite3_errmsg(db_));
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
      auto name = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
      auto type = reinterpret_cast<const char*>(sqlite3_column_text(st, 2));
      cols[name ? name : ""] = type ? type : "";
    }
    sqlite3_finalize(st);
    return cols;
  }
  sqlite3* get() { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

// Every field without a compatible column is reported, one problem per line.
Status CheckTable(Db& db, const NodeConfig& node, const std::string& table, const Schema& schema) {
  SLUICE_ASSIGN_OR_RETURN(auto cols, db.Columns(table));
  if (cols.empty()) return Status::Ok();  // created on open
  std::vector<std::string> problems;
  for (const auto& f : schema.fields()) {
    // SQLite column names are case-insensitive.
    auto it = std::find_if(cols.begin(), cols.end(), [&](const auto& c) {
      return sqlite3_stricmp(c.first.c_str(), f.name.c_str()) == 0;
    });
    if (it == cols.end()) {
      std::vector<std::string> names;
      for (const auto& [n, t] : cols) names.push_back(n);
      problems.push_back(node.Error("table", fmt::format("table '{}' has no column '{}' "
                                                         "(columns: {})",
                                                         table, f.name, fmt::join(names, ", ")))
                             .message());
      continue;
    }
    if (!Compatible(f.type, AffinityOf(it->second))) {
      problems.push_back(
          node.Error("table",
                     fmt::format("column '{}' of table '{}' is {} but field '{}' is {} "
                                 "(a column of type {} would take it)",
                                 f.name, table, it->second.empty() ? "untyped" : it->second, f.name,
                                 TypeName(f.type), SqlType(f.type)))
              .message());
    }
  }
  if (problems.empty()) return Status::Ok();
  return Status::InvalidConfig(fmt::format("{}", fmt::join(problems, "\n")));
}

class SqliteSinkRuntime : public SinkRuntime {
 public:
  SqliteSinkRuntime(std::unique_ptr<Db> db, sqlite3_stmt* insert, std::string path)
      : db_(std::move(db)), insert_(insert), path_(std::move(path)) {}
  ~SqliteSinkRuntime() override { sqlite3_finalize(insert_); }

  Status Write(const Batch& batch, const std::string&, NodeContext& ctx) override {
    if (batch.num_rows() == 0) return Status::Ok();
    SLUICE_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
    Status st = InsertRows(batch, ctx);
    if (!st.ok()) {
      db_->Exec("ROLLBACK");
      return st;
    }
    return db_->Exec("COMMIT");
  }

 private:
  Status InsertRows(const Batch& batch, NodeContext& ctx) {
    for (size_t r = 0; r < batch.num_rows(); ++r) {
      for (size_t c = 0; c < batch.columns().size(); ++c) {
        const Column& col = batch.column(c);
        int idx = static_cast<int>(c) + 1;
        if (col.IsNull(r)) {
          sqlite3_bind_null(insert_, idx);
          continue;
        }
        switch (col.type) {
          case TypeId::kBool:
          case TypeId::kInt64: sqlite3_bind_int64(insert_, idx, col.ints[r]); break;
          case TypeId::kFloat64: sqlite3_bind_double(insert_, idx, col.doubles[r]); break;
          case TypeId::kString:
            sqlite3_bind_text(insert_, idx, col.strings[r].data(),
                              static_cast<int>(col.strings[r].size()), SQLITE_STATIC);
            break;
          case TypeId::kTimestamp: {
            char buf[40];
            size_t n = FormatTimestampTo(col.ints[r], buf, /*fixed_width=*/true);
            sqlite3_bind_text(insert_, idx, buf, static_cast<int>(n), SQLITE_TRANSIENT);
            break;
          }
        }
      }
      int rc = sqlite3_step(insert_);
      sqlite3_reset(insert_);
      if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        // A row the table refuses (NOT NULL, UNIQUE, CHECK): only this statement is undone, so
        // the row is dead-lettered and the rest of the batch goes in.
        ctx.Reject(batch, r, fmt::format("table refused the row: {}", sqlite3_errmsg(db_->get())));
        continue;
      }
      if (rc != SQLITE_DONE) {
        std::string msg = fmt::format("inserting into '{}': {}", path_, sqlite3_errmsg(db_->get()));
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) return Status::Unavailable(msg);
        return Status::IoError(msg);
      }
    }
    return Status::Ok();
  }

  std::unique_ptr<Db> db_;
  sqlite3_stmt* insert_;
  std::string path_;
};

class SqliteSink : public SinkNode {
 public:
  explicit SqliteSink(const NodeConfig& node) : node_(node) {}

  Status CheckInput(const SchemaPtr& input) override {
    // Validation reads an existing database (read-only) so a mismatched table is caught before
    // deploy; a database that does not exist yet is created on the first run.
    std::string path = node_.Path("path");
    if (node_.String("table").empty()) {
      return node_.Error("table", "'table' is empty; name the table to insert into");
    }
    if (std::filesystem::is_directory(path)) {
      return node_.Error("path", fmt::format("'{}' is a folder; name the database file", path));
    }
    Db db;
    if (!db.Open(path, SQLITE_OPEN_READONLY).ok()) return Status::Ok();
    Status st = CheckTable(db, node_, node_.String("table"), *input);
    if (st.code() == StatusCode::kIoError) {
      // Not a database, or one SQLite cannot read: say which file, at its key.
      return node_.Error(
          "path", fmt::format("cannot read the SQLite database '{}': {}", path, st.message()));
    }
    return st;
  }

  // The table was checked while planning, when the database exists; this is the file itself.
  Result<std::string> Probe(const ProbeOptions&) const override {
    auto writable = CheckWritable(node_.Path("path"));
    if (!writable.ok()) return node_.Error("path", writable.status().message());
    return writable;
  }

  Result<std::unique_ptr<SinkRuntime>> Open(const SchemaPtr& input) const override {
    std::string path = node_.Path("path");
    std::string table = node_.String("table");
    auto db = std::make_unique<Db>();
    Status dir = EnsureParentDir(path);
    if (!dir.ok()) return Status::IoError(fmt::format("{}: {}", node_.Prefix(), dir.message()));
    SLUICE_RETURN_IF_ERROR(db->Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
    SLUICE_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode=WAL"));
    SLUICE_RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=FULL"));
    SLUICE_RETURN_IF_ERROR(CheckTable(*db, node_, table, *input));
    std::vector<std::string> defs, names, marks;
    for (const auto& f : input->fields()) {
      defs.push_back(fmt::format("{} {}{}", QuoteIdent(f.name), SqlType(f.type),
                                 f.nullable ? "" : " NOT NULL"));
      names.push_back(QuoteIdent(f.name));
      marks.push_back("?");
    }
    SLUICE_RETURN_IF_ERROR(db->Exec(fmt::format("CREATE TABLE IF NOT EXISTS {} ({})",
                                                QuoteIdent(table), fmt::join(defs, ", "))));
    std::string sql = fmt::format("INSERT INTO {} ({}) VALUES ({})", QuoteIdent(table),
                                  fmt::join(names, ", "), fmt::join(marks, ", "));
    sqlite3_stmt* insert = nullptr;
    if (sqlite3_prepare_v2(db->get(), sql.c_str(), -1, &insert, nullptr) != SQLITE_OK) {
      return Status::IoError(fmt::format("{}: {}", node_.Prefix(), sqlite3_errmsg(db->get())));
    }
    return std::unique_ptr<SinkRuntime>(
        std::make_unique<SqliteSinkRuntime>(std::move(db), insert, path));
  }

 private:
  const NodeConfig& node_;
};

}  // namespace

void RegisterSqliteSink(Registry& registry) {
  OperatorSpec spec;
  spec.name = "sqlite";
  spec.role = Role::kSink;
  spec.summary = "Inserts rows into a SQLite table, creating it from the schema if needed.";
  spec.description =
      "Each batch is inserted in one transaction with a prepared statement; a batch is "
      "acknowledged when its transaction commits. Column types: int64 and bool as INTEGER, "
      "float64 as REAL, string as TEXT, timestamp as ISO 8601 text with six fraction digits "
      "(so it sorts in time order). An existing table must have a compatible column for every "
      "field; `sluice validate` checks this when the database exists. A row the table refuses "
      "(NOT NULL, UNIQUE or CHECK constraint) goes to the dead-letter output.";
  spec.fields = {
      {"path", ConfigType::kPath, true, "", "SQLite database file (created if missing)", {}},
      {"table", ConfigType::kString, true, "", "table to insert into", {}},
  };
  spec.example = "{type: sqlite, inputs: [classify], path: out/iris.db, table: iris_prediction}";
  spec.make_sink = [](const NodeConfig& node) -> Result<std::unique_ptr<SinkNode>> {
    return std::unique_ptr<SinkNode>(std::make_unique<SqliteSink>(node));
  };
  registry.Add(std::move(spec));
}

}  // namespace sluice
