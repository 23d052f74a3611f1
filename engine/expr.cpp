// The expression language's type checker with its table of functions, and the public API: text is
// parsed (engine/expr_parse.h), checked, and compiled to a kernel tree (engine/expr_kernels.h).
#include "engine/expr.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "engine/expr_kernels.h"
#include "engine/expr_parse.h"

namespace sluice {

namespace expr_internal {

// ======================================================================================
// Type checking: the checked tree becomes the kernel tree.
// ======================================================================================

namespace {

struct Typed {
  Ty type = Ty::kError;
  bool nullable = true;
  std::unique_ptr<ExprKernel> kernel;  // null for kError
};

std::unique_ptr<ExprKernel> NullConst(Ty type) {
  auto c = std::make_shared<Column>(ToTypeId(type));
  c->AppendNull();
  return std::make_unique<ConstKernel>(std::move(c));
}

class Checker;

struct FunctionDef {
  const char* name;
  int min_args;
  int max_args;       // -1: any number
  const char* usage;  // for arity errors
  // The type rule: checks the (already checked) arguments and builds the call's kernel, or
  // reports problems and returns kError.
  Typed (*check)(Checker& c, const Node& call, std::vector<Typed>& args);
};

const std::vector<FunctionDef>& Functions();

class Checker {
 public:
  Checker(std::string_view text, const Schema& schema, const ExprOptions& options)
      : text_(text), schema_(schema), options_(options) {}

  std::vector<ExprProblem> problems;

  std::string Text(const Node& n) const {
    return std::string(text_.substr(n.begin, n.end - n.begin));
  }

  Typed Fail(size_t at, std::string message) {
    problems.push_back({at, std::move(message)});
    return Typed{};
  }

  // Gives `null` the type it is used as, or widens int64 to float64.
  bool Coerce(Typed& t, Ty to) {
    if (t.type == to) return true;
    if (t.type == Ty::kNull) {
      t.type = to;
      t.kernel = NullConst(to);
      return true;
    }
    if (t.type == Ty::kInt64 && to == Ty::kFloat64) {
      std::vector<std::unique_ptr<ExprKernel>> kid;
      kid.push_back(std::move(t.kernel));
      t.kernel =
          std::make_unique<CallKernel>(TypeId::kFloat64, IntToFloat, "", std::move(kid), true);
      t.type = Ty::kFloat64;
      return true;
    }
    return false;
  }

  // The one type a set of values can all take (int64 and float64 meet at float64), kNull when
  // all are null, kError when there is none.
  static Ty Unify(const std::vector<Ty>& types) {
    Ty out = Ty::kNull;
    for (Ty t : types) {
      if (t == Ty::kNull || t == out) continue;
      if (out == Ty::kNull) {
        out = t;
      } else if (IsNum(out) && IsNum(t)) {
        out = Ty::kFloat64;
      } else {
        return Ty::kError;
      }
    }
    return out;
  }

  // A call of `impl` on `args` (each already of the type the impl expects).
  Typed Call(Ty type, Impl impl, const Node& n, std::vector<Typed>& args, int op = 0,
             bool propagate_nulls = true) {
    Typed t;
    t.type = type;
    t.nullable = false;
    std::vector<std::unique_ptr<ExprKernel>> kids;
    for (Typed& a : args) {
      if (!a.kernel) Coerce(a, Ty::kString);
      t.nullable = t.nullable || a.nullable;
      kids.push_back(std::move(a.kernel));
    }
    auto k = std::make_unique<CallKernel>(ToTypeId(type), impl, Text(n), std::move(kids),
                                          propagate_nulls);
    k->op = op;
    last_call_ = k.get();
    t.kernel = std::move(k);
    return t;
  }
  CallKernel* last_call() const { return last_call_; }

  Typed Check(const Node& n) {
    switch (n.kind) {
      case Kind::kLiteral: return Literal(n);
      case Kind::kField: return FieldRef(n);
      case Kind::kUnary: return Unary(n);
      case Kind::kBinary: return Binary(n);
      case Kind::kCall: return FunctionCall(n);
    }
    return Typed{};
  }

