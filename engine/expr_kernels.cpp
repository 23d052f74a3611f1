// The expression language's kernels: each operator's and function's loop over a batch's rows, so
// that dispatch is per node and batch, never per row.
#include "engine/expr_kernels.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <limits>

namespace sluice::expr_internal {

namespace {

// Drops the errors of `v` at rows where `keep` is false: the value was not needed there (the
// other side of and/or decided, the branch of if() not taken), as if it had not been evaluated.
template <typename Keep>
void KeepErrorsWhere(Val& v, Keep keep) {
  v.errors.erase(std::remove_if(v.errors.begin(), v.errors.end(),
                                [&](const ExprRowError& e) { return !keep(e.row); }),
                 v.errors.end());
}

void CheckFinite(const CallKernel& k, Out& out) {
  const double* r = out.col->doubles.data();
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i) || std::isfinite(r[i])) continue;
    out.Fail(i,
             k.Failed(std::isnan(r[i]) ? std::string("the float result is not a number (NaN)")
                                       : fmt::format("the float result is not finite ({})", r[i])));
  }
}

template <typename Get>
void CompareWith(int op, Out& out, Get get) {
  int64_t* r = out.col->ints.data();
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    const auto& x = get(0, i);
    const auto& y = get(1, i);
    switch (op) {
      case kEq: r[i] = x == y; break;
      case kNe: r[i] = x != y; break;
      case kLt: r[i] = x < y; break;
      case kLe: r[i] = x <= y; break;
      case kGt: r[i] = x > y; break;
      default: r[i] = x >= y;
    }
  }
}

// Python's round(x, digits): the double nearest to x rounded to `digits` decimals, ties to even
// on the exact binary value (glibc's printf rounds exactly, in the current, to-nearest mode).
double RoundDigits(double x, int64_t digits) {
  if (!std::isfinite(x) || digits > 323) return x;
  if (digits < -308) return 0.0 * x;
  if (digits >= 0) {
    char buf[700];
    int len = std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(digits), x);
    if (len <= 0 || len >= static_cast<int>(sizeof buf)) return x;
    double r = 0;
    std::from_chars(buf, buf + len, r);
    return r;
  }
  double p = std::pow(10.0, static_cast<double>(-digits));
  return std::nearbyint(x / p) * p;
}

void AppendText(const Val& v, size_t i, std::string& out) {
  switch (v.col->type) {
    case TypeId::kString: out += v.S(i); break;
    case TypeId::kBool: out += v.I(i) ? "true" : "false"; break;
    case TypeId::kInt64: fmt::format_to(std::back_inserter(out), "{}", v.I(i)); break;
    case TypeId::kFloat64: out += FloatToString(v.D(i)); break;
    case TypeId::kTimestamp: {
      char buf[40];
      out.append(buf, FormatTimestampTo(v.I(i), buf));
      break;
    }
  }
}

std::string Quoted(std::string_view s) {
  constexpr size_t kMax = 40;
  if (s.size() <= kMax) return fmt::format("'{}'", s);
  return fmt::format("'{}...'", s.substr(0, kMax));
}

// Strict: an optional sign and the number, nothing around it.
bool ParseIntStrict(std::string_view s, int64_t* out) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if (s.empty() || s[0] == '+') return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool ParseFloatStrict(std::string_view s, double* out) {
  std::string_view body = s;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) body.remove_prefix(1);
  // Digits or a point first: no "inf", "nan", hex floats or a second sign.
  if (body.empty() || !((body[0] >= '0' && body[0] <= '9') || body[0] == '.')) return false;
  if (s[0] == '+') s.remove_prefix(1);
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(*out);
}

// Copies row `from` of `v` into row `i` of `out` (same type), null included.
void CopyValue(const Val& v, size_t i, Out& out) {
  size_t r = v.At(i);
  if (v.col->IsNull(r)) {
    out.SetNull(i);
    return;
  }
  switch (out.col->type) {
    case TypeId::kFloat64: out.col->doubles[i] = v.col->doubles[r]; break;
    case TypeId::kString: out.col->strings[i] = v.col->strings[r]; break;
    default: out.col->ints[i] = v.col->ints[r];
  }
}

}  // namespace

