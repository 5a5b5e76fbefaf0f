#include "runtime/control/engine_adapter.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/core/status_macros.h"
#include "runtime/parallel/host_communicator.h"
#include "runtime/tokenizer/tokenizer.h"

namespace sparkstack::control {
namespace {

// Request ids seen by the API servers: the group's generation in the high bits, the engine's own
// id below, so that ids never repeat across groups and a stale Abort cannot hit a new request.
constexpr int kEngineIdBits = 40;
constexpr RequestId kEngineIdMask = (RequestId{1} << kEngineIdBits) - 1;

}  // namespace

struct EngineHeadRank::Group {
  uint64_t generation = 0;
  std::unique_ptr<Engine> engine;
  // Set when the group is being torn down: the aborts that follow are the group's failure.
  std::atomic<bool> failing{false};
  std::mutex mu;
  std::condition_variable cv;
  absl::Status why ABSL_GUARDED_BY(mu);
  bool stopped ABSL_GUARDED_BY(mu) = false;
};

absl::StatusOr<JoinedRank> JoinOverBootstrap(Bootstrap& bootstrap, const EngineOptions* options) {
  if ((bootstrap.rank() == 0) != (options != nullptr)) {
    return absl::InvalidArgumentError("rank 0, and only rank 0, describes the engine");
  }
  SPARKSTACK_ASSIGN_OR_RETURN(
      std::string text,
      bootstrap.Broadcast(options != nullptr ? EngineOptionsToJson(*options).dump() : ""));
  JoinedRank joined;
  SPARKSTACK_ASSIGN_OR_RETURN(joined.options, EngineOptionsFromJson(nlohmann::json::parse(
                                                  text, nullptr, /*allow_exceptions=*/false)));
  const ParallelPlan& plan = joined.options.plan;
  SPARKSTACK_RETURN_IF_ERROR(plan.ValidateWorld(bootstrap.world_size()));
  SPARKSTACK_ASSIGN_OR_RETURN(std::unique_ptr<HostCommunicator> world,
                              HostCommunicator::Create(bootstrap));
  SPARKSTACK_ASSIGN_OR_RETURN(joined.comms.tp_group, world->Split(plan.TpGroup(bootstrap.rank())));
  joined.comms.world = std::move(world);
  return joined;
}

absl::Status RunEngineWorkerRank(const LoadPlan& plan, Bootstrap& bootstrap,
                                 WorkerContext& context) {
  context.Report({.phase = LoadPhase::kConnecting,
                  .message = "receiving the engine options, connecting the data plane"});
  SPARKSTACK_ASSIGN_OR_RETURN(JoinedRank joined, JoinOverBootstrap(bootstrap, nullptr));
  // This node's copy of the model (the coordinator checked it has the same files).
  joined.options.model_dir = plan.model_path;
  context.Report({.phase = LoadPhase::kLoading,
                  .message = absl::StrCat("rank ", plan.rank,
                                          " loading its shard; ready together with rank 0")});
  // The node's agent then reports READY (status, logs); the coordinator already counts a loading
  // node as ready together with rank 0.
  return RunWorker(joined.options, std::move(joined.comms), [&] {
    context.Report({.phase = LoadPhase::kReady,
                    .message = absl::StrCat("rank ", plan.rank, " loaded, following rank 0")});
  });
}

absl::StatusOr<std::unique_ptr<EngineHeadRank>> EngineHeadRank::Create(EngineOptions options) {
  std::unique_ptr<EngineHeadRank> head(new EngineHeadRank());
  SPARKSTACK_ASSIGN_OR_RETURN(head->options_, ResolveEngineOptions(std::move(options)));
  SPARKSTACK_ASSIGN_OR_RETURN(head->config_, LoadModelConfig(head->options_.model_dir));
  absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> tokenizer =
      tokenizer::Tokenizer::Load(head->options_.model_dir);
  if (tokenizer.ok()) {
    head->tokenizer_ = *std::move(tokenizer);
  } else if (!absl::IsNotFound(tokenizer.status())) {
    return tokenizer.status();
  }
  return head;
}

EngineHeadRank::~EngineHeadRank() { Stop(absl::CancelledError("rank 0 is being destroyed")); }

void EngineHeadRank::SetFailureCallback(std::function<void(const absl::Status&)> on_failure) {
  on_failure_ = std::move(on_failure);
}

void EngineHeadRank::SetHealthSource(std::function<absl::Status()> source) {
  health_source_ = std::move(source);
}

absl::Status EngineHeadRank::Start(const LoadPlan& plan, Bootstrap& bootstrap,
                                   const std::atomic<bool>& cancel) {
  if (plan.tp != options_.plan.tp || plan.pp != options_.plan.pp) {
    return absl::InvalidArgumentError(absl::StrCat("the load plan's tp ", plan.tp, " x pp ",
                                                   plan.pp, " differs from the engine's ",
                                                   options_.plan.tp, " x ", options_.plan.pp));
  }
  RankComms comms;
  if (plan.world_size > 1) {
    SPARKSTACK_ASSIGN_OR_RETURN(JoinedRank joined, JoinOverBootstrap(bootstrap, &options_));
    comms = std::move(joined.comms);
  }
  auto group = std::make_shared<Group>();
  SPARKSTACK_ASSIGN_OR_RETURN(group->engine, Engine::Create(options_, std::move(comms)));
  if (watcher_.joinable()) watcher_.join();  // the previous group's, already told to stop
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    group->generation = ++generations_;
    group_ = group;
    down_ = absl::OkStatus();
  }
  watcher_ = std::thread([this, group] { Watch(group); });
  return absl::OkStatus();
}

