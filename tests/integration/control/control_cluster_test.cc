// The control plane with real processes on loopback: `sparkstack node` agents (started and
// restarted like systemd would, by LocalAgents) and a coordinator in this process as the head.
//   - a HostCommunicator built over the gRPC bootstrap all-reduces across the processes;
//   - kill -9 of an agent is noticed within 5 s, naming the node, and the group is re-formed
//     (and the all-reduce verified again) once the agent is back, without restarting the head;
//   - strangers (no token, another token, no TLS-less protocol at all) cannot join or disturb;
//   - incompatible model files and too little memory are named before anything loads;
//   - the engine's worker ranks hosted in the agents generate the same tokens as one process.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/control/coordinator.h"
#include "runtime/control/data_plane_probe.h"
#include "runtime/control/engine_adapter.h"
#include "runtime/control/local_agents.h"
#include "runtime/engine/engine.h"
#include "runtime/model/tiny_model.h"

namespace sparkstack::control {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

std::string Binary() {
  const char* path = std::getenv("SPARKSTACK_BINARY");
  return path != nullptr ? path : "sparkstack";
}

// A cluster token for the agents and the head, removed at the end.
struct Token {
  std::string path;
  Token() : path(*WriteFreshTokenFile()) {}
  ~Token() { RemoveTokenFile(path); }
};

std::unique_ptr<LocalAgents> StartLocalAgents(int count, const std::string& token,
                                              milliseconds restart_delay = milliseconds(500)) {
  LocalAgentsOptions options;
  options.count = count;
  options.binary = Binary();
  options.token_file = token;
  options.restart_delay = restart_delay;
  absl::StatusOr<std::unique_ptr<LocalAgents>> agents = LocalAgents::Start(options);
  EXPECT_TRUE(agents.ok()) << agents.status();
  return agents.ok() ? *std::move(agents) : nullptr;
}

CoordinatorOptions Options(const std::vector<std::string>& nodes, const std::string& token,
                           WorkerKind kind) {
  CoordinatorOptions options;
  options.nodes = nodes;
  options.auth.token_file = token;
  options.plan.kind = kind;
  options.heartbeat_interval = milliseconds(250);
  options.heartbeat_timeout = milliseconds(1500);
  options.connect_timeout = milliseconds(3000);
  options.load_timeout = milliseconds(60000);
  options.retry_interval = milliseconds(200);
  return options;
}

TEST(ControlClusterTest, AllReduceOverTheGrpcBootstrapSurvivesKillNine) {
  Token token;
  auto agents = StartLocalAgents(3, token.path, /*restart_delay=*/milliseconds(1500));
  ASSERT_NE(agents, nullptr);
  DataPlaneProbeHead head;
  auto coordinator = Coordinator::Create(
      Options(agents->addresses(), token.path, WorkerKind::kDataPlaneProbe), &head);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  ASSERT_TRUE((*coordinator)->Start().ok());
  // Rank 0 here checked its all-reduce; each agent's rank checked its own before saying ready.
  EXPECT_EQ(head.verified_groups(), 1);
  EXPECT_EQ((*coordinator)->Health().epoch, 1u);

  const std::string victim = agents->addresses()[1];
  const pid_t pid = agents->pid(1);
  ASSERT_GT(pid, 0);
  const auto killed_at = Clock::now();
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  ClusterHealth h =
      (*coordinator)
          ->WaitFor([](const ClusterHealth& h) { return h.state == ClusterState::kDegraded; },
                    milliseconds(5000));
  const auto noticed = Clock::now() - killed_at;
  ASSERT_EQ(h.state, ClusterState::kDegraded) << h.Summary();
  EXPECT_LT(noticed, milliseconds(5000));
  EXPECT_EQ(h.failed_rank, 2);
  EXPECT_EQ(h.failed_node, victim);
  EXPECT_THAT(h.reason, HasSubstr(victim));
  std::cerr << "kill -9 noticed after " << std::chrono::duration_cast<milliseconds>(noticed).count()
            << " ms: " << h.Summary() << "\n";

  // LocalAgents restarts the agent on the same port; the head re-forms the group by itself.
  h = (*coordinator)
          ->WaitFor([](const ClusterHealth& h) { return h.ready() && h.epoch >= 2; },
                    milliseconds(30000));
  ASSERT_TRUE(h.ready()) << h.Summary();
  EXPECT_NE(agents->pid(1), pid);
  EXPECT_GE(head.verified_groups(), 2);
  (*coordinator)->Shutdown();
}

// Raw bytes that are not HTTP/2 at all.
void SendGarbage(const std::string& address) {
  const int port = std::stoi(address.substr(address.rfind(':') + 1));
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0) {
    const std::string junk = "GET / HTTP/1.1\r\n\r\n" + std::string(65536, '\xff');
    (void)!write(fd, junk.data(), junk.size());
  }
  close(fd);
}