Val CallKernel::Eval(const EvalCtx& ctx) const {
  std::vector<Val> args;
  args.reserve(args_.size());
  bool scalar = true;
  for (const auto& a : args_) {
    args.push_back(a->Eval(ctx));
    scalar = scalar && args.back().scalar;
  }
  size_t n = scalar ? 1 : ctx.num_rows;
  // A scalar argument's error is every row's error.
  if (!scalar) {
    for (Val& a : args) {
      if (!a.scalar || a.errors.empty()) continue;
      std::string m = a.errors[0].message;
      a.errors.clear();
      for (size_t i = 0; i < n; ++i) a.errors.push_back({static_cast<uint32_t>(i), m});
    }
  }
  Out out(type(), n);
  if (propagate_nulls_) {
    bool any = false;
    for (const Val& a : args) any = any || !a.col->valid.empty();
    if (any) {
      out.col->valid.assign(n, 1);
      for (const Val& a : args) {
        if (a.col->valid.empty()) continue;
        for (size_t i = 0; i < n; ++i) out.col->valid[i] &= a.col->valid[a.At(i)];
      }
    }
  }
  impl_(*this, ctx, args, out);
  Val v{out.col, scalar, {}};
  // Arguments' errors first (left to right), then this node's; one per row, the first.
  size_t total = out.errors.size();
  for (const Val& a : args) total += a.errors.size();
  if (total > 0) {
    v.errors.reserve(total);
    for (Val& a : args)
      for (auto& e : a.errors) v.errors.push_back(std::move(e));
    for (auto& e : out.errors) v.errors.push_back(std::move(e));
    std::stable_sort(v.errors.begin(), v.errors.end(),
                     [](const ExprRowError& a, const ExprRowError& b) { return a.row < b.row; });
    v.errors.erase(
        std::unique(v.errors.begin(), v.errors.end(),
                    [](const ExprRowError& a, const ExprRowError& b) { return a.row == b.row; }),
        v.errors.end());
    // A failed row is null, whatever a function that ignores nulls made of it.
    for (const auto& e : v.errors) out.SetNull(e.row);
  }
  return v;
}

// ---- arithmetic ----

void IntArith(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  int64_t* r = out.col->ints.data();
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    int64_t x = a[0].I(i), y = a[1].I(i);
    bool overflow = k.op == kAdd   ? __builtin_add_overflow(x, y, &r[i])
                    : k.op == kSub ? __builtin_sub_overflow(x, y, &r[i])
                                   : __builtin_mul_overflow(x, y, &r[i]);
    if (overflow) out.Fail(i, k.Failed("integer overflow"));
  }
}

void FloatArith(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  double* r = out.col->doubles.data();
  switch (k.op) {
    case kAdd:
      for (size_t i = 0; i < out.n; ++i) r[i] = a[0].D(i) + a[1].D(i);
      break;
    case kSub:
      for (size_t i = 0; i < out.n; ++i) r[i] = a[0].D(i) - a[1].D(i);
      break;
    default:
      for (size_t i = 0; i < out.n; ++i) r[i] = a[0].D(i) * a[1].D(i);
  }
  CheckFinite(k, out);
}

void FloatDiv(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  double* r = out.col->doubles.data();
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    double y = a[1].D(i);
    if (y == 0) {
      out.Fail(i, k.Failed("division by zero"));
      continue;
    }
    r[i] = a[0].D(i) / y;
  }
  CheckFinite(k, out);
}

void IntMod(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  int64_t* r = out.col->ints.data();
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    int64_t x = a[0].I(i), y = a[1].I(i);
    if (y == 0) {
      out.Fail(i, k.Failed("modulo by zero"));
    } else {
      r[i] = y == -1 ? 0 : x % y;  // INT64_MIN % -1 traps in C++; the answer is 0
    }
  }
}

void StringPlus(const CallKernel&, const EvalCtx&, std::vector<Val>& a, Out& out) {
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    std::string& s = out.col->strings[i];
    s.reserve(a[0].S(i).size() + a[1].S(i).size());
    s.append(a[0].S(i)).append(a[1].S(i));
  }
}

