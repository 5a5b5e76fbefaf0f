// `sparkstack serve --model DIR`: the API servers (runtime/serving) in front of an engine started
// in this process (or with --local-ranks, on local worker processes, as `generate` starts it).
// Runs until SIGINT or SIGTERM.
//
// INTERIM (serving branch): the control plane's `serve` (node agents, the coordinator, --nodes)
// replaces this file's engine start; it keeps these flag names and calls the same two entry
// points, serving::MakeServingOptions and serving::StartApiServer.
#include <signal.h>
#include <sys/resource.h>

#include <iostream>
#include <memory>
#include <string>

#include "launcher/command_registry.h"
#include "launcher/engine_launch.h"
#include "launcher/serving_flags.h"
#include "runtime/core/status_macros.h"
#include "runtime/serving/engine_provider.h"
#include "runtime/serving/server.h"

namespace sparkstack::launcher {
namespace {

struct ServeFlags {
  std::string model;
  EngineFlags engine;
  ServingFlags serving;
};

// Every connection is a descriptor: allow as many as the hard limit does.
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

absl::Status Run(const ServeFlags& f) {
  // Blocked before any thread starts, so that every thread inherits the mask and sigwait below
  // is the only receiver.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  RaiseDescriptorLimit();

  SPARKSTACK_ASSIGN_OR_RETURN(serving::ServingOptions options,
                              MakeServingOptions(f.serving, f.model));
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<LaunchedEngine> launched,
                              LaunchedEngine::Start(f.model, f.engine));
  std::unique_ptr<serving::EngineProvider> provider =
      serving::MakeEngineProvider(launched->engine());
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<serving::ApiServer> api,
                              serving::StartApiServer(*provider, options));
  std::cerr << "sparkstack serve: ready, model " << options.served_model_name << ", http "
            << options.host << ":" << api->http_port() << ", grpc " << options.host << ":"
            << api->grpc_port() << std::endl;
  int signal = 0;
  sigwait(&signals, &signal);
  std::cerr << "sparkstack serve: signal " << signal << ", shutting down" << std::endl;
  api->Shutdown();
  return launched->Shutdown();
}

void SetupServeCommand(CLI::App& root) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = root.add_subcommand(
      "serve", "Serve a model over OpenAI-compatible HTTP and gRPC (sparkstack.v1.Inference)");
  cmd->add_option("--model", flags->model, "model directory (Hugging Face layout)")->required();
  AddServingFlags(*cmd, flags->serving);
  AddEngineFlags(*cmd, flags->engine);
  cmd->callback([flags] { FinishCommand(Run(*flags)); });
}

}  // namespace

SPARKSTACK_REGISTER_COMMAND(SetupServeCommand);

}  // namespace sparkstack::launcher
