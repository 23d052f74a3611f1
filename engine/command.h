// Extra `sluice` subcommands contributed by operator packages (e.g. `dev-kafka`, the development
// broker of the kafka operators), so the engine's CLI does not depend on their libraries.
#pragma once

#include <functional>
#include <string>

namespace CLI {
class App;
}

namespace sluice {

struct CommandSpec {
  std::string name;
  std::string summary;
  // Adds the command's options to its subcommand and returns what runs it (the exit code).
  std::function<std::function<int()>(CLI::App* command)> setup;
};

}  // namespace sluice
