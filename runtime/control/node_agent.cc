#include "runtime/control/node_agent.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "grpcpp/grpcpp.h"
#include "runtime/control/addresses.h"
#include "runtime/control/auth.h"
#include "runtime/control/capabilities.h"
#include "runtime/control/model_fingerprint.h"
#include "runtime/control/proto_mapping.h"
#include "runtime/control/worker_host.h"
#include "sparkstack/v1/control.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace sparkstack::control {
namespace {

using Clock = std::chrono::steady_clock;
using Stream = grpc::ServerReaderWriter<pb::AgentMessage, pb::CoordinatorMessage>;

std::string RandomId() {
  std::random_device device;
  std::mt19937_64 gen((static_cast<uint64_t>(device()) << 32) ^ device());
  return absl::StrFormat("%016x", gen());
}

// One coordinator's session. Writes come from the handler thread (heartbeats, reports) and the
// worker thread (progress, bootstrap), so they are serialised; once closed (the handler is about
// to return and the stream to die) they are dropped.
struct SessionState {
  grpc::ServerContext* context = nullptr;
  Stream* stream = nullptr;
  std::string cluster_id;
  std::string coordinator;
  std::string peer_host;
  Clock::duration heartbeat_timeout{};
  std::atomic<int64_t> last_heard{0};  // Clock ticks
  std::atomic<bool> ended{false};

  std::mutex write_mu;
  bool closed ABSL_GUARDED_BY(write_mu) = false;

  bool Write(const pb::AgentMessage& message) {
    std::lock_guard<std::mutex> lock(write_mu);
    if (closed) return false;
    return stream->Write(message);
  }
  void Close() {
    std::lock_guard<std::mutex> lock(write_mu);
    closed = true;
  }
  void Heard() { last_heard = Clock::now().time_since_epoch().count(); }
  Clock::duration Silence() const {
    return Clock::now().time_since_epoch() - Clock::duration(last_heard.load());
  }
};

// One worker rank run (one load plan).
struct WorkerRun {
  LoadPlan plan;
  uint64_t epoch = 0;
  std::unique_ptr<WorkerHost> host;  // set (under the agent's lock) right after registering
  std::atomic<bool> ended{false};
};

}  // namespace

struct NodeAgent::Impl final : public pb::NodeAgent::Service {
  NodeAgentOptions options;
  std::shared_ptr<const ControlAuth> auth;
  std::string agent_id = RandomId();
  NodeCapabilities capabilities;
  std::unique_ptr<grpc::Server> server;
  int port = 0;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::shared_ptr<SessionState> session ABSL_GUARDED_BY(mu);
  std::shared_ptr<WorkerRun> worker ABSL_GUARDED_BY(mu);
  NodeState state ABSL_GUARDED_BY(mu) = NodeState::kIdle;
  bool draining ABSL_GUARDED_BY(mu) = false;
  bool shutdown_requested ABSL_GUARDED_BY(mu) = false;
  std::string shutdown_reason ABSL_GUARDED_BY(mu);
  bool stopped ABSL_GUARDED_BY(mu) = false;

  // --- RPCs -----------------------------------------------------------------------------------