 private:
  Typed Literal(const Node& n) {
    Typed t;
    t.type = n.lit;
    t.nullable = n.lit == Ty::kNull;
    if (n.lit == Ty::kNull) {
      return t;  // typed where it is used
    }
    auto c = std::make_shared<Column>(ToTypeId(n.lit));
    switch (n.lit) {
      case Ty::kFloat64: c->AppendDouble(n.dval); break;
      case Ty::kString: c->AppendString(n.sval); break;
      default: c->AppendInt(n.ival);
    }
    t.kernel = std::make_unique<ConstKernel>(std::move(c));
    return t;
  }

  Typed FieldRef(const Node& n) {
    int i = schema_.IndexOf(n.name);
    if (i < 0) {
      const auto& failed = options_.failed_fields;
      if (std::find(failed.begin(), failed.end(), n.name) != failed.end()) return Typed{};
      auto near = schema_.Suggest(n.name);
      return Fail(n.begin, fmt::format("unknown field '{}'{} (fields: {})", n.name,
                                       near ? fmt::format("; did you mean '{}'?", *near) : "",
                                       schema_.FieldNames()));
    }
    const Field& f = schema_.field(static_cast<size_t>(i));
    Typed t;
    t.type = FromTypeId(f.type);
    t.nullable = f.nullable;
    t.kernel = std::make_unique<FieldKernel>(f.type, static_cast<size_t>(i));
    return t;
  }

  std::string Described(const Typed& t, const Node& n) const {
    return fmt::format("{} ({})", TyName(t.type), Text(n));
  }

  Typed Unary(const Node& n) {
    const Node& kid = *n.kids[0];
    std::vector<Typed> args;
    args.push_back(Check(kid));
    Typed& a = args[0];
    if (a.type == Ty::kError) return Typed{};
    if (n.name == "-") {
      if (a.type == Ty::kNull) return std::move(a);
      if (!IsNum(a.type))
        return Fail(n.at, fmt::format("'-' expects a number, got {}", Described(a, kid)));
      return Call(a.type, Negate, n, args);
    }
    if (!Coerce(a, Ty::kBool)) {
      return Fail(n.at, fmt::format("'not' expects bool, got {}; note that 'not' applies to the "
                                    "value right after it: write 'not (a > b)'",
                                    Described(a, kid)));
    }
    return Call(Ty::kBool, Not, n, args);
  }

  Typed Binary(const Node& n) {
    const Node& ln = *n.kids[0];
    const Node& rn = *n.kids[1];
    std::vector<Typed> args;
    args.push_back(Check(ln));
    args.push_back(Check(rn));
    Typed& l = args[0];
    Typed& r = args[1];
    const std::string& op = n.name;
    if (op == "and" || op == "or") {
      bool ok = true;
      for (size_t i = 0; i < 2; ++i) {
        if (args[i].type == Ty::kError) {
          ok = false;
        } else if (!Coerce(args[i], Ty::kBool)) {
          Fail(n.kids[i]->begin, fmt::format("'{}' expects bool operands, got {}", op,
                                             Described(args[i], *n.kids[i])));
          ok = false;
        }
      }
      if (!ok) return Typed{};
      return Call(Ty::kBool, Logic, n, args, op == "and" ? kAnd : kOr, false);
    }
    if (l.type == Ty::kError || r.type == Ty::kError) return Typed{};
    const std::string both = fmt::format("{} and {}", Described(l, ln), Described(r, rn));
    Ty target = Unify({l.type, r.type});
    static const char* const kCmp[] = {"==", "!=", "<", "<=", ">", ">="};
    for (int c = 0; c < 6; ++c) {
      if (op != kCmp[c]) continue;
      if (target == Ty::kError) {
        return Fail(n.at,
                    fmt::format("cannot compare {} with {}", Described(l, ln), Described(r, rn)));
      }
      if (target == Ty::kNull) target = Ty::kBool;
      Coerce(l, target);
      Coerce(r, target);
      return Call(Ty::kBool, Compare, n, args, c);
    }
    if (target == Ty::kNull) return Typed{Ty::kNull, true, nullptr};
    if (op == "+" && target == Ty::kString) {
      Coerce(l, target);
      Coerce(r, target);
      return Call(Ty::kString, StringPlus, n, args);
    }
    if (target == Ty::kError || !IsNum(target)) {
      bool text = l.type == Ty::kString || r.type == Ty::kString;
      return Fail(
          n.at,
          fmt::format("'{}' expects {}, got {}{}", op,
                      op == "+" ? "two numbers or two strings" : "numbers", both,
                      text && op == "+" ? "; use to_string() to turn a value into text" : ""));
    }
    if (op == "%") {
      if (target != Ty::kInt64) {
        return Fail(n.at, fmt::format("'%' expects int64 operands, got {}; use to_int() or "
                                      "floor() first",
                                      both));
      }
      Coerce(l, target);
      Coerce(r, target);
      return Call(Ty::kInt64, IntMod, n, args);
    }
    if (op == "/") target = Ty::kFloat64;
    Coerce(l, target);
    Coerce(r, target);
    if (op == "/") return Call(Ty::kFloat64, FloatDiv, n, args);
    int a = op == "+" ? kAdd : op == "-" ? kSub : kMul;
    return Call(target, target == Ty::kInt64 ? IntArith : FloatArith, n, args, a);
  }

