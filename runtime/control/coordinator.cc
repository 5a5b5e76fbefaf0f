#include "runtime/control/coordinator.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/control/addresses.h"
#include "runtime/control/agent_link.h"
#include "runtime/control/auth.h"
#include "runtime/control/blob_exchange.h"
#include "runtime/control/capabilities.h"
#include "runtime/control/heartbeat.h"
#include "runtime/control/model_fingerprint.h"
#include "runtime/control/proto_mapping.h"
#include "runtime/control/relayed_bootstrap.h"
#include "spdlog/spdlog.h"

namespace sparkstack::control {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kWatchTick{20};
constexpr std::chrono::milliseconds kMaxRetryInterval{30000};
constexpr std::chrono::milliseconds kDrainTimeout{5000};
constexpr std::chrono::milliseconds kHeldGrace{2000};

std::string RandomClusterId() {
  std::random_device device;
  std::mt19937_64 gen((static_cast<uint64_t>(device()) << 32) ^ device());
  return absl::StrFormat("%016x", gen());
}

std::string HostName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) return "head";
  return host;
}

std::string Ms(std::chrono::milliseconds d) { return absl::StrCat(d.count(), " ms"); }

// One attempt at forming the group: its links, bootstrap exchange and progress. Guarded by the
// coordinator's mutex except where noted.
struct Formation {
  Formation(uint64_t epoch, int world)
      : epoch(epoch),
        exchange(world),
        links(world - 1),
        monitors(world - 1),
        models(world - 1),
        ready(world - 1, false),
        loading(world - 1, false),
        worker_ended(world - 1, false) {}

  const uint64_t epoch;
  BlobExchange exchange;
  std::vector<std::shared_ptr<AgentLink>> links;  // index: rank - 1
  std::vector<std::optional<HeartbeatMonitor>> monitors;
  std::vector<std::optional<absl::StatusOr<ModelFingerprint>>> models;
  std::vector<bool> ready;
  std::vector<bool> loading;  // reported kLoading: ready with rank 0 for the engine (see below)
  std::vector<bool> worker_ended;
  std::unique_ptr<RelayedBootstrap> head_bootstrap;  // set before any rank can contribute
  std::atomic<bool> cancel{false};
  bool formed = false;
  bool stopping = false;  // the coordinator stops the workers: their STOPPED reports are expected
  absl::Status failure;
  int failed_rank = -1;
  bool failure_is_node_loss = false;
  bool head_started = false;
  bool head_done = false;
  std::thread head_thread;  // joined by Teardown
  uint64_t ping_seq = 0;
};

}  // namespace

const char* ClusterStateName(ClusterState state) {
  switch (state) {
    case ClusterState::kForming:
      return "forming";
    case ClusterState::kReady:
      return "ready";
    case ClusterState::kDegraded:
      return "degraded";
    case ClusterState::kStopped:
      return "stopped";
  }
  return "unknown";
}

std::string ClusterHealth::Summary() const {
  switch (state) {
    case ClusterState::kReady:
      return absl::StrCat("ready (epoch ", epoch, ", ", nodes.size(), " nodes)");
    case ClusterState::kForming:
    case ClusterState::kDegraded:
    case ClusterState::kStopped:
      return reason.empty() ? ClusterStateName(state)
                            : absl::StrCat(ClusterStateName(state), ": ", reason);
  }
  return "unknown";
}

struct Coordinator::Impl {
  CoordinatorOptions options;
  HeadRank* head = nullptr;
  std::shared_ptr<const ControlAuth> auth;
  std::string cluster_id = RandomClusterId();
  std::string name;
  std::vector<std::shared_ptr<grpc::Channel>> channels;  // index: rank - 1
  std::optional<ModelFingerprint> head_model;
  uint64_t weight_bytes = 0;
  int world = 1;

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  ClusterHealth health ABSL_GUARDED_BY(mu);
  std::shared_ptr<Formation> formation ABSL_GUARDED_BY(mu);
  uint64_t next_epoch ABSL_GUARDED_BY(mu) = 0;
  bool shutdown ABSL_GUARDED_BY(mu) = false;
  bool stop_watch ABSL_GUARDED_BY(mu) = false;
  bool started ABSL_GUARDED_BY(mu) = false;
  bool shut ABSL_GUARDED_BY(mu) = false;
  std::atomic<bool> ready_flag{false};

