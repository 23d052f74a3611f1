// postgres: reads a table incrementally, in the order of an increasing column (an id or a
// timestamp), the way Kafka Connect's JDBC source does in incrementing/timestamp mode. Each row
// is read as its JSON object and decoded by the json format into the record schema: a JSON
// Schema file, or one derived from the table's columns. The position (the last acknowledged
// value, plus one) is stored in a positions table in the same database once every sink has
// written the rows before it, and a restart resumes from it: at-least-once.
//
// Phases: parsing and planning touch no database unless the schema must be derived from the
// table; building (OpenReader) connects, checks the table, the columns and the increasing
// column's type, and reads the stored position. The reading itself is in
// operators/postgres/incremental_reader.h.
#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "engine/formats.h"
#include "engine/log.h"
#include "operators/builtin.h"
#include "operators/postgres/common.h"
#include "operators/postgres/incremental_reader.h"
#include "operators/sinks/postgres_copy.h"

namespace sluice {
namespace {

struct PgSourceConfig {
  std::string url;                     ///< the user's url with Sluice's options
  std::string user_url;                ///< libpq connection string or URI, as configured
  PgTable table;                       ///< [schema.]table to read
  std::string column;                  ///< the increasing column
  std::string schema_path;             ///< JSON Schema of the records; empty: from the table
  std::vector<std::string> columns;    ///< columns to read; empty: the schema's fields, or all
  bool start_latest = false;           ///< start: latest
  bool follow = true;                  ///< keep polling once caught up
  int64_t poll_interval_ms = 1000;     ///< wait between polls once caught up
  PgTable positions;                   ///< where the position is stored
  int64_t connect_timeout_ms = 30000;  ///< wait for the server at start; 0: forever
};

// A column as the catalog describes it.
struct PgColumn {
  std::string name;
  std::string type;   // pg_type name of the (base) type: int4, timestamptz, ...
  std::string shown;  // as SQL spells it: integer, character varying(20), ...
  bool nullable = true;
  bool is_enum = false;
};

// The Sluice type a column's JSON decodes into; nullopt when none does.
std::optional<TypeId> TypeOfColumn(const PgColumn& c) {
  static const std::map<std::string, TypeId> kTypes = {
      {"int2", TypeId::kInt64},
      {"int4", TypeId::kInt64},
      {"int8", TypeId::kInt64},
      {"float4", TypeId::kFloat64},
      {"float8", TypeId::kFloat64},
      {"numeric", TypeId::kFloat64},
      {"bool", TypeId::kBool},
      {"text", TypeId::kString},
      {"varchar", TypeId::kString},
      {"bpchar", TypeId::kString},
      {"name", TypeId::kString},
      {"uuid", TypeId::kString},
      {"citext", TypeId::kString},
      {"timestamp", TypeId::kTimestamp},
      {"timestamptz", TypeId::kTimestamp},
      {"date", TypeId::kTimestamp},
  };
  if (c.is_enum) return TypeId::kString;
  auto it = kTypes.find(c.type);
  if (it == kTypes.end()) return std::nullopt;
  return it->second;
}

// Whether field type `field` can hold the column's values (as to_json writes them).
bool Decodes(const PgColumn& c, TypeId field) {
  auto t = TypeOfColumn(c);
  if (!t) return false;
  return *t == field || (field == TypeId::kFloat64 && *t == TypeId::kInt64);
}

std::optional<PgPositionKind> PositionKindOf(const PgColumn& c) {
  if (c.type == "int2" || c.type == "int4" || c.type == "int8") return PgPositionKind::kInteger;
  if (c.type == "timestamp") return PgPositionKind::kTimestamp;
  if (c.type == "timestamptz") return PgPositionKind::kTimestampTz;
  return std::nullopt;
}

// The table's columns in order; nullopt when there is no such table (or view).
std::optional<std::vector<PgColumn>> DescribeTable(pqxx::transaction_base& tx,
                                                   const PgTable& table) {
  pqxx::result exists = tx.exec_params("SELECT to_regclass($1) IS NOT NULL", table.Quoted());
  if (!exists[0][0].as<bool>()) return std::nullopt;
  pqxx::result r = tx.exec_params(
      "SELECT a.attname, COALESCE(bt.typname, t.typname), format_type(a.atttypid, a.atttypmod), "
      "NOT a.attnotnull, COALESCE(bt.typtype, t.typtype) = 'e' "
      "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
      "LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype "
      "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
      "ORDER BY a.attnum",
      table.Quoted());
  std::vector<PgColumn> out;
  for (const auto& row : r) {
    out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
                   row[3].as<bool>(), row[4].as<bool>()});
  }
  return out;
}