  Typed FunctionCall(const Node& n) {
    std::vector<Typed> args;
    bool ok = true;
    for (const auto& k : n.kids) {
      args.push_back(Check(*k));
      ok = ok && args.back().type != Ty::kError;
    }
    const FunctionDef* def = nullptr;
    for (const auto& f : Functions())
      if (n.name == f.name) def = &f;
    if (!def) {
      auto near = ClosestMatch(n.name, ExprFunctionNames());
      return Fail(n.at, fmt::format("unknown function '{}'{} (functions: {})", n.name,
                                    near ? fmt::format("; did you mean '{}'?", *near) : "",
                                    fmt::join(ExprFunctionNames(), ", ")));
    }
    int count = static_cast<int>(args.size());
    if (count < def->min_args || (def->max_args >= 0 && count > def->max_args)) {
      std::string want;
      if (def->max_args < 0) {
        want = fmt::format("at least {} argument{}", def->min_args, def->min_args == 1 ? "" : "s");
      } else if (def->min_args == def->max_args) {
        want = fmt::format("{} argument{}", def->min_args, def->min_args == 1 ? "" : "s");
      } else {
        want = fmt::format("{} {} {} arguments", def->min_args,
                           def->max_args == def->min_args + 1 ? "or" : "to", def->max_args);
      }
      return Fail(n.at, fmt::format("'{}' takes {} ({}), got {}", n.name, want, def->usage, count));
    }
    if (!ok) return Typed{};
    return def->check(*this, n, args);
  }

