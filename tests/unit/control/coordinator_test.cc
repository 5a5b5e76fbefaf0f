// The coordinator against in-process node agents on loopback (real gRPC, fake worker ranks):
// formation with blobs relayed between every rank, failures noticed and named, the group
// re-formed, claims by another cluster refused, incompatible nodes named before anything loads.
#include "runtime/control/coordinator.h"

#include <atomic>
#include <cstdlib>
#include <string_view>
#include <thread>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "runtime/control/agent_link.h"
#include "runtime/control/capabilities.h"
#include "runtime/control/proto_mapping.h"
#include "sparkstack/v1/control.grpc.pb.h"
#include "tests/unit/control/control_test_util.h"

namespace sparkstack::control {
namespace {

using ::sparkstack::control::testing::Addresses;
using ::sparkstack::control::testing::FakeHead;
using ::sparkstack::control::testing::FakeWorkers;
using ::sparkstack::control::testing::InsecureAuth;
using ::sparkstack::control::testing::RankBlob;
using ::sparkstack::control::testing::StartAgents;
using ::sparkstack::control::testing::TokenAuth;
using ::sparkstack::control::testing::TokenFile;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

CoordinatorOptions FastOptions(const std::vector<std::string>& nodes, const std::string& token) {
  CoordinatorOptions options;
  options.nodes = nodes;
  options.auth.token_file = token;
  options.plan.kind = WorkerKind::kDataPlaneProbe;  // no model files to check
  // Generous against a loaded CI machine (sanitizers, parallel tests): only the heartbeat test
  // below depends on the timeout, and it sets its own.
  options.heartbeat_interval = milliseconds(100);
  options.heartbeat_timeout = milliseconds(3000);
  options.connect_timeout = milliseconds(2000);
  options.load_timeout = milliseconds(10000);
  options.retry_interval = milliseconds(100);
  return options;
}

bool IsReady(const ClusterHealth& h) { return h.state == ClusterState::kReady; }

TEST(CoordinatorTest, FormsTheGroupRelayingBlobsBetweenEveryRank) {
  TokenFile token;
  FakeWorkers workers;
  auto agents = StartAgents(3, TokenAuth(token.path()), workers.Fn());
  FakeHead head;
  auto coordinator = Coordinator::Create(FastOptions(Addresses(agents), token.path()), &head);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  std::vector<ClusterHealth> seen;
  std::mutex seen_mu;
  (*coordinator)->AddObserver([&](const ClusterHealth& h) {
    std::lock_guard<std::mutex> lock(seen_mu);
    seen.push_back(h);
  });
  ASSERT_TRUE((*coordinator)->Start().ok());
  EXPECT_TRUE((*coordinator)->ready());
  EXPECT_THAT(head.gathered(), ElementsAre(RankBlob(0), RankBlob(1), RankBlob(2), RankBlob(3)));
  EXPECT_EQ(workers.started.load(), 3);
  const ClusterHealth health = (*coordinator)->Health();
  EXPECT_EQ(health.epoch, 1u);
  ASSERT_EQ(health.nodes.size(), 3u);
  for (const NodeHealth& node : health.nodes) {
    EXPECT_TRUE(node.connected) << node.address;
    EXPECT_FALSE(node.hostname.empty());
    EXPECT_EQ(node.state, NodeState::kReady);
  }
  for (const auto& agent : agents) EXPECT_EQ(agent->state(), NodeState::kReady);

  (*coordinator)->Shutdown();
  EXPECT_EQ((*coordinator)->Health().state, ClusterState::kStopped);
  EXPECT_EQ(workers.stopped.load(), 3);  // drained: every worker saw its stop flag
  EXPECT_EQ(head.stops(), 1);
  // The agents free themselves as their sessions end, just after the coordinator lets go.
  for (const auto& agent : agents) {
    const auto deadline = std::chrono::steady_clock::now() + milliseconds(3000);
    while (agent->state() != NodeState::kIdle && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    EXPECT_EQ(agent->state(), NodeState::kIdle);
  }
  std::lock_guard<std::mutex> lock(seen_mu);
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen.front().state, ClusterState::kReady);
  EXPECT_EQ(seen.back().state, ClusterState::kStopped);
}

TEST(CoordinatorTest, InjectedWorkerFailureIsNamedInHealth) {
  TokenFile token;
  FakeWorkers workers;
  workers.fail_rank = 1;  // fails 100 ms after the first formation is ready
  auto agents = StartAgents(2, TokenAuth(token.path()), workers.Fn());
  const std::vector<std::string> nodes = Addresses(agents);
  FakeHead head;
  auto coordinator = Coordinator::Create(FastOptions(nodes, token.path()), &head);
  ASSERT_TRUE(coordinator.ok());
  std::mutex mu;
  std::vector<ClusterHealth> degraded;
  (*coordinator)->AddObserver([&](const ClusterHealth& h) {
    std::lock_guard<std::mutex> lock(mu);
    if (h.state == ClusterState::kDegraded) degraded.push_back(h);
  });
  ASSERT_TRUE((*coordinator)->Start().ok());
  ClusterHealth h = (*coordinator)
                        ->WaitFor([](const ClusterHealth& h) { return h.epoch >= 2 && IsReady(h); },
                                  milliseconds(10000));
  ASSERT_TRUE(IsReady(h)) << h.Summary();
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_FALSE(degraded.empty());
  EXPECT_EQ(degraded.front().failed_rank, 1);
  EXPECT_EQ(degraded.front().failed_node, nodes[0]);
  EXPECT_THAT(degraded.front().reason, HasSubstr("injected failure on rank 1"));
  EXPECT_THAT(degraded.front().reason, HasSubstr(nodes[0]));
  EXPECT_EQ(head.stops(), 1);  // rank 0 of the failed group was stopped
}

TEST(CoordinatorTest, HeadFailureDegradesAndReforms) {
  TokenFile token;
  FakeWorkers workers;
  auto agents = StartAgents(1, TokenAuth(token.path()), workers.Fn());
  FakeHead head;
  auto coordinator = Coordinator::Create(FastOptions(Addresses(agents), token.path()), &head);
  ASSERT_TRUE(coordinator.ok());
  ASSERT_TRUE((*coordinator)->Start().ok());
  (*coordinator)->ReportHeadFailure(absl::UnavailableError("all-reduce: peer rank 1 gone"));
  ClusterHealth h = (*coordinator)
                        ->WaitFor(
                            [](const ClusterHealth& h) {
                              return h.state == ClusterState::kDegraded || h.epoch >= 2;
                            },
                            milliseconds(5000));
  EXPECT_EQ(h.failed_rank, 0);
  EXPECT_EQ(h.failed_node, "head");
  EXPECT_THAT(h.reason, HasSubstr("rank 0 on the head failed: all-reduce: peer rank 1 gone"));
  h = (*coordinator)
          ->WaitFor([](const ClusterHealth& h) { return h.epoch >= 2 && IsReady(h); },
                    milliseconds(10000));
  EXPECT_TRUE(IsReady(h)) << h.Summary();
}

TEST(CoordinatorTest, ANodeHeldByAnotherClusterIsRefusedAndTheHolderUndisturbed) {
  TokenFile token;
  FakeWorkers workers;
  auto agents = StartAgents(2, TokenAuth(token.path()), workers.Fn());
  FakeHead head_a, head_b;
  auto a = Coordinator::Create(FastOptions(Addresses(agents), token.path()), &head_a);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE((*a)->Start().ok());
  auto b = Coordinator::Create(FastOptions(Addresses(agents), token.path()), &head_b);
  ASSERT_TRUE(b.ok());
  absl::Status refused = (*b)->Start();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.message(), HasSubstr(Addresses(agents)[0]));
  EXPECT_THAT(refused.message(), HasSubstr("is held by another cluster"));
  EXPECT_EQ((*b)->Health().state, ClusterState::kStopped);
  std::this_thread::sleep_for(milliseconds(300));
  const ClusterHealth health = (*a)->Health();
  EXPECT_TRUE(health.ready()) << health.Summary();
  EXPECT_EQ(health.epoch, 1u);
  EXPECT_EQ(head_b.starts(), 0);
}

TEST(CoordinatorTest, UnreachableNodeIsNamed) {
  TokenFile token;
  FakeHead head;
  // Port 9 (discard) on loopback: nothing listens there in the test environment.
  CoordinatorOptions options = FastOptions({"127.0.0.1:9"}, token.path());
  options.connect_timeout = milliseconds(500);
  auto coordinator = Coordinator::Create(options, &head);
  ASSERT_TRUE(coordinator.ok());
  const auto start = std::chrono::steady_clock::now();
  absl::Status status = (*coordinator)->Start();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(3000));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("node 127.0.0.1:9 (rank 1) is unreachable"));
}

