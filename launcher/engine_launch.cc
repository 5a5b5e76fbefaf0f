#include "launcher/engine_launch.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "launcher/rendezvous_address.h"
#include "runtime/core/status_macros.h"
#include "runtime/engine/cluster_join.h"

namespace sparkstack::launcher {

void AddEngineFlags(CLI::App& cmd, EngineFlags& f) {
  cmd.add_option("--backend", f.backend,
                 "where the model runs: cpu or cuda (default: cuda when this build has CUDA and a "
                 "device is visible, else cpu)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd.add_option("--threads", f.threads, "CPU threads per rank (0: the cores / ranks)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--tp", f.tp, "tensor-parallel ranks")->check(CLI::PositiveNumber);
  cmd.add_option("--pp", f.pp, "pipeline-parallel stages")->check(CLI::PositiveNumber);
  cmd.add_option("--ep", f.ep,
                 "expert-parallel groups among a stage's tp ranks, dividing tp (MoE models; "
                 "default: tp, every rank holds whole experts)")
      ->check(CLI::PositiveNumber);
  cmd.add_flag("--local-ranks", f.local_ranks,
               "start the tp x pp ranks as local processes on loopback");
  cmd.add_option("--rendezvous", f.rendezvous,
                 "HOST:PORT where rank 0 waits for `sparkstack worker` ranks (without "
                 "--local-ranks)")
      ->capture_default_str();
  cmd.add_option("--timeout", f.timeout_s, "seconds to wait for the other ranks to join")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_option("--max-num-seqs", f.max_num_seqs, "sequences in one step at most")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_option("--max-num-batched-tokens", f.max_num_batched_tokens,
                 "tokens in one step at most (longer prompts are prefilled in chunks)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_option("--max-model-len", f.max_model_len,
                 "longest prompt + output (0: the model's max_position_embeddings)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--kv-cache-bytes", f.kv_cache_bytes,
                 "KV cache per rank in bytes (0: --kv-cache-memory-fraction of free memory)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd.add_option("--kv-cache-memory-fraction", f.kv_cache_memory_fraction,
                 "share of free memory the KV cache takes when --kv-cache-bytes is 0")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd.add_flag("--no-prefix-caching", f.no_prefix_caching,
               "do not reuse the KV of shared prompt prefixes");
}

EngineOptions EngineOptionsFromFlags(const std::string& model_dir, const EngineFlags& f) {
  EngineOptions options;
  options.model_dir = model_dir;
  options.plan = {.tp = f.tp, .pp = f.pp, .ep = f.ep};
  options.backend = f.backend;
  options.threads = f.threads;
  options.max_num_seqs = f.max_num_seqs;
  options.max_num_batched_tokens = f.max_num_batched_tokens;
  options.max_model_len = f.max_model_len;
  options.kv_cache_bytes = f.kv_cache_bytes;
  options.kv_cache_memory_fraction = f.kv_cache_memory_fraction;
  options.enable_prefix_caching = !f.no_prefix_caching;
  return options;
}

absl::StatusOr<std::unique_ptr<LaunchedEngine>> LaunchedEngine::Start(const std::string& model_dir,
                                                                      const EngineFlags& f) {
  EngineOptions options = EngineOptionsFromFlags(model_dir, f);
  // Everything that can be checked alone is checked before anyone is waited for.
  SPARKSTACK_ASSIGN_OR_RETURN(options, ResolveEngineOptions(options));

  std::unique_ptr<LaunchedEngine> launched(new LaunchedEngine());
  launched->timeout_s_ = f.timeout_s;
  const int world = options.plan.world_size();
  if (world == 1 && !f.local_ranks) {
    SPARKSTACK_ASSIGN_OR_RETURN(launched->engine_, Engine::Create(options));
    return launched;
  }
  SPARKSTACK_ASSIGN_OR_RETURN(RendezvousOptions rendezvous,
                              ParseRendezvous(f.rendezvous, 0, world, f.timeout_s));
  std::optional<RendezvousListener> listener;
  if (f.local_ranks) {
    SPARKSTACK_ASSIGN_OR_RETURN(listener, RendezvousListener::Bind("127.0.0.1", 0));
    rendezvous.host = "127.0.0.1";
    rendezvous.port = listener->port();
    SPARKSTACK_ASSIGN_OR_RETURN(launched->workers_, SpawnLocalWorkers(world, listener->port()));
  }
  auto start = [&]() -> absl::Status {
    SPARKSTACK_ASSIGN_OR_RETURN(JoinedRank joined,
                                JoinCluster(rendezvous, &options, listener ? &*listener : nullptr));
    SPARKSTACK_ASSIGN_OR_RETURN(launched->engine_,
                                Engine::Create(joined.options, std::move(joined.comms)));
    return absl::OkStatus();
  };
  if (absl::Status status = start(); !status.ok()) {
    status = launched->Explain(status);
    KillWorkers(launched->workers_);
    return status;
  }
  return launched;
}

absl::Status LaunchedEngine::Explain(const absl::Status& failure) const {
  if (workers_.empty()) return failure;
  // A worker that failed on its own says why; rank 0 only saw it leave.
  std::optional<absl::Status> report = WorkerFailure(workers_, std::chrono::milliseconds(500));
  if (report && (!absl::IsUnavailable(*report) || absl::IsUnavailable(failure))) return *report;
  return failure;
}

absl::Status LaunchedEngine::Shutdown() {
  absl::Status health = engine_ ? engine_->health() : absl::OkStatus();
  if (!health.ok()) health = Explain(health);
  engine_.reset();
  if (!health.ok()) {
    KillWorkers(workers_);
    return health;
  }
  return WaitForWorkers(workers_, std::chrono::seconds(timeout_s_));
}

LaunchedEngine::~LaunchedEngine() {
  engine_.reset();
  if (!workers_.empty()) KillWorkers(workers_);
}

}  // namespace sparkstack::launcher
