// Types, fields and schemas: what flows between nodes is described by a Schema, an ordered list of
// named, typed, possibly-nullable fields. Schemas are immutable and shared.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"

namespace sluice {

enum class TypeId { kBool, kInt64, kFloat64, kString, kTimestamp };

// "bool", "int64", "float64", "string", "timestamp".
const char* TypeName(TypeId type);
// Accepts the names above and common aliases (int, integer, long, float, double, number, str).
std::optional<TypeId> ParseTypeName(std::string_view name);
bool IsNumeric(TypeId type);

struct Field {
  std::string name;
  TypeId type = TypeId::kString;
  bool nullable = true;

  bool operator==(const Field& other) const = default;
};

class Schema {
 public:
  Schema() = default;
  explicit Schema(std::vector<Field> fields);

  const std::vector<Field>& fields() const { return fields_; }
  size_t size() const { return fields_.size(); }
  const Field& field(size_t i) const { return fields_[i]; }
  // -1 when absent.
  int IndexOf(std::string_view name) const;
  // The field `name`, or every field of the nested object `name` (the fields named
  // `name.<...>`), in schema order; empty when neither exists.
  std::vector<size_t> Resolve(std::string_view name) const;
  // "a, b, c": for error messages.
  std::string FieldNames() const;
  // "a: float64, b: string?": for error messages and `sluice validate` output.
  std::string ToString() const;
  // The closest field name to `name` by edit distance, if it is close enough to be a typo.
  std::optional<std::string> Suggest(std::string_view name) const;

  bool operator==(const Schema& other) const { return fields_ == other.fields_; }

 private:
  std::vector<Field> fields_;
};

using SchemaPtr = std::shared_ptr<const Schema>;

// Levenshtein distance; used for "did you mean" hints.
size_t EditDistance(std::string_view a, std::string_view b);
// The closest candidate within a distance of max(2, len/3), if any.
std::optional<std::string> ClosestMatch(std::string_view name,
                                        const std::vector<std::string>& candidates);

// Timestamps are microseconds since the Unix epoch, UTC.
Result<int64_t> ParseTimestamp(std::string_view text);
std::string FormatTimestamp(int64_t micros);
// Writes the same text into `buf` (at least 32 bytes) and returns its length; no allocation.
// With `fixed_width`, the fraction is always written (six digits), so that the text of
// timestamps sorts in time order (SQL columns); otherwise it is left out when zero.
size_t FormatTimestampTo(int64_t micros, char* buf, bool fixed_width = false);

}  // namespace sluice