  grpc::Status Hello(grpc::ServerContext* context, const pb::HelloRequest* request,
                     pb::HelloReply* reply) override {
    if (grpc::Status s = auth->Check(*context); !s.ok()) return s;
    if (request->protocol_version() != kControlProtocolVersion) {
      return grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          absl::StrCat("the coordinator speaks control protocol ", request->protocol_version(),
                       ", this node speaks ", kControlProtocolVersion));
    }
    reply->set_protocol_version(kControlProtocolVersion);
    reply->set_agent_id(agent_id);
    NodeCapabilities caps = capabilities;
    caps.memory_available_bytes = MemoryAvailableBytes();
    ToProto(caps, reply->mutable_capabilities());
    std::lock_guard<std::mutex> lock(mu);
    reply->set_state(ToProto(state));
    if (session != nullptr) reply->set_held_by(session->cluster_id);
    return grpc::Status::OK;
  }

  grpc::Status Shutdown(grpc::ServerContext* context, const pb::ShutdownRequest* request,
                        pb::ShutdownReply*) override {
    if (grpc::Status s = auth->Check(*context); !s.ok()) return s;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (session != nullptr && !request->force()) {
        return grpc::Status(
            grpc::StatusCode::FAILED_PRECONDITION,
            absl::StrCat("cluster ", session->cluster_id, " (coordinator ", session->coordinator,
                         ") holds this node; drain it first or pass force"));
      }
    }
    RequestShutdown(absl::StrCat("Shutdown RPC from ", context->peer(), ": ",
                                 Truncate(request->reason(), kMaxMessageBytes)));
    return grpc::Status::OK;
  }

  grpc::Status Logs(grpc::ServerContext* context, const pb::LogsRequest* request,
                    pb::LogsReply* reply) override {
    if (grpc::Status s = auth->Check(*context); !s.ok()) return s;
    if (!options.recent_log) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "this agent keeps no log (it runs inside another process)");
    }
    auto [lines, dropped] = options.recent_log(request->lines());
    for (std::string& line : lines) reply->add_lines(std::move(line));
    reply->set_dropped(dropped);
    return grpc::Status::OK;
  }

  grpc::Status Session(grpc::ServerContext* context, Stream* stream) override {
    if (grpc::Status s = auth->Check(*context); !s.ok()) return s;
    pb::CoordinatorMessage first;
    if (!stream->Read(&first)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "the session ended before its claim");
    }
    if (!first.has_claim()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "a session must start with a claim");
    }
    const pb::Claim& claim = first.claim();
    if (absl::Status valid = ValidateClaim(claim); !valid.ok()) return ToGrpcStatus(valid);

    auto current = std::make_shared<SessionState>();
    current->context = context;
    current->stream = stream;
    current->cluster_id = claim.cluster_id();
    current->coordinator = claim.coordinator();
    current->peer_host = PeerHost(context->peer());
    current->heartbeat_timeout = std::chrono::milliseconds(claim.heartbeat_timeout_ms());
    current->Heard();
    if (grpc::Status taken = TakeSession(current); !taken.ok()) return taken;
    spdlog::info("node agent: claimed by cluster {} (coordinator {} at {})", current->cluster_id,
                 current->coordinator, context->peer());

    pb::AgentMessage claimed;
    claimed.mutable_claimed()->set_agent_id(agent_id);
    NodeCapabilities caps = capabilities;
    caps.memory_available_bytes = MemoryAvailableBytes();
    ToProto(caps, claimed.mutable_claimed()->mutable_capabilities());
    current->Write(claimed);

    // A coordinator that falls silent (its machine hung, the network partitioned without a reset)
    // must free this node just as a broken stream does.
    std::thread watchdog([current] {
      while (!current->ended.load()) {
        if (current->Silence() >= current->heartbeat_timeout) {
          spdlog::warn(
              "node agent: no message from the coordinator for {} ms; ending its session",
              std::chrono::duration_cast<std::chrono::milliseconds>(current->heartbeat_timeout)
                  .count());
          current->context->TryCancel();
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });

    pb::CoordinatorMessage message;
    while (stream->Read(&message)) {
      current->Heard();
      Handle(current, message);
    }
    current->ended = true;
    watchdog.join();
    StopWorker(current, "the coordinator's session ended", /*wait=*/true);
    current->Close();
    {
      std::lock_guard<std::mutex> lock(mu);
      if (session == current) {
        session.reset();
        draining = false;
        state = NodeState::kIdle;
      }
    }
    cv.notify_all();
    spdlog::info("node agent: session of cluster {} ended", current->cluster_id);
    return grpc::Status::OK;
  }

  // --- Session handling -----------------------------------------------------------------------

  // Makes `current` the node's session, or says why not.
  grpc::Status TakeSession(const std::shared_ptr<SessionState>& current) {
    std::unique_lock<std::mutex> lock(mu);
    if (shutdown_requested) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this node agent is shutting down");
    }
    if (session != nullptr && session->cluster_id != current->cluster_id) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("this node is held by cluster ", session->cluster_id,
                                       " (coordinator ", session->coordinator, ")"));
    }
    if (session != nullptr) {
      // The same cluster claims again: its coordinator gave up on the old session (it re-forms
      // the group), which may not have noticed yet. End it and wait for its worker to stop.
      session->context->TryCancel();
      const auto limit = options.worker_stop_timeout + std::chrono::seconds(5);
      if (!cv.wait_for(lock, limit, [&] { return session == nullptr || shutdown_requested; }) ||
          shutdown_requested) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "the previous session of this cluster is still closing");
      }
    }
    session = current;
    state = NodeState::kClaimed;
    draining = false;
    return grpc::Status::OK;
  }

  void Handle(const std::shared_ptr<SessionState>& current, const pb::CoordinatorMessage& m) {
    switch (m.body_case()) {
      case pb::CoordinatorMessage::kPing: {
        pb::AgentMessage reply;
        reply.set_epoch(m.epoch());
        pb::Heartbeat* heartbeat = reply.mutable_heartbeat();
        heartbeat->set_seq(m.ping().seq());
        {
          std::lock_guard<std::mutex> lock(mu);
          heartbeat->set_state(ToProto(state));
        }
        heartbeat->set_memory_available_bytes(MemoryAvailableBytes());
        current->Write(reply);
        break;
      }
      case pb::CoordinatorMessage::kCheckModel: {
        pb::AgentMessage reply;
        reply.set_epoch(m.epoch());
        pb::ModelReport* report = reply.mutable_model();
        const std::string& path = m.check_model().model_path();
        if (path.size() > kMaxPathBytes) {
          report->set_error("model path too long");
        } else if (absl::StatusOr<ModelFingerprint> fingerprint = FingerprintModel(path);
                   fingerprint.ok()) {
          ToProto(*fingerprint, report);
        } else {
          report->set_model_path(path);
          report->set_error(Truncate(fingerprint.status().message()));
        }
        current->Write(reply);
        break;
      }
      case pb::CoordinatorMessage::kLoad:
        StartWorker(current, m.epoch(), m.load());
        break;
      case pb::CoordinatorMessage::kBootstrapResult: {
        std::shared_ptr<WorkerRun> run;
        WorkerHost* host = nullptr;
        {
          std::lock_guard<std::mutex> lock(mu);
          run = worker;
          if (run != nullptr && run->epoch == m.epoch()) host = run->host.get();
        }
        if (host != nullptr) {
          host->Deliver(m.bootstrap_result().seq(), ResultBlobs(m.bootstrap_result()));
        }
        break;
      }
      case pb::CoordinatorMessage::kStopWorker:
        StopWorker(current,
                   absl::StrCat("stopped by the coordinator: ", Truncate(m.stop_worker().reason())),
                   /*wait=*/false);
        break;
      case pb::CoordinatorMessage::kDrain: {
        bool idle = false;
        {
          std::lock_guard<std::mutex> lock(mu);
          draining = true;
          idle = worker == nullptr;
          state = NodeState::kDraining;
        }
        if (idle) {  // nothing to wait for: report the drained worker slot at once
          pb::AgentMessage reply;
          reply.set_epoch(m.epoch());
          *reply.mutable_worker() = ToWorkerReport(0, absl::OkStatus(), /*stopped=*/true);
          current->Write(reply);
        }
        StopWorker(current, absl::StrCat("drained: ", Truncate(m.drain().reason())),
                   /*wait=*/false);
        break;
      }
      case pb::CoordinatorMessage::kShutdown:
        RequestShutdown(
            absl::StrCat("shut down by the coordinator: ", Truncate(m.shutdown().reason())));
        break;
      case pb::CoordinatorMessage::kClaim:
      case pb::CoordinatorMessage::BODY_NOT_SET:
        spdlog::warn("node agent: ignoring an unexpected session message (case {})",
                     static_cast<int>(m.body_case()));
        break;
    }
  }

  void ReportWorker(const std::shared_ptr<SessionState>& current, uint64_t epoch, int rank,
                    const absl::Status& result, bool stopped) {
    pb::AgentMessage report;
    report.set_epoch(epoch);
    *report.mutable_worker() = ToWorkerReport(rank, result, stopped);
    current->Write(report);
  }

  void StartWorker(const std::shared_ptr<SessionState>& current, uint64_t epoch,
                   const pb::LoadPlan& proto) {
    absl::StatusOr<LoadPlan> plan = FromProto(proto);
    if (!plan.ok()) {
      ReportWorker(current, epoch, proto.rank(), plan.status(), false);
      return;
    }
    plan->head_host = current->peer_host;
    auto run = std::make_shared<WorkerRun>();
    run->plan = *plan;
    run->epoch = epoch;
    std::shared_ptr<WorkerRun> previous;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (draining) {
        ReportWorker(current, epoch, plan->rank,
                     absl::FailedPreconditionError("this node is draining"), false);
        return;
      }
      previous = worker;
      if (previous != nullptr && !previous->ended) {
        ReportWorker(current, epoch, plan->rank,
                     absl::FailedPreconditionError(
                         absl::StrCat("worker rank ", previous->plan.rank, " of epoch ",
                                      previous->epoch, " still runs on this node; stop it first")),
                     false);
        return;
      }
      worker = run;
      state = NodeState::kLoading;
    }
    previous.reset();  // it has ended: its host's threads are done or finishing
    pb::AgentMessage accepted;
    accepted.set_epoch(epoch);
    ToProto(LoadProgress{.phase = LoadPhase::kAccepted,
                         .message = absl::StrCat("rank ", plan->rank, " of ", plan->world_size,
                                                 " (", WorkerKindName(plan->kind), ")")},
            accepted.mutable_progress());
    current->Write(accepted);

    std::unique_ptr<WorkerHost> host;
    WorkerEvents events = Events(current, run);
    if (options.worker) {
      host = StartThreadWorker(*plan, options.worker, std::move(events));
    } else {
      absl::StatusOr<std::unique_ptr<WorkerHost>> child =
          StartChildWorker(*plan, options.worker_binary, std::move(events));
      if (!child.ok()) {
        {
          std::lock_guard<std::mutex> lock(mu);
          if (worker == run) worker.reset();
          state = NodeState::kFailed;
        }
        ReportWorker(current, epoch, plan->rank, child.status(), false);
        return;
      }
      host = *std::move(child);
    }
    std::lock_guard<std::mutex> lock(mu);
    run->host = std::move(host);
  }

  // What the rank's host reports goes to the session, tagged with the plan's epoch.
  WorkerEvents Events(const std::shared_ptr<SessionState>& current,
                      const std::shared_ptr<WorkerRun>& run) {
    std::weak_ptr<WorkerRun> weak_run = run;
    const uint64_t epoch = run->epoch;
    const int rank = run->plan.rank;
    WorkerEvents events;
    events.progress = [this, current, weak_run, epoch](const LoadProgress& progress) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (worker != nullptr && worker == weak_run.lock() && !draining) {
          if (progress.phase == LoadPhase::kReady) state = NodeState::kReady;
          if (progress.phase == LoadPhase::kFailed) state = NodeState::kFailed;
        }
      }
      pb::AgentMessage message;
      message.set_epoch(epoch);
      ToProto(progress, message.mutable_progress());
      current->Write(message);
    };
    events.contribute = [current, epoch](uint64_t seq, BootstrapOpKind kind,
                                         std::string_view blob) -> absl::Status {
      pb::AgentMessage message;
      message.set_epoch(epoch);
      pb::BootstrapContribution* c = message.mutable_bootstrap();
      c->set_seq(seq);
      c->set_op(ToProto(kind));
      c->set_blob(std::string(blob));
      if (!current->Write(message)) {
        return absl::UnavailableError("bootstrap: the coordinator's session is gone");
      }
      return absl::OkStatus();
    };
    // Runs on the host's own thread: it must not destroy the host.
    events.ended = [this, current, weak_run, epoch, rank](const absl::Status& result,
                                                          bool stopped) {
      if (!result.ok() && !stopped) {
        spdlog::error("node agent: worker rank {} failed: {}", rank, result.ToString());
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        std::shared_ptr<WorkerRun> run = weak_run.lock();
        if (run != nullptr) run->ended = true;
        if (run != nullptr && worker == run && !draining) {
          state = result.ok() || stopped ? NodeState::kClaimed : NodeState::kFailed;
        }
      }
      ReportWorker(current, epoch, rank, result, stopped);
    };
    return events;
  }

  // Tells the session's worker to stop; with `wait`, also waits for it (bounded), ends it if it
  // does not stop, and forgets it.
  void StopWorker(const std::shared_ptr<SessionState>& current, const std::string& reason,
                  bool wait) {
    std::shared_ptr<WorkerRun> run;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (session != current) return;
      run = worker;
      if (wait) worker.reset();
      if (run == nullptr || run->host == nullptr) return;
    }
    run->host->Stop(reason);
    if (!wait) return;
    if (run->host->Wait(options.worker_stop_timeout)) return;
    spdlog::warn("node agent: worker rank {} did not stop within {} ms ({}); ending it",
                 run->plan.rank, options.worker_stop_timeout.count(), reason);
    if (run->host->Abandon()) return;
    // A rank on a thread of this process cannot be ended: it may hold the GPU for good.
    if (options.exit_on_stuck_worker) {
      spdlog::critical("node agent: exiting so that the supervisor restarts this node clean");
      std::_Exit(3);
    }
  }

  void RequestShutdown(const std::string& reason) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (shutdown_requested) return;
      shutdown_requested = true;
      shutdown_reason = reason;
    }
    cv.notify_all();
  }
};