TEST(CoordinatorTest, OptionsAreCheckedUpFront) {
  TokenFile token;
  FakeHead head;
  CoordinatorOptions options = FastOptions({"127.0.0.1:1", "127.0.0.1:2"}, token.path());
  options.plan.kind = WorkerKind::kModel;
  options.plan.tp = 2;
  options.plan.pp = 2;
  EXPECT_THAT(
      Coordinator::Create(options, &head).status().message(),
      HasSubstr("tp 2 x pp 2 needs 4 ranks (the head and 3 nodes), but 2 nodes are listed"));
  options = FastOptions({"127.0.0.1:1", "127.0.0.1:1"}, token.path());
  EXPECT_THAT(Coordinator::Create(options, &head).status().message(), HasSubstr("listed twice"));
  options = FastOptions({"127.0.0.1:1"}, "");
  EXPECT_THAT(Coordinator::Create(options, &head).status().message(),
              HasSubstr("needs credentials"));
  options = FastOptions({"127.0.0.1:1"}, token.path());
  options.plan.kind = WorkerKind::kModel;
  options.plan.tp = 2;
  options.plan.model_path = "/nonexistent/model";
  EXPECT_THAT(Coordinator::Create(options, &head).status().message(),
              HasSubstr("/nonexistent/model does not exist here"));
}

