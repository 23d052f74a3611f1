// The expression language on its own: tokenizer and parser (precedence, literals, escapes,
// syntax errors at exact offsets, nesting limits), the type checker's messages, and the
// column-wise evaluator's edge cases (nulls, three-valued logic, overflow, division by zero,
// non-finite floats, Python-style rounding and float text). map and filter are in
// map_filter_test.cpp.
#include <limits>
#include <optional>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "engine/expr.h"

using namespace sluice;

namespace {

using OptI = std::optional<int64_t>;
using OptD = std::optional<double>;
using OptS = std::optional<std::string>;

ColumnPtr Ints(TypeId type, const std::vector<OptI>& v) {
  auto c = std::make_shared<Column>(type);
  for (const auto& x : v) x ? c->AppendInt(*x) : c->AppendNull();
  return c;
}
ColumnPtr Doubles(const std::vector<OptD>& v) {
  auto c = std::make_shared<Column>(TypeId::kFloat64);
  for (const auto& x : v) x ? c->AppendDouble(*x) : c->AppendNull();
  return c;
}
ColumnPtr Strings(const std::vector<OptS>& v) {
  auto c = std::make_shared<Column>(TypeId::kString);
  for (const auto& x : v) x ? c->AppendString(*x) : c->AppendNull();
  return c;
}

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// Three rows of every type; row 2 is null in the nullable fields.
struct Table {
  Schema schema{{{"a", TypeId::kInt64, true},
                 {"b", TypeId::kInt64, true},
                 {"x", TypeId::kFloat64, true},
                 {"s", TypeId::kString, true},
                 {"p", TypeId::kBool, true},
                 {"q", TypeId::kBool, true},
                 {"t", TypeId::kTimestamp, true},
                 {"n", TypeId::kInt64, false},
                 {"ride.PULocationID", TypeId::kInt64, false},
                 {"weird name", TypeId::kString, false}}};
  std::vector<ColumnPtr> cols{
      Ints(TypeId::kInt64, {6, kMax, std::nullopt}),
      Ints(TypeId::kInt64, {3, 0, 1}),
      Doubles({2.5, -1.5, std::nullopt}),
      Strings({"abc", "", std::nullopt}),
      Ints(TypeId::kBool, {1, 0, std::nullopt}),
      Ints(TypeId::kBool, {0, 1, 1}),
      Ints(TypeId::kTimestamp, {0, 1767225600000000, std::nullopt}),
      Ints(TypeId::kInt64, {1, 2, 3}),
      Ints(TypeId::kInt64, {132, 7, 1}),
      Strings({"w0", "w1", "w2"}),
  };
  size_t rows = 3;
};

std::string Text(const Column& c, size_t i) {
  if (c.IsNull(i)) return "null";
  switch (c.type) {
    case TypeId::kBool: return c.ints[i] ? "true" : "false";
    case TypeId::kInt64: return std::to_string(c.ints[i]);
    case TypeId::kFloat64: return FloatToString(c.doubles[i]);
    case TypeId::kString: return "'" + c.strings[i] + "'";
    case TypeId::kTimestamp: return FormatTimestamp(c.ints[i]);
  }
  return "?";
}

// Each row's value, or "error: <reason>".
std::vector<std::string> Eval(const std::string& text, const Table& t = Table()) {
  CompiledExpr c = CompileExpression(text, t.schema);
  INFO(text << ": " << (c.problems.empty() ? "" : c.problems[0].message));
  REQUIRE(c.expr);
  ExprResult r = c.expr->Evaluate(t.cols, t.rows, 1767225600000000);
  REQUIRE(r.column->size() == t.rows);
  std::vector<std::string> out;
  size_t e = 0;
  for (size_t i = 0; i < t.rows; ++i) {
    if (e < r.errors.size() && r.errors[e].row == i) {
      CHECK(r.column->IsNull(i));
      out.push_back("error: " + r.errors[e++].message);
    } else {
      out.push_back(Text(*r.column, i));
    }
  }
  CHECK(e == r.errors.size());
  return out;
}

// The value of an expression that uses no field (row 0).
std::string Value(const std::string& text) {
  return Eval(text)[0];
}

// "offset: message" for each problem.
std::vector<std::string> Problems(const std::string& text, const Table& t = Table()) {
  CompiledExpr c = CompileExpression(text, t.schema);
  std::vector<std::string> out;
  for (const auto& p : c.problems) out.push_back(std::to_string(p.offset) + ": " + p.message);
  CHECK(!c.expr);
  return out;
}

std::string Problem(const std::string& text) {
  auto p = Problems(text);
  REQUIRE(p.size() == 1u);
  return p[0];
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("expr: operator precedence and associativity", "[expr]") {
  CHECK(Value("1 + 2 * 3") == "7");
  CHECK(Value("(1 + 2) * 3") == "9");
  CHECK(Value("2 - 3 - 4") == "-5");
  CHECK(Value("-2 * 3 + 10 % 4") == "-4");
  CHECK(Value("- -2") == "2");
  CHECK(Value("8 / 2 / 2") == "2.0");
  CHECK(Value("7 / 2") == "3.5");  // '/' always yields float64
  CHECK(Value("-7 % 3") == "-1");  // the sign of the dividend, as in SQL and C
  CHECK(Value("1 + 2 == 3") == "true");
  CHECK(Value("1 < 2 and 3 < 2 or true") == "true");
  CHECK(Value("true or false and false") == "true");  // and binds tighter than or
  CHECK(Value("not true or true") == "true");         // not binds tightest
  CHECK(Value("!(1 == 1) || 2 >= 2 && 1 != 1") == "false");
  CHECK(Value("1 + 2.5") == "3.5");  // int op float -> float
  CHECK(Value("\"a\" + 'b' + \"c\"") == "'abc'");
}

TEST_CASE("expr: literals, escapes and field names", "[expr]") {
  CHECK(Value("1.5") == "1.5");
  CHECK(Value("1e3") == "1000.0");
  CHECK(Value(".5 + 2.") == "2.5");
  CHECK(Value("2.5E-1") == "0.25");
  CHECK(Value("9223372036854775807") == "9223372036854775807");
  CHECK(Value(R"("say \"hi\"")") == R"('say "hi"')");
  CHECK(Value(R"('it\'s')") == "'it's'");
  CHECK(Value(R"("back\\slash")") == R"('back\slash')");
  CHECK(Value(R"("a\nb\tc")") == "'a\nb\tc'");
  CHECK(Value(R"("\u00e9\u20AC")") == "'\xC3\xA9\xE2\x82\xAC'");
  CHECK(Value(R"("\ud83d\ude00")") == "'\xF0\x9F\x98\x80'");
  CHECK(Value("true") == "true");
  CHECK(Value("coalesce(null, 2)") == "2");
  CHECK(Eval("ride.PULocationID + 1") == V{"133", "8", "2"});
  CHECK(Eval("`weird name`") == V{"'w0'", "'w1'", "'w2'"});
  CHECK(Eval("`ride.PULocationID`") == V{"132", "7", "1"});
}

TEST_CASE("expr: syntax errors at exact offsets", "[expr]") {
  CHECK(Problem("") == "0: the expression is empty");
  CHECK(Problem("1 +") ==
        "3: expected a value (a field, literal, function call or '('), found the end of the "
        "expression");
  CHECK(Problem("(a + b") ==
        "6: expected ')' to close the '(' at character 1, found the end of the expression");
  CHECK(Problem("round(a b)") ==
        "8: expected ',' or ')' after an argument of 'round' (its '(' is at character 6), found "
        "'b'");
  CHECK(Problem("a + b)") == "5: unexpected ')' without a matching '('");
  CHECK(Problem("a b") == "2: expected an operator or the end of the expression, found 'b'");
  CHECK(Problem("a = 1") == "2: unexpected '='; use '==' to compare");
  CHECK(Problem("a & b") == "2: unexpected '&'; use 'and' (or '&&')");
  CHECK(Problem("s == 'abc") == "5: unterminated string: expected a closing '");
  CHECK(Problem(R"(s == "a\qb")") ==
        R"(7: unknown escape '\q' (escapes: \" \' \\ \n \t \r \uXXXX))");
  CHECK(Problem(R"("\u12")") == R"(1: expected four hex digits after \u)");
  CHECK(Problem(R"("\udc00")") == R"(1: unpaired UTF-16 surrogate in \u)");
  CHECK(Problem("1 < a < 3") == "6: comparisons cannot be chained; write 'a < b and b < c'");
  CHECK(Problem("9223372036854775808") ==
        "0: integer literal '9223372036854775808' is out of range for int64");
  CHECK(Problem("1e999") == "0: float literal '1e999' is out of range");
  CHECK(Problem("12abc") == "2: unexpected 'a' after a number");
  CHECK(Problem("ride. x") == "5: expected a name after '.' (use `...` for other names)");
  CHECK(Problem("`open") == "0: unterminated name: expected a closing `");
  CHECK(Problem("a and") ==
        "5: expected a value (a field, literal, function call or '('), found the end of the "
        "expression");
  CHECK(Problem("ride.x(1)") == "0: 'ride.x' is not a function name");
  CHECK(Problem("a # b") == "2: unexpected character '#'");
}

TEST_CASE("expr: nesting is limited, so hostile input cannot overflow the stack", "[expr]") {
  const std::string too_deep = fmt::format(
      "the expression nests too deeply (more than {} levels of operators, calls and "
      "parentheses)",
      kMaxExprDepth);
  auto nested = [](int n, const std::string& open, const std::string& close) {
    std::string s;
    for (int i = 0; i < n; ++i) s += open;
    s += "1";
    for (int i = 0; i < n; ++i) s += close;
    return s;
  };
  CHECK(Value(nested(kMaxExprDepth - 2, "(", ")")) == "1");
  for (const std::string& text : {nested(100000, "(", ")"), nested(100000, "-", ""),
                                  nested(100000, "abs(", ")"), nested(100000, "not ", "")}) {
    auto p = Problems(text);
    REQUIRE(p.size() == 1u);
    CHECK(p[0].find(too_deep) != std::string::npos);
  }
  // Left-associative chains grow the tree without recursing in the parser.
  std::string chain = "1";
  for (int i = 0; i < 100000; ++i) chain += " + 1";
  auto p = Problems(chain);
  REQUIRE(p.size() == 1u);
  CHECK(p[0].find(too_deep) != std::string::npos);
  std::string ok = "1";
  for (int i = 0; i < kMaxExprDepth - 2; ++i) ok += " + 1";
  CHECK(Value(ok) == std::to_string(kMaxExprDepth - 1));
}

TEST_CASE("expr: type errors name the problem, the types and the text", "[expr]") {
  CHECK(Problem("concat(ride.PULocationID, \"_\")") ==
        "7: 'concat' expects string arguments, got int64 for argument 1 (ride.PULocationID); "
        "use to_string()");
  CHECK(Problem("ride.PULocationId + 1") ==
        "0: unknown field 'ride.PULocationId'; did you mean 'ride.PULocationID'? (fields: a, b, "
        "x, s, p, q, t, n, ride.PULocationID, weird name)");
  CHECK(Problem("rond(x)").rfind("0: unknown function 'rond'; did you mean 'round'? (functions: "
                                 "abs, asin, ceil, coalesce",
                                 0) == 0);
  CHECK(Problem("round(x, 1, 2)") ==
        "0: 'round' takes 1 or 2 arguments (round(x) or round(x, digits)), got 3");
  CHECK(Problem("now(1)") == "0: 'now' takes 0 arguments (now()), got 1");
  CHECK(Problem("if(p, 1)") == "0: 'if' takes 3 arguments (if(condition, then, else)), got 2");
  CHECK(Problem("s + 1") ==
        "2: '+' expects two numbers or two strings, got string (s) and int64 (1); use "
        "to_string() to turn a value into text");
  CHECK(Problem("x % 2") ==
        "2: '%' expects int64 operands, got float64 (x) and int64 (2); use to_int() or floor() "
        "first");
  CHECK(Problem("s < 1") == "2: cannot compare string (s) with int64 (1)");
  CHECK(Problem("a and p") == "0: 'and' expects bool operands, got int64 (a)");
  CHECK(Problem("-s") == "0: '-' expects a number, got string (s)");
  CHECK(Problem("not a > 1") ==
        "0: 'not' expects bool, got int64 (a); note that 'not' applies to the value right after "
        "it: write 'not (a > b)'");
  CHECK(Problem("if(a, 1, 2)") == "3: 'if' expects a bool condition, got int64 for argument 1 (a)");
  CHECK(Problem("if(p, 1, 's')") ==
        "9: 'if' branches must have one type, got int64 for argument 2 (1) and string for "
        "argument 3 ('s')");
  CHECK(Problem("coalesce(a, s)") ==
        "12: 'coalesce' arguments must have one type, got string for argument 2 (s) after int64 "
        "for argument 1 (a)");
  CHECK(Problem("format(s, a)") ==
        "7: 'format' expects a literal format string as argument 1, e.g. format(\"{}_{}\", a, b)");
  CHECK(Problem("format('{}_{}', a)") ==
        "7: 'format' string has 2 placeholders but 1 value follows");
  CHECK(Problem("format('{', a)") ==
        "7: 'format' string: a lone '{' (placeholders are '{}'; write '{{' for the character "
        "itself)");
  CHECK(Problem("round(s)") == "6: 'round' expects a number, got string for argument 1 (s)");
  CHECK(Problem("round(x, 1.5)") ==
        "9: 'round' expects int64 digits, got float64 for argument 2 (1.5)");
  CHECK(Problem("lower(a)") == "6: 'lower' expects string arguments, got int64 for argument 1 (a)");
  CHECK(Problem("null") ==
        "0: the expression is always null, so it has no type; give it one, e.g. to_int(null)");
  // Every problem of the expression, in text order; one bad operand is reported once.
  CHECK(Problems("concat(a, s, b) + unknown + (s * 2) + rund(x)") ==
        V{"7: 'concat' expects string arguments, got int64 for argument 1 (a); use to_string()",
          "13: 'concat' expects string arguments, got int64 for argument 3 (b); use to_string()",
          "18: unknown field 'unknown' (fields: a, b, x, s, p, q, t, n, ride.PULocationID, weird "
          "name)",
          "31: '*' expects numbers, got string (s) and int64 (2)",
          "38: unknown function 'rund'; did you mean 'round'? (functions: abs, asin, ceil, "
          "coalesce, concat, cos, day, day_of_week, days_between, exp, floor, format, "
          "haversine_km, hour, if, is_null, length, ln, lower, max, min, minute, month, now, pow, "
          "radians, round, sin, sqrt, to_bool, to_float, to_int, to_string, to_timestamp, upper, "
          "year)"});
}

TEST_CASE("expr: result types and static nullability", "[expr]") {
  Table t;
  auto check = [&](const std::string& text, TypeId type, bool nullable) {
    CompiledExpr c = CompileExpression(text, t.schema);
    INFO(text);
    REQUIRE(c.expr);
    CHECK(TypeName(c.expr->type()) == std::string(TypeName(type)));
    CHECK(c.expr->nullable() == nullable);
  };
  check("n + 1", TypeId::kInt64, false);
  check("a + 1", TypeId::kInt64, true);
  check("n / 2", TypeId::kFloat64, false);
  check("coalesce(a, 0)", TypeId::kInt64, false);
  check("coalesce(a, b)", TypeId::kInt64, true);
  check("coalesce(a, x)", TypeId::kFloat64, true);
  check("is_null(a)", TypeId::kBool, false);
  check("if(p, n, 2)", TypeId::kInt64, false);
  check("if(p, n, null)", TypeId::kInt64, true);
  check("now()", TypeId::kTimestamp, false);
  check("to_string(n)", TypeId::kString, false);
  check("format('{}', a)", TypeId::kString, true);
  check("round(x)", TypeId::kInt64, true);
  check("round(n, 1)", TypeId::kFloat64, false);
  check("p and q", TypeId::kBool, true);
  check("t < now()", TypeId::kBool, true);
  check("a + null", TypeId::kInt64, true);
}

TEST_CASE("expr: nulls propagate; and/or are three-valued", "[expr]") {
  CHECK(Eval("a + b") == V{"9", "9223372036854775807", "null"});
  CHECK(Eval("x * 2") == V{"5.0", "-3.0", "null"});
  CHECK(Eval("concat(s, '!')") == V{"'abc!'", "'!'", "null"});
  CHECK(Eval("a == null") == V{"null", "null", "null"});
  CHECK(Eval("is_null(a)") == V{"false", "false", "true"});
  CHECK(Eval("coalesce(a, b, 0)") == V{"6", "9223372036854775807", "1"});
  CHECK(Eval("coalesce(x, n)") == V{"2.5", "-1.5", "3.0"});
  CHECK(Eval("if(p, 'yes', 'no')") == V{"'yes'", "'no'", "'no'"});  // null takes the else branch
  CHECK(Eval("min(a, n)") == V{"1", "2", "null"});
  CHECK(Eval("max(x, n)") == V{"2.5", "2.0", "null"});
  // p: true, false, null; q: false, true, true.
  CHECK(Eval("p and q") == V{"false", "false", "null"});
  CHECK(Eval("p or q") == V{"true", "true", "true"});
  CHECK(Eval("p and false") == V{"false", "false", "false"});
  CHECK(Eval("p or false") == V{"true", "false", "null"});
  CHECK(Eval("p and null") == V{"null", "false", "null"});
  CHECK(Eval("p or null") == V{"true", "null", "null"});
  CHECK(Eval("not p") == V{"false", "true", "null"});
}

TEST_CASE("expr: row errors: overflow, division by zero, non-finite floats", "[expr]") {
  CHECK(Eval("a * 2") == V{"12", "error: integer overflow in 'a * 2'", "null"});
  CHECK(Eval("-a - 2") == V{"-8", "error: integer overflow in '-a - 2'", "null"});
  CHECK(Eval("abs(a - 9223372036854775807 - 1)") == V{"9223372036854775802", "1", "null"});
  CHECK(Eval("abs(-9223372036854775807 - n)") ==
        V{"error: integer overflow in 'abs(-9223372036854775807 - n)'",
          "error: integer overflow in '-9223372036854775807 - n'",
          "error: integer overflow in '-9223372036854775807 - n'"});
  CHECK(Eval("-(-9223372036854775807 - n)") ==
        V{"error: integer overflow in '-(-9223372036854775807 - n)'",
          "error: integer overflow in '(-9223372036854775807 - n)'",
          "error: integer overflow in '(-9223372036854775807 - n)'"});
  CHECK(Eval("a / b") == V{"2.0", "error: division by zero in 'a / b'", "null"});
  CHECK(Eval("a % b") == V{"0", "error: modulo by zero in 'a % b'", "null"});
  CHECK(Eval("(-9223372036854775807 - 1) % (n - n - 1)") == V{"0", "0", "0"});
  CHECK(Eval("x / 0.0") ==
        V{"error: division by zero in 'x / 0.0'", "error: division by zero in 'x / 0.0'", "null"});
  CHECK(Eval("x * 1e308 * 10") ==
        V{"error: the float result is not finite (inf) in 'x * 1e308'",
          "error: the float result is not finite (-inf) in 'x * 1e308 * 10'", "null"});
  CHECK(Eval("to_int(x * 1e300)") ==
        V{"error: 2.5e+300 is out of range for int64 in 'to_int(x * 1e300)'",
          "error: -1.5e+300 is out of range for int64 in 'to_int(x * 1e300)'", "null"});
  CHECK(
      Eval("round(a * 1.0)") ==
      V{"6", "error: 9.223372036854776e+18 is out of range for int64 in 'round(a * 1.0)'", "null"});
  // An error of a constant part is every row's error.
  CHECK(Eval("n + 1 / 0") == V{"error: division by zero in '1 / 0'",
                               "error: division by zero in '1 / 0'",
                               "error: division by zero in '1 / 0'"});
  // The first failure of a row is its reason.
  CHECK(Eval("(a * 2) / (b - b)") == V{"error: division by zero in '(a * 2) / (b - b)'",
                                       "error: integer overflow in '(a * 2)'", "null"});
}

TEST_CASE("expr: a value not needed is not an error (and, or, if, coalesce)", "[expr]") {
  CHECK(Eval("b != 0 and a / b > 1") == V{"true", "false", "null"});
  CHECK(Eval("b == 0 or a / b > 1") == V{"true", "true", "null"});
  CHECK(Eval("if(b == 0, -1.0, a / b)") == V{"2.0", "-1.0", "null"});
  CHECK(Eval("coalesce(n, a * 2)") == V{"1", "2", "3"});
  // ...but the condition itself, and a branch taken, still fail.
  CHECK(Eval("if(a / b > 1, 1, 0)") == V{"1", "error: division by zero in 'a / b'", "0"});
  CHECK(Eval("b == 1 and n / (b - 1) > 1") ==
        V{"false", "false", "error: division by zero in 'n / (b - 1)'"});
}

TEST_CASE("expr: strings", "[expr]") {
  CHECK(Eval("length(s)") == V{"3", "0", "null"});
  CHECK(Value("length('\xC3\xA9t\xC3\xA9')") == "3");  // characters, not bytes
  CHECK(Eval("upper(s) + lower('MiX')") == V{"'ABCmix'", "'mix'", "null"});
  CHECK(Value("upper('\xC3\xA9"
              "a')") ==
        "'\xC3\xA9"
        "A'");  // ASCII letters only
  CHECK(Eval("concat('', s, '')") == V{"'abc'", "''", "null"});
  CHECK(Eval("s == ''") == V{"false", "true", "null"});
  CHECK(Eval("s < 'b'") == V{"true", "true", "null"});
  CHECK(Eval("format('{}_{} {{ok}}', n, s)") == V{"'1_abc {ok}'", "'2_ {ok}'", "null"});
  CHECK(Eval("format('{}|{}|{}|{}', p, x, t, 'z')") ==
        V{"'true|2.5|1970-01-01T00:00:00Z|z'", "'false|-1.5|2026-01-01T00:00:00Z|z'", "null"});
  CHECK(Eval("concat(to_string(ride.PULocationID), '_', to_string(n))") ==
        V{"'132_1'", "'7_2'", "'1_3'"});
}

TEST_CASE("expr: to_string of floats is Python's repr", "[expr]") {
  CHECK(FloatToString(3.0) == "3.0");
  CHECK(FloatToString(3.66) == "3.66");
  CHECK(FloatToString(0.1 + 0.2) == "0.30000000000000004");
  CHECK(FloatToString(-0.0) == "-0.0");
  CHECK(FloatToString(0.0001) == "0.0001");
  CHECK(FloatToString(0.00001) == "1e-05");
  CHECK(FloatToString(1.5e-7) == "1.5e-07");
  CHECK(FloatToString(123456789.125) == "123456789.125");
  CHECK(FloatToString(1e15) == "1000000000000000.0");
  CHECK(FloatToString(1e16) == "1e+16");
  CHECK(FloatToString(1.2345e300) == "1.2345e+300");
  CHECK(FloatToString(5e-324) == "5e-324");
  CHECK(Value("to_string(3.0)") == "'3.0'");
  CHECK(Value("to_string(7 / 2)") == "'3.5'");
  CHECK(Value("to_string(true) + to_string(-12)") == "'true-12'");
}

TEST_CASE("expr: round is half to even, as Python's round()", "[expr]") {
  CHECK(Value("round(2.5)") == "2");
  CHECK(Value("round(-2.5)") == "-2");
  CHECK(Value("round(0.5)") == "0");
  CHECK(Value("round(1.5)") == "2");
  CHECK(Value("round(3.5)") == "4");
  CHECK(Value("round(2.675, 2)") == "2.67");  // 2.675 is 2.67499999... as a double
  CHECK(Value("round(0.125, 2)") == "0.12");  // an exact tie goes to even
  CHECK(Value("round(0.375, 2)") == "0.38");
  CHECK(Value("round(1234.5, -2)") == "1200.0");
  CHECK(Value("round(1250, -2)") == "1200.0");
  CHECK(Value("round(7, 1)") == "7.0");
  CHECK(Value("round(7)") == "7");
  CHECK(Value("floor(-2.5)") == "-3");
  CHECK(Value("ceil(-2.5)") == "-2");
  CHECK(Value("floor(4)") == "4");
}

TEST_CASE("expr: conversions", "[expr]") {
  CHECK(Value("to_int(-2.9)") == "-2");  // toward zero
  CHECK(Value("to_int(true) + to_int(false)") == "1");
  CHECK(Value("to_int('+7') + to_int('-0')") == "7");
  for (const char* bad : {"12a", " 12", "12 ", "", "1.5", "0x10", "99999999999999999999", "--1"}) {
    INFO(bad);
    CHECK(Value(fmt::format("to_int('{}')", bad)) ==
          fmt::format("error: '{}' is not an integer in 'to_int('{}')'", bad, bad));
  }
  CHECK(Eval("to_int(s)") == V{"error: 'abc' is not an integer in 'to_int(s)'",
                               "error: '' is not an integer in 'to_int(s)'", "null"});
  CHECK(Value("to_float('1e3')") == "1000.0");
  CHECK(Value("to_float('-.5')") == "-0.5");
  CHECK(Value("to_float(2)") == "2.0");
  for (const char* bad : {"abc", "inf", "nan", "1e999", " 1", "1.5x", "", "+-1"}) {
    INFO(bad);
    CHECK(Value(fmt::format("to_float('{}')", bad)) ==
          fmt::format("error: '{}' is not a finite number in 'to_float('{}')'", bad, bad));
  }
  std::string long_text(100, 'z');
  CHECK(Value("to_int('" + long_text + "')") == "error: '" + std::string(40, 'z') +
                                                    "...' is not an integer in 'to_int('" +
                                                    long_text + "')'");
  CHECK(Eval("to_string(t)") == V{"'1970-01-01T00:00:00Z'", "'2026-01-01T00:00:00Z'", "null"});
  CHECK(Eval("to_int(t)") == V{"0", "1767225600000000", "null"});
}

TEST_CASE("expr: now() is one value per batch; timestamps compare", "[expr]") {
  CHECK(Eval("now()") == V{"2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"});
  CHECK(Eval("t < now()") == V{"true", "false", "null"});
  CHECK(Eval("t == now()") == V{"false", "true", "null"});
  int64_t before = ExprNow();
  CHECK(before > 1767225600000000 - 365LL * 86400 * 1000000 * 10);
}

TEST_CASE("expr: a field passed through is shared, not copied", "[expr]") {
  Table t;
  CompiledExpr c = CompileExpression("s", t.schema);
  REQUIRE(c.expr);
  ExprResult r = c.expr->Evaluate(t.cols, t.rows, 0);
  CHECK(r.column == t.cols[3]);
  // An empty batch has empty columns, even from constants.
  ExprResult empty = CompileExpression("1 / 0", t.schema).expr->Evaluate({}, 0, 0);
  CHECK(empty.column->size() == 0u);
  CHECK(empty.errors.empty());
}

TEST_CASE("expr: mangled input gives problems inside the text, never a crash", "[expr]") {
  // Deterministic mutations of valid expressions: every result either compiles and evaluates,
  // or reports problems whose offsets lie within the text.
  const std::vector<std::string> seeds = {
      "concat(to_string(ride.PULocationID), \"_\", to_string(n))",
      "if(p and not q, round(x * 2.5, 1), -abs(a % (b + 1)) / 3)",
      "format('{}-{}', coalesce(s, 'none'), t < now()) == `weird name`",
      "to_int('\\u00e9' + lower(s)) >= min(a, 2) or is_null(x)",
  };
  const std::string alphabet = "()[],.'\"`\\+-*/%<>=!&|aeu0159 \t\nxnotandor_{}e";
  Table t;
  uint64_t state = 42;
  auto next = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<size_t>(state >> 33);
  };
  size_t compiled = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string s = seeds[next() % seeds.size()];
    for (size_t edits = 1 + next() % 3; edits > 0 && !s.empty(); --edits) {
      size_t at = next() % s.size();
      switch (next() % 3) {
        case 0: s.erase(at, 1 + next() % 3); break;
        case 1: s.insert(at, 1, alphabet[next() % alphabet.size()]); break;
        default: s[at] = alphabet[next() % alphabet.size()];
      }
    }
    INFO(s);
    CompiledExpr c = CompileExpression(s, t.schema);
    if (c.expr) {
      ++compiled;
      ExprResult r = c.expr->Evaluate(t.cols, t.rows, 0);
      CHECK(r.column->size() == t.rows);
    } else {
      for (const auto& p : c.problems) {
        CHECK(p.offset <= s.size());
        CHECK_FALSE(p.message.empty());
      }
    }
  }
  CHECK(compiled > 0u);
}

TEST_CASE("expr: math functions; domain errors are row errors", "[expr]") {
  CHECK(Value("sqrt(16)") == "4.0");
  CHECK(Value("pow(2, 10)") == "1024.0");
  CHECK(Value("round(sin(radians(90)), 6)") == "1.0");
  CHECK(Value("round(cos(0.0) + exp(0) + ln(1), 6)") == "2.0");
  CHECK(Value("round(asin(1) * 2, 9)") == "3.141592654");
  CHECK(Eval("sqrt(x)") == V{"1.5811388300841898", "error: the float result is not a number (NaN) in "
                                                   "'sqrt(x)'",
                             "null"});
  CHECK_THAT(Value("ln(0)"), Catch::StartsWith("error: the float result is not finite (-inf)"));
  CHECK_THAT(Value("asin(2)"), Catch::StartsWith("error: the float result is not a number"));
  CHECK_THAT(Value("pow(10, 400)"), Catch::StartsWith("error: the float result is not finite"));
  // New York to Los Angeles, ~3936 km by the haversine formula on a 6371 km sphere.
  CHECK(Value("round(haversine_km(40.7128, -74.0060, 34.0522, -118.2437), 0)") == "3936.0");
  CHECK(Value("haversine_km(1, 2, 1, 2)") == "0.0");
  CHECK(Eval("haversine_km(x, 0, 0, 0) > 0") == V{"true", "true", "null"});
  CHECK(Problem("sqrt(s)") == "5: 'sqrt' expects numbers, got string for argument 1 (s)");
}

TEST_CASE("expr: timestamp parts, days_between and to_timestamp", "[expr]") {
  CHECK(Value("hour(to_timestamp('2024-10-31 15:56:25'))") == "15");
  CHECK(Value("minute(to_timestamp('2024-10-31 15:56:25'))") == "56");
  CHECK(Value("year(to_timestamp('2024-02-29'))") == "2024");
  CHECK(Value("month(to_timestamp('2024-02-29'))") == "2");
  CHECK(Value("day(to_timestamp('2024-02-29'))") == "29");
  CHECK(Value("day_of_week(to_timestamp('2026-11-23'))") == "0");  // a Monday
  CHECK(Value("day_of_week(to_timestamp('1970-01-01'))") == "3");  // a Thursday
  // Before the epoch: parts are still calendar parts.
  CHECK(Value("year(to_timestamp('1964-11-17'))") == "1964");
  CHECK(Value("hour(to_timestamp('1969-12-31T23:30:00Z'))") == "23");
  CHECK(Value("day(to_timestamp('1969-12-31T23:30:00Z'))") == "31");
  // Age in years from a date of birth, as the fraud features compute it.
  CHECK(Value("round(days_between(to_timestamp('1964-11-17'), "
              "to_timestamp('2024-10-31 15:56:25')) / 365.25, 2)") == "59.96");
  CHECK(Eval("days_between(t, now())") == V{"20454.0", "0.0", "null"});
  CHECK(Eval("hour(t)") == V{"0", "0", "null"});
  CHECK(Value("to_timestamp(1730390185811)") == "2024-10-31T15:56:25.811000Z");  // epoch ms
  CHECK(Value("to_timestamp('yesterday')") ==
        "error: 'yesterday' is not a timestamp in 'to_timestamp('yesterday')'");
  CHECK(Problem("hour(s)") ==
        "5: 'hour' expects a timestamp, got string for argument 1 (s); use to_timestamp()");
  CHECK(Problem("to_timestamp(x)") ==
        "13: 'to_timestamp' expects a string or epoch milliseconds, got float64 for argument 1 (x)");
}

TEST_CASE("expr: to_bool, and a typed null for a field to fill later", "[expr]") {
  CHECK(Value("to_bool('TRUE')") == "true");
  CHECK(Value("to_bool('false')") == "false");
  CHECK(Value("to_bool(0)") == "false");
  CHECK(Value("to_bool(2.5)") == "true");
  CHECK(Value("to_bool('yes')") == "error: 'yes' is not true or false in 'to_bool('yes')'");
  CHECK(Eval("to_bool(null)") == V{"null", "null", "null"});  // fraud_confirmed: to_bool(null)
  CHECK(Eval("to_bool(a)") == V{"true", "true", "null"});
  CHECK(Problem("to_bool(t)") ==
        "8: 'to_bool' expects a string or a number, got timestamp for argument 1 (t)");
}
