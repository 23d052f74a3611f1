// file: reads records from a file (JSON lines, Kafka Connect envelopes, or CSV), decoding them
// into the declared schema; can replay the file several times. Reading is serial; decoding runs
// in parallel on batches.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "engine/formats.h"
#include "operators/builtin.h"

namespace sluice {
namespace {

struct FileSourceConfig {
  std::string path;               ///< file to read; "-" for standard input
  Format format = Format::kJson;  ///< json, connect-json, csv, string or dataframe-split
  std::string schema_path;        ///< JSON Schema of the records
  int64_t repeat = 1;             ///< times to replay the file
  char csv_delimiter = ',';
  bool csv_header = true;
};

constexpr size_t kReadBlock = 1 << 20;

class FileReader : public SourceReader {
 public:
  FileReader(FileSourceConfig cfg, FILE* file) : cfg_(std::move(cfg)), file_(file) {}
  ~FileReader() override {
    if (file_ && file_ != stdin) std::fclose(file_);
  }

  Result<std::shared_ptr<RawRecords>> Read(size_t max_records) override {
    auto out = std::make_shared<RawRecords>();
    out->origin = cfg_.path;
    out->header = header_;
    out->offsets.reserve(max_records + 1);
    out->positions.reserve(max_records);
    out->offsets.push_back(0);
    // Sized from the previous batch, so the record bytes are copied once, not regrown.
    out->data.reserve(expected_bytes_);
    while (out->count() < max_records) {
      std::string_view line;
      bool got = false;
      SLUICE_RETURN_IF_ERROR(NextLine(&line, &got));
      if (!got) break;
      ++line_no_;
      if (IsBlank(line)) continue;
      if (cfg_.format == Format::kCsv && cfg_.csv_header && line_no_ == 1) {
        header_ = std::string(line);
        out->header = header_;
        continue;
      }
      out->Add(line, line_no_);
    }
    if (out->count() == 0) return std::shared_ptr<RawRecords>();
    expected_bytes_ = out->data.size() + out->data.size() / 8 + kPadding;
    // Room past the last record lets the JSON parser read it in place.
    out->data.reserve(out->data.size() + kPadding);
    return out;
  }

 private:
  static constexpr size_t kPadding = 64;

  static bool IsBlank(std::string_view s) {
    for (char c : s)
      if (!std::isspace(static_cast<unsigned char>(c))) return false;
    return true;
  }

  Status NextLine(std::string_view* line, bool* got) {
    for (;;) {
      const char* start = buf_.get() + begin_;
      const char* nl = end_ > begin_
                           ? static_cast<const char*>(std::memchr(start, '\n', end_ - begin_))
                           : nullptr;
      if (nl) {
        *line = std::string_view(start, static_cast<size_t>(nl - start));
        if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
        begin_ = static_cast<size_t>(nl - buf_.get()) + 1;
        *got = true;
        return Status::Ok();
      }
      if (eof_) {
        if (begin_ < end_) {  // a last line without a newline
          *line = std::string_view(start, end_ - begin_);
          begin_ = end_;
          *got = true;
          return Status::Ok();
        }
        if (++pass_ < cfg_.repeat && file_ != stdin) {
          std::rewind(file_);
          eof_ = false;
          line_no_ = 0;
          begin_ = end_ = 0;
          continue;
        }
        *got = false;
        return Status::Ok();
      }
      SLUICE_RETURN_IF_ERROR(Fill());
    }
  }

  // Moves the unread tail to the front and reads a block after it, straight into the buffer
  // (never zero-filled). The buffer only grows for a line longer than a block.
  Status Fill() {
    if (begin_ > 0) {
      std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (cap_ - end_ < kReadBlock) {
      size_t cap = std::max(cap_ * 2, end_ + kReadBlock);
      std::unique_ptr<char[]> bigger(new char[cap]);
      if (end_ > 0) std::memcpy(bigger.get(), buf_.get(), end_);
      buf_ = std::move(bigger);
      cap_ = cap;
    }
    size_t n = std::fread(buf_.get() + end_, 1, cap_ - end_, file_);
    end_ += n;
    if (n == 0 || std::feof(file_)) {
      if (std::ferror(file_)) {
        return Status::IoError(fmt::format("reading '{}': {}", cfg_.path, std::strerror(errno)));
      }
      eof_ = std::feof(file_) != 0;
    }
    return Status::Ok();
  }

  FileSourceConfig cfg_;
  FILE* file_;
  std::unique_ptr<char[]> buf_;  // bytes [begin_, end_) are read and not yet returned
  size_t cap_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
  size_t expected_bytes_ = 0;
  bool eof_ = false;
  int64_t pass_ = 0;
  int64_t line_no_ = 0;
  std::string header_;
};

class FileSource : public SourceNode {
 public:
  FileSource(const NodeConfig& node, FileSourceConfig cfg) : node_(node), cfg_(std::move(cfg)) {}

