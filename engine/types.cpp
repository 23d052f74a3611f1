#include "engine/types.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

namespace sluice {

const char* TypeName(TypeId type) {
  switch (type) {
    case TypeId::kBool: return "bool";
    case TypeId::kInt64: return "int64";
    case TypeId::kFloat64: return "float64";
    case TypeId::kString: return "string";
    case TypeId::kTimestamp: return "timestamp";
  }
  return "?";
}

std::optional<TypeId> ParseTypeName(std::string_view name) {
  if (name == "bool" || name == "boolean") return TypeId::kBool;
  if (name == "int64" || name == "int" || name == "integer" || name == "long" || name == "int32")
    return TypeId::kInt64;
  if (name == "float64" || name == "float" || name == "double" || name == "number" ||
      name == "float32")
    return TypeId::kFloat64;
  if (name == "string" || name == "str") return TypeId::kString;
  if (name == "timestamp" || name == "datetime") return TypeId::kTimestamp;
  return std::nullopt;
}

bool IsNumeric(TypeId type) {
  return type == TypeId::kInt64 || type == TypeId::kFloat64;
}

Schema::Schema(std::vector<Field> fields) : fields_(std::move(fields)) {}

int Schema::IndexOf(std::string_view name) const {
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (fields_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

std::vector<size_t> Schema::Resolve(std::string_view name) const {
  int exact = IndexOf(name);
  if (exact >= 0) return {static_cast<size_t>(exact)};
  std::vector<size_t> under;
  for (size_t i = 0; i < fields_.size(); ++i) {
    const std::string& n = fields_[i].name;
    if (n.size() > name.size() && n[name.size()] == '.' && n.compare(0, name.size(), name) == 0) {
      under.push_back(i);
    }
  }
  return under;
}

std::string Schema::FieldNames() const {
  std::string out;
  for (const auto& f : fields_) {
    if (!out.empty()) out += ", ";
    out += f.name;
  }
  return out;
}

std::string Schema::ToString() const {
  std::string out;
  for (const auto& f : fields_) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{}: {}{}", f.name, TypeName(f.type), f.nullable ? "?" : "");
  }
  return out;
}

std::optional<std::string> Schema::Suggest(std::string_view name) const {
  std::vector<std::string> names;
  for (const auto& f : fields_) {
    // Nested objects are names too (`ride` for `ride.trip_distance`).
    for (size_t dot = f.name.find('.'); dot != std::string::npos; dot = f.name.find('.', dot + 1)) {
      std::string object = f.name.substr(0, dot);
      if (std::find(names.begin(), names.end(), object) == names.end()) names.push_back(object);
    }
    names.push_back(f.name);
  }
  return ClosestMatch(name, names);
}

size_t EditDistance(std::string_view a, std::string_view b) {
  // Optimal string alignment: insertions, deletions, substitutions and transpositions of
  // neighbours ("tabel" -> "table") each cost one. Case differences are free: they are the most
  // common mistake in field names (PULocationId vs PULocationID).
  auto same = [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  };
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      d[i][j] = std::min(
          {d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (same(a[i - 1], b[j - 1]) ? 0 : 1)});
      if (i > 1 && j > 1 && same(a[i - 1], b[j - 2]) && same(a[i - 2], b[j - 1])) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::optional<std::string> ClosestMatch(std::string_view name,
                                        const std::vector<std::string>& candidates) {
  // Short names need a closer match, or every four-letter word suggests another.
  size_t best = std::max<size_t>(1, name.size() / 3) + 1;
  std::optional<std::string> out;
  for (const auto& c : candidates) {
    size_t d = EditDistance(name, c);
    if (d < best) {
      best = d;
      out = c;
    }
  }
  return out;
}

namespace {

bool ParseDigits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

}  // namespace

Result<int64_t> ParseTimestamp(std::string_view s) {
  auto bad = [&] {
    return Status::TypeError(
        fmt::format("'{}' is not a timestamp (expected ISO 8601, e.g. 2026-01-01T12:00:00Z)", s));
  };
  int year, month, day, hour = 0, minute = 0, second = 0;
  if (!ParseDigits(s, 0, 4, &year) || s.size() < 10 || s[4] != '-' ||
      !ParseDigits(s, 5, 2, &month) || s[7] != '-' || !ParseDigits(s, 8, 2, &day))
    return bad();
  if (month < 1 || month > 12 || day < 1 || day > 31) return bad();
  size_t pos = 10;
  int64_t micros = 0;
  if (pos < s.size() && (s[pos] == 'T' || s[pos] == ' ')) {
    if (!ParseDigits(s, pos + 1, 2, &hour) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !ParseDigits(s, pos + 4, 2, &minute))
      return bad();
    pos += 6;
    if (pos < s.size() && s[pos] == ':') {
      if (!ParseDigits(s, pos + 1, 2, &second)) return bad();
      pos += 3;
      if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
        ++pos;
        int digits = 0;
        int64_t frac = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
          if (digits < 6) {
            frac = frac * 10 + (s[pos] - '0');
            ++digits;
          }
          ++pos;
        }
        if (digits == 0) return bad();
        while (digits < 6) {
          frac *= 10;
          ++digits;
        }
        micros = frac;
      }
    }
    if (hour > 23 || minute > 59 || second > 60) return bad();
  }
  int64_t offset_seconds = 0;
  if (pos < s.size()) {
    if (s[pos] == 'Z' || s[pos] == 'z') {
      ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
      int oh, om = 0;
      int sign = s[pos] == '-' ? -1 : 1;
      if (!ParseDigits(s, pos + 1, 2, &oh)) return bad();
      pos += 3;
      if (pos < s.size() && s[pos] == ':') ++pos;
      if (pos < s.size()) {
        if (!ParseDigits(s, pos, 2, &om)) return bad();
        pos += 2;
      }
      offset_seconds = sign * (oh * 3600 + om * 60);
    }
  }
  if (pos != s.size()) return bad();
  int64_t days = DaysFromCivil(year, month, day);
  int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
  return secs * 1000000 + micros;
}

namespace {
char* PutDigits(char* p, int64_t v, int width) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  return p + width;
}
}  // namespace

size_t FormatTimestampTo(int64_t micros, char* buf, bool fixed_width) {
  int64_t secs = micros / 1000000;
  int64_t frac = micros % 1000000;
  if (frac < 0) {
    frac += 1000000;
    secs -= 1;
  }
  int64_t days = secs / 86400;
  int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    days -= 1;
  }
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  if (y < 0 || y > 9999) {
    std::string s = fmt::format("{}", micros);  // outside ISO 8601's four-digit years
    std::memcpy(buf, s.data(), std::min<size_t>(s.size(), 31));
    return std::min<size_t>(s.size(), 31);
  }
  char* p = buf;
  p = PutDigits(p, y, 4);
  *p++ = '-';
  p = PutDigits(p, m, 2);
  *p++ = '-';
  p = PutDigits(p, d, 2);
  *p++ = 'T';
  p = PutDigits(p, rem / 3600, 2);
  *p++ = ':';
  p = PutDigits(p, (rem / 60) % 60, 2);
  *p++ = ':';
  p = PutDigits(p, rem % 60, 2);
  if (frac != 0 || fixed_width) {
    *p++ = '.';
    p = PutDigits(p, frac, 6);
  }
  *p++ = 'Z';
  return static_cast<size_t>(p - buf);
}

std::string FormatTimestamp(int64_t micros) {
  char buf[40];
  return std::string(buf, FormatTimestampTo(micros, buf));
}

}  // namespace sluice