  std::string_view text_;
  const Schema& schema_;
  const ExprOptions& options_;
  CallKernel* last_call_ = nullptr;
};

// ---- the function table ----

std::string ArgDesc(Checker& c, const Node& call, const std::vector<Typed>& args, size_t i) {
  return fmt::format("{} for argument {} ({})", TyName(args[i].type), i + 1, c.Text(*call.kids[i]));
}

// round/floor/ceil of one number: int64 (ints pass through).
Typed RoundLike(Checker& c, const Node& n, std::vector<Typed>& args, int op) {
  Typed& x = args[0];
  if (x.type == Ty::kInt64) return std::move(x);
  if (x.type == Ty::kNull) return c.Coerce(x, Ty::kInt64), std::move(x);
  if (x.type != Ty::kFloat64) {
    return c.Fail(n.kids[0]->begin,
                  fmt::format("'{}' expects a number, got {}", n.name, ArgDesc(c, n, args, 0)));
  }
  return c.Call(Ty::kInt64, Round, n, args, op);
}

Typed CheckRound(Checker& c, const Node& n, std::vector<Typed>& args) {
  if (args.size() == 1) return RoundLike(c, n, args, 0);
  bool ok = true;
  if (!c.Coerce(args[0], Ty::kFloat64)) {
    c.Fail(n.kids[0]->begin,
           fmt::format("'round' expects a number, got {}", ArgDesc(c, n, args, 0)));
    ok = false;
  }
  if (!c.Coerce(args[1], Ty::kInt64)) {
    c.Fail(n.kids[1]->begin,
           fmt::format("'round' expects int64 digits, got {}", ArgDesc(c, n, args, 1)));
    ok = false;
  }
  if (!ok) return Typed{};
  return c.Call(Ty::kFloat64, RoundTo, n, args);
}

Typed CheckAbs(Checker& c, const Node& n, std::vector<Typed>& args) {
  Typed& x = args[0];
  if (x.type == Ty::kNull) return std::move(x);
  if (!IsNum(x.type)) {
    return c.Fail(n.kids[0]->begin,
                  fmt::format("'abs' expects a number, got {}", ArgDesc(c, n, args, 0)));
  }
  return c.Call(x.type, Abs, n, args);
}

// Every argument a string (or null).
bool StringArgs(Checker& c, const Node& n, std::vector<Typed>& args, const char* hint) {
  bool ok = true;
  for (size_t i = 0; i < args.size(); ++i) {
    if (c.Coerce(args[i], Ty::kString)) continue;
    c.Fail(n.kids[i]->begin, fmt::format("'{}' expects string arguments, got {}{}", n.name,
                                         ArgDesc(c, n, args, i), hint));
    ok = false;
  }
  return ok;
}

Typed CheckCase(Checker& c, const Node& n, std::vector<Typed>& args) {
  if (!StringArgs(c, n, args, "")) return Typed{};
  return c.Call(Ty::kString, Case, n, args, n.name == "lower" ? 0 : 1);
}

Typed CheckLength(Checker& c, const Node& n, std::vector<Typed>& args) {
  if (!StringArgs(c, n, args, "")) return Typed{};
  return c.Call(Ty::kInt64, Length, n, args);
}

Typed CheckConcat(Checker& c, const Node& n, std::vector<Typed>& args) {
  if (!StringArgs(c, n, args, "; use to_string()")) return Typed{};
  return c.Call(Ty::kString, Concat, n, args);
}

Typed CheckFormat(Checker& c, const Node& n, std::vector<Typed>& args) {
  const Node& f = *n.kids[0];
  if (f.kind != Kind::kLiteral || f.lit != Ty::kString) {
    return c.Fail(f.begin,
                  "'format' expects a literal format string as argument 1, e.g. "
                  "format(\"{}_{}\", a, b)");
  }
  std::vector<std::string> pieces(1);
  const std::string& s = f.sval;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((s[i] == '{' || s[i] == '}') && i + 1 < s.size() && s[i + 1] == s[i]) {
      pieces.back() += s[i++];
    } else if (s[i] == '{' && i + 1 < s.size() && s[i + 1] == '}') {
      pieces.emplace_back();
      ++i;
    } else if (s[i] == '{' || s[i] == '}') {
      return c.Fail(f.begin, fmt::format("'format' string: a lone '{}' (placeholders are '{{}}'; "
                                         "write '{}{}' for the character itself)",
                                         s[i], s[i], s[i]));
    } else {
      pieces.back() += s[i];
    }
  }
  size_t placeholders = pieces.size() - 1;
  if (placeholders != args.size() - 1) {
    return c.Fail(f.begin, fmt::format("'format' string has {} placeholder{} but {} value{} "
                                       "follow{}",
                                       placeholders, placeholders == 1 ? "" : "s", args.size() - 1,
                                       args.size() == 2 ? "" : "s", args.size() == 2 ? "s" : ""));
  }
  for (Typed& a : args) c.Coerce(a, Ty::kString);
  args[0].nullable = false;
  Typed t = c.Call(Ty::kString, Format, n, args);
  c.last_call()->pieces = std::move(pieces);
  return t;
}

Typed CheckCoalesce(Checker& c, const Node& n, std::vector<Typed>& args) {
  std::vector<Ty> types;
  for (const Typed& a : args) types.push_back(a.type);
  Ty target = Checker::Unify(types);
  if (target == Ty::kError) {
    for (size_t i = 1; i < args.size(); ++i) {
      types.resize(i + 1);
      if (Checker::Unify(types) != Ty::kError) continue;
      return c.Fail(n.kids[i]->begin,
                    fmt::format("'{}' arguments must have one type, got {} after {}", n.name,
                                ArgDesc(c, n, args, i), ArgDesc(c, n, args, 0)));
    }
  }
  if (target == Ty::kNull) return Typed{Ty::kNull, true, nullptr};
  bool nullable = true;
  for (Typed& a : args) {
    c.Coerce(a, target);
    nullable = nullable && a.nullable;
  }
  Typed t = n.name == "coalesce" ? c.Call(target, Coalesce, n, args, 0, false)
                                 : c.Call(target, MinMax, n, args, n.name == "max" ? 1 : 0);
  if (n.name == "coalesce") t.nullable = nullable;
  return t;
}

Typed CheckToString(Checker& c, const Node& n, std::vector<Typed>& args) {
  if (args[0].type == Ty::kString || args[0].type == Ty::kNull) {
    c.Coerce(args[0], Ty::kString);
    return std::move(args[0]);
  }
  return c.Call(Ty::kString, ToString, n, args);
}

Typed CheckToInt(Checker& c, const Node& n, std::vector<Typed>& args) {
  switch (args[0].type) {
    case Ty::kInt64: return std::move(args[0]);
    case Ty::kNull: c.Coerce(args[0], Ty::kInt64); return std::move(args[0]);
    case Ty::kFloat64: return c.Call(Ty::kInt64, Round, n, args, 3);
    default: return c.Call(Ty::kInt64, ToInt, n, args);
  }
}

Typed CheckToBool(Checker& c, const Node& n, std::vector<Typed>& args) {
  switch (args[0].type) {
    case Ty::kBool: return std::move(args[0]);
    case Ty::kNull: c.Coerce(args[0], Ty::kBool); return std::move(args[0]);
    case Ty::kString:
    case Ty::kInt64:
    case Ty::kFloat64: return c.Call(Ty::kBool, ToBool, n, args);
    default:
      return c.Fail(n.kids[0]->begin, fmt::format("'to_bool' expects a string or a number, got {}",
                                                  ArgDesc(c, n, args, 0)));
  }
}

Typed CheckToFloat(Checker& c, const Node& n, std::vector<Typed>& args) {
  switch (args[0].type) {
    case Ty::kFloat64: return std::move(args[0]);
    case Ty::kNull: c.Coerce(args[0], Ty::kFloat64); return std::move(args[0]);
    default: return c.Call(Ty::kFloat64, ToFloat, n, args);
  }
}

Typed CheckNow(Checker& c, const Node& n, std::vector<Typed>& args) {
  return c.Call(Ty::kTimestamp, Now, n, args);
}

Typed CheckIf(Checker& c, const Node& n, std::vector<Typed>& args) {
  bool ok = true;
  if (!c.Coerce(args[0], Ty::kBool)) {
    c.Fail(n.kids[0]->begin,
           fmt::format("'if' expects a bool condition, got {}", ArgDesc(c, n, args, 0)));
    ok = false;
  }
  Ty target = Checker::Unify({args[1].type, args[2].type});
  if (target == Ty::kError) {
    c.Fail(n.kids[2]->begin, fmt::format("'if' branches must have one type, got {} and {}",
                                         ArgDesc(c, n, args, 1), ArgDesc(c, n, args, 2)));
    ok = false;
  }
  if (!ok) return Typed{};
  if (target == Ty::kNull) return Typed{Ty::kNull, true, nullptr};
  c.Coerce(args[1], target);
  c.Coerce(args[2], target);
  bool nullable = args[1].nullable || args[2].nullable;
  Typed t = c.Call(target, If, n, args, 0, false);
  t.nullable = nullable;
  return t;
}

Typed CheckIsNull(Checker& c, const Node& n, std::vector<Typed>& args) {
  if (args[0].type == Ty::kNull) c.Coerce(args[0], Ty::kBool);
  Typed t = c.Call(Ty::kBool, IsNull, n, args, 0, false);
  t.nullable = false;
  return t;
}

Typed CheckMath(Checker& c, const Node& n, std::vector<Typed>& args, int op) {
  bool ok = true;
  for (size_t i = 0; i < args.size(); ++i) {
    if (c.Coerce(args[i], Ty::kFloat64)) continue;
    c.Fail(n.kids[i]->begin,
           fmt::format("'{}' expects numbers, got {}", n.name, ArgDesc(c, n, args, i)));
    ok = false;
  }
  if (!ok) return Typed{};
  if (n.name == "haversine_km") return c.Call(Ty::kFloat64, HaversineKm, n, args);
  return c.Call(Ty::kFloat64, Math, n, args, op);
}

// Every argument a timestamp (or null); a string hints at to_timestamp().
bool TimestampArgs(Checker& c, const Node& n, std::vector<Typed>& args) {
  bool ok = true;
  for (size_t i = 0; i < args.size(); ++i) {
    if (c.Coerce(args[i], Ty::kTimestamp)) continue;
    c.Fail(n.kids[i]->begin,
           fmt::format("'{}' expects a timestamp, got {}{}", n.name, ArgDesc(c, n, args, i),
                       args[i].type == Ty::kString ? "; use to_timestamp()" : ""));
    ok = false;
  }
  return ok;
}

Typed CheckTimePart(Checker& c, const Node& n, std::vector<Typed>& args, int op) {
  if (!TimestampArgs(c, n, args)) return Typed{};
  return c.Call(Ty::kInt64, TimePart, n, args, op);
}

Typed CheckDaysBetween(Checker& c, const Node& n, std::vector<Typed>& args) {
  if (!TimestampArgs(c, n, args)) return Typed{};
  return c.Call(Ty::kFloat64, DaysBetween, n, args);
}

Typed CheckToTimestamp(Checker& c, const Node& n, std::vector<Typed>& args) {
  switch (args[0].type) {
    case Ty::kTimestamp: return std::move(args[0]);
    case Ty::kNull: c.Coerce(args[0], Ty::kTimestamp); return std::move(args[0]);
    case Ty::kString:
    case Ty::kInt64: return c.Call(Ty::kTimestamp, ToTimestamp, n, args);
    default:
      return c.Fail(n.kids[0]->begin,
                    fmt::format("'to_timestamp' expects a string or epoch milliseconds, got {}",
                                ArgDesc(c, n, args, 0)));
  }
}

const std::vector<FunctionDef>& Functions() {
  static const std::vector<FunctionDef> kFunctions = {
      {"abs", 1, 1, "abs(x)", CheckAbs},
      {"ceil", 1, 1, "ceil(x)",
       [](Checker& c, const Node& n, std::vector<Typed>& a) { return RoundLike(c, n, a, 2); }},
      {"coalesce", 1, -1, "coalesce(a, b, ...)", CheckCoalesce},
      {"concat", 1, -1, "concat(a, b, ...)", CheckConcat},
      {"floor", 1, 1, "floor(x)",
       [](Checker& c, const Node& n, std::vector<Typed>& a) { return RoundLike(c, n, a, 1); }},
      {"format", 1, -1, "format(\"{}_{}\", a, b)", CheckFormat},
      {"if", 3, 3, "if(condition, then, else)", CheckIf},
      {"is_null", 1, 1, "is_null(x)", CheckIsNull},
      {"length", 1, 1, "length(s)", CheckLength},
      {"lower", 1, 1, "lower(s)", CheckCase},
      {"max", 2, 2, "max(a, b)", CheckCoalesce},
      {"min", 2, 2, "min(a, b)", CheckCoalesce},
      {"now", 0, 0, "now()", CheckNow},
      {"round", 1, 2, "round(x) or round(x, digits)", CheckRound},
      {"to_bool", 1, 1, "to_bool(x)", CheckToBool},
      {"to_float", 1, 1, "to_float(x)", CheckToFloat},
      {"to_int", 1, 1, "to_int(x)", CheckToInt},
      {"to_string", 1, 1, "to_string(x)", CheckToString},
      {"upper", 1, 1, "upper(s)", CheckCase},
      {"asin", 1, 1, "asin(x)",
       [](Checker& c, const Node& n, std::vector<Typed>& a) { return CheckMath(c, n, a, kAsin); }},
      {"cos", 1, 1, "cos(x)",
       [](Checker& c, const Node& n, std::vector<Typed>& a) { return CheckMath(c, n, a, kCos); }},
      {"day", 1, 1, "day(t)",
       [](Checker& c, const Node& n, std::vector<Typed>& a) { return CheckTimePart(c, n, a, kDay); }},
      {"day_of_week", 1, 1, "day_of_week(t)",
       [](Checker& c, const Node& n, std::vector<Typed>& a) {
         return CheckTimePart(c, n, a, kDayOfWeek);
       }},
      {"days_between", 2, 2, "days_between(from, to)", CheckDaysBetween},
      {"exp", 1, 1, "exp(x)",
       [](Checker& c, const Node& n, std::vector<Typed>& a) { return CheckMath(c, n, a, kExp); }},
      {"haversine_km", 4, 4, "haversine_km(lat1, lon1, lat2, lon2)",
       [](Checker& c, const Node& n, std::vector<Typed>& a) { return CheckMath(c, n, a, 0); }},
      {"hour", 1, 1, "hour(t)",
       [](Checker& c, const Node& n, std::vector<Typed>& a) { return CheckTimePart(c, n, a, kHour); }},
      {"ln", 1, 1, "ln(x)",
       [](Checker& c, const Node& n, std::vector<Typed>& a) { return CheckMath(c, n, a, kLn); }},
      {"minute", 1, 1, "minute(t)",
       [](Checker& c, const Node& n, std::vector<Typed>& a) {
         return CheckTimePart(c, n, a, kMinute);
       }},
      {"month", 1, 1, "month(t)",
       [](Checker& c, const Node& n, std::vector<Typed>& a) { return CheckTimePart(c, n, a, kMonth); }},
      {"pow", 2, 2, "pow(x, y)",
       [](Checker& c, const Node& n, std::vector<Typed>& a) { return CheckMath(c, n, a, kPow); }},
      {"radians", 1, 1, "radians(degrees)",
       [](Checker& c, const Node& n, std::vector<Typed>& a) { return CheckMath(c, n, a, kRadians); }},
      {"sin", 1, 1, "sin(x)",
       [](Checker& c, const Node& n, std::vector<Typed>& a) { return CheckMath(c, n, a, kSin); }},
      {"sqrt", 1, 1, "sqrt(x)",
       [](Checker& c, const Node& n, std::vector<Typed>& a) { return CheckMath(c, n, a, kSqrt); }},
      {"to_timestamp", 1, 1, "to_timestamp(text or epoch ms)", CheckToTimestamp},
      {"year", 1, 1, "year(t)",
       [](Checker& c, const Node& n, std::vector<Typed>& a) { return CheckTimePart(c, n, a, kYear); }},
  };
  return kFunctions;
}

}  // namespace

}  // namespace expr_internal

