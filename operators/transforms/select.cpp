// select: keeps only the named fields, in the order given; naming a nested object keeps all of its
// fields. Columns are shared, not copied.
#include "operators/builtin.h"
#include "operators/transforms/field_check.h"

namespace sluice {
namespace {

class SelectRuntime : public TransformRuntime {
 public:
  SelectRuntime(SchemaPtr out, std::vector<size_t> pick) : out_(std::move(out)), pick_(pick) {}
  Result<BatchPtr> Process(const BatchPtr& in, NodeContext&) const override {
    std::vector<ColumnPtr> cols;
    cols.reserve(pick_.size());
    for (size_t i : pick_) cols.push_back(in->columns()[i]);
    return BatchPtr(in->WithColumns(out_, std::move(cols)));
  }

 private:
  SchemaPtr out_;
  std::vector<size_t> pick_;
};

class Select : public TransformNode {
 public:
  explicit Select(const NodeConfig& node) : node_(node) {}

  Result<SchemaPtr> OutputSchema(const SchemaPtr& input) override {
    std::vector<std::string> names = node_.StringList("fields");
    SLUICE_RETURN_IF_ERROR(CheckFieldsExist(node_, "fields", names, *input));
    std::vector<Field> fields;
    pick_.clear();
    for (const auto& n : names) {
      for (size_t i : input->Resolve(n)) {
        if (std::find(pick_.begin(), pick_.end(), i) != pick_.end()) {
          return node_.Error("fields", fmt::format("'{}' is selected twice", input->field(i).name));
        }
        pick_.push_back(i);
        fields.push_back(input->field(i));
      }
    }
    if (fields.empty()) return node_.Error("fields", "selects no field");
    out_ = std::make_shared<const Schema>(std::move(fields));
    return out_;
  }

  Result<std::unique_ptr<TransformRuntime>> Build() const override {
    return std::unique_ptr<TransformRuntime>(std::make_unique<SelectRuntime>(out_, pick_));
  }

 private:
  const NodeConfig& node_;
  SchemaPtr out_;
  std::vector<size_t> pick_;
};

}  // namespace

void RegisterSelect(Registry& registry) {
  OperatorSpec spec;
  spec.name = "select";
  spec.role = Role::kTransform;
  spec.summary = "Keeps only the named fields, in the order given.";
  spec.parallel = true;
  spec.fields = {
      {"fields", ConfigType::kStringList, true, "",
       "names of the fields or nested objects to keep, in order", {}},
  };
  spec.example = "{type: select, inputs: [classify], fields: [timestamp, iris_class]}";
  spec.make_transform = [](const NodeConfig& node) -> Result<std::unique_ptr<TransformNode>> {
    return std::unique_ptr<TransformNode>(std::make_unique<Select>(node));
  };
  registry.Add(std::move(spec));
}

}  // namespace sluice