TEST(ControlClusterTest, StrangersCannotJoinOrDisturbTheGroup) {
  Token token;
  auto agents = StartLocalAgents(2, token.path);
  ASSERT_NE(agents, nullptr);
  DataPlaneProbeHead head;
  auto coordinator = Coordinator::Create(
      Options(agents->addresses(), token.path, WorkerKind::kDataPlaneProbe), &head);
  ASSERT_TRUE(coordinator.ok());
  ASSERT_TRUE((*coordinator)->Start().ok());
  const pid_t pid0 = agents->pid(0), pid1 = agents->pid(1);

  // A head with another token.
  Token other;
  DataPlaneProbeHead stranger_head;
  auto stranger = Coordinator::Create(
      Options(agents->addresses(), other.path, WorkerKind::kDataPlaneProbe), &stranger_head);
  ASSERT_TRUE(stranger.ok());
  absl::Status refused = (*stranger)->Start();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnauthenticated) << refused;
  EXPECT_THAT(refused.message(), HasSubstr(agents->addresses()[0]));
  EXPECT_THAT(refused.message(), HasSubstr("wrong cluster token"));
  // A head with no credentials at all.
  CoordinatorOptions bare = Options(agents->addresses(), "", WorkerKind::kDataPlaneProbe);
  bare.auth = {};
  bare.auth.insecure = true;
  auto naked = Coordinator::Create(bare, &stranger_head);
  ASSERT_TRUE(naked.ok());
  EXPECT_EQ((*naked)->Start().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(stranger_head.verified_groups(), 0);
  // Not even the protocol.
  for (const std::string& address : agents->addresses()) SendGarbage(address);

  std::this_thread::sleep_for(milliseconds(1500));  // several heartbeats
  const ClusterHealth h = (*coordinator)->Health();
  EXPECT_TRUE(h.ready()) << h.Summary();
  EXPECT_EQ(h.epoch, 1u);
  EXPECT_EQ(agents->pid(0), pid0);
  EXPECT_EQ(agents->pid(1), pid1);
  (*coordinator)->Shutdown();
}

std::string WriteModel(const std::string& name) {
  ModelConfig c = TinyModelConfig(Architecture::kLlama);
  c.hidden_size = 48;
  c.intermediate_size = 90;
  c.num_layers = 3;
  c.num_heads = 8;
  c.num_kv_heads = 2;
  c.head_dim = 12;
  c.vocab_size = 251;
  c.torch_dtype = DType::kF32;
  const fs::path dir =
      fs::temp_directory_path() / absl::StrCat("sparkstack_control_", getpid(), "_", name);
  fs::remove_all(dir);
  EXPECT_TRUE(WriteTinyModel({.config = c, .seed = 23}, dir.string()).ok());
  return dir.string();
}

