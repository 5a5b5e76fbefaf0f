// `sparkstack serve`: the head. Brings up the cluster (runtime/control: local or remote node
// agents, the coordinator, rank 0's engine in this process), then runs the API servers
// (runtime/serving) in front of it until SIGINT/SIGTERM. This file only parses flags and calls
// those entry points:
//   control::EngineHeadRank::Create, control::ServeCluster::Start      (the cluster)
//   MakeServingOptions (launcher/serving_flags.h), serving::StartApiServer  (the APIs)
// The API servers see the engine through serving::EngineProvider, which ClusterEngineProvider
// below forwards to the EngineHeadRank: the same object across re-formations, its health the
// cluster's.
#include <sys/resource.h>

#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "launcher/command_registry.h"
#include "launcher/control_flags.h"
#include "launcher/engine_launch.h"
#include "launcher/serving_flags.h"
#include "runtime/control/data_plane_probe.h"
#include "runtime/control/engine_adapter.h"
#include "runtime/control/serve_cluster.h"
#include "runtime/core/status_macros.h"
#include "runtime/serving/engine_provider.h"
#include "runtime/serving/server.h"

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

// The API servers' view of the cluster's engine.
class ClusterEngineProvider final : public serving::EngineProvider {
 public:
  explicit ClusterEngineProvider(control::EngineHeadRank& head) : head_(head) {}
  absl::StatusOr<RequestId> AddRequest(Request request, Engine::OutputCallback on_output) override {
    return head_.AddRequest(std::move(request), std::move(on_output));
  }
  void Abort(RequestId id) override { head_.Abort(id); }
  EngineStats stats() const override { return head_.stats(); }
  absl::Status health() const override { return head_.health(); }
  const ModelConfig& model_config() const override { return head_.model_config(); }
  const EngineOptions& options() const override { return head_.options(); }
  const tokenizer::Tokenizer* tokenizer() const override { return head_.tokenizer(); }

 private:
  control::EngineHeadRank& head_;
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
  SPARKSTACK_ASSIGN_OR_RETURN(control::ServeClusterOptions options, ClusterOptions(f));
  RaiseDescriptorLimit();
  serving::ServingOptions api_options;
  if (!f.probe) {
    SPARKSTACK_ASSIGN_OR_RETURN(api_options, MakeServingOptions(f.serving, f.model));
  }
  // Rank 0 of the group: the engine (or the data-plane probe).
  std::unique_ptr<control::HeadRank> head;
  control::EngineHeadRank* engine_head = nullptr;
  if (f.probe) {
    head = std::make_unique<control::DataPlaneProbeHead>();
  } else {
    SPARKSTACK_ASSIGN_OR_RETURN(
        std::unique_ptr<control::EngineHeadRank> engine,
        control::EngineHeadRank::Create(EngineOptionsFromFlags(f.model, f.engine)));
    engine_head = engine.get();
    head = std::move(engine);
  }
  const auto prepare = [&](control::Coordinator& coordinator) {
    coordinator.AddObserver([](const control::ClusterHealth& health) {
      std::cerr << "sparkstack serve: cluster " << health.Summary() << std::endl;
    });
    if (engine_head == nullptr) return;
    // Rank 0 failing on its own fails the group; the API servers see the cluster's health.
    engine_head->SetFailureCallback(
        [&coordinator](const absl::Status& why) { coordinator.ReportHeadFailure(why); });
    engine_head->SetHealthSource([&coordinator]() -> absl::Status {
      if (coordinator.ready()) return absl::OkStatus();
      return absl::UnavailableError(coordinator.Health().Summary());
    });
  };
  SPARKSTACK_ASSIGN_OR_RETURN(
      std::unique_ptr<control::ServeCluster> cluster,
      control::ServeCluster::Start(std::move(options), head.get(), prepare));
  if (engine_head != nullptr) {
    std::cerr << "sparkstack serve: engine ready: max_model_len "
              << engine_head->options().max_model_len << ", "
              << engine_head->stats().kv_blocks_total << " KV blocks, max_num_seqs "
              << engine_head->options().max_num_seqs << std::endl;
  }
  std::unique_ptr<ClusterEngineProvider> provider;
  std::unique_ptr<serving::ApiServer> api;
  if (engine_head != nullptr) {
    provider = std::make_unique<ClusterEngineProvider>(*engine_head);
    SPARKSTACK_ASSIGN_OR_RETURN(api, serving::StartApiServer(*provider, api_options));
    std::cerr << "sparkstack serve: ready, model " << api_options.served_model_name << ", http "
              << api_options.host << ":" << api->http_port() << ", grpc " << api_options.host << ":"
              << api->grpc_port() << std::endl;
  }
  const int signal = WaitForTerminationSignal([] { return false; });
  std::cerr << "sparkstack serve: signal " << signal << ", shutting down" << std::endl;
  if (api != nullptr) api->Shutdown();  // before the engine goes away
  cluster->Shutdown();
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
