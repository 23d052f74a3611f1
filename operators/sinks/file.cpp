// file: writes rows as JSON lines to a file. Rows are buffered by stdio and made durable
// (fflush + fsync) when the pipeline drains.
#include <filesystem>

#include <fmt/format.h>

#include "operators/builtin.h"
#include "operators/sinks/jsonl_writer.h"

namespace sluice {
namespace {

class FileSinkRuntime : public SinkRuntime {
 public:
  FileSinkRuntime(std::unique_ptr<JsonlWriter> w, bool sync_each)
      : writer_(std::move(w)), sync_each_(sync_each) {}
  bool prepares() const override { return true; }
  Result<std::string> Prepare(const Batch& batch) const override {
    return JsonlWriter::Encode(batch);
  }
  Status Write(const Batch&, const std::string& bytes, NodeContext&) override {
    return writer_->Write(bytes, sync_each_);
  }
  Status Flush() override { return writer_->Flush(); }

 private:
  std::unique_ptr<JsonlWriter> writer_;
  bool sync_each_;
};

class FileSink : public SinkNode {
 public:
  explicit FileSink(const NodeConfig& node) : node_(node) {}
  Status CheckInput(const SchemaPtr&) override {
    const std::string path = node_.Path("path");
    if (path.empty()) return node_.Error("path", "'path' is empty; name the file to write");
    if (std::filesystem::is_directory(path)) {
      return node_.Error("path", fmt::format("'{}' is a folder; name a file in it", path));
    }
    return Status::Ok();
  }
  Result<std::string> Probe(const ProbeOptions&) const override {
    auto writable = CheckWritable(node_.Path("path"));
    if (!writable.ok()) return node_.Error("path", writable.status().message());
    return writable;
  }
  Result<std::unique_ptr<SinkRuntime>> Open(const SchemaPtr&) const override {
    std::string path = node_.Path("path");
    const char* mode = node_.String("mode") == "append" ? "ab" : "wb";
    Status dir = EnsureParentDir(path);
    if (!dir.ok()) return Status::IoError(fmt::format("{}: {}", node_.Prefix(), dir.message()));
    FILE* f = std::fopen(path.c_str(), mode);
    if (!f) {
      return Status::IoError(fmt::format("{}: cannot open '{}' for writing: {}", node_.Prefix(),
                                         path, std::strerror(errno)));
    }
    return std::unique_ptr<SinkRuntime>(std::make_unique<FileSinkRuntime>(
        std::make_unique<JsonlWriter>(f, path, true, true), node_.String("fsync") == "batch"));
  }

 private:
  const NodeConfig& node_;
};

}  // namespace

void RegisterFileSink(Registry& registry) {
  OperatorSpec spec;
  spec.name = "file";
  spec.role = Role::kSink;
  spec.summary = "Writes rows as JSON lines to a file.";
  spec.fields = {
      {"path", ConfigType::kPath, true, "", "file to write", {}},
      {"mode",
       ConfigType::kString,
       false,
       "truncate",
       "truncate: start the file afresh on each run; append: add to it",
       {"truncate", "append"}},
      {"fsync",
       ConfigType::kString,
       false,
       "drain",
       "drain: fsync when the pipeline drains (each batch still reaches the OS before it is "
       "acknowledged); batch: fsync every batch, to survive power loss",
       {"drain", "batch"}},
  };
  spec.example = "{type: file, inputs: [classify], path: out/predictions.jsonl}";
  spec.make_sink = [](const NodeConfig& node) -> Result<std::unique_ptr<SinkNode>> {
    return std::unique_ptr<SinkNode>(std::make_unique<FileSink>(node));
  };
  registry.Add(std::move(spec));
}

}  // namespace sluice
