// Shared check for transforms that name input fields: every name must be a field of the input,
// with a "did you mean" hint and the list of fields when it is not.
#pragma once

#include <string>
#include <vector>

#include <fmt/format.h>

#include "engine/operator.h"

namespace sluice {

inline std::string InputName(const NodeConfig& node) {
  if (node.inputs.size() == 1) return fmt::format("'{}'", node.inputs[0]);
  return "the inputs";
}

inline std::string NotAFieldMessage(const NodeConfig& node, const std::string& name,
                                    const Schema& input) {
  auto near = input.Suggest(name);
  return fmt::format("'{}' is not a field of {}{} (fields: {})", name, InputName(node),
                     near ? fmt::format("; did you mean '{}'?", *near) : "", input.FieldNames());
}

// A name is a field or a nested object (all of its fields). Errors point at the offending list
// item when the key holds a list.
inline Status CheckFieldsExist(const NodeConfig& node, const std::string& key,
                               const std::vector<std::string>& names, const Schema& input) {
  YAML::Node list = node.Raw(key);
  for (size_t i = 0; i < names.size(); ++i) {
    if (!input.Resolve(names[i]).empty()) continue;
    Mark m = node.MarkOf(key);
    if (list.IsSequence() && i < list.size()) m = Mark::Of(node.mark.file, list[i]);
    return Status::InvalidConfig(fmt::format("{}: {}: {}", m.ToString(), node.Prefix(),
                                             NotAFieldMessage(node, names[i], input)));
  }
  return Status::Ok();
}

}  // namespace sluice