void Negate(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  if (out.col->type == TypeId::kFloat64) {
    for (size_t i = 0; i < out.n; ++i) out.col->doubles[i] = -a[0].D(i);
    return;
  }
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    if (__builtin_sub_overflow(int64_t{0}, a[0].I(i), &out.col->ints[i]))
      out.Fail(i, k.Failed("integer overflow"));
  }
}

void Not(const CallKernel&, const EvalCtx&, std::vector<Val>& a, Out& out) {
  for (size_t i = 0; i < out.n; ++i) out.col->ints[i] = !a[0].I(i);
}

void IntToFloat(const CallKernel&, const EvalCtx&, std::vector<Val>& a, Out& out) {
  for (size_t i = 0; i < out.n; ++i) out.col->doubles[i] = static_cast<double>(a[0].I(i));
}

// ---- comparisons ----

void Compare(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  switch (a[0].col->type) {
    case TypeId::kFloat64:
      CompareWith(k.op, out, [&](int s, size_t i) { return a[s].D(i); });
      break;
    case TypeId::kString:
      CompareWith(k.op, out, [&](int s, size_t i) -> const std::string& { return a[s].S(i); });
      break;
    default: CompareWith(k.op, out, [&](int s, size_t i) { return a[s].I(i); });
  }
}

// ---- logic (three-valued) ----

void Logic(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  // `decisive` is the value that decides the result alone: false for and, true for or.
  const int64_t decisive = k.op == kOr;
  for (size_t i = 0; i < out.n; ++i) {
    bool ln = a[0].Null(i), rn = a[1].Null(i);
    int64_t l = a[0].I(i), r = a[1].I(i);
    if ((!ln && l == decisive) || (!rn && r == decisive)) {
      out.col->ints[i] = decisive;
    } else if (ln || rn) {
      out.SetNull(i);
    } else {
      out.col->ints[i] = !decisive;
    }
  }
  KeepErrorsWhere(a[1], [&](size_t i) { return a[0].Null(i) || a[0].I(i) != decisive; });
}

// ---- functions ----

void Round(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    double x = a[0].D(i);
    // The default rounding mode rounds half to even, as Python's round() does.
    double r = k.op == 0   ? std::nearbyint(x)
               : k.op == 1 ? std::floor(x)
               : k.op == 2 ? std::ceil(x)
                           : std::trunc(x);
    if (!(r >= -9223372036854775808.0 && r < 9223372036854775808.0)) {
      out.Fail(i, k.Failed(fmt::format("{} is out of range for int64", x)));
      continue;
    }
    out.col->ints[i] = static_cast<int64_t>(r);
  }
}

void RoundTo(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    out.col->doubles[i] = RoundDigits(a[0].D(i), a[1].I(i));
  }
  CheckFinite(k, out);
}

void Abs(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  if (out.col->type == TypeId::kFloat64) {
    for (size_t i = 0; i < out.n; ++i) out.col->doubles[i] = std::fabs(a[0].D(i));
    return;
  }
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    int64_t x = a[0].I(i);
    if (x == std::numeric_limits<int64_t>::min()) {
      out.Fail(i, k.Failed("integer overflow"));
    } else {
      out.col->ints[i] = x < 0 ? -x : x;
    }
  }
}

void Case(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    std::string& s = out.col->strings[i];
    s = a[0].S(i);
    for (char& c : s) {
      if (k.op == 0 && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (k.op == 1 && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
  }
}

void Length(const CallKernel&, const EvalCtx&, std::vector<Val>& a, Out& out) {
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    int64_t n = 0;
    for (char c : a[0].S(i)) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;  // code points
    out.col->ints[i] = n;
  }
}

void Concat(const CallKernel&, const EvalCtx&, std::vector<Val>& a, Out& out) {
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    std::string& s = out.col->strings[i];
    for (const Val& v : a) AppendText(v, i, s);
  }
}

void Format(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  // a[0] is the format string itself; pieces.size() == a.size().
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    std::string& s = out.col->strings[i];
    s = k.pieces[0];
    for (size_t p = 1; p < a.size(); ++p) {
      AppendText(a[p], i, s);
      s += k.pieces[p];
    }
  }
}