void EngineHeadRank::Watch(std::shared_ptr<Group> group) {
  // Engine::health() turns non-OK when the engine stops on its own (a collective failed, a worker
  // reported an error); the coordinator then re-forms the group.
  std::unique_lock<std::mutex> lock(group->mu);
  while (
      !group->cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return group->stopped; })) {
    absl::Status health = group->engine->health();
    if (health.ok()) continue;
    lock.unlock();
    if (on_failure_) on_failure_(health);
    return;
  }
}

void EngineHeadRank::Stop(const absl::Status& why) {
  std::shared_ptr<Group> group;
  {
    std::unique_lock<std::shared_mutex> lock(mu_);
    group = std::move(group_);
    down_ = absl::UnavailableError(why.ok() ? "the cluster stopped" : std::string(why.message()));
  }
  if (group != nullptr) {
    {
      std::lock_guard<std::mutex> lock(group->mu);
      group->stopped = true;
      group->why = absl::UnavailableError(why.message());
    }
    group->failing = true;
    group->cv.notify_all();
  }
  if (watcher_.joinable()) watcher_.join();
  // Destroyed outside the lock: its destructor ends the requests (their callbacks run, turning
  // the aborts into errors) and stops the workers.
  if (group != nullptr) group->engine.reset();
}

absl::StatusOr<RequestId> EngineHeadRank::AddRequest(Request request,
                                                     Engine::OutputCallback on_output) {
  std::shared_lock<std::shared_mutex> lock(mu_);
  if (group_ == nullptr) return down_;
  std::shared_ptr<Group> group = group_;
  const uint64_t generation = group->generation;
  SPARKSTACK_ASSIGN_OR_RETURN(
      RequestId id,
      group->engine->AddRequest(
          std::move(request),
          [group, generation, on_output = std::move(on_output)](RequestOutput output) {
            output.id = (generation << kEngineIdBits) | output.id;
            if (output.finish_reason == FinishReason::kAbort && group->failing.load()) {
              output.finish_reason = FinishReason::kError;
              std::lock_guard<std::mutex> lock(group->mu);
              output.error = group->why;
            }
            on_output(std::move(output));
          }));
  return (generation << kEngineIdBits) | id;
}

void EngineHeadRank::Abort(RequestId id) {
  std::shared_lock<std::shared_mutex> lock(mu_);
  if (group_ == nullptr || (id >> kEngineIdBits) != group_->generation) return;
  group_->engine->Abort(id & kEngineIdMask);
}

EngineStats EngineHeadRank::stats() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return group_ != nullptr ? group_->engine->stats() : EngineStats{};
}

absl::Status EngineHeadRank::health() const {
  if (health_source_) {
    if (absl::Status source = health_source_(); !source.ok()) return source;
  }
  std::shared_lock<std::shared_mutex> lock(mu_);
  if (group_ == nullptr) return down_;
  return group_->engine->health();
}

}  // namespace sparkstack::control