  std::thread supervisor;
  std::thread watcher;

  std::mutex observers_mu;  // also makes notifications one at a time
  std::vector<Observer> observers ABSL_GUARDED_BY(observers_mu);
  std::optional<ClusterHealth> last_notified ABSL_GUARDED_BY(observers_mu);

  // --- naming ---------------------------------------------------------------------------------

  std::string NodeName(int rank) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (rank == 0) return "the head (rank 0)";
    const NodeHealth& node = health.nodes[rank - 1];
    return absl::StrCat("node ", node.address, " (rank ", rank,
                        node.hostname.empty() ? "" : absl::StrCat(", host ", node.hostname), ")");
  }
  std::string NodeNameUnlocked(int rank) const {
    std::lock_guard<std::mutex> lock(mu);
    return NodeName(rank);
  }

  LoadPlan PlanFor(int rank) const {
    LoadPlan plan = options.plan;
    plan.rank = rank;
    plan.world_size = world;
    if (rank > 0 && !options.node_model_path.empty()) plan.model_path = options.node_model_path;
    return plan;
  }

  // --- health and observers -------------------------------------------------------------------

  // Records a failure of `rank` in the health (the group, if it was ready, is now degraded).
  void RecordFailure(int rank, const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (health.state == ClusterState::kReady) health.state = ClusterState::kDegraded;
    health.failed_rank = rank;
    health.failed_node = rank == 0 ? "head" : health.nodes[rank - 1].address;
    health.reason = std::string(status.message());
    if (rank > 0) health.nodes[rank - 1].error = std::string(status.message());
    ready_flag = false;
  }

  void Notify() {
    const ClusterHealth now = Snapshot();
    std::lock_guard<std::mutex> lock(observers_mu);
    if (last_notified.has_value() && last_notified->state == now.state &&
        last_notified->epoch == now.epoch && last_notified->failed_rank == now.failed_rank &&
        last_notified->reason == now.reason) {
      return;
    }
    last_notified = now;
    spdlog::info("coordinator: cluster {}", now.Summary());
    for (const Observer& observer : observers) observer(now);
  }

  ClusterHealth Snapshot() const {
    std::lock_guard<std::mutex> lock(mu);
    return health;
  }

  // --- failures -------------------------------------------------------------------------------

  // Fails formation `f` because of `rank`. A lost node outranks an error a worker reported (the
  // survivors' collectives fail because of the dead node, often before its stream breaks), so it
  // takes the blame even when it comes second.
  void FailLocked(Formation& f, int rank, absl::Status status, bool node_lost)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (f.failure.ok() || (node_lost && !f.failure_is_node_loss)) {
      if (!f.failure.ok()) {
        status = absl::Status(status.code(),
                              absl::StrCat(status.message(), " (", NodeName(f.failed_rank),
                                           " had reported: ", f.failure.message(), ")"));
      }
      f.failure = status;
      f.failed_rank = rank;
      f.failure_is_node_loss = node_lost;
      RecordFailure(rank, status);
    }
    if (rank > 0) {
      health.nodes[rank - 1].connected = !node_lost && health.nodes[rank - 1].connected;
    }
    f.cancel = true;
    f.exchange.Fail(f.failure);
    if (f.head_bootstrap != nullptr) f.head_bootstrap->Abort(f.failure);
    cv.notify_all();
  }

  void FailFormation(uint64_t epoch, int rank, absl::Status status, bool node_lost) {
    std::lock_guard<std::mutex> lock(mu);
    if (formation == nullptr || formation->epoch != epoch) return;
    FailLocked(*formation, rank, std::move(status), node_lost);
  }

  // --- messages from the agents ---------------------------------------------------------------

  void OnMessage(uint64_t epoch, int rank, const pb::AgentMessage& message) {
    const int i = rank - 1;
    if (message.has_bootstrap()) {
      const pb::BootstrapContribution& c = message.bootstrap();
      {
        std::lock_guard<std::mutex> lock(mu);
        if (formation == nullptr || formation->epoch != epoch) return;
        if (formation->monitors[i]) formation->monitors[i]->Heard(Clock::now());
      }
      if (absl::Status valid = ValidateContribution(c); !valid.ok()) {
        FailFormation(epoch, rank, valid, false);
        return;
      }
      (void)Contribute(epoch, rank, c.seq(), FromProto(c.op()), c.blob());
      return;
    }
    std::lock_guard<std::mutex> lock(mu);
    if (formation == nullptr || formation->epoch != epoch) return;
    Formation& f = *formation;
    if (f.monitors[i]) f.monitors[i]->Heard(Clock::now());
    NodeHealth& node = health.nodes[i];
    switch (message.body_case()) {
      case pb::AgentMessage::kHeartbeat:
        if (absl::StatusOr<NodeState> state = FromProto(message.heartbeat().state()); state.ok()) {
          node.state = *state;
        }
        break;
      case pb::AgentMessage::kModel:
        f.models[i] = FromProto(message.model());
        cv.notify_all();
        break;
      case pb::AgentMessage::kProgress: {
        absl::StatusOr<LoadProgress> progress = FromProto(message.progress());
        if (!progress.ok()) {
          FailLocked(f, rank, progress.status(), false);
          break;
        }
        spdlog::info("coordinator: {}: {}{}{}", NodeName(rank), LoadPhaseName(progress->phase),
                     progress->message.empty() ? "" : ": ", progress->message);
        if (progress->phase == LoadPhase::kReady) {
          f.ready[i] = true;
          node.state = NodeState::kReady;
          cv.notify_all();
        } else if (progress->phase == LoadPhase::kFailed) {
          FailLocked(f, rank,
                     absl::InternalError(
                         absl::StrCat(NodeName(rank), " failed to load: ", progress->message)),
                     false);
        } else {
          if (progress->phase == LoadPhase::kLoading) f.loading[i] = true;
          node.state = NodeState::kLoading;
          cv.notify_all();
        }
        break;
      }
      case pb::AgentMessage::kWorker: {
        absl::StatusOr<absl::Status> result = FromProto(message.worker());
        f.worker_ended[i] = true;
        cv.notify_all();
        if (!result.ok()) {
          FailLocked(f, rank, result.status(), false);
        } else if (!result->ok()) {
          FailLocked(f, rank,
                     absl::Status(result->code(),
                                  absl::StrCat("worker rank ", rank, " on ", NodeName(rank),
                                               " failed: ", result->message())),
                     false);
        } else if (!f.stopping) {
          FailLocked(f, rank,
                     absl::UnavailableError(absl::StrCat(
                         "worker rank ", rank, " on ", NodeName(rank), " left the group",
                         message.worker().message().empty() ? "" : ": ",
                         Truncate(message.worker().message()))),
                     false);
        }
        break;
      }
      case pb::AgentMessage::kClaimed:
      case pb::AgentMessage::kBootstrap:
      case pb::AgentMessage::BODY_NOT_SET:
        break;
    }
  }

  void OnClosed(uint64_t epoch, int rank, const absl::Status& status) {
    std::lock_guard<std::mutex> lock(mu);
    if (formation == nullptr || formation->epoch != epoch) return;
    FailLocked(*formation, rank,
               absl::UnavailableError(absl::StrCat(NodeName(rank), " lost: ", status.message())),
               /*node_lost=*/true);
  }

  // One rank's bootstrap contribution; when it completes an operation, every rank gets the result.
  absl::Status Contribute(uint64_t epoch, int rank, uint64_t seq, BootstrapOpKind kind,
                          std::string blob) {
    std::shared_ptr<Formation> f;
    pb::CoordinatorMessage result;
    std::vector<std::string> blobs;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (formation == nullptr || formation->epoch != epoch) {
        return absl::UnavailableError("bootstrap: the group is being re-formed");
      }
      f = formation;
      absl::StatusOr<std::optional<BlobExchange::Completed>> done =
          f->exchange.Contribute(rank, seq, kind, std::move(blob));
      if (!done.ok()) {
        FailLocked(*f, rank, done.status(), false);
        return done.status();
      }
      if (!done->has_value()) return absl::OkStatus();
      result.set_epoch(epoch);
      pb::BootstrapResult* r = result.mutable_bootstrap_result();
      r->set_seq((*done)->seq);
      for (const std::string& b : (*done)->blobs) r->add_blobs(b);
      blobs = std::move((*done)->blobs);
    }
    // Links and the head's bootstrap live as long as `f`; sends happen outside the lock.
    for (const std::shared_ptr<AgentLink>& link : f->links) {
      if (link != nullptr) link->Send(result);
    }
    f->head_bootstrap->Deliver(seq, std::move(blobs));
    return absl::OkStatus();
  }

  // --- forming and tearing down ---------------------------------------------------------------

  struct FormResult {
    absl::Status status;
    bool all_reached = false;  // every node answered Hello (the failure was later)
  };

  FormResult FormOnce() {
    FormResult out;
    const int nodes = world - 1;
    uint64_t epoch = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (shutdown) return {absl::CancelledError("the coordinator is shutting down"), false};
      epoch = ++next_epoch;
    }
    // 1. Who is there, and can they run this plan?
    for (int rank = 1; rank <= nodes; ++rank) {
      absl::Status problem;
      absl::StatusOr<pb::HelloReply> hello =
          CallHello(channels[rank - 1], *auth, name, options.connect_timeout);
      // A node whose previous cluster just let go may not have ended that session yet: give it
      // a moment before calling it held.
      const auto grace = Clock::now() + std::min(options.connect_timeout, kHeldGrace);
      while (hello.ok() && !hello->held_by().empty() && hello->held_by() != cluster_id &&
             Clock::now() < grace) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        hello = CallHello(channels[rank - 1], *auth, name, options.connect_timeout);
      }
      absl::StatusOr<NodeCapabilities> caps =
          hello.ok() ? FromProto(hello->capabilities()) : hello.status();
      std::lock_guard<std::mutex> lock(mu);
      NodeHealth& node = health.nodes[rank - 1];
      if (!hello.ok()) {
        problem = absl::UnavailableError(
            absl::StrCat(NodeName(rank), " is unreachable: ", hello.status().message()));
        if (hello.status().code() == absl::StatusCode::kUnauthenticated) {
          problem = absl::UnauthenticatedError(
              absl::StrCat(NodeName(rank), " refused our credentials: ", hello.status().message()));
        } else if (hello.status().code() == absl::StatusCode::kFailedPrecondition) {
          problem = absl::FailedPreconditionError(
              absl::StrCat(NodeName(rank), ": ", hello.status().message()));
        }
      } else if (!caps.ok()) {
        problem = absl::DataLossError(absl::StrCat(NodeName(rank), ": ", caps.status().message()));
      } else {
        node.hostname = caps->hostname;
        const VersionInfo mine = ThisBuildVersions();
        if (caps->versions.sparkstack_version != mine.sparkstack_version ||
            caps->versions.protocol_version != mine.protocol_version) {
          problem = absl::FailedPreconditionError(
              absl::StrCat(NodeName(rank), " runs sparkstack ", caps->versions.sparkstack_version,
                           " (control protocol ", caps->versions.protocol_version,
                           "), the head runs ", mine.sparkstack_version, " (control protocol ",
                           mine.protocol_version, "); install the same version on every node"));
        } else if (caps->versions.build_id != mine.build_id) {
          spdlog::warn("coordinator: {} was built from {}, the head from {}", NodeName(rank),
                       caps->versions.build_id, mine.build_id);
        }
        if (problem.ok() && !hello->held_by().empty() && hello->held_by() != cluster_id) {
          problem = absl::FailedPreconditionError(
              absl::StrCat(NodeName(rank), " is held by another cluster (",
                           Truncate(hello->held_by(), 64), "); stop that head first"));
        }
        if (problem.ok() && options.plan.kind == WorkerKind::kModel) {
          if (absl::Status memory = CheckMemoryForPlan(*caps, PlanFor(rank), weight_bytes);
              !memory.ok()) {
            problem =
                absl::Status(memory.code(), absl::StrCat(NodeName(rank), ": ", memory.message()));
          }
        }
      }
      if (!problem.ok()) {
        node.connected = false;
        RecordFailure(rank, problem);
        cv.notify_all();
        return {problem, false};
      }
      node.error.clear();
    }
    out.all_reached = true;

    auto f = std::make_shared<Formation>(epoch, world);
    f->head_bootstrap = std::make_unique<RelayedBootstrap>(
        0, world,
        [this, epoch](uint64_t seq, BootstrapOpKind kind, std::string_view blob) {
          return Contribute(epoch, 0, seq, kind, std::string(blob));
        },
        options.load_timeout);
    {
      std::lock_guard<std::mutex> lock(mu);
      if (shutdown) return {absl::CancelledError("the coordinator is shutting down"), true};
      formation = f;
      health.epoch = epoch;
    }

    // 2. Claim every node.
    for (int rank = 1; rank <= nodes; ++rank) {
      pb::Claim claim;
      claim.set_protocol_version(kControlProtocolVersion);
      claim.set_cluster_id(cluster_id);
      claim.set_coordinator(name);
      claim.set_heartbeat_interval_ms(static_cast<uint32_t>(options.heartbeat_interval.count()));
      claim.set_heartbeat_timeout_ms(static_cast<uint32_t>(options.heartbeat_timeout.count()));
      auto link = std::make_shared<AgentLink>(channels[rank - 1], auth);
      absl::StatusOr<pb::Claimed> claimed = link->Open(
          claim, options.connect_timeout,
          [this, epoch, rank](const pb::AgentMessage& m) { OnMessage(epoch, rank, m); },
          [this, epoch, rank](const absl::Status& s) { OnClosed(epoch, rank, s); });
      std::lock_guard<std::mutex> lock(mu);
      if (!claimed.ok()) {
        FailLocked(*f, rank,
                   absl::Status(claimed.status().code(),
                                absl::StrCat(NodeName(rank),
                                             " refused the claim: ", claimed.status().message())),
                   false);
        break;
      }
      f->links[rank - 1] = link;
      f->monitors[rank - 1].emplace(options.heartbeat_interval, options.heartbeat_timeout,
                                    Clock::now());
      NodeHealth& node = health.nodes[rank - 1];
      node.connected = true;
      node.state = NodeState::kClaimed;
      if (!f->failure.ok()) break;
    }

    // 3. Same model files everywhere?
    if (Failed(*f).ok() && options.plan.kind == WorkerKind::kModel && head_model.has_value()) {
      for (int rank = 1; rank <= nodes; ++rank) {
        pb::CoordinatorMessage check;
        check.set_epoch(epoch);
        check.mutable_check_model()->set_model_path(PlanFor(rank).model_path);
        f->links[rank - 1]->Send(check);
      }
      std::unique_lock<std::mutex> lock(mu);
      const bool answered = cv.wait_for(lock, options.check_timeout, [&] {
        return shutdown || !f->failure.ok() ||
               std::all_of(f->models.begin(), f->models.end(),
                           [](const auto& m) { return m.has_value(); });
      });
      for (int rank = 1; rank <= nodes && f->failure.ok() && !answered; ++rank) {
        if (f->models[rank - 1].has_value()) continue;
        FailLocked(*f, rank,
                   absl::DeadlineExceededError(absl::StrCat(
                       NodeName(rank), ": no model check within ", Ms(options.check_timeout))),
                   false);
      }
      for (int rank = 1; rank <= nodes && f->failure.ok() && answered; ++rank) {
        const absl::StatusOr<ModelFingerprint>& model = *f->models[rank - 1];
        absl::Status same =
            model.ok() ? CompareModels(*head_model, *model, NodeName(rank))
                       : absl::Status(model.status().code(),
                                      absl::StrCat(NodeName(rank), ": ", model.status().message()));
        if (!same.ok()) FailLocked(*f, rank, same, false);
      }
    }

    // 4. Load: every node and the head at once; bootstrap blobs flow through Contribute.
    if (Failed(*f).ok()) {
      for (int rank = 1; rank <= nodes; ++rank) {
        pb::CoordinatorMessage load;
        load.set_epoch(epoch);
        ToProto(PlanFor(rank), load.mutable_load());
        f->links[rank - 1]->Send(load);
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        f->head_started = true;
      }
      f->head_thread = std::thread([this, f] {
        absl::Status started = head->Start(PlanFor(0), *f->head_bootstrap, f->cancel);
        std::lock_guard<std::mutex> lock(mu);
        f->head_done = true;
        if (!started.ok() && formation == f) {
          FailLocked(*f, 0,
                     absl::Status(started.code(),
                                  absl::StrCat("rank 0 on the head failed: ", started.message())),
                     false);
        }
        cv.notify_all();
      });
      std::unique_lock<std::mutex> lock(mu);
      // The engine's workers cannot say when they have loaded, but rank 0's Engine::Create
      // returns only once every rank has (the KV cache agreement is collective): for a model,
      // a node that is loading is ready together with rank 0 (engine_adapter.h).
      const bool head_confirms = options.plan.kind == WorkerKind::kModel;
      const auto node_ready = [&](int i) {
        return f->ready[i] || (head_confirms && f->loading[i]);
      };
      const bool settled = cv.wait_for(lock, options.load_timeout, [&] {
        if (shutdown || !f->failure.ok()) return true;
        if (!f->head_done) return false;
        for (int i = 0; i < nodes; ++i) {
          if (!node_ready(i)) return false;
        }
        return true;
      });
      if (f->failure.ok() && shutdown) {
        FailLocked(*f, 0, absl::CancelledError("the coordinator is shutting down"), false);
      } else if (f->failure.ok() && !settled) {
        std::vector<std::string> waiting;
        if (!f->head_done) waiting.push_back("the head (rank 0)");
        for (int rank = 1; rank <= nodes; ++rank) {
          if (!node_ready(rank - 1)) waiting.push_back(NodeName(rank));
        }
        FailLocked(*f, 0,
                   absl::DeadlineExceededError(
                       absl::StrCat("the group did not form within ", Ms(options.load_timeout),
                                    "; still waiting for ", absl::StrJoin(waiting, ", "))),
                   false);
      }
      if (f->failure.ok()) {
        f->formed = true;
        health.state = ClusterState::kReady;
        health.failed_rank = -1;
        health.failed_node.clear();
        health.reason.clear();
        for (NodeHealth& node : health.nodes) {
          node.error.clear();
          node.state = NodeState::kReady;
        }
        ready_flag = true;
        cv.notify_all();
        spdlog::info("coordinator: group formed (epoch {}, world {})", epoch, world);
        return {absl::OkStatus(), true};
      }
    }
    absl::Status failure = Failed(*f);
    Teardown(f, /*drain=*/false, /*shutdown_nodes=*/false);
    out.status = failure;
    return out;
  }

  absl::Status Failed(const Formation& f) const {
    std::lock_guard<std::mutex> lock(mu);
    return f.failure;
  }

  // Joins the thread that started rank 0 of `f`, then stops rank 0 (once, if it was started).
  void StopHead(const std::shared_ptr<Formation>& f, const absl::Status& why) {
    if (f->head_thread.joinable()) f->head_thread.join();
    bool head_started = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      head_started = f->head_started;
    }
    if (head_started) head->Stop(why);
  }

  // Ends formation `f`: the nodes' sessions close (their workers stop), rank 0 stops.
  void Teardown(const std::shared_ptr<Formation>& f, bool drain, bool shutdown_nodes) {
    absl::Status why;
    {
      std::lock_guard<std::mutex> lock(mu);
      f->cancel = true;
      f->stopping = drain;
      if (f->failure.ok()) {
        f->failure = absl::CancelledError("the coordinator shut down");
        f->exchange.Fail(f->failure);
      }
      why = f->failure;
      if (f->head_bootstrap != nullptr) f->head_bootstrap->Abort(why);
    }
    // Draining (a shutdown): the nodes and rank 0 stop together, and the nodes report their
    // workers' ends before their sessions close. A failure: the sessions close first, so that the
    // surviving workers stop while rank 0 is torn down.
    if (drain) {
      for (const std::shared_ptr<AgentLink>& link : f->links) {
        if (link == nullptr) continue;
        pb::CoordinatorMessage drain_message;
        drain_message.set_epoch(f->epoch);
        drain_message.mutable_drain()->set_reason(Truncate(why.message()));
        link->Send(drain_message);
      }
      StopHead(f, why);
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, kDrainTimeout, [&] {
        for (size_t i = 0; i < f->links.size(); ++i) {
          if (f->links[i] != nullptr && !f->worker_ended[i]) return false;
        }
        return true;
      });
    }
    for (const std::shared_ptr<AgentLink>& link : f->links) {
      if (link == nullptr) continue;
      if (shutdown_nodes) {
        pb::CoordinatorMessage bye;
        bye.set_epoch(f->epoch);
        bye.mutable_shutdown()->set_reason("the head shut the cluster down");
        link->Send(bye);
      }
      link->Close();
    }
    if (!drain) StopHead(f, why);
    std::lock_guard<std::mutex> lock(mu);
    if (formation == f) formation = nullptr;
    for (NodeHealth& node : health.nodes) {
      node.connected = false;
      node.state = NodeState::kIdle;
    }
    ready_flag = false;
    cv.notify_all();
  }

  // --- threads --------------------------------------------------------------------------------

  void SupervisorLoop() {
    while (true) {
      std::shared_ptr<Formation> failed;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return shutdown || formation == nullptr || !formation->failure.ok(); });
        if (shutdown) return;
        failed = formation;
      }
      Notify();  // degraded: observers end the requests on the failed group
      if (failed != nullptr) Teardown(failed, /*drain=*/false, /*shutdown_nodes=*/false);
      std::chrono::milliseconds backoff = options.retry_interval;
      while (true) {
        FormResult result = FormOnce();
        Notify();
        if (result.status.ok()) break;
        std::chrono::milliseconds wait = options.retry_interval;
        if (result.all_reached) {
          wait = backoff;
          backoff = std::min(backoff * 2, kMaxRetryInterval);
        }
        spdlog::warn("coordinator: re-forming failed ({}); next attempt in {} ms",
                     result.status.ToString(), wait.count());
        std::unique_lock<std::mutex> lock(mu);
        if (cv.wait_for(lock, wait, [&] { return shutdown; })) return;
      }
    }
  }

  void WatchLoop() {
    while (true) {
      std::vector<std::pair<std::shared_ptr<AgentLink>, pb::CoordinatorMessage>> pings;
      {
        std::unique_lock<std::mutex> lock(mu);
        if (cv.wait_for(lock, kWatchTick, [&] { return stop_watch; })) return;
        std::shared_ptr<Formation> f = formation;
        const Clock::time_point now = Clock::now();
        for (size_t i = 0; f != nullptr && i < f->links.size(); ++i) {
          if (f->links[i] == nullptr || !f->monitors[i].has_value()) continue;
          HeartbeatMonitor& monitor = *f->monitors[i];
          const int rank = static_cast<int>(i) + 1;
          if (monitor.Expired(now)) {
            if (f->failure.ok() || !f->failure_is_node_loss) {
              FailLocked(
                  *f, rank,
                  absl::UnavailableError(absl::StrCat(
                      NodeName(rank), " lost: no heartbeat for ",
                      std::chrono::duration_cast<std::chrono::milliseconds>(monitor.Silence(now))
                          .count(),
                      " ms")),
                  /*node_lost=*/true);
            }
            continue;
          }
          if (monitor.PingDue(now)) {
            pb::CoordinatorMessage ping;
            ping.set_epoch(f->epoch);
            ping.mutable_ping()->set_seq(++f->ping_seq);
            pings.emplace_back(f->links[i], std::move(ping));
          }
        }
      }
      for (auto& [link, ping] : pings) link->Send(ping);
    }
  }
};

