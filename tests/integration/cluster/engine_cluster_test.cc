// The engine on real multi-process clusters: this process is rank 0 and `sparkstack worker`
// processes are the other ranks, over loopback. Every tp x pp layout generates exactly what one
// process generates on the same trace, with preemptions (a small KV pool) and aborts; an idle
// cluster waits without timing out yet notices a dead worker within about a second.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "runtime/engine/cluster_join.h"
#include "runtime/engine/engine.h"
#include "runtime/model/tiny_model.h"

namespace sparkstack {
namespace {

std::string Binary() {
  const char* path = std::getenv("SPARKSTACK_BINARY");
  return path ? path : "sparkstack";
}

std::string WriteModel() {
  ModelConfig c = TinyModelConfig(Architecture::kQwen3);
  c.hidden_size = 48;
  c.intermediate_size = 90;
  c.num_layers = 4;  // pp = 4 gets a layer per stage
  c.num_heads = 8;
  c.num_kv_heads = 2;
  c.head_dim = 12;
  c.vocab_size = 251;
  c.max_position_embeddings = 256;
  c.torch_dtype = DType::kF32;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("sparkstack_engine_cluster_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  EXPECT_TRUE(WriteTinyModel({.config = c, .seed = 31}, dir.string()).ok());
  return dir.string();
}

// A cluster of `world` ranks: rank 0 is an Engine in this process, the rest worker processes.
class Cluster {
 public:
  Cluster(const EngineOptions& options) {
    const int world = options.plan.world_size();
    if (world == 1) {
      auto engine = Engine::Create(options);
      EXPECT_TRUE(engine.ok()) << engine.status();
      if (engine.ok()) engine_ = *std::move(engine);
      return;
    }
    auto listener = RendezvousListener::Bind("127.0.0.1", 0);
    EXPECT_TRUE(listener.ok());
    const std::string address = "127.0.0.1:" + std::to_string(listener->port());
    for (int rank = 1; rank < world; ++rank) {
      const pid_t pid = fork();
      if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        const std::string r = std::to_string(rank), w = std::to_string(world);
        execl(Binary().c_str(), "sparkstack", "worker", "--rank", r.c_str(), "--world",
              w.c_str(), "--rendezvous", address.c_str(), nullptr);
        _exit(127);
      }
      workers_.push_back(pid);
    }
    RendezvousOptions rendezvous{.host = "127.0.0.1", .port = listener->port(), .rank = 0,
                                 .world_size = world, .timeout = std::chrono::seconds(30)};
    auto joined = JoinCluster(rendezvous, &options, &*listener);
    EXPECT_TRUE(joined.ok()) << joined.status();
    if (!joined.ok()) return;
    auto engine = Engine::Create(joined->options, std::move(joined->comms));
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (engine.ok()) engine_ = *std::move(engine);
  }
  ~Cluster() {
    engine_.reset();  // stops the workers
    for (pid_t pid : workers_) {
      int status = 0;
      for (int i = 0; i < 500 && waitpid(pid, &status, WNOHANG) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  Engine* engine() { return engine_.get(); }
  pid_t worker(int i) const { return workers_[i]; }

 private:
  std::vector<pid_t> workers_;
  std::unique_ptr<Engine> engine_;
};

struct Output {
  std::vector<int32_t> tokens;
  std::vector<float> first_logits;
  FinishReason reason = FinishReason::kNone;
  absl::Status error;
};

struct TraceRequest {
  Request request;
  int abort_after = -1;  // abort once this many tokens have arrived
};

std::vector<TraceRequest> MakeTrace() {
  std::mt19937_64 rng(5);
  std::vector<TraceRequest> trace;
  for (int i = 0; i < 20; ++i) {
    TraceRequest t;
    Request& r = t.request;
    r.prompt_ids.resize(1 + rng() % 50);
    for (int32_t& id : r.prompt_ids) id = static_cast<int32_t>(rng() % 251);
    r.stopping.max_tokens = 8 + rng() % 24;
    r.stopping.ignore_eos = true;
    r.detokenize = false;
    r.return_first_logits = true;
    if (i % 3 == 1) r.sampling = {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .seed = 100u + i};
    if (i % 5 == 2) t.abort_after = 3;
    trace.push_back(t);
  }
  return trace;
}

std::vector<Output> RunTrace(Engine& engine, const std::vector<TraceRequest>& trace) {
  absl::Mutex mu;
  std::vector<Output> outputs(trace.size());
  size_t finished = 0;
  std::vector<RequestId> ids(trace.size());
  for (size_t i = 0; i < trace.size(); ++i) {
    auto id = engine.AddRequest(trace[i].request, [&, i](RequestOutput out) {
      absl::MutexLock lock(&mu);
      Output& o = outputs[i];
      o.tokens.insert(o.tokens.end(), out.token_ids.begin(), out.token_ids.end());
      if (!out.first_logits.empty()) o.first_logits = out.first_logits;
      if (trace[i].abort_after >= 0 && std::ssize(o.tokens) >= trace[i].abort_after &&
          !out.finished()) {
        engine.Abort(ids[i]);
      }
      if (out.finished()) {
        o.reason = out.finish_reason;
        o.error = out.error;
        ++finished;
      }
    });
    EXPECT_TRUE(id.ok()) << id.status();
    absl::MutexLock lock(&mu);
    ids[i] = *id;
  }
  absl::MutexLock lock(&mu);
  auto all_finished = [&] { return finished == trace.size(); };
  mu.Await(absl::Condition(&all_finished));
  return outputs;
}

EngineOptions Options(const std::string& dir, int tp, int pp) {
  EngineOptions o;
  o.model_dir = dir;
  o.plan = {.tp = tp, .pp = pp};
  o.threads = 1;
  o.max_num_seqs = 16;
  o.max_num_batched_tokens = 64;
  o.max_model_len = 96;
  // Room for ~4 full-length sequences per rank: the trace needs preemptions.
  const int64_t layers_per_rank = 4 / pp, kv_heads = std::max(1, 2 / tp);
  o.kv_cache_bytes = 28 * (layers_per_rank * kv_heads * 12 * 2 * 4 * 16);
  return o;
}

TEST(EngineClusterTest, EveryLayoutEqualsOneProcessWithAbortsAndPreemptions) {
  const std::string dir = WriteModel();
  const std::vector<TraceRequest> trace = MakeTrace();
  Cluster single(Options(dir, 1, 1));
  ASSERT_NE(single.engine(), nullptr);
  const std::vector<Output> want = RunTrace(*single.engine(), trace);
  EXPECT_GT(single.engine()->stats().preemptions, 0) << "the trace was meant to preempt";
  for (auto [tp, pp] : {std::pair{2, 1}, {1, 2}, {2, 2}, {1, 4}}) {
    SCOPED_TRACE("tp " + std::to_string(tp) + " pp " + std::to_string(pp));
    Cluster cluster(Options(dir, tp, pp));
    ASSERT_NE(cluster.engine(), nullptr);
    const std::vector<Output> got = RunTrace(*cluster.engine(), trace);
    for (size_t i = 0; i < trace.size(); ++i) {
      SCOPED_TRACE("request " + std::to_string(i));
      ASSERT_TRUE(got[i].error.ok()) << got[i].error;
      if (trace[i].abort_after >= 0) {
        // Aborted where it was asked, give or take the steps already in flight.
        EXPECT_EQ(got[i].reason, FinishReason::kAbort);
        ASSERT_LE(got[i].tokens.size(), want[i].tokens.size());
        EXPECT_TRUE(std::equal(got[i].tokens.begin(), got[i].tokens.end(), want[i].tokens.begin()));
        continue;
      }
      EXPECT_EQ(got[i].tokens, want[i].tokens);
      ASSERT_EQ(got[i].first_logits.size(), want[i].first_logits.size());
      double scale = 0, worst = 0;
      for (size_t v = 0; v < want[i].first_logits.size(); ++v) {
        scale = std::max(scale, std::fabs(double{want[i].first_logits[v]}));
        worst = std::max(worst,
                         std::fabs(double{got[i].first_logits[v]} - want[i].first_logits[v]));
      }
      EXPECT_LE(worst, 1e-5 * scale);
    }
  }
}

TEST(EngineClusterTest, IdleClusterWaitsForWorkYetNoticesADeadWorkerQuickly) {
  const std::string dir = WriteModel();
  Cluster cluster(Options(dir, 1, 2));
  ASSERT_NE(cluster.engine(), nullptr);
  Engine& engine = *cluster.engine();
  // Longer than the data plane's default 10 s timeout: idle is not a failure.
  std::this_thread::sleep_for(std::chrono::seconds(11));
  ASSERT_TRUE(engine.health().ok()) << engine.health();
  const std::vector<Output> out = RunTrace(engine, {MakeTrace()[0]});
  EXPECT_TRUE(out[0].error.ok()) << out[0].error;

  kill(cluster.worker(0), SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  while (engine.health().ok() && std::chrono::steady_clock::now() - killed < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto noticed = std::chrono::steady_clock::now() - killed;
  EXPECT_FALSE(engine.health().ok());
  EXPECT_LT(noticed, std::chrono::milliseconds(1500)) << "a dead worker went unnoticed";
  EXPECT_NE(engine.health().message().find("rank 1"), absl::string_view::npos) << engine.health();
  auto refused = engine.AddRequest(MakeTrace()[0].request, [](RequestOutput) {});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace sparkstack