// Connects, retrying with backoff for up to `timeout_ms` (0: forever); `bound` names the
// setting the time comes from, for the error.
Result<std::unique_ptr<pqxx::connection>> ConnectWithin(
    const std::string& url, int64_t timeout_ms, const std::string& node,
    const char* bound = "connect_timeout_ms") {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto backoff = std::chrono::milliseconds(200);
  bool told = false;
  for (;;) {
    std::string why;
    try {
      return std::make_unique<pqxx::connection>(url);
    } catch (const std::exception& e) {
      why = PgFirstLine(e.what());
    }
    if (timeout_ms > 0 && std::chrono::steady_clock::now() + backoff > deadline) {
      return Status::Unavailable(fmt::format(
          "cannot connect to PostgreSQL within {} ({} ms): {}", bound, timeout_ms, why));
    }
    if (!told) {
      Log(LogLevel::kWarn, fmt::format("source '{}': waiting for PostgreSQL: {}", node, why));
      told = true;
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(2));
  }
}

std::string Names(const std::vector<PgColumn>& cols) {
  std::string out;
  for (const auto& c : cols) out += (out.empty() ? "" : ", ") + c.name;
  return out;
}

const PgColumn* FindColumn(const std::vector<PgColumn>& cols, const std::string& name) {
  for (const auto& c : cols)
    if (c.name == name) return &c;
  return nullptr;
}

class PgSource : public SourceNode {
 public:
  PgSource(const NodeConfig& node, PgSourceConfig cfg) : node_(node), cfg_(std::move(cfg)) {}

  Result<SchemaPtr> OutputSchema() override {
    if (!cfg_.schema_path.empty()) return SchemaFromFile();
    return SchemaFromTable();
  }

  Result<std::unique_ptr<Decoder>> MakeDecoder() const override {
    return MakeFormatDecoder(Format::kJson, schema_);
  }

