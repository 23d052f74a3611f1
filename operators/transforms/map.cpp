// map: computes fields from typed expressions (docs/expressions.md). Each `name: expression` is
// appended to the row, or replaces the field of that name in place; an expression sees the
// fields defined before it in the same map. Unchanged columns are shared, not copied. A row an
// expression cannot evaluate (overflow, division by zero...) is dead-lettered with the reason;
// the rest of the batch flows on.
#include <fmt/format.h>

#include "engine/expr.h"
#include "operators/builtin.h"

namespace sluice {
namespace {

struct MapStep {
  std::string name;
  std::shared_ptr<const Expression> expr;
  int replaces = -1;  // the column it replaces in the working row, or -1 to append
};

class MapRuntime : public TransformRuntime {
 public:
  MapRuntime(SchemaPtr out, std::vector<MapStep> steps, std::vector<size_t> pick, bool keep_input)
      : out_(std::move(out)),
        steps_(std::move(steps)),
        pick_(std::move(pick)),
        keep_input_(keep_input) {}

  Result<BatchPtr> Process(const BatchPtr& in, NodeContext& ctx) const override {
    const size_t n = in->num_rows();
    const int64_t now = ExprNow();  // one now() for every expression of the batch
    std::vector<ColumnPtr> cols = in->columns();
    std::vector<std::string> failed;  // per row, the first failure; sized on the first one
    for (const MapStep& step : steps_) {
      ExprResult r = step.expr->Evaluate(cols, n, now);
      for (auto& e : r.errors) {
        if (failed.empty()) failed.resize(n);
        if (failed[e.row].empty())
          failed[e.row] = fmt::format("field '{}': {}", step.name, e.message);
      }
      if (step.replaces >= 0) {
        cols[static_cast<size_t>(step.replaces)] = std::move(r.column);
      } else {
        cols.push_back(std::move(r.column));
      }
    }
    if (!keep_input_) {
      std::vector<ColumnPtr> picked;
      picked.reserve(pick_.size());
      for (size_t i : pick_) picked.push_back(cols[i]);
      cols = std::move(picked);
    }
    auto out = in->WithColumns(out_, std::move(cols));
    if (failed.empty()) return BatchPtr(std::move(out));
    std::vector<uint32_t> keep;
    for (size_t i = 0; i < n; ++i) {
      if (failed[i].empty()) {
        keep.push_back(static_cast<uint32_t>(i));
      } else {
        ctx.Reject(*in, i, failed[i]);
      }
    }
    if (keep.empty()) return BatchPtr(in->Empty(out_));
    return BatchPtr(out->Take(keep));
  }

 private:
  SchemaPtr out_;
  std::vector<MapStep> steps_;
  std::vector<size_t> pick_;
  bool keep_input_;
};

class Map : public TransformNode {
 public:
  explicit Map(const NodeConfig& node) : node_(node) {}

  Result<SchemaPtr> OutputSchema(const SchemaPtr& input) override {
    YAML::Node map = node_.Raw("fields");
    if (!map.IsMap() || map.size() == 0) return node_.Error("fields", "defines no field");
    std::vector<Field> working = input->fields();
    std::vector<std::string> problems;
    std::vector<std::string> names;
    ExprOptions options;
    steps_.clear();
    for (auto it = map.begin(); it != map.end(); ++it) {
      const std::string name = it->first.Scalar();
      const YAML::Node value = it->second;
      Mark key_mark = Mark::Of(node_.mark.file, it->first);
      if (name.empty()) {
        problems.push_back(
            fmt::format("{}: {}: a field name is empty", key_mark.ToString(), node_.Prefix()));
        continue;
      }
      if (std::find(names.begin(), names.end(), name) != names.end()) {
        problems.push_back(fmt::format("{}: {}: field '{}' is defined twice", key_mark.ToString(),
                                       node_.Prefix(), name));
        continue;
      }
      names.push_back(name);
      const std::string text = value.IsScalar() ? value.Scalar() : "";
      CompiledExpr compiled = CompileExpression(text, Schema(working), options);
      for (const auto& p : compiled.problems) {
        problems.push_back(
            ExprProblemMessage(node_, value, text, p, fmt::format("field '{}': ", name)));
      }
      auto at = std::find_if(working.begin(), working.end(),
                             [&](const Field& f) { return f.name == name; });
      if (!compiled.expr) {
        // Later expressions that use this field are not checked against a stale type.
        options.failed_fields.push_back(name);
        if (at != working.end()) working.erase(at);
        continue;
      }
      MapStep step;
      step.name = name;
      Field f{name, compiled.expr->type(), compiled.expr->nullable()};
      if (at != working.end()) {
        step.replaces = static_cast<int>(at - working.begin());
        *at = f;
      } else {
        working.push_back(f);
      }
      step.expr = std::move(compiled.expr);
      steps_.push_back(std::move(step));
    }
    if (!problems.empty())
      return Status::InvalidConfig(fmt::format("{}", fmt::join(problems, "\n")));
    keep_input_ = node_.Bool("keep_input");
    pick_.clear();
    std::vector<Field> out = working;
    if (!keep_input_) {
      out.clear();
      for (const auto& name : names) {
        for (size_t i = 0; i < working.size(); ++i) {
          if (working[i].name != name) continue;
          pick_.push_back(i);
          out.push_back(working[i]);
        }
      }
    }
    out_ = std::make_shared<const Schema>(std::move(out));
    return out_;
  }

  Result<std::unique_ptr<TransformRuntime>> Build() const override {
    return std::unique_ptr<TransformRuntime>(
        std::make_unique<MapRuntime>(out_, steps_, pick_, keep_input_));
  }

 private:
  const NodeConfig& node_;
  SchemaPtr out_;
  std::vector<MapStep> steps_;
  std::vector<size_t> pick_;
  bool keep_input_ = true;
};

}  // namespace

void RegisterMap(Registry& registry) {
  OperatorSpec spec;
  spec.name = "map";
  spec.role = Role::kTransform;
  spec.summary = "Computes fields from typed expressions (see expressions.md).";
  spec.description =
      "Each `name: expression` of `fields` is appended to the row, or replaces the field of that "
      "name in place; an expression may use the fields defined before it in the same map. "
      "Expressions are type-checked by `sluice validate`. A row an expression cannot evaluate "
      "(integer overflow, division by zero, a string that is not a number) goes to the dead "
      "letters with the reason; the rest of the batch flows on.";
  spec.parallel = true;
  spec.fields = {
      {"fields",
       ConfigType::kStringMap,
       true,
       "",
       "name: expression, for each computed field, in order",
       {}},
      {"keep_input",
       ConfigType::kBool,
       false,
       "true",
       "keep the input fields; false outputs only the computed fields, in order",
       {}},
  };
  spec.example =
      "{type: map, inputs: [iris_data], fields: {petal_ratio: 'round(petal_length / "
      "petal_width, 2)', key: 'concat(\"iris_\", to_string(id))'}}";
  spec.make_transform = [](const NodeConfig& node) -> Result<std::unique_ptr<TransformNode>> {
    return std::unique_ptr<TransformNode>(std::make_unique<Map>(node));
  };
  registry.Add(std::move(spec));
}

}  // namespace sluice