// A scripted agent for what real agents cannot be made to do: claim another version, or stop
// answering heartbeats while keeping the connection open.
class ScriptedAgent final : public ::sparkstack::v1::NodeAgent::Service {
 public:
  std::string version = ThisBuildVersions().sparkstack_version;
  std::atomic<bool> silent{false};

  grpc::Status Hello(grpc::ServerContext*, const pb::HelloRequest*,
                     pb::HelloReply* reply) override {
    NodeCapabilities caps;
    caps.hostname = "scripted";
    caps.versions = ThisBuildVersions();
    caps.versions.sparkstack_version = version;
    ToProto(caps, reply->mutable_capabilities());
    reply->set_protocol_version(kControlProtocolVersion);
    reply->set_state(pb::NODE_STATE_IDLE);
    return grpc::Status::OK;
  }
  grpc::Status Session(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<pb::AgentMessage, pb::CoordinatorMessage>* stream) override {
    pb::CoordinatorMessage message;
    if (!stream->Read(&message)) return grpc::Status::OK;
    pb::AgentMessage claimed;
    claimed.mutable_claimed()->set_agent_id("scripted");
    stream->Write(claimed);
    while (stream->Read(&message)) {
      if (silent) continue;  // keeps reading so the stream stays open, answers nothing
      pb::AgentMessage reply;
      reply.set_epoch(message.epoch());
      if (message.has_ping()) {
        reply.mutable_heartbeat()->set_seq(message.ping().seq());
        reply.mutable_heartbeat()->set_state(pb::NODE_STATE_READY);
      } else if (message.has_load()) {
        reply.mutable_progress()->set_phase(pb::LOAD_PHASE_READY);
      } else {
        continue;
      }
      stream->Write(reply);
    }
    return grpc::Status::OK;
  }
};

class NullHead final : public HeadRank {
 public:
  absl::Status Start(const LoadPlan&, Bootstrap&, const std::atomic<bool>&) override {
    return absl::OkStatus();
  }
  void Stop(const absl::Status&) override {}
};