  Result<std::unique_ptr<SourceReader>> OpenReader() const override {
    auto conn = ConnectWithin(cfg_.url, cfg_.connect_timeout_ms, node_.name);
    if (!conn.ok()) return Located(conn.status().code(), "url", conn.status().message());
    PgReadSpec spec;
    spec.url = cfg_.url;
    spec.table = cfg_.table;
    spec.column = cfg_.column;
    spec.columns = selected_;
    spec.follow = cfg_.follow;
    spec.poll_interval = std::chrono::milliseconds(cfg_.poll_interval_ms);
    PgPositionTable positions(cfg_.positions, node_.pipeline, node_.name);
    std::optional<int64_t> next;
    std::string step = "reading the table's columns";
    try {
      {
        pqxx::read_transaction tx(**conn);
        SLUICE_RETURN_IF_ERROR(CheckTable(tx, &spec.kind));
      }
      step = fmt::format("creating the positions table {}", cfg_.positions.Shown());
      positions.Ensure(**conn);
      step = fmt::format("reading the stored position from {}", cfg_.positions.Shown());
      pqxx::work tx(**conn);
      const PgPositionKey key{cfg_.table.Shown(), 0};
      next = positions.LoadOne(tx, key);
      const std::string col = QuotePgIdent(cfg_.column);
      const bool timestamp = spec.kind != PgPositionKind::kInteger;
      step = fmt::format("reading table {}", cfg_.table.Shown());
      // Two counts an index on the column answers without a scan.
      pqxx::row unplaced = tx.exec1(fmt::format(
          "SELECT (SELECT count(*) FROM {0} WHERE {1} IS NULL), {2}", cfg_.table.Quoted(), col,
          timestamp ? fmt::format("(SELECT count(*) FROM {} WHERE {} IN ('infinity', "
                                  "'-infinity'))",
                                  cfg_.table.Quoted(), col)
                    : "0"));
      const int64_t nulls = unplaced[0].as<int64_t>(), infinite = unplaced[1].as<int64_t>();
      if (nulls + infinite > 0) {
        std::string what;
        if (nulls) what = fmt::format("{} with a NULL", nulls);
        if (infinite) what += fmt::format("{}{} with an infinite", nulls ? " and " : "", infinite);
        Log(LogLevel::kWarn,
            fmt::format("source '{}': rows of {} that are never read: {} '{}' (a row needs a "
                        "value of the increasing column to have a position)",
                        node_.name, cfg_.table.Shown(), what, cfg_.column));
      }
      if (!next && cfg_.start_latest) {
        // Stored at once: a restart before the first new row must not move the start on.
        pqxx::row max = tx.exec1(
            fmt::format("SELECT max({}) FROM {} WHERE {} IS NOT NULL{}",
                        PgIncrementalReader::PositionExpr(spec.kind, col), cfg_.table.Quoted(), col,
                        timestamp ? fmt::format(" AND isfinite({})", col) : ""));
        if (!max[0].is_null()) {
          next = max[0].as<int64_t>() + 1;
          positions.Store(tx, {{key, *next}});
        }
      }
      tx.commit();
    } catch (const pqxx::broken_connection& e) {
      return Located(StatusCode::kUnavailable, "url",
                     fmt::format("PostgreSQL: {}: {}", step, PgFirstLine(e.what())));
    } catch (const std::exception& e) {
      return Located(StatusCode::kIoError, "table",
                     fmt::format("PostgreSQL: {}: {}", step, PgFirstLine(e.what())));
    }
    Log(LogLevel::kInfo,
        fmt::format("source '{}': reading {} by '{}' {}", node_.name, cfg_.table.Shown(),
                    cfg_.column, DescribeStart(next, spec.kind)));
    return std::unique_ptr<SourceReader>(std::make_unique<PgIncrementalReader>(
        std::move(spec), node_.name, std::move(positions), next, std::move(*conn)));
  }

  Result<std::string> Probe(const ProbeOptions& options) const override {
    const int64_t within = cfg_.connect_timeout_ms > 0
                               ? std::min(options.timeout_ms, cfg_.connect_timeout_ms)
                               : options.timeout_ms;
    // Each attempt is bounded by the check's timeout too (unless the url sets a
    // connect_timeout), as the sink's check is: a server that takes the connection and never
    // answers would otherwise hold it for the source's own 10 s.
    auto conn = ConnectWithin(PgConnectionString(cfg_.user_url, PgConnectTimeoutSeconds(within)),
                              within, node_.name,
                              within < cfg_.connect_timeout_ms || cfg_.connect_timeout_ms == 0
                                  ? "--connect-timeout-ms"
                                  : "connect_timeout_ms");
    if (!conn.ok()) return Located(conn.status().code(), "url", conn.status().message());
    try {
      pqxx::read_transaction tx(**conn);
      PgPositionKind kind;
      SLUICE_RETURN_IF_ERROR(CheckTable(tx, &kind));
      std::string lacked = PgLackedPrivilege(tx, cfg_.table, false, {"SELECT"});
      if (!lacked.empty()) return node_.Error("table", lacked);
      // The position is stored as the source reads: created at start when missing.
      lacked = PgLackedPrivilege(tx, cfg_.positions, true, {"SELECT", "INSERT", "UPDATE"});
      if (!lacked.empty()) {
        return node_.Error(node_.Has("positions_table") ? "positions_table" : "table", lacked);
      }
    } catch (const std::exception& e) {
      return Located(StatusCode::kUnavailable, "table",
                     fmt::format("PostgreSQL: reading the columns of table {}: {}",
                                 cfg_.table.Shown(), PgFirstLine(e.what())));
    }
    return fmt::format("table {} has the columns read, and '{}' to follow", cfg_.table.Shown(),
                       cfg_.column);
  }