std::vector<std::string> ExprFunctionNames() {
  std::vector<std::string> out;
  for (const auto& f : expr_internal::Functions()) out.push_back(f.name);
  std::sort(out.begin(), out.end());
  return out;
}

// ======================================================================================
// Public API
// ======================================================================================

using expr_internal::Checker;
using expr_internal::EvalCtx;
using expr_internal::Node;
using expr_internal::ParseExpr;
using expr_internal::ToTypeId;
using expr_internal::Ty;
using expr_internal::Typed;
using expr_internal::Val;

Expression::Expression(std::string text, TypeId type, bool nullable,
                       std::unique_ptr<ExprKernel> root)
    : text_(std::move(text)), type_(type), nullable_(nullable), root_(std::move(root)) {}

Expression::~Expression() = default;

ExprResult Expression::Evaluate(const std::vector<ColumnPtr>& columns, size_t num_rows,
                                int64_t now_micros) const {
  EvalCtx ctx{columns, num_rows, now_micros};
  Val v = root_->Eval(ctx);
  ExprResult out;
  if (!v.scalar) {
    out.column = std::move(v.col);
    out.errors = std::move(v.errors);
    return out;
  }
  // A value for every row from one: the expression used no field.
  auto col = std::make_shared<Column>(v.col->type);
  col->Reserve(num_rows);
  for (size_t i = 0; i < num_rows; ++i) col->AppendFrom(*v.col, 0);
  out.column = std::move(col);
  if (!v.errors.empty()) {
    for (size_t i = 0; i < num_rows; ++i)
      out.errors.push_back({static_cast<uint32_t>(i), v.errors[0].message});
  }
  return out;
}