struct ScriptedServer {
  ScriptedAgent agent;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  ScriptedServer() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&agent);
    server = builder.BuildAndStart();
  }
  ~ScriptedServer() { server->Shutdown(std::chrono::system_clock::now()); }
  std::string address() const { return absl::StrCat("127.0.0.1:", port); }
};

CoordinatorOptions InsecureOptions(const std::string& node) {
  CoordinatorOptions options = FastOptions({node}, "");
  options.auth = InsecureAuth();
  return options;
}

TEST(CoordinatorTest, ANodeThatStopsAnsweringIsLostAfterTheHeartbeatTimeout) {
  ScriptedServer scripted;
  NullHead head;
  CoordinatorOptions options = InsecureOptions(scripted.address());
  options.heartbeat_timeout = milliseconds(500);
  auto coordinator = Coordinator::Create(options, &head);
  ASSERT_TRUE(coordinator.ok());
  ASSERT_TRUE((*coordinator)->Start().ok());
  std::this_thread::sleep_for(milliseconds(700));  // heartbeats flow: still ready
  ASSERT_TRUE((*coordinator)->ready());

  const auto silent_since = std::chrono::steady_clock::now();
  scripted.agent.silent = true;
  ClusterHealth h =
      (*coordinator)
          ->WaitFor([](const ClusterHealth& h) { return h.state == ClusterState::kDegraded; },
                    milliseconds(5000));
  const auto noticed = std::chrono::steady_clock::now() - silent_since;
  ASSERT_EQ(h.state, ClusterState::kDegraded);
  // Timeout 500 ms: the silence the coordinator measured (since the last answer, which a loaded
  // machine may have delivered late) is at least the timeout, and the loss is noticed well within
  // the 5 s the product promises.
  EXPECT_LT(noticed, milliseconds(4000));
  EXPECT_EQ(h.failed_node, scripted.address());
  const std::string_view lead = "lost: no heartbeat for ";
  const size_t at = h.reason.find(lead);
  ASSERT_NE(at, std::string::npos) << h.reason;
  EXPECT_GE(std::atoi(h.reason.c_str() + at + lead.size()), 500) << h.reason;
}

TEST(CoordinatorTest, VersionMismatchIsNamedBeforeAnythingLoads) {
  ScriptedServer scripted;
  scripted.agent.version = "9.9.9";
  NullHead head;
  auto coordinator = Coordinator::Create(InsecureOptions(scripted.address()), &head);
  ASSERT_TRUE(coordinator.ok());
  absl::Status status = (*coordinator)->Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr(absl::StrCat("node ", scripted.address())));
  EXPECT_THAT(status.message(), HasSubstr("runs sparkstack 9.9.9"));
  EXPECT_THAT(status.message(),
              HasSubstr(absl::StrCat("the head runs ", ThisBuildVersions().sparkstack_version)));
}

