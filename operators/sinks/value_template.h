// Message shapes built from a row: what a sink writes when the row as it is will not do. A shape
// is YAML: a mapping or list is built as JSON, a string `.name` is the row's field `name`, any
// other scalar is a constant (`\.x` writes the text `.x`; a quoted scalar is always a string).
// `{model: ride_duration, prediction: {ride_id: .ride_id}}` gives
// `{"model":"ride_duration","prediction":{"ride_id":123}}`. A shape that is one field on its own
// gives that field's text as it is when it is a string (bytes replayed verbatim), its JSON
// otherwise; a null field gives no value at all (a Kafka tombstone).
//
// Threading: parsed once at plan time; Render is const and safe from several threads.
#pragma once

#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "engine/batch.h"
#include "engine/operator.h"

namespace sluice {

class ValueTemplate {
 public:
  // Parses `shape` (a value in `node`'s config) against the input schema; errors point at the
  // offending part of the shape.
  static Result<ValueTemplate> Parse(const NodeConfig& node, const YAML::Node& shape,
                                     const Schema& input);

  // Appends the shape for row `row`; false (nothing appended) when the shape is a single field
  // that is null in this row.
  bool Render(const Batch& batch, size_t row, std::string& out) const;
  bool is_single_field() const { return parts_.size() == 1 && parts_[0].column >= 0; }

 private:
  // The shape flattened into constant JSON text and field references, in output order.
  struct Part {
    std::string text;  // constant JSON text, written before the field (if any)
    int column = -1;   // field to write after `text`, or -1
  };
  Status Build(const NodeConfig& node, const YAML::Node& shape, const Schema& input);
  void AddText(std::string_view text);

  std::vector<Part> parts_;
  bool raw_string_ = false;  // a single string field: its text, not its JSON
};

}  // namespace sluice