 private:
  // "file:line:col: postgres 'name': message" with a code of its own (NodeConfig::Error makes
  // invalid-config errors; a server that does not answer is not one).
  Status Located(StatusCode code, const std::string& key, const std::string& message) const {
    return Status(code,
                  fmt::format("{}: {}: {}", node_.MarkOf(key).ToString(), node_.Prefix(), message));
  }

  static std::string DescribeStart(const std::optional<int64_t>& next, PgPositionKind kind) {
    if (!next) return "from the first row";
    return "from " + PgIncrementalReader::ShowPosition(kind, *next);
  }

  Result<SchemaPtr> SchemaFromFile() {
    auto schema = LoadJsonSchemaFile(cfg_.schema_path);
    if (!schema.ok()) return node_.Error("schema", schema.status().message());
    if (cfg_.columns.empty()) {
      selected_.clear();
      for (const auto& f : (*schema)->fields()) selected_.push_back(f.name);
    } else {
      for (const auto& f : (*schema)->fields()) {
        if (std::find(cfg_.columns.begin(), cfg_.columns.end(), f.name) != cfg_.columns.end())
          continue;
        return node_.Error("columns",
                           fmt::format("field '{}' of the schema is not among the columns read "
                                       "({}); add it, or leave `columns` out to read the "
                                       "schema's fields",
                                       f.name, fmt::join(cfg_.columns, ", ")));
      }
      selected_ = cfg_.columns;
    }
    schema_ = *schema;
    return schema_;
  }

  // Without a schema file the table is the schema: this is the one check that needs the
  // database while planning.
  Result<SchemaPtr> SchemaFromTable() {
    auto conn = ConnectWithin(cfg_.url, cfg_.connect_timeout_ms, node_.name);
    if (!conn.ok()) {
      return node_.Error("table", fmt::format("the record schema comes from the table's columns, "
                                              "which needs the database: {}; give `schema` (a "
                                              "JSON Schema file) to plan without it",
                                              conn.status().message()));
    }
    std::vector<PgColumn> cols;
    try {
      pqxx::read_transaction tx(**conn);
      auto described = DescribeTable(tx, cfg_.table);
      if (!described) return NoTable();
      cols = std::move(*described);
    } catch (const std::exception& e) {
      return node_.Error("table", fmt::format("reading the columns of table {}: {}",
                                              cfg_.table.Shown(), PgFirstLine(e.what())));
    }
    selected_ = cfg_.columns;
    if (selected_.empty())
      for (const auto& c : cols) selected_.push_back(c.name);
    std::vector<Field> fields;
    for (const auto& name : selected_) {
      const PgColumn* c = FindColumn(cols, name);
      if (!c) return NoColumn("columns", name, cols);
      auto type = TypeOfColumn(*c);
      if (!type) {
        return node_.Error(
            cfg_.columns.empty() ? "table" : "columns",
            fmt::format("column '{}' of table {} is {}, which has no Sluice type (integers, "
                        "floating point and numeric, boolean, text, uuid, date and timestamps "
                        "do); leave it out with `columns`, or give a `schema`",
                        name, cfg_.table.Shown(), c->shown));
      }
      fields.push_back({name, *type, c->nullable});
    }
    schema_ = std::make_shared<Schema>(std::move(fields));
    return schema_;
  }