TEST(NodeAgentTest, ASilentCoordinatorFreesTheNode) {
  TokenFile token;
  FakeWorkers workers;
  auto agents = StartAgents(1, TokenAuth(token.path()), workers.Fn());
  auto auth = ControlAuth::Load(TokenAuth(token.path()));
  ASSERT_TRUE(auth.ok());
  auto channel = MakeAgentChannel(Addresses(agents)[0], **auth);
  AgentLink link(channel, *auth);
  pb::Claim claim;
  claim.set_protocol_version(kControlProtocolVersion);
  claim.set_cluster_id("silent-coordinator");
  claim.set_heartbeat_interval_ms(100);
  claim.set_heartbeat_timeout_ms(300);
  std::atomic<bool> closed{false};
  auto claimed = link.Open(
      claim, milliseconds(2000), [](const pb::AgentMessage&) {},
      [&](const absl::Status&) { closed = true; });
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  EXPECT_EQ(agents[0]->state(), NodeState::kClaimed);
  auto hello = CallHello(channel, **auth, "test", milliseconds(1000));
  ASSERT_TRUE(hello.ok());
  EXPECT_EQ(hello->held_by(), "silent-coordinator");
  // No pings: after 300 ms the agent ends the session and is free again.
  const auto deadline = std::chrono::steady_clock::now() + milliseconds(3000);
  while (!closed && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(closed.load());
  hello = CallHello(channel, **auth, "test", milliseconds(1000));
  ASSERT_TRUE(hello.ok());
  EXPECT_EQ(hello->held_by(), "");
  EXPECT_EQ(hello->state(), pb::NODE_STATE_IDLE);
}

TEST(NodeAgentTest, ShutdownIsRefusedWhileAClusterHoldsTheNodeUnlessForced) {
  TokenFile token;
  FakeWorkers workers;
  auto agents = StartAgents(1, TokenAuth(token.path()), workers.Fn());
  FakeHead head;
  auto coordinator = Coordinator::Create(FastOptions(Addresses(agents), token.path()), &head);
  ASSERT_TRUE(coordinator.ok());
  ASSERT_TRUE((*coordinator)->Start().ok());
  auto auth = ControlAuth::Load(TokenAuth(token.path()));
  ASSERT_TRUE(auth.ok());
  auto stub = pb::NodeAgent::NewStub(MakeAgentChannel(Addresses(agents)[0], **auth));
  const auto shutdown = [&](bool force) {
    grpc::ClientContext context;
    (*auth)->Authorize(context);
    pb::ShutdownRequest request;
    request.set_reason("maintenance");
    request.set_force(force);
    pb::ShutdownReply reply;
    return stub->Shutdown(&context, request, &reply);
  };
  grpc::Status refused = shutdown(false);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.error_message(), HasSubstr("holds this node; drain it first"));
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_TRUE((*coordinator)->ready());

  EXPECT_TRUE(shutdown(true).ok());
  EXPECT_THAT(agents[0]->Wait(), HasSubstr("Shutdown RPC"));
  // The head notices the node going away like any other loss.
  ClusterHealth h =
      (*coordinator)
          ->WaitFor([](const ClusterHealth& h) { return h.state == ClusterState::kDegraded; },
                    milliseconds(3000));
  EXPECT_EQ(h.state, ClusterState::kDegraded);
  EXPECT_EQ(h.failed_rank, 1);
}

TEST(NodeAgentTest, LogsAnswersFromTheProcessLogOrSaysItKeepsNone) {
  const auto call_logs = [](NodeAgent& agent, const ControlAuth& auth, pb::LogsReply* reply) {
    auto stub =
        pb::NodeAgent::NewStub(MakeAgentChannel(absl::StrCat("127.0.0.1:", agent.port()), auth));
    grpc::ClientContext context;
    auth.Authorize(context);
    pb::LogsRequest request;
    request.set_lines(2);
    return stub->Logs(&context, request, reply);
  };
  NodeAgentOptions options;
  options.auth = InsecureAuth();
  size_t asked = 0;
  options.recent_log = [&asked](size_t lines) {
    asked = lines;
    return std::make_pair(std::vector<std::string>{"worker rank 1 ready", "heartbeat late"},
                          uint64_t{7});
  };
  auto agent = NodeAgent::Start(options);
  ASSERT_TRUE(agent.ok()) << agent.status();
  auto auth = ControlAuth::Insecure();
  pb::LogsReply reply;
  ASSERT_TRUE(call_logs(**agent, *auth, &reply).ok());
  EXPECT_EQ(asked, 2u);
  EXPECT_THAT(reply.lines(), ElementsAre("worker rank 1 ready", "heartbeat late"));
  EXPECT_EQ(reply.dropped(), 7u);

  options.recent_log = nullptr;
  auto silent = NodeAgent::Start(options);
  ASSERT_TRUE(silent.ok());
  grpc::Status refused = call_logs(**silent, *auth, &reply);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.error_message(), HasSubstr("keeps no log"));
}

TEST(NodeAgentTest, RefusesToListenWithoutCredentialsBeyondLoopback) {
  NodeAgentOptions options;
  options.listen = "0.0.0.0:0";
  options.auth = InsecureAuth();
  EXPECT_THAT(NodeAgent::Start(options).status().message(),
              HasSubstr("refusing to listen on 0.0.0.0:0 without authentication"));
  options.listen = "127.0.0.1:0";
  EXPECT_TRUE(NodeAgent::Start(options).ok());
}

}  // namespace
}  // namespace sparkstack::control
