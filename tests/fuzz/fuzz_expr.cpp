// libFuzzer target: the expression language. The input is parsed and type-checked against a
// schema of every type; an expression that compiles is evaluated over rows with nulls, empty
// strings, zeros and the int64 limits.
#include <cstdint>
#include <limits>
#include <string_view>

#include "engine/expr.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using namespace sluice;

struct Rows {
  SchemaPtr schema;
  std::vector<ColumnPtr> columns;
  size_t n = 4;
};

const Rows& TestRows() {
  static const Rows rows = [] {
    Rows r;
    r.schema = std::make_shared<const Schema>(std::vector<Field>{
        {"i", TypeId::kInt64, true},     {"x", TypeId::kFloat64, true},
        {"s", TypeId::kString, true},    {"b", TypeId::kBool, true},
        {"t", TypeId::kTimestamp, true}, {"ride.zone", TypeId::kInt64, false}});
    auto i = std::make_shared<Column>(TypeId::kInt64);
    i->AppendInt(0);
    i->AppendInt(std::numeric_limits<int64_t>::max());
    i->AppendInt(std::numeric_limits<int64_t>::min());
    i->AppendNull();
    auto x = std::make_shared<Column>(TypeId::kFloat64);
    x->AppendDouble(0.0);
    x->AppendDouble(-1.5);
    x->AppendDouble(1e308);
    x->AppendNull();
    auto s = std::make_shared<Column>(TypeId::kString);
    s->AppendString("");
    s->AppendString("héllo");
    s->AppendString("123");
    s->AppendNull();
    auto b = std::make_shared<Column>(TypeId::kBool);
    b->AppendInt(1);
    b->AppendInt(0);
    b->AppendNull();
    b->AppendInt(1);
    auto t = std::make_shared<Column>(TypeId::kTimestamp);
    t->AppendInt(0);
    t->AppendInt(1700000000000000);
    t->AppendInt(-62135596800000000);
    t->AppendNull();
    auto z = std::make_shared<Column>(TypeId::kInt64);
    for (int64_t v : {1, 265, 0, -7}) z->AppendInt(v);
    r.columns = {i, x, s, b, t, z};
    return r;
  }();
  return rows;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Rows& rows = TestRows();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  CompiledExpr compiled = CompileExpression(text, *rows.schema);
  if (!compiled.expr) {
    if (compiled.problems.empty()) __builtin_trap();  // refused without saying why
    return 0;
  }
  ExprResult result = compiled.expr->Evaluate(rows.columns, rows.n, 1700000000000000);
  // One value per row, of the type the checker gave the expression.
  if (!result.column || result.column->size() != rows.n ||
      result.column->type != compiled.expr->type()) {
    __builtin_trap();
  }
  return 0;
}