  // Checks the table, the increasing column and the columns read against the schema.
  Status CheckTable(pqxx::transaction_base& tx, PgPositionKind* kind) const {
    auto cols = DescribeTable(tx, cfg_.table);
    if (!cols) return NoTable();
    const PgColumn* inc = FindColumn(*cols, cfg_.column);
    if (!inc) return NoColumn("column", cfg_.column, *cols);
    auto k = PositionKindOf(*inc);
    if (!k) {
      return node_.Error(
          "column",
          fmt::format("column '{}' of table {} is {}; the increasing column must be an integer "
                      "(smallint, integer, bigint) or a timestamp (timestamp, timestamptz)",
                      cfg_.column, cfg_.table.Shown(), inc->shown));
    }
    *kind = *k;
    for (size_t i = 0; i < selected_.size(); ++i) {
      const PgColumn* c = FindColumn(*cols, selected_[i]);
      if (!c) return NoColumn(cfg_.columns.empty() ? "schema" : "columns", selected_[i], *cols);
      const int f = schema_->IndexOf(selected_[i]);
      if (f < 0) continue;  // read for the dead-letter output only
      const Field& field = schema_->field(static_cast<size_t>(f));
      if (!Decodes(*c, field.type)) {
        return node_.Error(
            cfg_.schema_path.empty() ? "table" : "schema",
            fmt::format("column '{}' of table {} is {}, which does not decode "
                        "into field '{}' ({})",
                        c->name, cfg_.table.Shown(), c->shown, field.name, TypeName(field.type)));
      }
    }
    return Status::Ok();
  }

  Status NoTable() const {
    return node_.Error("table", fmt::format("table {} does not exist (or is not visible to this "
                                            "user)",
                                            cfg_.table.Shown()));
  }

  Status NoColumn(const std::string& key, const std::string& name,
                  const std::vector<PgColumn>& cols) const {
    std::vector<std::string> names;
    for (const auto& c : cols) names.push_back(c.name);
    auto near = ClosestMatch(name, names);
    return node_.Error(
        key, fmt::format("table {} has no column '{}'{} (columns: {})", cfg_.table.Shown(), name,
                         near ? fmt::format("; did you mean '{}'?", *near) : "", Names(cols)));
  }

  const NodeConfig& node_;
  PgSourceConfig cfg_;
  SchemaPtr schema_;
  std::vector<std::string> selected_;  // columns read into each record, in order
};

Result<std::unique_ptr<SourceNode>> MakePgSource(const NodeConfig& node) {
  PgSourceConfig cfg;
  cfg.connect_timeout_ms = node.Int("connect_timeout_ms");
  if (cfg.connect_timeout_ms < 0) {
    return node.Error("connect_timeout_ms",
                      fmt::format("'connect_timeout_ms' must be 0 (wait forever) or more, found {}",
                                  cfg.connect_timeout_ms));
  }
  // Sluice's options (PgConnectionString): UTF-8 strings whatever the database's encoding,
  // keepalives, and a connect_timeout from connect_timeout_ms, in whole seconds between libpq's
  // least (2) and the sink's (10), so that one attempt cannot hold the retries long past
  // their deadline.
  cfg.user_url = node.String("url");
  cfg.url = PgConnectionString(cfg.user_url,
                               std::clamp<int64_t>(cfg.connect_timeout_ms / 1000, 2, 10));
  const std::string table = node.String("table");
  auto parsed = PgTable::Parse(table);
  if (!parsed) {
    return node.Error("table",
                      fmt::format("'{}' is not a table name (table or schema.table)", table));
  }
  cfg.table = *parsed;
  cfg.column = node.String("column");
  if (cfg.column.empty()) {
    return node.Error("column", "'column' is empty; name the increasing column rows are read by");
  }
  if (node.Has("schema")) cfg.schema_path = node.Path("schema");
  cfg.columns = node.StringList("columns");
  std::set<std::string> seen;
  for (const auto& c : cfg.columns) {
    if (c.empty()) return node.Error("columns", "a column name is empty");
    if (!seen.insert(c).second) {
      return node.Error("columns", fmt::format("column '{}' is listed twice", c));
    }
  }
  if (node.Has("columns") && cfg.columns.empty()) {
    return node.Error("columns", "lists no column; leave it out to read every column");
  }
  cfg.start_latest = node.String("start") == "latest";
  cfg.follow = node.Bool("follow");
  cfg.poll_interval_ms = node.Int("poll_interval_ms");
  if (cfg.poll_interval_ms < 1) {
    return node.Error("poll_interval_ms", fmt::format("'poll_interval_ms' must be at least 1, "
                                                      "found {}",
                                                      cfg.poll_interval_ms));
  }
  // A bare name is in the schema of the table read, next to it.
  const std::string positions = node.String("positions_table");
  auto pos = PgTable::Parse(positions);
  if (!pos) {
    return node.Error("positions_table",
                      fmt::format("'{}' is not a table name (table or schema.table)", positions));
  }
  if (positions.find('.') == std::string::npos) pos->schema = cfg.table.schema;
  cfg.positions = *pos;
  return std::unique_ptr<SourceNode>(std::make_unique<PgSource>(node, std::move(cfg)));
}

}  // namespace