CompiledExpr CompileExpression(std::string_view text, const Schema& schema,
                               const ExprOptions& options) {
  CompiledExpr out;
  ExprProblem syntax;
  std::unique_ptr<Node> root = ParseExpr(text, &syntax);
  if (!root) {
    out.problems.push_back(std::move(syntax));
    return out;
  }
  Checker checker(text, schema, options);
  Typed t = checker.Check(*root);
  out.problems = std::move(checker.problems);
  if (out.problems.empty() && t.type == Ty::kNull) {
    out.problems.push_back({0,
                            "the expression is always null, so it has no type; give it one, "
                            "e.g. to_int(null)"});
  }
  std::stable_sort(out.problems.begin(), out.problems.end(),
                   [](const ExprProblem& a, const ExprProblem& b) { return a.offset < b.offset; });
  if (!out.problems.empty() || t.type == Ty::kError) return out;
  out.expr = std::make_unique<Expression>(std::string(text), ToTypeId(t.type), t.nullable,
                                          std::move(t.kernel));
  return out;
}

int64_t ExprNow() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string FloatToString(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  // Shortest round-trip digits, then laid out as Python's repr() does.
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(r.ptr - buf));
  std::string out;
  if (sci[0] == '-') {
    out += '-';
    sci.remove_prefix(1);
  }
  size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e))
    if (c != '.') digits += c;
  int exp = 0;
  std::string_view es = sci.substr(e + 1);
  if (!es.empty() && es[0] == '+') es.remove_prefix(1);
  std::from_chars(es.data(), es.data() + es.size(), exp);
  const int n = static_cast<int>(digits.size());
  if (exp >= -5 + 1 && exp < 16) {
    const int point = exp + 1;  // digits before the decimal point
    if (point <= 0) {
      out += "0.";
      out.append(static_cast<size_t>(-point), '0');
      out += digits;
    } else if (point >= n) {
      out += digits;
      out.append(static_cast<size_t>(point - n), '0');
      out += ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(point));
      out += '.';
      out += digits.substr(static_cast<size_t>(point));
    }
    return out;
  }
  out += digits[0];
  if (n > 1) {
    out += '.';
    out += digits.substr(1);
  }
  out += fmt::format("e{}{:02d}", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  return out;
}