class NeverStartedHead final : public HeadRank {
 public:
  absl::Status Start(const LoadPlan&, Bootstrap&, const std::atomic<bool>&) override {
    ++starts;
    return absl::OkStatus();
  }
  void Stop(const absl::Status&) override {}
  std::atomic<int> starts{0};
};

TEST(ControlClusterTest, IncompatibleModelsAndMemoryAreNamedBeforeLoading) {
  Token token;
  auto agents = StartLocalAgents(1, token.path);
  ASSERT_NE(agents, nullptr);
  const std::string model = WriteModel("head");
  const std::string copy = WriteModel("node");
  {  // The node's copy has another config (same length, other content).
    std::ifstream in(fs::path(copy) / "config.json");
    std::string config((std::istreambuf_iterator<char>(in)), {});
    const size_t at = config.find("\"num_hidden_layers\": 3");
    ASSERT_NE(at, std::string::npos) << config;
    config.replace(at, 22, "\"num_hidden_layers\": 2");
    std::ofstream(fs::path(copy) / "config.json") << config;
  }
  NeverStartedHead head;
  CoordinatorOptions options = Options(agents->addresses(), token.path, WorkerKind::kModel);
  options.plan.model_path = model;
  options.plan.tp = 2;
  options.node_model_path = copy;
  auto coordinator = Coordinator::Create(options, &head);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  absl::Status status = (*coordinator)->Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(status.message(), HasSubstr(absl::StrCat("node ", agents->addresses()[0])));
  EXPECT_THAT(status.message(), HasSubstr("config.json has a different header"));

  // The same files everywhere, but a KV budget no node has.
  options.node_model_path = "";
  options.plan.kv_cache_bytes = 1ull << 50;
  auto greedy = Coordinator::Create(options, &head);
  ASSERT_TRUE(greedy.ok());
  status = (*greedy)->Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(status.message(), HasSubstr(agents->addresses()[0]));
  EXPECT_THAT(status.message(), HasSubstr("rank 1 needs"));
  EXPECT_EQ(head.starts.load(), 0);
  fs::remove_all(model);
  fs::remove_all(copy);
}

// One request's stream, collected on the engine core thread.
class Collected {
 public:
  Engine::OutputCallback Callback() {
    return [this](RequestOutput output) {
      std::lock_guard<std::mutex> lock(mu_);
      tokens_.insert(tokens_.end(), output.token_ids.begin(), output.token_ids.end());
      if (output.finished()) {
        reason_ = output.finish_reason;
        done_ = true;
        cv_.notify_all();
      }
    };
  }
  // The tokens once finished (empty after `timeout`), and how it finished.
  std::pair<std::vector<int32_t>, FinishReason> Wait(milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return done_; })) return {{}, FinishReason::kNone};
    return {tokens_, reason_};
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int32_t> tokens_;
  FinishReason reason_ = FinishReason::kNone;
  bool done_ = false;
};

Request GreedyRequest(std::vector<int32_t> prompt) {
  Request request;
  request.prompt_ids = std::move(prompt);
  request.stopping.max_tokens = 12;
  request.stopping.ignore_eos = true;
  request.detokenize = false;  // the tiny model has no tokenizer
  return request;
}

