// The expression language: tokenizer, parser (recursive descent, depth-limited), type checker
// with a table of functions, and the column-wise kernels the checked tree compiles to.
#include "engine/expr.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include <fmt/format.h>

namespace sluice {

// ======================================================================================
// Tokens
// ======================================================================================
namespace {

enum class Tok { kEnd, kInt, kFloat, kString, kName, kQuotedName, kOp, kError };

struct Token {
  Tok kind = Tok::kEnd;
  size_t begin = 0, end = 0;
  std::string text;  // operator text, decoded string, or name
  int64_t ival = 0;
  double dval = 0;
};

bool IsNameStart(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool IsNameChar(char c) {
  return IsNameStart(c) || (c >= '0' && c <= '9');
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

class Lexer {
 public:
  explicit Lexer(std::string_view text) : s_(text) {}

  // Every token up to kEnd, or up to and including the first kError (its text is the message).
  std::vector<Token> Run() {
    std::vector<Token> out;
    while (true) {
      out.push_back(Next());
      if (out.back().kind == Tok::kEnd || out.back().kind == Tok::kError) return out;
    }
  }

 private:
  Token Error(size_t at, std::string message) {
    Token t;
    t.kind = Tok::kError;
    t.begin = at;
    t.end = at;
    t.text = std::move(message);
    return t;
  }

  Token Next() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
    Token t;
    t.begin = i_;
    if (i_ >= s_.size()) {
      t.end = i_;
      return t;
    }
    char c = s_[i_];
    if (IsDigit(c) || (c == '.' && i_ + 1 < s_.size() && IsDigit(s_[i_ + 1]))) return Number();
    if (c == '"' || c == '\'') return String();
    if (c == '`') return QuotedName();
    if (IsNameStart(c)) return Name();
    static const char* const kOps[] = {"==", "!=", "<=", ">=", "&&", "||", "+", "-", "*",
                                       "/",  "%",  "<",  ">",  "!",  "(",  ")", ","};
    for (const char* op : kOps) {
      size_t n = std::strlen(op);
      if (s_.substr(i_, n) == op) {
        t.kind = Tok::kOp;
        t.text = op;
        i_ += n;
        t.end = i_;
        return t;
      }
    }
    if (c == '=') return Error(i_, "unexpected '='; use '==' to compare");
    if (c == '&') return Error(i_, "unexpected '&'; use 'and' (or '&&')");
    if (c == '|') return Error(i_, "unexpected '|'; use 'or' (or '||')");
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F)
      return Error(
          i_, fmt::format("unexpected character (byte 0x{:02x})", static_cast<unsigned char>(c)));
    return Error(i_, fmt::format("unexpected character '{}'", c));
  }

  Token Number() {
    Token t;
    t.begin = i_;
    bool is_float = false;
    while (i_ < s_.size() && IsDigit(s_[i_])) ++i_;
    if (i_ < s_.size() && s_[i_] == '.') {
      is_float = true;
      ++i_;
      while (i_ < s_.size() && IsDigit(s_[i_])) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      size_t e = i_ + 1;
      if (e < s_.size() && (s_[e] == '+' || s_[e] == '-')) ++e;
      if (e >= s_.size() || !IsDigit(s_[e])) return Error(i_, "expected digits after the exponent");
      is_float = true;
      i_ = e;
      while (i_ < s_.size() && IsDigit(s_[i_])) ++i_;
    }
    if (i_ < s_.size() && (IsNameChar(s_[i_]) || s_[i_] == '.'))
      return Error(i_, fmt::format("unexpected '{}' after a number", s_[i_]));
    t.end = i_;
    std::string_view lit = s_.substr(t.begin, t.end - t.begin);
    if (is_float) {
      t.kind = Tok::kFloat;
      auto r = std::from_chars(lit.data(), lit.data() + lit.size(), t.dval);
      if (r.ec != std::errc() || !std::isfinite(t.dval))
        return Error(t.begin, fmt::format("float literal '{}' is out of range", lit));
    } else {
      t.kind = Tok::kInt;
      auto r = std::from_chars(lit.data(), lit.data() + lit.size(), t.ival);
      if (r.ec != std::errc())
        return Error(t.begin, fmt::format("integer literal '{}' is out of range for int64", lit));
    }
    return t;
  }

  Token String() {
    Token t;
    t.kind = Tok::kString;
    t.begin = i_;
    char quote = s_[i_++];
    while (true) {
      if (i_ >= s_.size())
        return Error(t.begin, fmt::format("unterminated string: expected a closing {}", quote));
      char c = s_[i_];
      if (c == quote) {
        ++i_;
        break;
      }
      if (c != '\\') {
        t.text += c;
        ++i_;
        continue;
      }
      size_t at = i_;
      if (i_ + 1 >= s_.size()) return Error(at, "unterminated escape at the end of the string");
      char e = s_[i_ + 1];
      i_ += 2;
      switch (e) {
        case '"': t.text += '"'; break;
        case '\'': t.text += '\''; break;
        case '\\': t.text += '\\'; break;
        case 'n': t.text += '\n'; break;
        case 't': t.text += '\t'; break;
        case 'r': t.text += '\r'; break;
        case 'u': {
          uint32_t cp = 0;
          if (!Hex4(&cp)) return Error(at, "expected four hex digits after \\u");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo = 0;
            if (s_.substr(i_, 2) != "\\u") return Error(at, "unpaired UTF-16 surrogate in \\u");
            i_ += 2;
            if (!Hex4(&lo) || lo < 0xDC00 || lo > 0xDFFF)
              return Error(at, "unpaired UTF-16 surrogate in \\u");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return Error(at, "unpaired UTF-16 surrogate in \\u");
          }
          AppendUtf8(cp, t.text);
          break;
        }
        default:
          return Error(at, fmt::format("unknown escape '\\{}' (escapes: \\\" \\' \\\\ \\n \\t "
                                       "\\r \\uXXXX)",
                                       e));
      }
    }
    t.end = i_;
    return t;
  }

