// The `sluice` executable: the engine's CLI with the built-in operators.
#include "engine/cli.h"
#include "operators/builtin.h"

int main(int argc, char** argv) {
  sluice::Registry registry;
  sluice::RegisterBuiltinOperators(registry);
  return sluice::RunCli(argc, argv, registry);
}
