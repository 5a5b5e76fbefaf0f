#include "runtime/control/serve_cluster.h"

#include "absl/strings/str_cat.h"
#include "runtime/control/local_agents.h"
#include "runtime/core/status_macros.h"

namespace sparkstack::control {

absl::StatusOr<std::unique_ptr<ServeCluster>> ServeCluster::Start(
    ServeClusterOptions options, HeadRank* head, const std::function<void(Coordinator&)>& prepare) {
  if (options.tp < 1 || options.pp < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tp ", options.tp, " and --pp ", options.pp, " must be at least 1"));
  }
  const int world = options.tp * options.pp;
  if (options.local_ranks && !options.nodes.empty()) {
    return absl::InvalidArgumentError("--local-ranks and --nodes cannot be combined");
  }
  if (!options.local_ranks && static_cast<int>(options.nodes.size()) != world - 1 &&
      options.kind == WorkerKind::kModel) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tp ", options.tp, " x --pp ", options.pp, " = ", world,
        " ranks: the head runs rank 0, so --nodes must list ", world - 1, " node agent",
        world - 1 == 1 ? "" : "s", " (or pass --local-ranks); it lists ", options.nodes.size()));
  }
  std::unique_ptr<ServeCluster> cluster(new ServeCluster());
  AuthOptions auth = options.auth;
  const bool has_credentials =
      !auth.token_file.empty() || !auth.tls_cert_file.empty() || auth.insecure;
  if (!options.local_ranks && options.nodes.empty() && !has_credentials) {
    auth.insecure = true;  // a group of one: rank 0 alone, no node agent to authenticate
  }
  if (options.local_ranks) {
    if (!has_credentials) {
      SPARKSTACK_ASSIGN_OR_RETURN(cluster->fresh_token_file_, WriteFreshTokenFile());
      auth.token_file = cluster->fresh_token_file_;
    }
    if (auth.token_file.empty()) {
      return absl::InvalidArgumentError("--local-ranks needs a token (--token-file) or none");
    }
    LocalAgentsOptions local;
    local.count = world - 1;
    local.binary = options.binary;
    local.token_file = auth.token_file;
    SPARKSTACK_ASSIGN_OR_RETURN(cluster->local_agents_, LocalAgents::Start(std::move(local)));
    options.nodes = cluster->local_agents_->addresses();
  }
  CoordinatorOptions coordinator;
  coordinator.nodes = options.nodes;
  coordinator.auth = auth;
  coordinator.plan.kind = options.kind;
  coordinator.plan.model_path = options.model_dir;
  coordinator.plan.tp = options.tp;
  coordinator.plan.pp = options.pp;
  coordinator.plan.kv_cache_bytes = options.kv_cache_bytes;
  coordinator.plan.threads = options.threads;
  coordinator.plan.engine_options_json = options.engine_options_json;
  coordinator.node_model_path = options.node_model_dir;
  coordinator.heartbeat_interval = options.heartbeat_interval;
  coordinator.heartbeat_timeout = options.heartbeat_timeout;
  coordinator.load_timeout = options.load_timeout;
  SPARKSTACK_ASSIGN_OR_RETURN(cluster->coordinator_,
                              Coordinator::Create(std::move(coordinator), head));
  if (prepare) prepare(*cluster->coordinator_);
  SPARKSTACK_RETURN_IF_ERROR(cluster->coordinator_->Start());
  return cluster;
}

ServeCluster::~ServeCluster() { Shutdown(); }

void ServeCluster::Shutdown() {
  if (coordinator_ != nullptr) coordinator_->Shutdown(/*shutdown_nodes=*/false);
  local_agents_.reset();
  if (!fresh_token_file_.empty()) {
    RemoveTokenFile(fresh_token_file_);
    fresh_token_file_.clear();
  }
}

}  // namespace sparkstack::control
