// Subcommands of the `sparkstack` binary register themselves here, one file per command, so that
// adding a command never edits main.cc.
#ifndef SPARKSTACK_LAUNCHER_COMMAND_REGISTRY_H_
#define SPARKSTACK_LAUNCHER_COMMAND_REGISTRY_H_

#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace sparkstack::launcher {

// Adds one subcommand (options and callback) to the root app.
using CommandSetup = void (*)(CLI::App& root);

// Called from static initializers; returns true so it can initialize a constant.
bool RegisterCommand(CommandSetup setup);
const std::vector<CommandSetup>& RegisteredCommands();

// Ends a command: prints a non-OK status to stderr and turns it into the process exit code
// (0 on success, 1 otherwise) by throwing CLI::RuntimeError, which main() catches.
void FinishCommand(const absl::Status& status);

}  // namespace sparkstack::launcher

#define SPARKSTACK_REGISTER_COMMAND(setup) \
  static const bool kSparkstackRegistered_##setup = ::sparkstack::launcher::RegisterCommand(setup)

#endif  // SPARKSTACK_LAUNCHER_COMMAND_REGISTRY_H_