std::string ExprProblemMessage(const NodeConfig& node, const YAML::Node& scalar,
                               std::string_view expr, const ExprProblem& problem,
                               std::string_view context) {
  Mark m = Mark::Of(node.mark.file, scalar);
  if (node.source_text && m.line > 0 && scalar.IsScalar() && scalar.Scalar() == expr) {
    std::string_view text = *node.source_text;
    size_t start = 0;
    for (int l = 1; l < m.line && start != std::string_view::npos; ++l) {
      start = text.find('\n', start);
      if (start != std::string_view::npos) ++start;
    }
    if (start != std::string_view::npos) {
      std::string_view line = text.substr(start, text.find('\n', start) - start);
      size_t at = static_cast<size_t>(m.column - 1);
      char quote = at < line.size() ? line[at] : '\0';
      bool quoted = quote == '"' || quote == '\'';
      size_t body = at + (quoted ? 1 : 0);
      // The value is the file's text only when no escape changed it: then the closing quote
      // (if any) follows it directly.
      if (body <= line.size() && line.substr(body, expr.size()) == expr &&
          (!quoted || (body + expr.size() < line.size() && line[body + expr.size()] == quote))) {
        m.column = static_cast<int>(body + problem.offset) + 1;
        return fmt::format("{}: {}: {}{}", m.ToString(), node.Prefix(), context, problem.message);
      }
    }
  }
  return fmt::format("{}: {}: {}at character {} of the expression: {}", m.ToString(), node.Prefix(),
                     context, problem.offset + 1, problem.message);
}

}  // namespace sluice
