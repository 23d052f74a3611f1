// stdout: writes rows as JSON lines to standard output, for inspection and for piping into
// other tools. Progress and logs go to stderr, so stdout carries rows only.
#include "operators/builtin.h"
#include "operators/sinks/jsonl_writer.h"

namespace sluice {
namespace {

class StdoutSinkRuntime : public SinkRuntime {
 public:
  StdoutSinkRuntime() : writer_(stdout, "standard output", false, false) {}
  bool prepares() const override { return true; }
  Result<std::string> Prepare(const Batch& batch) const override {
    return JsonlWriter::Encode(batch);
  }
  Status Write(const Batch&, const std::string& bytes, NodeContext&) override {
    return writer_.Write(bytes);
  }
  Status Flush() override { return writer_.Flush(); }

 private:
  JsonlWriter writer_;
};

class StdoutSink : public SinkNode {
 public:
  Status CheckInput(const SchemaPtr&) override { return Status::Ok(); }
  Result<std::unique_ptr<SinkRuntime>> Open(const SchemaPtr&) const override {
    return std::unique_ptr<SinkRuntime>(std::make_unique<StdoutSinkRuntime>());
  }
};

}  // namespace

void RegisterStdoutSink(Registry& registry) {
  OperatorSpec spec;
  spec.name = "stdout";
  spec.role = Role::kSink;
  spec.summary = "Writes rows as JSON lines to standard output.";
  spec.example = "{type: stdout, inputs: [classify]}";
  spec.make_sink = [](const NodeConfig&) -> Result<std::unique_ptr<SinkNode>> {
    return std::unique_ptr<SinkNode>(std::make_unique<StdoutSink>());
  };
  registry.Add(std::move(spec));
}

}  // namespace sluice
