// filter: keeps the rows where a bool expression (docs/expressions.md) is true. A false or null
// condition drops the row deliberately (it is not a dead letter); a row whose condition cannot
// be evaluated (overflow, division by zero...) is dead-lettered with the reason.
#include <fmt/format.h>

#include "engine/expr.h"
#include "operators/builtin.h"

namespace sluice {
namespace {

class FilterRuntime : public TransformRuntime {
 public:
  explicit FilterRuntime(std::shared_ptr<const Expression> condition)
      : condition_(std::move(condition)) {}

  Result<BatchPtr> Process(const BatchPtr& in, NodeContext& ctx) const override {
    const size_t n = in->num_rows();
    ExprResult r = condition_->Evaluate(in->columns(), n, ExprNow());
    const Column& c = *r.column;
    std::vector<uint32_t> keep;
    keep.reserve(n);
    size_t next_error = 0;
    for (size_t i = 0; i < n; ++i) {
      if (next_error < r.errors.size() && r.errors[next_error].row == i) {
        ctx.Reject(*in, i, r.errors[next_error++].message);
        continue;
      }
      if (!c.IsNull(i) && c.ints[i]) keep.push_back(static_cast<uint32_t>(i));
    }
    if (keep.size() == n) return in;
    // An empty batch still carries the positions of the rows dropped, so they advance.
    if (keep.empty()) return BatchPtr(in->Empty(in->schema()));
    return BatchPtr(in->Take(keep));
  }

 private:
  std::shared_ptr<const Expression> condition_;
};

class Filter : public TransformNode {
 public:
  explicit Filter(const NodeConfig& node) : node_(node) {}

  Result<SchemaPtr> OutputSchema(const SchemaPtr& input) override {
    YAML::Node value = node_.Raw("condition");
    const std::string text = value.IsScalar() ? value.Scalar() : "";
    CompiledExpr compiled = CompileExpression(text, *input);
    std::vector<std::string> problems;
    for (const auto& p : compiled.problems)
      problems.push_back(ExprProblemMessage(node_, value, text, p, ""));
    if (!problems.empty())
      return Status::InvalidConfig(fmt::format("{}", fmt::join(problems, "\n")));
    if (!compiled.expr) return Status::Internal("filter: the condition did not compile");
    if (compiled.expr->type() != TypeId::kBool) {
      return node_.Error("condition", fmt::format("the condition must be bool, got {} ('{}')",
                                                  TypeName(compiled.expr->type()), text));
    }
    condition_ = std::move(compiled.expr);
    return input;
  }

  Result<std::unique_ptr<TransformRuntime>> Build() const override {
    return std::unique_ptr<TransformRuntime>(std::make_unique<FilterRuntime>(condition_));
  }

 private:
  const NodeConfig& node_;
  std::shared_ptr<const Expression> condition_;
};

}  // namespace

void RegisterFilter(Registry& registry) {
  OperatorSpec spec;
  spec.name = "filter";
  spec.role = Role::kTransform;
  spec.summary = "Keeps the rows where a bool expression is true (see expressions.md).";
  spec.description =
      "Rows where `condition` is false or null are dropped deliberately; they are not dead "
      "letters. A row whose condition cannot be evaluated (integer overflow, division by zero, a "
      "string that is not a number) goes to the dead letters with the reason.";
  spec.parallel = true;
  spec.fields = {
      {"condition", ConfigType::kString, true, "", "a bool expression over the input fields", {}},
  };
  spec.example = "{type: filter, inputs: [iris_data], condition: 'petal_width > 0.5'}";
  spec.make_transform = [](const NodeConfig& node) -> Result<std::unique_ptr<TransformNode>> {
    return std::unique_ptr<TransformNode>(std::make_unique<Filter>(node));
  };
  registry.Add(std::move(spec));
}

}  // namespace sluice