  bool Hex4(uint32_t* out) {
    if (i_ + 4 > s_.size()) return false;
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      char c = s_[i_ + k];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        v |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        v |= c - 'A' + 10;
      } else {
        return false;
      }
    }
    i_ += 4;
    *out = v;
    return true;
  }

  Token QuotedName() {
    Token t;
    t.kind = Tok::kQuotedName;
    t.begin = i_++;
    while (true) {
      if (i_ >= s_.size()) return Error(t.begin, "unterminated name: expected a closing `");
      if (s_[i_] == '`') {
        // `` inside a quoted name is one backquote.
        if (i_ + 1 < s_.size() && s_[i_ + 1] == '`') {
          t.text += '`';
          i_ += 2;
          continue;
        }
        ++i_;
        break;
      }
      t.text += s_[i_++];
    }
    if (t.text.empty()) return Error(t.begin, "empty name ``");
    t.end = i_;
    return t;
  }

  Token Name() {
    Token t;
    t.kind = Tok::kName;
    t.begin = i_;
    while (true) {
      while (i_ < s_.size() && IsNameChar(s_[i_])) ++i_;
      if (i_ < s_.size() && s_[i_] == '.') {
        if (i_ + 1 < s_.size() && IsNameStart(s_[i_ + 1])) {
          ++i_;
          continue;
        }
        return Error(i_ + 1, "expected a name after '.' (use `...` for other names)");
      }
      break;
    }
    t.end = i_;
    t.text = std::string(s_.substr(t.begin, t.end - t.begin));
    return t;
  }

  std::string_view s_;
  size_t i_ = 0;
};

// ======================================================================================
// Syntax tree
// ======================================================================================

enum class Kind { kLiteral, kField, kUnary, kBinary, kCall };
// The static types: the column types, plus the type of `null` (fits any) and the type of a node
// that failed to check (reported once, then silent).
enum class Ty { kBool, kInt64, kFloat64, kString, kTimestamp, kNull, kError };

const char* TyName(Ty t) {
  switch (t) {
    case Ty::kBool: return "bool";
    case Ty::kInt64: return "int64";
    case Ty::kFloat64: return "float64";
    case Ty::kString: return "string";
    case Ty::kTimestamp: return "timestamp";
    case Ty::kNull: return "null";
    case Ty::kError: return "error";
  }
  return "?";
}

Ty FromTypeId(TypeId t) {
  switch (t) {
    case TypeId::kBool: return Ty::kBool;
    case TypeId::kInt64: return Ty::kInt64;
    case TypeId::kFloat64: return Ty::kFloat64;
    case TypeId::kString: return Ty::kString;
    case TypeId::kTimestamp: return Ty::kTimestamp;
  }
  return Ty::kError;
}

