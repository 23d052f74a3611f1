// drop-fields: removes fields from every row. Dropping a field is dropping a column; the other
// columns are shared with the input batch, not copied.
#include <algorithm>

#include <fmt/format.h>

#include "operators/builtin.h"
#include "operators/transforms/field_check.h"

namespace sluice {
namespace {

class DropFieldsRuntime : public TransformRuntime {
 public:
  DropFieldsRuntime(SchemaPtr out, std::vector<size_t> keep)
      : out_(std::move(out)), keep_(std::move(keep)) {}
  Result<BatchPtr> Process(const BatchPtr& in, NodeContext&) const override {
    std::vector<ColumnPtr> cols;
    cols.reserve(keep_.size());
    for (size_t i : keep_) cols.push_back(in->columns()[i]);
    return BatchPtr(in->WithColumns(out_, std::move(cols)));
  }

 private:
  SchemaPtr out_;
  std::vector<size_t> keep_;
};

class DropFields : public TransformNode {
 public:
  explicit DropFields(const NodeConfig& node) : node_(node) {}

  Result<SchemaPtr> OutputSchema(const SchemaPtr& input) override {
    std::vector<std::string> drop = node_.StringList("fields");
    if (drop.empty()) return node_.Error("fields", "names no field to drop");
    for (size_t i = 0; i < drop.size(); ++i) {
      if (std::find(drop.begin(), drop.begin() + i, drop[i]) != drop.begin() + i)
        return node_.Error("fields", fmt::format("names '{}' twice", drop[i]));
    }
    SLUICE_RETURN_IF_ERROR(CheckFieldsExist(node_, "fields", drop, *input));
    std::vector<bool> dropped(input->size(), false);
    for (const auto& name : drop) {
      for (size_t i : input->Resolve(name)) dropped[i] = true;
    }
    std::vector<Field> fields;
    keep_.clear();
    for (size_t i = 0; i < input->size(); ++i) {
      if (dropped[i]) continue;
      fields.push_back(input->field(i));
      keep_.push_back(i);
    }
    if (fields.empty()) return node_.Error("fields", "drops every field; nothing would be left");
    out_ = std::make_shared<const Schema>(std::move(fields));
    return out_;
  }

  Result<std::unique_ptr<TransformRuntime>> Build() const override {
    return std::unique_ptr<TransformRuntime>(std::make_unique<DropFieldsRuntime>(out_, keep_));
  }

 private:
  const NodeConfig& node_;
  SchemaPtr out_;
  std::vector<size_t> keep_;
};

}  // namespace

void RegisterDropFields(Registry& registry) {
  OperatorSpec spec;
  spec.name = "drop-fields";
  spec.role = Role::kTransform;
  spec.summary = "Removes the named fields from every row.";
  spec.parallel = true;
  spec.fields = {
      {"fields", ConfigType::kStringList, true, "",
       "names of the fields or nested objects to remove", {}},
  };
  spec.example = "{type: drop-fields, inputs: [iris_data], fields: [id, target]}";
  spec.make_transform = [](const NodeConfig& node) -> Result<std::unique_ptr<TransformNode>> {
    return std::unique_ptr<TransformNode>(std::make_unique<DropFields>(node));
  };
  registry.Add(std::move(spec));
}

}  // namespace sluice
