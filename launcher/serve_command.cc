// `sparkstack serve`: the head. Brings up the cluster (runtime/control: local or remote node
// agents, the coordinator, rank 0's engine in this process) and the API servers (runtime/serving)
// in front of it, as one ServeStack (launcher/serve_stack.h), and runs them until SIGINT/SIGTERM.
// This file only parses flags: MakeServingOptions (launcher/serving_flags.h) for the APIs,
// ClusterOptions below for the cluster.
#include <sys/resource.h>

#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "launcher/command_registry.h"
#include "launcher/control_flags.h"
#include "launcher/engine_launch.h"
#include "launcher/serve_stack.h"
#include "launcher/serving_flags.h"
#include "runtime/control/serve_cluster.h"
#include "runtime/core/status_macros.h"

namespace sparkstack::launcher {
namespace {

struct ServeFlags {
  std::string model;
  std::string node_model;
  EngineFlags engine;  // --tp, --pp, --local-ranks, --threads, --max-num-seqs, --kv-cache-bytes...
  std::string nodes;
  control::AuthOptions auth;
  bool probe = false;
  int heartbeat_ms = 1000;
  int heartbeat_timeout_ms = 3000;
  int load_timeout_s = 1800;
  ServingFlags serving;  // --host, --port, --grpc-port, --served-model-name, --api-key-file...
};

// Every client connection is a descriptor: allow as many as the hard limit does.
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

absl::StatusOr<control::ServeClusterOptions> ClusterOptions(const ServeFlags& f) {
  control::ServeClusterOptions options;
  options.kind = f.probe ? control::WorkerKind::kDataPlaneProbe : control::WorkerKind::kModel;
  if (!f.probe && f.model.empty()) {
    return absl::InvalidArgumentError("--model DIR is required (or --probe for a cluster check)");
  }
  options.model_dir = f.model;
  options.node_model_dir = f.node_model;
  options.tp = f.engine.tp;
  options.pp = f.engine.pp;
  if (!f.nodes.empty()) {
    for (absl::string_view node : absl::StrSplit(f.nodes, ',')) options.nodes.emplace_back(node);
  }
  options.local_ranks = f.engine.local_ranks;
  options.auth = f.auth;
  options.kv_cache_bytes = static_cast<uint64_t>(f.engine.kv_cache_bytes);
  options.threads = f.engine.threads;
  options.heartbeat_interval = std::chrono::milliseconds(f.heartbeat_ms);
  options.heartbeat_timeout = std::chrono::milliseconds(f.heartbeat_timeout_ms);
  options.load_timeout = std::chrono::seconds(f.load_timeout_s);
  if (f.probe && !f.engine.local_ranks && f.engine.tp * f.engine.pp == 1) {
    options.tp = static_cast<int>(options.nodes.size()) + 1;  // the probe spans every node
  }
  return options;
}

absl::Status Run(const ServeFlags& f) {
  BlockTerminationSignals();
  ServeStackOptions options;
  SPARKSTACK_ASSIGN_OR_RETURN(options.cluster, ClusterOptions(f));
  RaiseDescriptorLimit();
  if (!f.probe) {
    SPARKSTACK_ASSIGN_OR_RETURN(options.api, MakeServingOptions(f.serving, f.model));
    options.engine = EngineOptionsFromFlags(f.model, f.engine);
  }
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<ServeStack> stack,
                              ServeStack::Start(std::move(options)));
  const int signal = WaitForTerminationSignal([] { return false; });
  std::cerr << "sparkstack serve: signal " << signal << ", shutting down" << std::endl;
  stack->Shutdown();
  return absl::OkStatus();
}

void SetupServeCommand(CLI::App& root) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = root.add_subcommand(
      "serve",
      "Serve a model over OpenAI-compatible HTTP and gRPC, with rank 0 here and the other ranks "
      "on node agents");
  cmd->add_option("--model", flags->model, "model directory on this machine");
  cmd->add_option("--node-model-dir", flags->node_model,
                  "the model directory on the nodes (default: the same path as --model)");
  AddEngineFlags(*cmd, flags->engine);
  // --rendezvous is the TCP bootstrap of `generate`; serve forms its group over the control plane.
  cmd->remove_option(cmd->get_option("--rendezvous"));
  cmd->remove_option(cmd->get_option("--timeout"));
  cmd->get_option("--local-ranks")
      ->description("start the other tp x pp - 1 ranks as node agents on this machine");
  cmd->add_option("--nodes", flags->nodes,
                  "node agents HOST:PORT,... hosting ranks 1, 2, ... (this process is rank 0)");
  AddControlAuthFlags(*cmd, flags->auth);
  cmd->add_flag("--probe", flags->probe,
                "form the cluster with a data-plane check (an all-reduce on every rank) instead "
                "of a model");
  cmd->add_option("--heartbeat-ms", flags->heartbeat_ms, "control-plane heartbeat interval")
      ->check(CLI::Range(50, 60000));
  cmd->add_option("--heartbeat-timeout-ms", flags->heartbeat_timeout_ms,
                  "a node silent this long is lost")
      ->check(CLI::Range(50, 60000));
  cmd->add_option("--load-timeout", flags->load_timeout_s, "seconds for the group to form")
      ->check(CLI::PositiveNumber);
  AddServingFlags(*cmd, flags->serving);
  cmd->callback([flags] { FinishCommand(Run(*flags)); });
}

}  // namespace

SPARKSTACK_REGISTER_COMMAND(SetupServeCommand);

}  // namespace sparkstack::launcher
