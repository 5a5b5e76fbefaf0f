#include "runtime/control/engine_adapter.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/core/status_macros.h"
#include "runtime/engine/cluster.h"
#include "runtime/parallel/rendezvous.h"

namespace sparkstack::control {
namespace {

constexpr std::chrono::milliseconds kRendezvousTimeout{60000};
// Well inside the followers' 10 s communicator timeout.
constexpr std::chrono::milliseconds kKeepAliveInterval{3000};

}  // namespace

absl::Status RunEngineWorkerRank(const LoadPlan& plan, Bootstrap& bootstrap,
                                 WorkerContext& context) {
  context.Report({.phase = LoadPhase::kConnecting, .message = "waiting for rank 0"});
  SPARKSTACK_ASSIGN_OR_RETURN(std::string port_text, bootstrap.Broadcast(""));
  int port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port <= 0 || port > 65535) {
    return absl::DataLossError(
        absl::StrCat("rank 0 sent an invalid rendezvous port '", port_text, "'"));
  }
  if (plan.head_host.empty()) {
    return absl::FailedPreconditionError("the head's address is unknown to this node");
  }
  RendezvousOptions options{.host = plan.head_host,
                            .port = port,
                            .rank = plan.rank,
                            .world_size = plan.world_size,
                            .timeout = kRendezvousTimeout};
  context.Report({.phase = LoadPhase::kLoading, .message = "loading the model shard"});
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<ClusterRank> rank,
                              ClusterRank::Join(options, nullptr));
  context.Report({.phase = LoadPhase::kReady,
                  .message = absl::StrCat("rank ", plan.rank, " loaded (stage ", rank->info().stage,
                                          ", tp rank ", rank->info().tp_rank, ")")});
  return rank->Follow();
}

EngineHeadRank::EngineHeadRank() = default;
EngineHeadRank::~EngineHeadRank() { Stop(absl::CancelledError("rank 0 is being destroyed")); }

absl::Status EngineHeadRank::Start(const LoadPlan& plan, Bootstrap& bootstrap,
                                   const std::atomic<bool>& cancel) {
  // Every interface: the workers reach it at whatever address their agents saw the head at.
  SPARKSTACK_ASSIGN_OR_RETURN(RendezvousListener listener, RendezvousListener::Bind("0.0.0.0", 0));
  SPARKSTACK_RETURN_IF_ERROR(bootstrap.Broadcast(std::to_string(listener.port())).status());
  const ClusterJob job{.model_dir = plan.model_path,
                       .plan = {.tp = plan.tp, .pp = plan.pp},
                       .threads = std::max(plan.threads, 1)};
  RendezvousOptions options{.host = "0.0.0.0",
                            .port = listener.port(),
                            .rank = 0,
                            .world_size = plan.world_size,
                            .timeout = kRendezvousTimeout};
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<ClusterRank> rank,
                              ClusterRank::Join(options, &job, &listener));
  {
    std::lock_guard<std::mutex> lock(mu_);
    rank_ = std::move(rank);
    last_step_ = std::chrono::steady_clock::now();
    stopping_ = false;
  }
  if (plan.world_size > 1) keepalive_ = std::thread([this] { KeepFollowersAlive(); });
  return absl::OkStatus();
}

void EngineHeadRank::KeepFollowersAlive() {
  const std::vector<std::vector<int32_t>> one_token = {{0}};
  GenerationOptions prefill_only;
  prefill_only.max_tokens = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (cv_.wait_until(lock, last_step_ + kKeepAliveInterval, [&] { return stopping_; })) return;
    if (rank_ == nullptr || std::chrono::steady_clock::now() < last_step_ + kKeepAliveInterval) {
      continue;
    }
    last_step_ = std::chrono::steady_clock::now();
    // A failure here is a failed group: the workers report it to the coordinator.
    if (!rank_->Generate(one_token, prefill_only).ok()) return;
  }
}

void EngineHeadRank::Stop(const absl::Status& why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (keepalive_.joinable()) keepalive_.join();
  std::lock_guard<std::mutex> lock(mu_);
  if (rank_ == nullptr) return;
  // Best effort: lets the surviving workers leave Follow now rather than at their timeout.
  (void)rank_->Stop();
  rank_.reset();
}

absl::StatusOr<std::vector<GenerationResult>> EngineHeadRank::Generate(
    std::span<const std::vector<int32_t>> prompts, const GenerationOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  if (rank_ == nullptr) return absl::UnavailableError("the cluster is not formed");
  last_step_ = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<GenerationResult>> result = rank_->Generate(prompts, options);
  last_step_ = std::chrono::steady_clock::now();
  return result;
}

}  // namespace sparkstack::control
