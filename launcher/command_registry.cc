#include "launcher/command_registry.h"

#include <iostream>

namespace sparkstack::launcher {

static std::vector<CommandSetup>& Registry() {
  static std::vector<CommandSetup> registry;
  return registry;
}

bool RegisterCommand(CommandSetup setup) {
  Registry().push_back(setup);
  return true;
}

const std::vector<CommandSetup>& RegisteredCommands() { return Registry(); }

void FinishCommand(const absl::Status& status) {
  if (status.ok()) return;
  std::cerr << "sparkstack: error: " << status.message() << "\n";
  throw CLI::RuntimeError(1);
}

}  // namespace sparkstack::launcher
