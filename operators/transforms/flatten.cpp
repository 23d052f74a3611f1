// flatten: lifts the fields of nested objects to the top level of the row, renaming
// `ride.trip_distance` to `ride_trip_distance` (or to `trip_distance` without the prefix). Only
// the schema changes: every column is shared with the input batch.
#include <map>

#include <fmt/format.h>

#include "operators/builtin.h"
#include "operators/transforms/field_check.h"

namespace sluice {
namespace {

class FlattenRuntime : public TransformRuntime {
 public:
  explicit FlattenRuntime(SchemaPtr out) : out_(std::move(out)) {}
  Result<BatchPtr> Process(const BatchPtr& in, NodeContext&) const override {
    return BatchPtr(in->WithColumns(out_, in->columns()));
  }

 private:
  SchemaPtr out_;
};

class Flatten : public TransformNode {
 public:
  explicit Flatten(const NodeConfig& node) : node_(node) {}

  Result<SchemaPtr> OutputSchema(const SchemaPtr& input) override {
    const std::string sep = node_.String("separator");
    const bool prefix = node_.Bool("prefix");
    std::vector<bool> lift(input->size(), false);
    if (node_.Has("fields")) {
      std::vector<std::string> names = node_.StringList("fields");
      SLUICE_RETURN_IF_ERROR(CheckFieldsExist(node_, "fields", names, *input));
      for (const auto& n : names) {
        std::vector<size_t> under = input->Resolve(n);
        if (under.size() == 1 && input->field(under[0]).name == n) {
          return node_.Error("fields", fmt::format("'{}' is not a nested object", n));
        }
        for (size_t i : under) lift[i] = true;
      }
    } else {
      for (size_t i = 0; i < input->size(); ++i)
        lift[i] = input->field(i).name.find('.') != std::string::npos;
    }
    std::vector<Field> fields;
    std::map<std::string, std::string> taken;  // new name -> the field it came from
    for (size_t i = 0; i < input->size(); ++i) {
      Field f = input->field(i);
      const std::string from = f.name;
      if (lift[i]) {
        if (prefix) {
          size_t at = 0;
          while ((at = f.name.find('.', at)) != std::string::npos) {
            f.name.replace(at, 1, sep);
            at += sep.size();
          }
        } else {
          f.name = f.name.substr(f.name.rfind('.') + 1);
        }
      }
      auto [it, fresh] = taken.emplace(f.name, from);
      if (!fresh) {
        return node_.Error(
            node_.Has("fields") ? "fields" : "prefix",
            fmt::format("'{}' and '{}' would both be named '{}'{}", it->second, from, f.name,
                        prefix ? "; choose another separator" : "; keep the prefix"));
      }
      fields.push_back(std::move(f));
    }
    out_ = std::make_shared<const Schema>(std::move(fields));
    return out_;
  }

  Result<std::unique_ptr<TransformRuntime>> Build() const override {
    return std::unique_ptr<TransformRuntime>(std::make_unique<FlattenRuntime>(out_));
  }

 private:
  const NodeConfig& node_;
  SchemaPtr out_;
};

}  // namespace

void RegisterFlatten(Registry& registry) {
  OperatorSpec spec;
  spec.name = "flatten";
  spec.role = Role::kTransform;
  spec.summary = "Lifts the fields of nested objects to the top level of the row.";
  spec.description =
      "A nested object's fields are named by their path (`ride.trip_distance`). flatten renames "
      "them to top-level names: the path joined by `separator` (`ride_trip_distance`), or the "
      "last part alone with `prefix: false` (`trip_distance`). Two fields that would get the "
      "same name are a validation error. Columns are shared, not copied.";
  spec.parallel = true;
  spec.fields = {
      {"fields", ConfigType::kStringList, false, "",
       "nested objects to lift (default: every nested object)", {}},
      {"separator", ConfigType::kString, false, "_", "joins the parts of a path", {}},
      {"prefix", ConfigType::kBool, false, "true",
       "keep the object's path in the new name; false keeps only the last part", {}},
  };
  spec.example = "{type: flatten, inputs: [rides], fields: [ride], prefix: false}";
  spec.make_transform = [](const NodeConfig& node) -> Result<std::unique_ptr<TransformNode>> {
    return std::unique_ptr<TransformNode>(std::make_unique<Flatten>(node));
  };
  registry.Add(std::move(spec));
}

}  // namespace sluice
