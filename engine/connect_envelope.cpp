// Finding the payload of a Kafka Connect JsonConverter envelope without parsing the rest.
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "engine/row_builder.h"

namespace sluice::detail {

std::string NanHint(std::string_view record) {
  const bool nan = record.find("NaN") != std::string_view::npos ||
                   record.find("Infinity") != std::string_view::npos;
  return nan ? " (NaN and Infinity are not JSON numbers; send null)" : "";
}

namespace {

// ---- Kafka Connect envelopes ----
// {"schema": {...}, "payload": {...}}: the payload's bytes are found by a structural scan of the
// top-level object, then parsed by simdjson; the other members are checked for structure
// (balanced brackets, terminated strings) but not parsed. simdjson's On-Demand API would skip
// them the same way, but in a portable build it runs its scalar kernel, slower than this scan
// plus a SIMD parse of the payload alone.
class EnvelopeScanner {
 public:
  explicit EnvelopeScanner(std::string_view s) : s_(s) {}

  std::string_view Payload(std::string* problem) {
    std::string_view payload;
    bool found = false;
    SkipSpace();
    if (!Eat('{')) return Fail(problem, "expected an object");
    SkipSpace();
    if (Eat('}')) return Missing(problem);
    for (;;) {
      SkipSpace();
      size_t key_start = pos_;
      if (pos_ >= s_.size() || s_[pos_] != '"') return Fail(problem, "expected a member name");
      if (!SkipString()) return Fail(problem, why_);
      std::string_view key = s_.substr(key_start + 1, pos_ - key_start - 2);
      SkipSpace();
      if (!Eat(':')) return Fail(problem, "expected ':' after a member name");
      SkipSpace();
      size_t value_start = pos_;
      if (!SkipValue()) return Fail(problem, why_);
      if (key == "payload") {
        if (found) return Fail(problem, "'payload' appears twice", false);
        payload = s_.substr(value_start, pos_ - value_start);
        found = true;
      }
      SkipSpace();
      if (Eat(',')) continue;
      if (Eat('}')) break;
      return Fail(problem, "expected ',' or '}'");
    }
    SkipSpace();
    if (pos_ != s_.size()) return Fail(problem, "trailing content after the object");
    if (!found) return Missing(problem);
    return payload;
  }

 private:
  std::string_view Fail(std::string* problem, const char* what, bool json = true) {
    *problem = json ? fmt::format("malformed JSON: {} (at byte {})", what, pos_ + 1)
                    : fmt::format("connect-json: {}", what);
    if (json) *problem += NanHint(s_);
    return {};
  }
  std::string_view Missing(std::string* problem) {
    *problem = "connect-json: no 'payload' in the envelope";
    return {};
  }
  void SkipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool Eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  // The next quote, backslash or bracket at or after `pos`. (A 16-byte SSE2 search was slower
  // here: in a Connect schema a quote comes every few bytes.)
  size_t NextSpecial(size_t pos) const {
    const char* p = s_.data();
    const size_t n = s_.size();
    for (; pos < n; ++pos) {
      char c = p[pos];
      if (c == '"' || c == '\\' || c == '{' || c == '}' || c == '[' || c == ']') return pos;
    }
    return n;
  }

  // A string from its opening quote; leaves pos_ after the closing quote.
  bool SkipString() {
    if (!Eat('"')) return false;
    for (;;) {
      pos_ = NextSpecial(pos_);
      if (pos_ >= s_.size()) break;
      char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      pos_ += c == '\\' ? 2 : 1;  // an escape, or a bracket, which means nothing in a string
    }
    pos_ = s_.size();
    why_ = "a string is opened but never closed";
    return false;
  }
  bool SkipValue() {
    if (pos_ >= s_.size()) return false;
    char c = s_[pos_];
    if (c == '"') return SkipString();
    if (c != '{' && c != '[') {
      // A number or a literal: up to the next delimiter; simdjson checks the payload's.
      size_t start = pos_;
      while (pos_ < s_.size() && s_[pos_] != ',' && s_[pos_] != '}' && s_[pos_] != ']' &&
             s_[pos_] != ' ' && s_[pos_] != '\t' && s_[pos_] != '\n' && s_[pos_] != '\r')
        ++pos_;
      why_ = "a value is missing";
      return pos_ > start;
    }
    // A container: brackets must match; strings may hold any of them.
    char stack[kMaxDepth];
    size_t depth = 0;
    for (;;) {
      pos_ = NextSpecial(pos_);
      if (pos_ >= s_.size()) break;
      c = s_[pos_];
      if (c == '"') {
        if (!SkipString()) return false;
        continue;
      }
      if (c == '\\') {
        why_ = "a backslash outside a string";
        return false;
      }
      if (c == '{' || c == '[') {
        if (depth == kMaxDepth) {
          why_ = "nested too deeply";
          return false;
        }
        stack[depth++] = c == '{' ? '}' : ']';
        ++pos_;
        continue;
      }
      if (depth == 0 || stack[depth - 1] != c) {
        why_ = "mismatched brackets";
        return false;
      }
      ++pos_;
      if (--depth == 0) return true;
    }
    why_ = "the record ends inside an object or array";
    return false;
  }

  static constexpr size_t kMaxDepth = 1024;  // simdjson's default depth limit
  std::string_view s_;
  size_t pos_ = 0;
  const char* why_ = "malformed value";
};

}  // namespace

std::string_view FindEnvelopePayload(std::string_view rec, std::string* problem) {
  return EnvelopeScanner(rec).Payload(problem);
}

}  // namespace sluice::detail