void ToString(const CallKernel&, const EvalCtx&, std::vector<Val>& a, Out& out) {
  for (size_t i = 0; i < out.n; ++i)
    if (!out.Skip(i)) AppendText(a[0], i, out.col->strings[i]);
}

// Strings "true"/"false" (any case); numbers: zero is false, anything else true.
void ToBool(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  const TypeId from = a[0].col->type;
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    if (from == TypeId::kString) {
      std::string v(a[0].S(i));
      for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (v == "true" || v == "false") {
        out.col->ints[i] = v == "true";
      } else {
        out.Fail(i, k.Failed(fmt::format("{} is not true or false", Quoted(a[0].S(i)))));
      }
    } else if (from == TypeId::kFloat64) {
      out.col->ints[i] = a[0].D(i) != 0;
    } else {
      out.col->ints[i] = a[0].I(i) != 0;
    }
  }
}

// Floats go through Round (truncating); here strings, bools and timestamps.
void ToInt(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  if (a[0].col->type == TypeId::kString) {
    for (size_t i = 0; i < out.n; ++i) {
      if (out.Skip(i)) continue;
      if (!ParseIntStrict(a[0].S(i), &out.col->ints[i]))
        out.Fail(i, k.Failed(fmt::format("{} is not an integer", Quoted(a[0].S(i)))));
    }
    return;
  }
  for (size_t i = 0; i < out.n; ++i) out.col->ints[i] = a[0].I(i);
}

void ToFloat(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  if (a[0].col->type == TypeId::kString) {
    for (size_t i = 0; i < out.n; ++i) {
      if (out.Skip(i)) continue;
      if (!ParseFloatStrict(a[0].S(i), &out.col->doubles[i]))
        out.Fail(i, k.Failed(fmt::format("{} is not a finite number", Quoted(a[0].S(i)))));
    }
    return;
  }
  for (size_t i = 0; i < out.n; ++i) out.col->doubles[i] = static_cast<double>(a[0].I(i));
}

void Now(const CallKernel&, const EvalCtx& ctx, std::vector<Val>&, Out& out) {
  out.col->ints[0] = ctx.now;
}

void IsNull(const CallKernel&, const EvalCtx&, std::vector<Val>& a, Out& out) {
  for (size_t i = 0; i < out.n; ++i) out.col->ints[i] = a[0].Null(i);
}

void If(const CallKernel&, const EvalCtx&, std::vector<Val>& a, Out& out) {
  auto taken = [&](size_t i) { return !a[0].Null(i) && a[0].I(i) != 0; };
  for (size_t i = 0; i < out.n; ++i) CopyValue(taken(i) ? a[1] : a[2], i, out);
  KeepErrorsWhere(a[1], taken);
  KeepErrorsWhere(a[2], [&](size_t i) { return !taken(i); });
}

void Coalesce(const CallKernel&, const EvalCtx&, std::vector<Val>& a, Out& out) {
  for (size_t i = 0; i < out.n; ++i) {
    size_t p = 0;
    while (p + 1 < a.size() && a[p].Null(i)) ++p;
    CopyValue(a[p], i, out);
  }
  for (size_t p = 1; p < a.size(); ++p) {
    KeepErrorsWhere(a[p], [&](size_t i) {
      for (size_t q = 0; q < p; ++q)
        if (!a[q].Null(i)) return false;
      return true;
    });
  }
}

void MinMax(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  const bool max = k.op == 1;
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    switch (out.col->type) {
      case TypeId::kFloat64: {
        double x = a[0].D(i), y = a[1].D(i);
        out.col->doubles[i] = max ? std::max(x, y) : std::min(x, y);
        break;
      }
      case TypeId::kString: {
        const std::string& x = a[0].S(i);
        const std::string& y = a[1].S(i);
        out.col->strings[i] = max ? std::max(x, y) : std::min(x, y);
        break;
      }
      default: {
        int64_t x = a[0].I(i), y = a[1].I(i);
        out.col->ints[i] = max ? std::max(x, y) : std::min(x, y);
      }
    }
  }
}

// ---- math ----