void RegisterPostgresSource(Registry& registry) {
  OperatorSpec spec;
  spec.name = "postgres";
  spec.role = Role::kSource;
  spec.summary =
      "Reads a table incrementally by an increasing column; the position is stored in the "
      "database.";
  spec.description =
      "Rows are read in the order of `column`, an integer (a serial or identity id) or a "
      "timestamp, at most `settings.batch_size` rows per query; each row is read as its JSON "
      "object and decoded into `schema` (a JSON Schema file; without one the schema is derived "
      "from the table's columns, which needs the database to plan). Once caught up, the table "
      "is polled every `poll_interval_ms` for new rows; with `follow: false` the run ends "
      "instead. The position (the last value every sink downstream has written, plus one; "
      "timestamps as microseconds since the epoch) is stored in `positions_table`, keyed by "
      "pipeline, node and table, and a restart resumes from it: at-least-once. Rows with a NULL "
      "(or infinite) `column` have no position and are never read; the start-up log counts "
      "them. Rows that commit out of the column's order (concurrent writers) can be missed, as "
      "with Kafka Connect's JDBC source: see [PostgreSQL tables](pipelines.md#postgresql-tables). "
      "A table, column or type that does not fit is a start-up error; a database that goes "
      "away while running pauses the pipeline and is retried.";
  spec.fields = {
      {"url",
       ConfigType::kString,
       true,
       "",
       "libpq connection string or URI, e.g. postgresql://user@host:5432/db",
       {}},
      {"table",
       ConfigType::kString,
       true,
       "",
       "table (or view) to read, as table or schema.table",
       {}},
      {"column",
       ConfigType::kString,
       true,
       "",
       "the increasing column rows are read in order of: an integer or a timestamp",
       {}},
      {"schema",
       ConfigType::kPath,
       false,
       "",
       "JSON Schema file of the records; default: derived from the table's columns",
       {}},
      {"columns",
       ConfigType::kStringList,
       false,
       "",
       "columns to read; default: the schema's fields, or every column",
       {}},
      {"start",
       ConfigType::kString,
       false,
       "earliest",
       "where to start without a stored position: the first row, or after the last one",
       {"earliest", "latest"}},
      {"follow",
       ConfigType::kBool,
       false,
       "true",
       "keep polling for new rows once caught up; false ends the run there",
       {}},
      {"poll_interval_ms",
       ConfigType::kInt,
       false,
       "1000",
       "wait between queries once caught up with the table",
       {}},
      {"positions_table",
       ConfigType::kString,
       false,
       "sluice_positions",
       "table that stores the position (created if missing); a bare name is in the table's schema",
       {}},
      {"connect_timeout_ms",
       ConfigType::kInt,
       false,
       "30000",
       "how long to wait at start for the server; 0 waits (and retries) forever",
       {}},
  };
  spec.example =
      "{type: postgres, url: \"${DATABASE_URL:-postgresql://127.0.0.1/iris}\", table: iris_data, "
      "column: id, schema: ../schemas/iris_data.json}";
  spec.make_source = MakePgSource;
  registry.Add(std::move(spec));
}

}  // namespace sluice