// The engine's ranks hosted in the agents, joined through the control plane's bootstrap, generate
// exactly what one process generates; a request in flight when a node dies ends with an error
// within 5 s, new requests are refused with the reason, and the re-formed group serves again.
TEST(ControlClusterTest, EngineRanksInTheAgentsMatchTheSingleProcessRunAndSurviveANodeLoss) {
  const std::string model = WriteModel("engine");
  const Request request = GreedyRequest({1, 2, 3, 4, 200, 17, 5});
  EngineOptions single_options;
  single_options.model_dir = model;
  single_options.threads = 1;
  auto resolved = ResolveEngineOptions(single_options);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  std::vector<int32_t> expected;
  {
    auto single = Engine::Create(*resolved);
    ASSERT_TRUE(single.ok()) << single.status();
    Collected collected;
    ASSERT_TRUE((*single)->AddRequest(request, collected.Callback()).ok());
    auto [tokens, reason] = collected.Wait(milliseconds(30000));
    ASSERT_EQ(reason, FinishReason::kLength);
    expected = tokens;
  }
  ASSERT_EQ(expected.size(), 12u);

  Token token;
  auto agents = StartLocalAgents(3, token.path, /*restart_delay=*/milliseconds(1000));
  ASSERT_NE(agents, nullptr);
  EngineOptions cluster_options = single_options;
  cluster_options.plan = {.tp = 2, .pp = 2};
  auto head = EngineHeadRank::Create(cluster_options);
  ASSERT_TRUE(head.ok()) << head.status();
  CoordinatorOptions options = Options(agents->addresses(), token.path, WorkerKind::kModel);
  options.plan.model_path = model;
  options.plan.tp = 2;
  options.plan.pp = 2;
  options.plan.threads = 1;
  auto coordinator = Coordinator::Create(options, head->get());
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  (*head)->SetFailureCallback(
      [&](const absl::Status& why) { (*coordinator)->ReportHeadFailure(why); });
  (*head)->SetHealthSource([&]() -> absl::Status {
    if ((*coordinator)->ready()) return absl::OkStatus();
    return absl::UnavailableError((*coordinator)->Health().Summary());
  });
  ASSERT_TRUE((*coordinator)->Start().ok());
  EXPECT_TRUE((*head)->health().ok());
  {
    Collected collected;
    ASSERT_TRUE((*head)->AddRequest(request, collected.Callback()).ok());
    auto [tokens, reason] = collected.Wait(milliseconds(30000));
    EXPECT_EQ(reason, FinishReason::kLength);
    EXPECT_EQ(tokens, expected);
  }

  // A long request in flight when a node dies.
  Request endless = GreedyRequest({9, 8, 7});
  endless.stopping.max_tokens = (*head)->options().max_model_len - 3;
  Collected in_flight;
  auto id = (*head)->AddRequest(endless, in_flight.Callback());
  ASSERT_TRUE(id.ok()) << id.status();
  std::this_thread::sleep_for(milliseconds(200));
  const auto killed_at = Clock::now();
  ASSERT_EQ(kill(agents->pid(2), SIGKILL), 0);
  auto [partial, ended] = in_flight.Wait(milliseconds(5000));
  EXPECT_LT(Clock::now() - killed_at, milliseconds(5000));
  EXPECT_EQ(ended, FinishReason::kError) << "the request did not end with an error within 5 s";
  ClusterHealth h =
      (*coordinator)
          ->WaitFor([](const ClusterHealth& h) { return h.state != ClusterState::kReady; },
                    milliseconds(5000));
  EXPECT_EQ(h.failed_rank, 3) << h.Summary();
  // While the group is down, new requests are refused at once with the reason.
  if (!(*coordinator)->ready()) {
    absl::Status refused = (*head)->health();
    EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  }
  h = (*coordinator)
          ->WaitFor([](const ClusterHealth& h) { return h.ready() && h.epoch >= 2; },
                    milliseconds(60000));
  ASSERT_TRUE(h.ready()) << h.Summary();
  {
    Collected collected;
    auto again = (*head)->AddRequest(request, collected.Callback());
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_NE(*again, *id);  // ids never repeat across groups
    (*head)->Abort(*id);     // an earlier group's request: ignored
    auto [tokens, reason] = collected.Wait(milliseconds(30000));
    EXPECT_EQ(reason, FinishReason::kLength);
    EXPECT_EQ(tokens, expected);
  }
  (*coordinator)->Shutdown();
  EXPECT_EQ((*coordinator)->Health().state, ClusterState::kStopped);
  EXPECT_EQ((*head)->health().code(), absl::StatusCode::kUnavailable);
  fs::remove_all(model);
}

}  // namespace
}  // namespace sparkstack::control