  Result<SchemaPtr> OutputSchema() override {
    auto schema = SourceSchema(cfg_.format, cfg_.schema_path);
    if (!schema.ok()) return node_.Error("schema", schema.status().message());
    schema_ = *schema;
    return schema_;
  }

  Result<std::unique_ptr<Decoder>> MakeDecoder() const override {
    CsvOptions csv{cfg_.csv_delimiter, cfg_.csv_header};
    return MakeFormatDecoder(cfg_.format, schema_, csv);
  }

  Result<std::string> Probe(const ProbeOptions&) const override {
    if (cfg_.path == "-") return std::string();
    FILE* f = std::fopen(cfg_.path.c_str(), "rb");
    if (!f) {
      return node_.Error("path", fmt::format("cannot open '{}': {}", cfg_.path,
                                             std::strerror(errno)));
    }
    std::fclose(f);
    std::error_code ec;
    const auto size = std::filesystem::file_size(cfg_.path, ec);
    return fmt::format("'{}' is readable ({} bytes)", cfg_.path, ec ? 0 : size);
  }

  Result<std::unique_ptr<SourceReader>> OpenReader() const override {
    FILE* f = cfg_.path == "-" ? stdin : std::fopen(cfg_.path.c_str(), "rb");
    if (!f) {
      return Status::NotFound(
          fmt::format("{}: cannot open '{}': {}", node_.Prefix(), cfg_.path, std::strerror(errno)));
    }
    return std::unique_ptr<SourceReader>(std::make_unique<FileReader>(cfg_, f));
  }

 private:
  const NodeConfig& node_;
  FileSourceConfig cfg_;
  SchemaPtr schema_;
};

Result<std::unique_ptr<SourceNode>> MakeFileSource(const NodeConfig& node) {
  FileSourceConfig cfg;
  cfg.path = node.Path("path");
  if (cfg.path.empty()) {
    return node.Error("path",
                      "'path' is empty; name the file to read, or \"-\" for standard "
                      "input");
  }
  if (std::filesystem::is_directory(cfg.path)) {
    return node.Error("path", fmt::format("'{}' is a folder; name the file to read", cfg.path));
  }
  cfg.format = *ParseFormat(node.String("format"));
  if (node.Has("schema")) cfg.schema_path = node.Path("schema");
  cfg.repeat = node.Int("repeat");
  if (cfg.repeat < 1) {
    return node.Error("repeat", fmt::format("'repeat' must be at least 1, found {}", cfg.repeat));
  }
  std::string delim = node.String("csv_delimiter");
  if (delim.size() != 1) {
    return node.Error("csv_delimiter",
                      fmt::format("'csv_delimiter' must be one character, found '{}'", delim));
  }
  if (delim == "\n" || delim == "\r" || delim == "\"") {
    return node.Error("csv_delimiter",
                      "'csv_delimiter' cannot be a line break or '\"': those end a row and quote "
                      "a field; use ',', ';', '|' or a tab (\"\\t\")");
  }
  cfg.csv_delimiter = delim[0];
  cfg.csv_header = node.Bool("csv_header");
  return std::unique_ptr<SourceNode>(std::make_unique<FileSource>(node, std::move(cfg)));
}

}  // namespace

void RegisterFileSource(Registry& registry) {
  OperatorSpec spec;
  spec.name = "file";
  spec.role = Role::kSource;
  spec.summary = "Reads records from a file: JSON lines, Kafka Connect envelopes, CSV or text.";
  spec.description =
      "Each line is one record, decoded into the fields of `schema` (a JSON Schema file); "
      "with `format: string` each line is kept as it is in one field, `value` (no schema). "
      "Records that are not valid in the format, miss a required field or hold a value of the "
      "wrong type go to the dead-letter output with the line number. `repeat` replays the "
      "file, for demos and load tests.";
  spec.parallel = true;  // decoding; reading is always serial
  spec.fields = {
      {"path", ConfigType::kPath, true, "", "file to read; \"-\" for standard input", {}},
      {"format", ConfigType::kString, false, "json",
       "record format: json (one object per line), connect-json (Kafka Connect "
       "JsonConverter envelope {schema, payload}), csv, string (the line as it is) or "
       "dataframe-split (a pandas DataFrame as to_json(orient=\"split\") writes it: one line, "
       "many rows)",
       FormatNames()},
      {"schema",
       ConfigType::kPath,
       false,
       "",
       "JSON Schema file describing the records (every format but string)",
       {}},
      {"repeat", ConfigType::kInt, false, "1", "times to read the file, start to end", {}},
      {"csv_delimiter", ConfigType::kString, false, ",", "field separator for csv", {}},
      {"csv_header",
       ConfigType::kBool,
       false,
       "true",
       "whether the first csv line names the columns",
       {}},
  };
  spec.example =
      "{type: file, path: data/iris_data.jsonl, format: connect-json, schema: "
      "../schemas/iris_data.json}";
  spec.make_source = MakeFileSource;
  registry.Add(std::move(spec));
}

}  // namespace sluice
