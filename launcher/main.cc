// The `sparkstack` binary: every subcommand lives in its own launcher/*_command.cc.
#include <exception>
#include <iostream>
#include <new>
#include <string>

#include "CLI/CLI.hpp"
#include "launcher/cli_policy.h"
#include "launcher/command_registry.h"
#include "runtime/core/memory_budget.h"
#include "sparkstack/version.h"

namespace {

std::string VersionText() {
  return std::string("sparkstack ") + SPARKSTACK_VERSION +
         "\ngit revision: " + SPARKSTACK_GIT_REVISION + "\nbuild type: " + SPARKSTACK_BUILD_TYPE +
         "\nCUDA: " + SPARKSTACK_CUDA_SUMMARY + "\nsanitizers: " + SPARKSTACK_SANITIZERS;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sparkstack: serve one large model across several DGX Spark boxes"};
  // Subcommands copy the root's option defaults when they are created: every option of every
  // command shows its default value in --help.
  app.option_defaults()->always_capture_default();
  app.set_version_flag("--version", VersionText(), "Print the version and build details and exit");
  app.require_subcommand(1);
  for (auto setup : sparkstack::launcher::RegisteredCommands()) setup(app);
  sparkstack::launcher::ApplyCliPolicy(app);
  // Commands return errors as Status values (FinishCommand). These handlers are the last resort
  // for anything that escapes anyway: a clear message and exit status 1, never an abort.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const sparkstack::MemoryBudgetExceeded& e) {
    std::cerr << "sparkstack: error: out of memory: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "sparkstack: error: out of memory: an allocation failed (the model, context "
                 "length or batch is too large for the memory this process may use)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "sparkstack: internal error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
