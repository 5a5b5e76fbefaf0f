// `sparkstack node`: the node agent (normally a systemd service on every Spark). It reports this
// machine's capabilities, and hosts the worker rank a coordinator (`sparkstack serve` on the
// head) asks for, until SIGTERM or a Shutdown from the cluster.
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "launcher/command_registry.h"
#include "launcher/control_flags.h"
#include "runtime/control/node_agent.h"
#include "runtime/control/output_tail.h"
#include "runtime/control/worker_host.h"
#include "runtime/core/status_macros.h"

namespace sparkstack::launcher {
namespace {

constexpr size_t kLogLinesKept = 10000;

struct NodeFlags {
  std::string listen;
  control::AuthOptions auth;
  std::string port_file;
  int worker_stop_timeout_s = 10;
  int worker_fd = -1;  // internal: this process is a worker rank of the agent that started it
};

absl::Status WritePortFile(const std::string& path, int port) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary);
    out << port << "\n";
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", temporary));
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename ", temporary, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status Run(const NodeFlags& f) {
  if (f.worker_fd >= 0) control::RunWorkerProcess(f.worker_fd, control::RunWorkerRank);
  if (f.listen.empty()) return absl::InvalidArgumentError("--listen HOST:PORT is required");
  BlockTerminationSignals();
  // What this process and its worker ranks write to stderr stays available to `sparkstack logs`.
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<control::OutputTail> log,
                              control::OutputTail::Start(kLogLinesKept));
  control::NodeAgentOptions options;
  options.recent_log = [&log](size_t lines) { return log->tail().Last(lines); };
  options.listen = f.listen;
  options.auth = f.auth;
  options.worker_stop_timeout = std::chrono::seconds(f.worker_stop_timeout_s);
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<control::NodeAgent> agent,
                              control::NodeAgent::Start(options));
  std::cerr << "sparkstack node: listening on port " << agent->port() << std::endl;
  if (!f.port_file.empty()) SPARKSTACK_RETURN_IF_ERROR(WritePortFile(f.port_file, agent->port()));

  std::atomic<bool> done{false};
  std::thread signals([&] {
    const int signal = WaitForTerminationSignal([&] { return done.load(); });
    if (signal != 0) agent->RequestShutdown(absl::StrCat("signal ", signal));
  });
  const std::string reason = agent->Wait();
  done = true;
  signals.join();
  std::cerr << "sparkstack node: stopped (" << reason << ")" << std::endl;
  return absl::OkStatus();
}

void SetupNodeCommand(CLI::App& root) {
  auto flags = std::make_shared<NodeFlags>();
  CLI::App* cmd = root.add_subcommand("node", "Run the node agent that hosts a worker rank");
  cmd->add_option("--listen", flags->listen,
                  "HOST:PORT for the control plane (e.g. 10.0.0.2:7070; port 0 picks one)");
  AddControlAuthFlags(*cmd, flags->auth);
  cmd->add_option("--port-file", flags->port_file,
                  "write the bound port to this file once listening");
  cmd->add_option("--worker-stop-timeout", flags->worker_stop_timeout_s,
                  "seconds a stopped worker rank may take before its process is killed")
      ->check(CLI::PositiveNumber);
  // Internal: how the agent starts each worker rank's process (runtime/control/worker_host.h).
  cmd->add_option("--worker-fd", flags->worker_fd)->group("");
  cmd->callback([flags] { FinishCommand(Run(*flags)); });
}

}  // namespace

SPARKSTACK_REGISTER_COMMAND(SetupNodeCommand);

}  // namespace sparkstack::launcher
