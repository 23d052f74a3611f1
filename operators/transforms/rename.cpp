// rename: gives fields new names. Only the schema changes; every column is shared.
#include "operators/builtin.h"
#include "operators/transforms/field_check.h"

namespace sluice {
namespace {

class RenameRuntime : public TransformRuntime {
 public:
  explicit RenameRuntime(SchemaPtr out) : out_(std::move(out)) {}
  Result<BatchPtr> Process(const BatchPtr& in, NodeContext&) const override {
    return BatchPtr(in->WithColumns(out_, in->columns()));
  }

 private:
  SchemaPtr out_;
};

class Rename : public TransformNode {
 public:
  explicit Rename(const NodeConfig& node) : node_(node) {}

  Result<SchemaPtr> OutputSchema(const SchemaPtr& input) override {
    auto pairs = node_.StringMap("fields");
    if (pairs.empty()) return node_.Error("fields", "names no field to rename");
    std::vector<Field> fields = input->fields();
    YAML::Node map = node_.Raw("fields");
    for (const auto& [from, to] : pairs) {
      int i = input->IndexOf(from);
      Mark m = Mark::Of(node_.mark.file, map[from]);
      if (i < 0) {
        return Status::InvalidConfig(fmt::format("{}: {}: {}", node_.MarkOf("fields").ToString(),
                                                 node_.Prefix(),
                                                 NotAFieldMessage(node_, from, *input)));
      }
      if (to.empty()) {
        return Status::InvalidConfig(fmt::format("{}: {}: the new name of '{}' is empty",
                                                 m.ToString(), node_.Prefix(), from));
      }
      fields[i].name = to;
    }
    for (size_t a = 0; a < fields.size(); ++a) {
      for (size_t b = a + 1; b < fields.size(); ++b) {
        if (fields[a].name == fields[b].name) {
          return node_.Error("fields",
                             fmt::format("two fields would be named '{}'", fields[a].name));
        }
      }
    }
    out_ = std::make_shared<const Schema>(std::move(fields));
    return out_;
  }

  Result<std::unique_ptr<TransformRuntime>> Build() const override {
    return std::unique_ptr<TransformRuntime>(std::make_unique<RenameRuntime>(out_));
  }

 private:
  const NodeConfig& node_;
  SchemaPtr out_;
};

}  // namespace

void RegisterRename(Registry& registry) {
  OperatorSpec spec;
  spec.name = "rename";
  spec.role = Role::kTransform;
  spec.summary = "Renames fields: a mapping of old name to new name.";
  spec.parallel = true;
  spec.fields = {
      {"fields",
       ConfigType::kStringMap,
       true,
       "",
       "old name: new name, for each renamed field",
       {}},
  };
  spec.example = "{type: rename, inputs: [classify], fields: {iris_class: predicted_class}}";
  spec.make_transform = [](const NodeConfig& node) -> Result<std::unique_ptr<TransformNode>> {
    return std::unique_ptr<TransformNode>(std::make_unique<Rename>(node));
  };
  registry.Add(std::move(spec));
}

}  // namespace sluice