TypeId ToTypeId(Ty t) {
  switch (t) {
    case Ty::kBool: return TypeId::kBool;
    case Ty::kInt64: return TypeId::kInt64;
    case Ty::kFloat64: return TypeId::kFloat64;
    case Ty::kTimestamp: return TypeId::kTimestamp;
    default: return TypeId::kString;
  }
}

bool IsNum(Ty t) {
  return t == Ty::kInt64 || t == Ty::kFloat64;
}

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

class Parser {
 public:
  Parser(std::string_view text, std::vector<Token> tokens)
      : text_(text), toks_(std::move(tokens)) {}

  std::unique_ptr<Node> Run(ExprProblem* problem) {
    auto n = Expr();
    if (n && Peek().kind == Tok::kError) {
      n = Fail(Peek().begin, Peek().text);
    } else if (n && Peek().kind != Tok::kEnd) {
      n = Fail(Peek().begin,
               fmt::format("expected an operator or the end of the expression, found {}",
                           Describe(Peek())));
      if (Peek().kind == Tok::kOp && Peek().text == ")")
        problem_.message = "unexpected ')' without a matching '('";
    }
    if (!n) *problem = problem_;
    return n;
  }

 private:
  const Token& Peek() const { return toks_[pos_]; }
  bool IsOp(const char* op) const { return Peek().kind == Tok::kOp && Peek().text == op; }
  bool IsWord(const char* w) const { return Peek().kind == Tok::kName && Peek().text == w; }

  std::string Describe(const Token& t) const {
    if (t.kind == Tok::kEnd) return "the end of the expression";
    return fmt::format("'{}'", text_.substr(t.begin, t.end - t.begin));
  }

  std::unique_ptr<Node> Fail(size_t at, std::string message) {
    if (problem_.message.empty()) problem_ = {at, std::move(message)};
    return nullptr;
  }

  std::unique_ptr<Node> Make(Kind kind, size_t begin, size_t end) {
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->begin = begin;
    n->end = end;
    n->at = begin;
    return n;
  }

  // Left-associative chains are built in loops, so depth is counted on the tree, not the stack.
  std::unique_ptr<Node> Binary(std::string op, size_t at, std::unique_ptr<Node> l,
                               std::unique_ptr<Node> r) {
    auto n = Make(Kind::kBinary, l->begin, r->end);
    n->name = std::move(op);
    n->at = at;
    n->depth = std::max(l->depth, r->depth) + 1;
    if (n->depth > kMaxExprDepth) return TooDeep(at);
    n->kids.push_back(std::move(l));
    n->kids.push_back(std::move(r));
    return n;
  }

  std::unique_ptr<Node> TooDeep(size_t at) {
    return Fail(at, fmt::format("the expression nests too deeply (more than {} levels of "
                                "operators, calls and parentheses)",
                                kMaxExprDepth));
  }

  std::unique_ptr<Node> Expr() {
    if (++nesting_ > kMaxExprDepth) return TooDeep(Peek().begin);
    auto n = Or();
    --nesting_;
    return n;
  }

  std::unique_ptr<Node> Or() {
    auto l = And();
    while (l && (IsWord("or") || IsOp("||"))) {
      size_t at = Peek().begin;
      ++pos_;
      auto r = And();
      if (!r) return nullptr;
      l = Binary("or", at, std::move(l), std::move(r));
    }
    return l;
  }

  std::unique_ptr<Node> And() {
    auto l = Comparison();
    while (l && (IsWord("and") || IsOp("&&"))) {
      size_t at = Peek().begin;
      ++pos_;
      auto r = Comparison();
      if (!r) return nullptr;
      l = Binary("and", at, std::move(l), std::move(r));
    }
    return l;
  }

  bool AtComparison() const {
    return IsOp("==") || IsOp("!=") || IsOp("<") || IsOp("<=") || IsOp(">") || IsOp(">=");
  }

  std::unique_ptr<Node> Comparison() {
    auto l = Additive();
    if (!l || !AtComparison()) return l;
    std::string op = Peek().text;
    size_t at = Peek().begin;
    ++pos_;
    auto r = Additive();
    if (!r) return nullptr;
    if (AtComparison()) {
      return Fail(Peek().begin, "comparisons cannot be chained; write 'a < b and b < c'");
    }
    return Binary(op, at, std::move(l), std::move(r));
  }