NodeAgent::NodeAgent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<NodeAgent>> NodeAgent::Start(NodeAgentOptions options) {
  absl::StatusOr<HostPort> listen = ParseHostPort(options.listen, /*allow_port_zero=*/true);
  if (!listen.ok()) return listen.status();
  absl::StatusOr<std::shared_ptr<const ControlAuth>> auth = ControlAuth::Load(options.auth);
  if (!auth.ok()) return auth.status();
  if (!(*auth)->uses_token() && !(*auth)->uses_tls() && !IsLoopbackHost(listen->host)) {
    return absl::InvalidArgumentError(
        absl::StrCat("node agent: refusing to listen on ", listen->ToString(),
                     " without authentication (anyone who reaches it could control this node); use "
                     "--token-file or mTLS, or --insecure only on a loopback address"));
  }
  if ((*auth)->uses_token() && !(*auth)->uses_tls() && !IsLoopbackHost(listen->host)) {
    spdlog::warn(
        "node agent: the cluster token travels in clear text to {}; use mTLS (--tls-*) on "
        "networks you do not trust",
        listen->ToString());
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->auth = *std::move(auth);
  impl->capabilities = ProbeCapabilities();

  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen->ToString(), impl->auth->ServerCredentials(), &impl->port);
  builder.RegisterService(impl.get());
  builder.SetMaxReceiveMessageSize(kMaxGrpcMessageBytes);
  builder.SetMaxSendMessageSize(kMaxGrpcMessageBytes);
  // Bounded threads: a stranger opening many connections cannot exhaust the node.
  grpc::ResourceQuota quota("sparkstack-node-agent");
  quota.SetMaxThreads(64);
  builder.SetResourceQuota(quota);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    return absl::UnavailableError(
        absl::StrCat("node agent: cannot listen on ", listen->ToString(),
                     " (address in use, or not an address of this machine?)"));
  }
  spdlog::info("node agent {} listening on {}:{} ({})", impl->agent_id, listen->host, impl->port,
               impl->auth->uses_tls() ? (impl->auth->uses_token() ? "mTLS + token" : "mTLS")
                                      : (impl->auth->uses_token() ? "token" : "NO AUTHENTICATION"));
  return std::unique_ptr<NodeAgent>(new NodeAgent(std::move(impl)));
}

NodeAgent::~NodeAgent() {
  RequestShutdown("the agent is being destroyed");
  Wait();
}

int NodeAgent::port() const { return impl_->port; }

NodeState NodeAgent::state() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->state;
}

void NodeAgent::RequestShutdown(const std::string& reason) { impl_->RequestShutdown(reason); }

std::string NodeAgent::Wait() {
  std::string reason;
  {
    std::unique_lock<std::mutex> lock(impl_->mu);
    impl_->cv.wait(lock, [&] { return impl_->shutdown_requested; });
    reason = impl_->shutdown_reason;
    if (impl_->stopped) return reason;
    impl_->stopped = true;
  }
  spdlog::info("node agent: shutting down ({})", reason);
  // Ends open sessions (their handlers stop the worker rank) after a short grace period.
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  impl_->server->Wait();
  return reason;
}

}  // namespace sparkstack::control
