// The front of the expression language (engine/expr.cpp): text to a syntax tree, and the static
// types that the tree's literals and the type checker speak in.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/expr.h"
#include "engine/types.h"

namespace sluice::expr_internal {

enum class Kind { kLiteral, kField, kUnary, kBinary, kCall };
// The static types: the column types, plus the type of `null` (fits any) and the type of a node
// that failed to check (reported once, then silent).
enum class Ty { kBool, kInt64, kFloat64, kString, kTimestamp, kNull, kError };

const char* TyName(Ty t);
Ty FromTypeId(TypeId t);
TypeId ToTypeId(Ty t);
bool IsNum(Ty t);

struct Node {
  Kind kind = Kind::kLiteral;
  size_t begin = 0, end = 0;  // the node's text
  size_t at = 0;              // the operator or function name, for messages
  std::string name;           // operator, function or field
  Ty lit = Ty::kNull;         // literal's type
  int64_t ival = 0;
  double dval = 0;
  std::string sval;
  std::vector<std::unique_ptr<Node>> kids;
  int depth = 1;
};

// The syntax tree of `text`, or null with the first lexical or syntax problem in `*problem`.
std::unique_ptr<Node> ParseExpr(std::string_view text, ExprProblem* problem);

}  // namespace sluice::expr_internal