  std::unique_ptr<Node> Additive() {
    auto l = Multiplicative();
    while (l && (IsOp("+") || IsOp("-"))) {
      std::string op = Peek().text;
      size_t at = Peek().begin;
      ++pos_;
      auto r = Multiplicative();
      if (!r) return nullptr;
      l = Binary(op, at, std::move(l), std::move(r));
    }
    return l;
  }

  std::unique_ptr<Node> Multiplicative() {
    auto l = Unary();
    while (l && (IsOp("*") || IsOp("/") || IsOp("%"))) {
      std::string op = Peek().text;
      size_t at = Peek().begin;
      ++pos_;
      auto r = Unary();
      if (!r) return nullptr;
      l = Binary(op, at, std::move(l), std::move(r));
    }
    return l;
  }

  std::unique_ptr<Node> Unary() {
    if (IsOp("-") || IsOp("!") || IsWord("not")) {
      std::string op = Peek().text == "-" ? "-" : "not";
      size_t at = Peek().begin;
      ++pos_;
      if (++nesting_ > kMaxExprDepth) return TooDeep(at);
      auto operand = Unary();
      --nesting_;
      if (!operand) return nullptr;
      auto n = Make(Kind::kUnary, at, operand->end);
      n->name = op;
      n->depth = operand->depth + 1;
      if (n->depth > kMaxExprDepth) return TooDeep(at);
      n->kids.push_back(std::move(operand));
      return n;
    }
    return Primary();
  }

  std::unique_ptr<Node> Primary() {
    const Token& t = Peek();
    switch (t.kind) {
      case Tok::kInt:
      case Tok::kFloat:
      case Tok::kString: {
        auto n = Make(Kind::kLiteral, t.begin, t.end);
        n->lit = t.kind == Tok::kInt     ? Ty::kInt64
                 : t.kind == Tok::kFloat ? Ty::kFloat64
                                         : Ty::kString;
        n->ival = t.ival;
        n->dval = t.dval;
        n->sval = t.text;
        ++pos_;
        return n;
      }
      case Tok::kQuotedName: {
        auto n = Make(Kind::kField, t.begin, t.end);
        n->name = t.text;
        ++pos_;
        return n;
      }
      case Tok::kName: return NameOrCall();
      case Tok::kOp:
        if (t.text == "(") {
          size_t open = t.begin;
          ++pos_;
          auto inner = Expr();
          if (!inner) return nullptr;
          if (!IsOp(")")) {
            return Fail(Peek().begin,
                        fmt::format("expected ')' to close the '(' at character {}, found {}",
                                    open + 1, Describe(Peek())));
          }
          // Parentheses widen the node's text so messages quote what was written.
          inner->begin = open;
          inner->end = Peek().end;
          ++pos_;
          return inner;
        }
        break;
      case Tok::kError: return Fail(t.begin, t.text);
      case Tok::kEnd: break;
    }
    return Fail(t.begin, fmt::format("expected a value (a field, literal, function call or "
                                     "'('), found {}",
                                     Describe(t)));
  }

  std::unique_ptr<Node> NameOrCall() {
    const Token t = Peek();
    ++pos_;
    if (t.text == "true" || t.text == "false") {
      auto n = Make(Kind::kLiteral, t.begin, t.end);
      n->lit = Ty::kBool;
      n->ival = t.text == "true";
      return n;
    }
    if (t.text == "null") return Make(Kind::kLiteral, t.begin, t.end);
    if (t.text == "and" || t.text == "or") {
      return Fail(t.begin, fmt::format("expected a value before '{}'", t.text));
    }
    if (!IsOp("(")) {
      auto n = Make(Kind::kField, t.begin, t.end);
      n->name = t.text;
      return n;
    }
    if (t.text.find('.') != std::string::npos)
      return Fail(t.begin, fmt::format("'{}' is not a function name", t.text));
    size_t open = Peek().begin;
    ++pos_;
    if (++nesting_ > kMaxExprDepth) return TooDeep(t.begin);
    auto call = Make(Kind::kCall, t.begin, t.end);
    call->name = t.text;
    int depth = 0;
    if (!IsOp(")")) {
      while (true) {
        auto arg = Expr();
        if (!arg) return nullptr;
        depth = std::max(depth, arg->depth);
        call->kids.push_back(std::move(arg));
        if (IsOp(",")) {
          ++pos_;
          continue;
        }
        if (IsOp(")")) break;
        return Fail(Peek().begin,
                    fmt::format("expected ',' or ')' after an argument of '{}' (its '(' is at "
                                "character {}), found {}",
                                t.text, open + 1, Describe(Peek())));
      }
    }
    --nesting_;
    call->end = Peek().end;
    ++pos_;
    call->depth = depth + 1;
    if (call->depth > kMaxExprDepth) return TooDeep(t.begin);
    return call;
  }

