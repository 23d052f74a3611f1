// The expression language's tokenizer and recursive-descent parser (depth-limited, so hostile
// input cannot exhaust the stack).
#include "engine/expr_parse.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

namespace sluice::expr_internal {

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
// Parser
// ======================================================================================

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

std::unique_ptr<Node> ParseExpr(std::string_view text, ExprProblem* problem) {
  std::vector<Token> tokens = Lexer(text).Run();
  if (tokens.size() == 1 && tokens[0].kind == Tok::kEnd) {
    *problem = {0, "the expression is empty"};
    return nullptr;
  }
  return Parser(text, std::move(tokens)).Run(problem);
}

}  // namespace sluice::expr_internal
