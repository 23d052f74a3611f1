// The typed expression language of `map` and `filter` (docs/expressions.md): a parser, a type
// checker that works against a Schema (so `sluice validate` reports every problem statically),
// and a column-wise evaluator.
//
// Compiling turns the text into a tree of kernels once, at plan time; each kernel produces a
// whole column for a batch, so dispatch is per node and batch, never per row. A row that cannot
// be evaluated (integer overflow, division by zero, a non-finite float, an unparsable string)
// comes back as a row error with its reason; the caller dead-letters it.
//
// Threading: a compiled Expression is immutable; Evaluate is const and may be called
// concurrently from several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "engine/batch.h"
#include "engine/config.h"
#include "engine/types.h"

namespace sluice {

// Nesting deeper than this (operators, calls, parentheses) is a syntax error, so that hostile
// input cannot exhaust the stack of the recursive parser, checker or evaluator.
inline constexpr int kMaxExprDepth = 64;

// A problem found while compiling: where in the expression's text (a byte offset) and what.
struct ExprProblem {
  size_t offset = 0;
  std::string message;
};

// A row an expression could not evaluate, and why ("integer overflow in 'a * b'").
struct ExprRowError {
  uint32_t row = 0;
  std::string message;
};

struct ExprResult {
  ColumnPtr column;                  // one value per row; rows with an error are null
  std::vector<ExprRowError> errors;  // ascending rows, at most one per row
};

class ExprKernel;

class Expression {
 public:
  Expression(std::string text, TypeId type, bool nullable, std::unique_ptr<ExprKernel> root);
  ~Expression();

  const std::string& text() const { return text_; }
  TypeId type() const { return type_; }
  // False only when the value provably cannot be null (drives output schemas).
  bool nullable() const { return nullable_; }

  // Evaluates over `columns`, which follow the schema the expression was compiled against.
  // `now_micros` is the value of now() for the whole batch.
  ExprResult Evaluate(const std::vector<ColumnPtr>& columns, size_t num_rows,
                      int64_t now_micros) const;

 private:
  std::string text_;
  TypeId type_;
  bool nullable_;
  std::unique_ptr<ExprKernel> root_;
};

struct ExprOptions {
  // Fields whose own definition failed to compile (an earlier field of the same map): references
  // to them are not reported again, and whatever uses them is not type-checked further.
  std::vector<std::string> failed_fields;
};

struct CompiledExpr {
  std::unique_ptr<const Expression> expr;  // null when there are problems
  std::vector<ExprProblem> problems;       // in text order
};

CompiledExpr CompileExpression(std::string_view text, const Schema& schema,
                               const ExprOptions& options = {});

// The current time in microseconds since the epoch: what now() returns for a batch.
int64_t ExprNow();

// Text of a float as Python's repr() writes it: the shortest text that reads back to the same
// double, with ".0" on integral values (3.0 -> "3.0", 3.66 -> "3.66", 1e16 -> "1e+16").
std::string FloatToString(double v);

// The names of the functions the language knows, sorted (for docs and "did you mean").
std::vector<std::string> ExprFunctionNames();

// "file:line:col: <type> '<node>': <context><message>" for a problem in the expression held by
// the YAML scalar `scalar` of `node`. The column points into the expression when the scalar is
// written on one line of the file exactly as its value reads (plain or quoted without escapes);
// otherwise the message points at the scalar and says "at character N of the expression".
std::string ExprProblemMessage(const NodeConfig& node, const YAML::Node& scalar,
                               std::string_view expr, const ExprProblem& problem,
                               std::string_view context);

}  // namespace sluice