  std::string_view text_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
  int nesting_ = 0;
  ExprProblem problem_;
};

}  // namespace

// ======================================================================================
// Kernels: each evaluates a whole column per batch.
// ======================================================================================

namespace {

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

}  // namespace

class ExprKernel {
 public:
  explicit ExprKernel(TypeId type) : type_(type) {}
  virtual ~ExprKernel() = default;
  virtual Val Eval(const EvalCtx& ctx) const = 0;
  TypeId type() const { return type_; }

 private:
  TypeId type_;
};

namespace {

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

  Val Eval(const EvalCtx& ctx) const override {
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

 private:
  Impl impl_;
  std::string text_;
  std::vector<std::unique_ptr<ExprKernel>> args_;
  bool propagate_nulls_;
};

// Drops the errors of `v` at rows where `keep` is false: the value was not needed there (the
// other side of and/or decided, the branch of if() not taken), as if it had not been evaluated.
template <typename Keep>
void KeepErrorsWhere(Val& v, Keep keep) {
  v.errors.erase(std::remove_if(v.errors.begin(), v.errors.end(),
                                [&](const ExprRowError& e) { return !keep(e.row); }),
                 v.errors.end());
}

// ---- arithmetic ----
enum ArithOp { kAdd, kSub, kMul };

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

void CheckFinite(const CallKernel& k, Out& out) {
  const double* r = out.col->doubles.data();
  for (size_t i = 0; i < out.n; ++i) {
    if (out.Skip(i) || std::isfinite(r[i])) continue;
    out.Fail(i, k.Failed(std::isnan(r[i])
                             ? std::string("the float result is not a number (NaN)")
                             : fmt::format("the float result is not finite ({})", r[i])));
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
enum CmpOp { kEq, kNe, kLt, kLe, kGt, kGe };

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
enum LogicOp { kAnd, kOr };

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
  if (body.empty() || !(IsDigit(body[0]) || body[0] == '.')) return false;
  if (s[0] == '+') s.remove_prefix(1);
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(*out);
}

// Floats go through Round (truncating); here strings, bools and timestamps.
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

// ---- math ----
enum MathOp { kSqrt, kSin, kCos, kAsin, kRadians, kExp, kLn, kPow };

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
    const double h = s_lat * s_lat + std::cos(lat1 * kRad) * std::cos(lat2 * kRad) * (s_lon * s_lon);
    r[i] = 2.0 * kEarthRadiusKm * std::asin(std::sqrt(h));
  }
  CheckFinite(k, out);
}

// ---- timestamps ----
enum TimeOp { kHour, kMinute, kDayOfWeek, kYear, kMonth, kDay };

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
      case kDayOfWeek: r[i] = ((days % 7) + 7 + 3) % 7; break;  // 1970-01-01 was a Thursday: 0 = Monday
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
    out.col->doubles[i] =
        static_cast<double>(a[1].I(i) - a[0].I(i)) / (86400.0 * 1000000.0);
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

void IsNull(const CallKernel&, const EvalCtx&, std::vector<Val>& a, Out& out) {
  for (size_t i = 0; i < out.n; ++i) out.col->ints[i] = a[0].Null(i);
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

}  // namespace

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

std::vector<std::string> ExprFunctionNames() {
  std::vector<std::string> out;
  for (const auto& f : Functions()) out.push_back(f.name);
  std::sort(out.begin(), out.end());
  return out;
}

// ======================================================================================
// Public API
// ======================================================================================

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
  std::vector<Token> tokens = Lexer(text).Run();
  if (tokens.size() == 1 && tokens[0].kind == Tok::kEnd) {
    out.problems.push_back({0, "the expression is empty"});
    return out;
  }
  ExprProblem syntax;
  std::unique_ptr<Node> root = Parser(text, std::move(tokens)).Run(&syntax);
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