Coordinator::Coordinator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(CoordinatorOptions options,
                                                                 HeadRank* head) {
  if (head == nullptr) return absl::InvalidArgumentError("coordinator: no head rank");
  auto impl = std::make_unique<Impl>();
  impl->head = head;
  impl->world = static_cast<int>(options.nodes.size()) + 1;
  if (impl->world > kMaxWorldSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("coordinator: ", options.nodes.size(), " nodes, at most ", kMaxWorldSize - 1));
  }
  LoadPlan& plan = options.plan;
  if (plan.kind == WorkerKind::kDataPlaneProbe && plan.tp * plan.pp != impl->world) {
    plan.tp = impl->world;  // the probe ignores the layout; keep the plan consistent
    plan.pp = 1;
  }
  if (plan.tp < 1 || plan.pp < 1 || plan.tp * plan.pp != impl->world) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tp ", plan.tp, " x pp ", plan.pp, " needs ", plan.tp * plan.pp, " ranks (the head and ",
        plan.tp * plan.pp - 1, " nodes), but ", options.nodes.size(), " node",
        options.nodes.size() == 1 ? " is" : "s are", " listed"));
  }
  if (options.heartbeat_interval.count() < 50 ||
      options.heartbeat_timeout < options.heartbeat_interval ||
      options.heartbeat_timeout.count() > 60000) {
    return absl::InvalidArgumentError(
        "heartbeat interval and timeout must satisfy 50 ms <= interval <= timeout <= 60 s");
  }
  absl::StatusOr<std::shared_ptr<const ControlAuth>> auth = ControlAuth::Load(options.auth);
  if (!auth.ok()) return auth.status();
  impl->auth = *std::move(auth);
  impl->name = options.name.empty() ? HostName() : options.name;
  {
    std::lock_guard<std::mutex> lock(impl->mu);
    for (size_t i = 0; i < options.nodes.size(); ++i) {
      absl::StatusOr<HostPort> address = ParseHostPort(options.nodes[i]);
      if (!address.ok()) return address.status();
      NodeHealth node;
      node.rank = static_cast<int>(i) + 1;
      node.address = address->ToString();
      for (const NodeHealth& other : impl->health.nodes) {
        if (other.address == node.address) {
          return absl::InvalidArgumentError(
              absl::StrCat("node ", node.address, " is listed twice"));
        }
      }
      impl->channels.push_back(MakeAgentChannel(node.address, *impl->auth));
      impl->health.nodes.push_back(std::move(node));
    }
  }
  if (plan.kind == WorkerKind::kModel && options.check_model) {
    absl::StatusOr<ModelFingerprint> model = FingerprintModel(plan.model_path);
    if (!model.ok()) return model.status();
    impl->weight_bytes = WeightBytes(*model);
    impl->head_model = *std::move(model);
  }
  impl->options = std::move(options);
  return std::unique_ptr<Coordinator>(new Coordinator(std::move(impl)));
}