void Math(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  double* r = out.col->doubles.data();
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    const double x = a[0].D(i);
    switch (k.op) {
      case kSqrt: r[i] = std::sqrt(x); break;
      case kSin: r[i] = std::sin(x); break;
      case kCos: r[i] = std::cos(x); break;
      case kAsin: r[i] = std::asin(x); break;
      case kRadians: r[i] = x * (M_PI / 180.0); break;
      case kExp: r[i] = std::exp(x); break;
      case kLn: r[i] = std::log(x); break;
      default: r[i] = std::pow(x, a[1].D(i));
    }
  }
  CheckFinite(k, out);  // sqrt(-1), ln(0), asin(2), exp(1000): the row is dead-lettered
}

// Great-circle distance in km between (lat1, lon1) and (lat2, lon2), in degrees. The operations
// are in the order of the reference feature code (models/fraud_data.py), so the two agree up
// to the rounding of sin and cos (numpy's and the C library's may differ in the last bit).
void HaversineKm(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  constexpr double kEarthRadiusKm = 6371.0;
  constexpr double kRad = M_PI / 180.0;
  double* r = out.col->doubles.data();
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    const double lat1 = a[0].D(i), lon1 = a[1].D(i), lat2 = a[2].D(i), lon2 = a[3].D(i);
    const double s_lat = std::sin((lat2 - lat1) * kRad / 2.0);
    const double s_lon = std::sin((lon2 - lon1) * kRad / 2.0);
    const double h =
        s_lat * s_lat + std::cos(lat1 * kRad) * std::cos(lat2 * kRad) * (s_lon * s_lon);
    r[i] = 2.0 * kEarthRadiusKm * std::asin(std::sqrt(h));
  }
  CheckFinite(k, out);
}

// ---- timestamps ----

void TimePart(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  constexpr int64_t kMicrosPerDay = 86400LL * 1000000;
  int64_t* r = out.col->ints.data();
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    const int64_t t = a[0].I(i);
    int64_t days = t / kMicrosPerDay;
    int64_t in_day = t % kMicrosPerDay;
    if (in_day < 0) {
      in_day += kMicrosPerDay;
      --days;
    }
    switch (k.op) {
      case kHour: r[i] = in_day / 3600000000LL; break;
      case kMinute: r[i] = in_day / 60000000LL % 60; break;
      // 1970-01-01 was a Thursday: 0 = Monday.
      case kDayOfWeek: r[i] = ((days % 7) + 7 + 3) % 7; break;
      default: {
        // Civil date from days since the epoch (Howard Hinnant's algorithm).
        const int64_t z = days + 719468;
        const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        const int64_t doe = z - era * 146097;
        const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        const int64_t mp = (5 * doy + 2) / 153;
        const int64_t day = doy - (153 * mp + 2) / 5 + 1;
        const int64_t month = mp < 10 ? mp + 3 : mp - 9;
        const int64_t year = yoe + era * 400 + (month <= 2);
        r[i] = k.op == kYear ? year : k.op == kMonth ? month : day;
      }
    }
  }
}

// (b - a) in days, as a float.
void DaysBetween(const CallKernel&, const EvalCtx&, std::vector<Val>& a, Out& out) {
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    out.col->doubles[i] = static_cast<double>(a[1].I(i) - a[0].I(i)) / (86400.0 * 1000000.0);
  }
}

void ToTimestamp(const CallKernel& k, const EvalCtx&, std::vector<Val>& a, Out& out) {
  if (a[0].col->type == TypeId::kString) {
    for (size_t i = 0; i < out.n; ++i) {
      if (out.Skip(i)) continue;
      auto t = ParseTimestamp(a[0].S(i));
      if (t.ok()) {
        out.col->ints[i] = *t;
      } else {
        out.Fail(i, k.Failed(fmt::format("{} is not a timestamp", Quoted(a[0].S(i)))));
      }
    }
    return;
  }
  // Integers are epoch milliseconds, as the JSON decoder reads them.
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i)) continue;
    if (__builtin_mul_overflow(a[0].I(i), int64_t{1000}, &out.col->ints[i]))
      out.Fail(i, k.Failed("integer overflow"));
  }
}

}  // namespace sluice::expr_internal
