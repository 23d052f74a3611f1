// Documents generated from the operator registry, so they cannot drift from the code: the
// Markdown operator reference (docs/operators.md) and the JSON Schema of pipeline files
// (schemas/pipeline.schema.json).
#pragma once

#include <string>

#include "engine/operator.h"

namespace sluice {

std::string OperatorsMarkdown(const Registry& registry);
std::string PipelineJsonSchema(const Registry& registry);

}  // namespace sluice