Coordinator::~Coordinator() { Shutdown(false); }

absl::Status Coordinator::Start() {
  Impl& d = *impl_;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (d.started) return absl::FailedPreconditionError("coordinator: Start was already called");
    d.started = true;
  }
  d.watcher = std::thread([&d] { d.WatchLoop(); });
  Impl::FormResult first = d.FormOnce();
  if (!first.status.ok()) {
    {
      std::lock_guard<std::mutex> lock(d.mu);
      d.health.state = ClusterState::kStopped;
    }
    d.Notify();
    return first.status;
  }
  d.Notify();
  d.supervisor = std::thread([&d] { d.SupervisorLoop(); });
  return absl::OkStatus();
}

ClusterHealth Coordinator::Health() const { return impl_->Snapshot(); }

bool Coordinator::ready() const { return impl_->ready_flag.load(); }

void Coordinator::AddObserver(Observer observer) {
  std::lock_guard<std::mutex> lock(impl_->observers_mu);
  impl_->observers.push_back(std::move(observer));
}

ClusterHealth Coordinator::WaitFor(const std::function<bool(const ClusterHealth&)>& predicate,
                                   std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->cv.wait_for(lock, timeout, [&] { return predicate(impl_->health); });
  return impl_->health;
}

void Coordinator::ReportHeadFailure(const absl::Status& status) {
  if (status.ok()) return;
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->formation == nullptr) return;
  impl_->FailLocked(
      *impl_->formation, 0,
      absl::Status(status.code(), absl::StrCat("rank 0 on the head failed: ", status.message())),
      false);
}

void Coordinator::Shutdown(bool shutdown_nodes) {
  Impl& d = *impl_;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    if (d.shut) return;
    d.shut = true;
    d.shutdown = true;
  }
  d.cv.notify_all();
  if (d.supervisor.joinable()) d.supervisor.join();
  std::shared_ptr<Formation> f;
  bool drain = false;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    f = d.formation;
    // A formation that already failed has nothing to drain: its nodes may not answer at all.
    drain = f != nullptr && f->failure.ok();
  }
  if (f != nullptr) d.Teardown(f, drain, shutdown_nodes);
  {
    std::lock_guard<std::mutex> lock(d.mu);
    d.stop_watch = true;
    d.health.state = ClusterState::kStopped;
    d.health.reason = "the coordinator shut down";
    d.ready_flag = false;
  }
  d.cv.notify_all();
  if (d.watcher.joinable()) d.watcher.join();
  d.Notify();
}

}  // namespace sparkstack::control
