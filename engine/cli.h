// The `sluice` command line: run, validate, test, graph, operators.
#pragma once

#include "engine/operator.h"

namespace sluice {

// Exit codes: 0 success; 1 a pipeline is invalid or failed; 2 usage error.
int RunCli(int argc, char** argv, const Registry& registry);

}  // namespace sluice
