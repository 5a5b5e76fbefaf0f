// The `sparkstack` binary: every subcommand lives in its own launcher/*_command.cc.
#include "CLI/CLI.hpp"
#include "launcher/command_registry.h"

int main(int argc, char** argv) {
  CLI::App app{"sparkstack: serve one large model across several DGX Spark boxes"};
  app.require_subcommand(1);
  for (auto setup : sparkstack::launcher::RegisteredCommands()) setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}
