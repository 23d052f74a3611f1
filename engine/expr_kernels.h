// The column-wise evaluator behind engine/expr.cpp: the kernel tree a checked expression compiles
// to, and the loops over rows (Impl) that the type checker picks for operators and functions.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "engine/batch.h"
#include "engine/expr.h"

namespace sluice {
namespace expr_internal {

struct EvalCtx {
  const std::vector<ColumnPtr>& columns;
  size_t num_rows;
  int64_t now;
};

// A kernel's result: a column of num_rows values, or of one value standing for every row
// (`scalar`: literals, now(), and operators on those only). Rows that failed are null and have
// an entry in `errors` (ascending by row); a scalar's error at row 0 applies to every row.
struct Val {
  ColumnPtr col;
  bool scalar = false;
  std::vector<ExprRowError> errors;

  size_t At(size_t i) const { return scalar ? 0 : i; }
  bool Null(size_t i) const { return col->IsNull(At(i)); }
  int64_t I(size_t i) const { return col->ints[At(i)]; }
  double D(size_t i) const { return col->doubles[At(i)]; }
  const std::string& S(size_t i) const { return col->strings[At(i)]; }
};

// The column a kernel fills, with its row errors.
struct Out {
  std::shared_ptr<Column> col;
  size_t n = 0;
  std::vector<ExprRowError> errors;

  Out(TypeId type, size_t rows) : col(std::make_shared<Column>(type)), n(rows) {
    switch (type) {
      case TypeId::kFloat64: col->doubles.resize(rows); break;
      case TypeId::kString: col->strings.resize(rows); break;
      default: col->ints.resize(rows);
    }
  }
  bool Skip(size_t i) const { return !col->valid.empty() && !col->valid[i]; }
  void SetNull(size_t i) {
    if (col->valid.empty()) col->valid.assign(n, 1);
    col->valid[i] = 0;
  }
  void Fail(size_t i, std::string message) {
    SetNull(i);
    errors.push_back({static_cast<uint32_t>(i), std::move(message)});
  }
};

}  // namespace expr_internal

class ExprKernel {
 public:
  explicit ExprKernel(TypeId type) : type_(type) {}
  virtual ~ExprKernel() = default;
  virtual expr_internal::Val Eval(const expr_internal::EvalCtx& ctx) const = 0;
  TypeId type() const { return type_; }

 private:
  TypeId type_;
};

namespace expr_internal {

class ConstKernel : public ExprKernel {
 public:
  explicit ConstKernel(ColumnPtr value) : ExprKernel(value->type), value_(std::move(value)) {}
  Val Eval(const EvalCtx&) const override { return Val{value_, true, {}}; }

 private:
  ColumnPtr value_;
};

class FieldKernel : public ExprKernel {
 public:
  FieldKernel(TypeId type, size_t index) : ExprKernel(type), index_(index) {}
  // The input column itself: a field passed through is shared, not copied.
  Val Eval(const EvalCtx& ctx) const override { return Val{ctx.columns[index_], false, {}}; }

 private:
  size_t index_;
};

class CallKernel;
// An operator's or function's loop over the rows. `args` are evaluated; `out` has the result
// type and, when the call propagates nulls, already the nulls of its arguments.
using Impl = void (*)(const CallKernel& k, const EvalCtx& ctx, std::vector<Val>& args, Out& out);

class CallKernel : public ExprKernel {
 public:
  CallKernel(TypeId type, Impl impl, std::string text,
             std::vector<std::unique_ptr<ExprKernel>> args, bool propagate_nulls)
      : ExprKernel(type),
        impl_(impl),
        text_(std::move(text)),
        args_(std::move(args)),
        propagate_nulls_(propagate_nulls) {}

  int op = 0;                       // a variant of the impl (which operator, which types)
  std::vector<std::string> pieces;  // format(): the text around the placeholders

  const std::string& text() const { return text_; }
  std::string Failed(std::string_view what) const { return fmt::format("{} in '{}'", what, text_); }

  Val Eval(const EvalCtx& ctx) const override;

 private:
  Impl impl_;
  std::string text_;
  std::vector<std::unique_ptr<ExprKernel>> args_;
  bool propagate_nulls_;
};

// ---- arithmetic ----
enum ArithOp { kAdd, kSub, kMul };
void IntArith(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void FloatArith(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void FloatDiv(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void IntMod(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void StringPlus(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void Negate(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void Not(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void IntToFloat(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);

// ---- comparisons ----
enum CmpOp { kEq, kNe, kLt, kLe, kGt, kGe };
void Compare(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);

// ---- logic (three-valued) ----
enum LogicOp { kAnd, kOr };
void Logic(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);

// ---- functions ----
// op: 0 rounds half to even, 1 floors, 2 ceils, 3 truncates.
void Round(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void RoundTo(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void Abs(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
// op: 0 lower, 1 upper.
void Case(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void Length(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void Concat(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void Format(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void ToString(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void ToBool(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void ToInt(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void ToFloat(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void Now(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void IsNull(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void If(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void Coalesce(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
// op: 0 min, 1 max.
void MinMax(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);

// ---- math ----
enum MathOp { kSqrt, kSin, kCos, kAsin, kRadians, kExp, kLn, kPow };
void Math(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void HaversineKm(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);

// ---- timestamps ----
enum TimeOp { kHour, kMinute, kDayOfWeek, kYear, kMonth, kDay };
void TimePart(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void DaysBetween(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);
void ToTimestamp(const CallKernel&, const EvalCtx&, std::vector<Val>&, Out&);

}  // namespace expr_internal
}  // namespace sluice
